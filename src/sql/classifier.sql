-- optout: the classifier (types, functions) and its keyword table.

-- A plain CREATE SCHEMA: it fails if another role planted a schema "optout"
-- before the extension was created, so nothing of theirs is trusted.
CREATE SCHEMA optout;
COMMENT ON SCHEMA optout IS 'optout: SMS opt-out compliance (classifier, keywords, enforcement)';
GRANT USAGE ON SCHEMA optout TO PUBLIC;

CREATE TYPE optout.intent AS ENUM ('opt_out', 'opt_in', 'help', 'review');
COMMENT ON TYPE optout.intent IS 'What an inbound message asks for; NULL when it is not a keyword message; review: perhaps a revocation, too unclear to act on (never a stop; see optout.open_reviews)';

CREATE TYPE optout.match_mode AS ENUM ('exact', 'standard', 'reasonable');
COMMENT ON TYPE optout.match_mode IS 'How strictly inbound messages are read: exact (Twilio), standard, reasonable (FCC "any reasonable means")';

-- ---------------------------------------------------------------------------
-- The classifier

CREATE FUNCTION optout.normalize(body text) RETURNS text
    AS 'MODULE_PATHNAME', 'optout_normalize'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION optout.normalize(text) IS
    'The standard normalisation of a message body: NFKC, case folding, ignorables and diacritics removed, white space collapsed, punctuation and emoji trimmed at both ends';

CREATE FUNCTION optout.keyword_key(keyword text) RETURNS text
    AS 'MODULE_PATHNAME', 'optout_keyword_key'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION optout.keyword_key(text) IS
    'The key the classifier matches a keyword by: its normalised words joined without separators (''Opt-Out'' -> ''optout'')';

CREATE FUNCTION optout.classify(body text, mode optout.match_mode DEFAULT NULL)
    RETURNS optout.intent
    AS 'MODULE_PATHNAME', 'optout_classify'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION optout.classify(text, optout.match_mode) IS
    'Classifies an inbound message body as opt_out, opt_in, help or review (NULL otherwise); a NULL mode means the optout.match_mode setting';

CREATE FUNCTION optout.explain(body text, mode optout.match_mode DEFAULT NULL,
                               OUT intent optout.intent, OUT keyword text, OUT language text,
                               OUT rule text, OUT normalized text)
    RETURNS record
    AS 'MODULE_PATHNAME', 'optout_explain'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION optout.explain(text, optout.match_mode) IS
    'Why a body classifies as it does: the intent, the keyword (or request phrase) that matched, its language, the rule (exact, normalized, separator, repeat, courtesy, phrase, lookalike, typo, sentence; for a review lone_negative, lone_letter, keyword_aside) and the normalised text';

-- ---------------------------------------------------------------------------
-- The keyword table

CREATE TABLE optout.keywords (
    keyword     text PRIMARY KEY,
    intent      optout.intent NOT NULL
                CONSTRAINT keywords_intent_not_review CHECK (intent OPERATOR(pg_catalog.<>) 'review'),
    language    text NOT NULL DEFAULT 'en'
                CHECK (language OPERATOR(pg_catalog.~) '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
    enabled     boolean NOT NULL DEFAULT true,
    is_default  boolean NOT NULL DEFAULT false,
    note        text,
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE optout.keywords IS
    'Keywords the classifier matches. Add rows for custom keywords or languages; set enabled = false to stop matching a default';
COMMENT ON COLUMN optout.keywords.keyword IS 'The keyword as written; matched by its key, optout.keyword_key(keyword)';
COMMENT ON COLUMN optout.keywords.is_default IS 'Shipped with optout; defaults can be disabled but not deleted or renamed';

CREATE INDEX keywords_key_idx ON optout.keywords (optout.keyword_key(keyword));

-- Serialises the writers of optout.keywords: a lock of optout's own key
-- space, held to the end of the transaction.
CREATE FUNCTION optout._lock_keywords() RETURNS void
    AS 'MODULE_PATHNAME', 'optout_lock_keywords'
    LANGUAGE C VOLATILE;

-- Row checks: a usable keyword, one intent per key, defaults kept.
-- (SECURITY DEFINER: it takes the writers' lock, which no one else may.)
CREATE FUNCTION optout._keywords_check() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    other record;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.is_default THEN
            RAISE EXCEPTION 'default keyword "%" cannot be deleted', OLD.keyword
                USING ERRCODE = 'feature_not_supported',
                      HINT = format('Disable it instead: UPDATE optout.keywords SET enabled = false WHERE keyword = %L;', OLD.keyword);
        END IF;
        RETURN OLD;
    END IF;

    IF NEW.keyword IS NULL THEN
        RETURN NEW;  -- the primary key refuses it, with the usual error
    END IF;
    NEW.keyword := btrim(NEW.keyword, E' \t\r\n');
    k := optout.keyword_key(NEW.keyword);
    IF k IS NULL OR k = '' THEN
        RAISE EXCEPTION 'keyword "%" has no letter or digit', NEW.keyword
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A keyword is matched by its letters and digits; punctuation and emoji alone cannot be matched.';
    END IF;
    -- The classifier's limit: 100 UTF-16 code units of letters and digits
    -- (a character beyond U+FFFF counts twice).
    IF length(k) + length(regexp_replace(k, '[\u0001-\uFFFF]', '', 'g')) > 100 THEN
        RAISE EXCEPTION 'keyword "%" is too long', left(NEW.keyword, 40) || '...'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A keyword may have at most 100 letters and digits.';
    END IF;

    IF TG_OP = 'UPDATE' AND OLD.is_default
       AND (NEW.keyword IS DISTINCT FROM OLD.keyword OR NEW.intent IS DISTINCT FROM OLD.intent
            OR NOT NEW.is_default) THEN
        RAISE EXCEPTION 'default keyword "%" cannot be renamed or given another intent', OLD.keyword
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Disable the default (enabled = false) and add your own keyword.';
    END IF;

    -- Writers of this table are serialised, so two sessions cannot add the
    -- same key with different intents at once.
    PERFORM optout._lock_keywords();

    -- pg_restore (and a re-run of the defaults) inserts default rows that
    -- CREATE EXTENSION already made: merge the user's settings into them.
    IF TG_OP = 'INSERT' AND NEW.is_default THEN
        UPDATE optout.keywords
           SET enabled = NEW.enabled, language = NEW.language, note = NEW.note, updated_at = NEW.updated_at
         WHERE keyword = NEW.keyword AND is_default AND intent = NEW.intent;
        IF FOUND THEN
            RETURN NULL;
        END IF;
    END IF;

    SELECT kw.keyword, kw.intent INTO other
      FROM optout.keywords kw
     WHERE optout.keyword_key(kw.keyword) = k
       AND kw.intent <> NEW.intent
       AND (TG_OP = 'INSERT' OR kw.keyword <> OLD.keyword)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'keyword "%" conflicts with keyword "%" of intent %', NEW.keyword, other.keyword, other.intent
            USING ERRCODE = 'unique_violation',
                  DETAIL = format('Both are read as %L by the classifier, and a keyword belongs to exactly one intent.', k),
                  HINT = 'Delete or disable the other keyword first, or choose another keyword.';
    END IF;

    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER keywords_check
    BEFORE INSERT OR UPDATE OR DELETE ON optout.keywords
    FOR EACH ROW EXECUTE FUNCTION optout._keywords_check();

-- After any committed change, every backend reloads its cache of the table.
CREATE FUNCTION optout._config_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'optout_config_changed'
    LANGUAGE C;

CREATE TRIGGER keywords_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON optout.keywords
    FOR EACH STATEMENT EXECUTE FUNCTION optout._config_changed();

-- The defaults of the classifier specification: regulator and provider lists.
-- Their source is kDefaults in src/core/keywords.cpp; test/unit/keywords_test.cpp
-- checks that these rows are exactly those.
INSERT INTO optout.keywords (keyword, intent, language, is_default, note) VALUES
    ('stop',        'opt_out', 'en', true, 'FCC, CTIA, every provider'),
    ('stopall',     'opt_out', 'en', true, 'Twilio, Telnyx, Braze'),
    ('stop all',    'opt_out', 'en', true, 'Telnyx, Plivo'),
    ('unsubscribe', 'opt_out', 'en', true, 'FCC, CTIA, providers'),
    ('unsub',       'opt_out', 'en', true, 'Plivo'),
    ('cancel',      'opt_out', 'en', true, 'FCC, CTIA, providers'),
    ('end',         'opt_out', 'en', true, 'FCC, CTIA, providers'),
    ('quit',        'opt_out', 'en', true, 'FCC, CTIA, providers'),
    ('revoke',      'opt_out', 'en', true, 'FCC; Twilio since 2025'),
    ('optout',      'opt_out', 'en', true, 'Twilio, AWS'),
    ('opt out',     'opt_out', 'en', true, 'FCC (per se)'),
    ('remove',      'opt_out', 'en', true, 'AWS'),
    ('arret',       'opt_out', 'fr', true, 'CWTA (mandatory in Canada), AWS'),
    ('arrete',      'opt_out', 'fr', true, 'French variant'),
    ('alto',        'opt_out', 'es', true, 'Spanish-language US short codes'),
    ('detener',     'opt_out', 'es', true, 'Sinch'),
    ('salir',       'opt_out', 'es', true, 'Sinch'),
    ('baja',        'opt_out', 'es', true, 'vendor help pages'),
    ('cancelar',    'opt_out', 'es', true, 'Sinch'),
    ('parar',       'opt_out', 'pt', true, 'Sinch'),
    ('sair',        'opt_out', 'pt', true, 'Portuguese'),
    ('pare',        'opt_out', 'pt', true, 'Portuguese'),
    ('stopp',       'opt_out', 'de', true, 'German'),
    ('desuscribir',    'opt_out', 'es', true, 'Spanish verb for unsubscribing'),
    ('desuscribirme',  'opt_out', 'es', true, 'Spanish verb for unsubscribing (reflexive)'),
    ('desuscribo',     'opt_out', 'es', true, 'Spanish verb for unsubscribing (1st person)'),
    ('desuscribanme',  'opt_out', 'es', true, 'Spanish verb for unsubscribing (imperative)'),
    ('desabonner',     'opt_out', 'fr', true, 'French verb for unsubscribing'),
    ('desabonne',      'opt_out', 'fr', true, 'French verb for unsubscribing (je me desabonne, desabonne-moi)'),
    ('desabonnez',     'opt_out', 'fr', true, 'French verb for unsubscribing (imperative)'),
    ('desabonnement',  'opt_out', 'fr', true, 'French noun for unsubscribing'),
    ('desinscrire',    'opt_out', 'fr', true, 'French verb for unsubscribing'),
    ('desinscription', 'opt_out', 'fr', true, 'French noun for unsubscribing'),
    ('descadastrar',   'opt_out', 'pt', true, 'Portuguese verb for unsubscribing'),
    ('descadastre',    'opt_out', 'pt', true, 'Portuguese verb for unsubscribing (imperative)'),
    ('descadastra',    'opt_out', 'pt', true, 'Portuguese verb for unsubscribing (imperative)'),
    ('descadastro',    'opt_out', 'pt', true, 'Portuguese verb for unsubscribing (1st person)'),
    ('descadastrem',   'opt_out', 'pt', true, 'Portuguese verb for unsubscribing (imperative, plural)'),
    ('abmelden',       'opt_out', 'de', true, 'German verb for unsubscribing'),
    ('abmelde',        'opt_out', 'de', true, 'German verb for unsubscribing (1st person)'),
    ('abmeldung',      'opt_out', 'de', true, 'German noun for unsubscribing'),
    ('abbestellen',    'opt_out', 'de', true, 'German verb for unsubscribing'),
    ('abbestelle',     'opt_out', 'de', true, 'German verb for unsubscribing (1st person)'),
    ('austragen',      'opt_out', 'de', true, 'German verb for leaving a list'),
    ('start',       'opt_in',  'en', true, 'Twilio (reserved), toll-free network'),
    ('unstop',      'opt_in',  'en', true, 'Twilio (reserved), toll-free network'),
    ('yes',         'opt_in',  'en', true, 'Twilio, Plivo, Braze (not US toll-free)'),
    ('resume',      'opt_in',  'en', true, 'Plivo'),
    ('subscribe',   'opt_in',  'en', true, 'Sinch'),
    ('nonarret',    'opt_in',  'fr', true, 'toll-free network (per Sinch)'),
    ('help',        'help',    'en', true, 'Twilio, Plivo, Braze, CWTA'),
    ('info',        'help',    'en', true, 'Twilio, CWTA'),
    ('aide',        'help',    'fr', true, 'CWTA'),
    ('ayuda',       'help',    'es', true, 'Spanish-language short codes');

-- User edits survive pg_dump/pg_restore: every row is dumped, and restored
-- default rows merge into the ones CREATE EXTENSION made (see the trigger).
SELECT pg_catalog.pg_extension_config_dump('optout.keywords', '');

REVOKE ALL ON TABLE optout.keywords FROM PUBLIC;
GRANT SELECT ON TABLE optout.keywords TO PUBLIC;
REVOKE ALL ON FUNCTION optout._keywords_check() FROM PUBLIC;
REVOKE ALL ON FUNCTION optout._lock_keywords() FROM PUBLIC;
REVOKE ALL ON FUNCTION optout._config_changed() FROM PUBLIC;
