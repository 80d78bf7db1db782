-- The classifier's rules, one group of cases per rule of the specification,
-- read through optout.explain. Cases beyond the shared corpus.
CREATE EXTENSION optout;
-- Bodies are shown as JSON text with the Unicode format characters (soft
-- hyphen, zero-width and direction marks, BOM, tags) escaped as \uXXXX, or
-- \u{XXXXX} beyond the BMP: psql 15 counts them one column wide and psql 18
-- zero, so printed raw they would pad the table differently on each version.
CREATE FUNCTION pg_temp.shown(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT string_agg(CASE WHEN c !~ E'[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\U000e0000-\U000e007f]' THEN c
                         WHEN ascii(c) > 65535 THEN format('\u{%s}', to_hex(ascii(c)))
                         ELSE format('\u%s', lpad(to_hex(ascii(c)), 4, '0')) END, '' ORDER BY i)
    FROM regexp_split_to_table(to_json(t)::text, '') WITH ORDINALITY AS s(c, i)
$$;

-- The three modes side by side (E = exact, S = standard, R = reasonable).
CREATE TEMP TABLE cases (n serial, body text);
INSERT INTO cases (body) VALUES
    -- exact: trimmed, full case folding
    ('STOP'), (E'\n stop \t'), ('Stop All'), ('ＳＴＯＰ'), ('STOP.'), ('ARRÊT'), ('Arret'),
    -- normalized: NFKC, folding, ignorables, diacritics, quotes around the whole message
    ('ＳＴＯＰ'), (E'S\u200dTOP'), (E'\u200eSTOP\u200f'), (E'STOP\ufe0f'), ('ÁRRÊTE'), ('Détener'),
    ('«STOP»'), ('“Stop”'), ('''STOP'''), ('(stop)'), ('...stop...'), (E'stop\u00a0\u00a0all'), ('ℌ𝔢𝔩𝔭'),
    -- separator: the words of a keyword however they are joined
    ('opt-out'), ('OPT_OUT'), ('opt.out'), ('S-T-O-P'), ('s. t. o. p.'), ('un stop'), ('stop_all'), ('unsub-scribe'),
    -- repeat and courtesy: opt-out only
    ('stop stop stop'), ('STOP STOP'), ('Cancel, quit, END'), ('stop pls'), ('thank you stop'),
    ('STOP thx'), ('okay STOP now'), ('Unsubscribe. Thanks!'), ('stop please thank you'),
    ('start please'), ('help please'), ('yes yes'), ('stop start'), ('stop help'),
    -- quotes: words inside quotes that follow other words are not the sender's
    ('Liked “STOP”'), ('Loved "Reply STOP to stop"'), ('Emphasized «STOP»'), ('Laughed at ''stop'''),
    ('STOP "thanks"'), ('"Stop" by the office'), ('Disliked “stop texting me”'),
    -- reasonable: keyword-led requests and request phrases
    ('Stop sending me texts'), ('end this'), ('please stop messaging me'), ('Remove me from this list please'),
    ('take me off your list'), ('Please do not text me'), ('dont message me'), ('No more texts!'),
    ('I would like to unsubscribe'), ('i want to opt out'), ('opt me out please'),
    ('Can you please stop contacting me, this is the wrong number'),
    -- reasonable: never
    ('Stop by at 5'), ('cancel the order'), ('end of story'), ('quit smoking tips?'), ('never stop texting me'),
    ('I don''t want you to stop texting'), ('I will not stop sending'), ('Help me please'), ('yes please start'),
    ('Remember to stop at the store'), ('stopwatch'), ('Stopp'), ('STOPP!'),
    -- help and opt-in, whole message only
    ('HELP!'), ('Info?'), ('¡Ayuda!'), ('Aide'), ('start'), ('Start!!!'), ('UNSTOP'), ('NONARRÊT'), ('sí'), ('help info');

SELECT c.n, pg_temp.shown(c.body) AS body,
       optout.classify(c.body, 'exact') AS e,
       optout.classify(c.body, 'standard') AS s,
       optout.classify(c.body, 'reasonable') AS r,
       x.rule AS r_rule, x.keyword AS r_keyword, x.language AS lang
  FROM cases c, LATERAL optout.explain(c.body, 'reasonable') x
 ORDER BY c.n;

-- A mode is chosen per database (the setting), overridable per call.
SHOW optout.match_mode;
SELECT optout.classify('stop texting me') AS by_setting,
       optout.classify('stop texting me', 'reasonable') AS by_call;
SET optout.match_mode = 'reasonable';
SELECT optout.classify('stop texting me') AS by_setting,
       optout.classify('stop texting me', 'exact') AS by_call,
       optout.classify('stop texting me', NULL) AS null_mode;
SET optout.match_mode = 'exact';
SELECT optout.classify('Stop!') AS exact_setting;
RESET optout.match_mode;
SET optout.match_mode = 'loose';

-- explain: every field
SELECT * FROM optout.explain('  Ｓｔｏｐ，　ｐｌｅａｓｅ！ 🙏 ');
SELECT * FROM optout.explain('Arrêt', 'standard');
SELECT * FROM optout.explain('Arrêt', 'exact');
SELECT * FROM optout.explain('Can you leave me alone?', 'reasonable');
SELECT * FROM optout.explain('Hello there');

-- normalize: the standard normalisation
SELECT pg_temp.shown(b) AS body, to_json(optout.normalize(b))::text AS normalized
  FROM (VALUES ('  ＳＴＯＰ  '), (E'ST\u00adOP'), ('Ça  va?'), (E'don\u2019t  stop'), (E'\t🛑 Stop 🛑\n'),
               ('“Hi”'), (E'line1\r\nline2'), ('ǅemal'), ('ﬁne'), ('Straße'), ('İstanbul'), ('')) AS v(b);
SELECT optout.normalize(optout.normalize('  ＳｔＯＰ ！')) = optout.normalize('  ＳｔＯＰ ！') AS idempotent;

-- keyword_key: how keywords are matched
SELECT k, optout.keyword_key(k) FROM (VALUES ('Opt-Out'), ('stop all'), ('S.T.O.P'), ('ARRÊT'), ('!!!'), ('')) AS v(k);

-- NULL in, NULL out
SELECT optout.classify(NULL) IS NULL AS classify_null,
       optout.classify(NULL, 'exact') IS NULL AS classify_null_exact,
       optout.explain(NULL) IS NULL AS explain_null,
       optout.normalize(NULL) IS NULL AS normalize_null,
       optout.keyword_key(NULL) IS NULL AS key_null;

DROP EXTENSION optout;
