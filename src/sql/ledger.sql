-- optout: the ledger (who is stopped, where, since when, why), the event
-- record, provider error codes, and the functions of the ledger.

-- The ledger: who is stopped, on which scope, since when and why.

CREATE TABLE optout.stops (
    contact     text NOT NULL,
    channel     text,                       -- NULL: every channel (contact-wide)
    stopped_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    source      text NOT NULL CHECK (source IN ('keyword', 'provider', 'manual', 'backfill', 'platform')),
    keyword     text,
    rule        text,
    event_id    bigint,
    CONSTRAINT stops_contact_channel_key UNIQUE NULLS NOT DISTINCT (contact, channel)
);
COMMENT ON TABLE optout.stops IS
    'The ledger: one row per stopped contact and scope (channel NULL = every channel). Written only by optout';

-- The event record: every stop, start, help request, blocked send, provider
-- opt-out error, and refused status change.
CREATE TABLE optout.events (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    kind        text NOT NULL CHECK (kind IN ('stop', 'start', 'help', 'blocked', 'provider_error', 'status_kept',
                                          'confirmation', 'help_reply', 'review', 'review_dismissed')),
    contact     text NOT NULL,
    channel     text,
    source      text NOT NULL CHECK (source IN ('keyword', 'provider', 'manual', 'backfill', 'send', 'update', 'platform')),
    body        text,
    keyword     text,
    language    text,
    rule        text,
    provider    text,
    code        text,
    table_name  text,
    reason      text,
    actor       name NOT NULL,
    detail      jsonb,
    optout_version text,                -- a classified message: the optout version that read it
    keyword_set text                    -- ... and its keyword set (a hash of optout.keywords' enabled rows)
);
CREATE INDEX events_contact_idx ON optout.events (contact, id);
CREATE INDEX events_at_idx ON optout.events (at);
-- One confirmation per stop, one reply per help request: detail.for_event is
-- the stop's (the help request's) event; a second claim finds the first.
-- (The contact leads the key: on Citus, where the events are distributed by
-- contact, a unique index must include it; for_event is the same contact's.)
CREATE UNIQUE INDEX events_reply_once_idx ON optout.events (contact, ((detail ->> 'for_event')::bigint))
    WHERE kind IN ('confirmation', 'help_reply');
COMMENT ON TABLE optout.events IS
    'Every stop, start, help request, blocked send, provider opt-out error and refused status change, with who, when, which channel, message, keyword and rule';

-- Provider error codes that mean "this recipient opted out".
CREATE TABLE optout.delivery_error_codes (
    provider    text NOT NULL,
    code        text NOT NULL,
    description text,
    stops       boolean NOT NULL DEFAULT true,
    is_default  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (provider, code)
);
COMMENT ON TABLE optout.delivery_error_codes IS
    'Provider error codes optout knows; stops = true means the error stops the contact (recipient opted out)';

INSERT INTO optout.delivery_error_codes (provider, code, description, stops, is_default) VALUES
    ('twilio', '21610', 'attempt to send to unsubscribed recipient', true, true),
    ('twilio', '30004', 'message blocked (opt-out, block list, DND, filtering)', true, true),
    ('telnyx', '40300', 'blocked due to STOP message', true, true),
    ('plivo',  '200',   'destination opted out', true, true),
    ('vonage', '9',     'opted out / barred (delivery receipt err-code)', true, true),
    ('sinch',  '257',   'user opted out (STOP), toll-free', true, true),
    ('twilio', '30005', 'unknown handset', false, true),
    ('twilio', '30006', 'landline or unreachable carrier', false, true),
    ('twilio', '30007', 'filtered as spam', false, true),
    ('twilio', '21614', 'invalid destination (not a mobile number)', false, true),
    ('twilio', '21211', 'invalid destination number', false, true);

-- Restored default codes merge into the ones the install made.
CREATE FUNCTION optout._codes_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' AND NEW.is_default THEN
        UPDATE optout.delivery_error_codes
           SET description = NEW.description, stops = NEW.stops
         WHERE provider = NEW.provider AND code = NEW.code AND is_default;
        IF FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    NEW.provider := lower(btrim(NEW.provider));
    NEW.code := btrim(NEW.code);
    RETURN NEW;
END
$$;
CREATE TRIGGER delivery_error_codes_check
    BEFORE INSERT OR UPDATE ON optout.delivery_error_codes
    FOR EACH ROW EXECUTE FUNCTION optout._codes_check();

SELECT pg_catalog.pg_extension_config_dump('optout.stops', '');
SELECT pg_catalog.pg_extension_config_dump('optout.events', '');
SELECT pg_catalog.pg_extension_config_dump('optout.events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('optout.delivery_error_codes', '');

REVOKE ALL ON optout.stops, optout.events FROM PUBLIC;
REVOKE ALL ON optout.delivery_error_codes FROM PUBLIC;
GRANT SELECT ON optout.delivery_error_codes TO PUBLIC;

-- ---------------------------------------------------------------------------
-- Functions of the ledger (C; they write the ledger as optout's owner, and
-- the platform's tables as each table's owner).

CREATE FUNCTION optout.stop(contact text, channel text DEFAULT NULL, reason text DEFAULT NULL)
    RETURNS boolean AS 'MODULE_PATHNAME', 'optout_stop' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION optout.stop(text, text, text) IS
    'Stops a contact by hand (channel NULL: every channel), applying every attachment; true when newly stopped';

CREATE FUNCTION optout.start(contact text, channel text DEFAULT NULL, reason text DEFAULT NULL)
    RETURNS boolean AS 'MODULE_PATHNAME', 'optout_start' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION optout.start(text, text, text) IS
    'Lifts a stop by hand; requires a reason, which is recorded; true when a stop was lifted';

CREATE FUNCTION optout.is_stopped(contact text, channel text DEFAULT NULL)
    RETURNS boolean AS 'MODULE_PATHNAME', 'optout_is_stopped' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION optout.is_stopped(text, text) IS
    'Is the contact stopped on this channel (contact-wide or on the channel)? A NULL channel asks about a contact-wide stop';

CREATE FUNCTION optout.record_delivery_error(contact text, channel text, provider text, code text)
    RETURNS boolean AS 'MODULE_PATHNAME', 'optout_record_delivery_error' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION optout.record_delivery_error(text, text, text, text) IS
    'Records a provider error; one that means "recipient opted out" (optout.delivery_error_codes) stops the contact; true when it stopped the contact';

CREATE FUNCTION optout.history(contact text) RETURNS SETOF optout.events
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'SELECT * FROM optout.events e WHERE e.contact = $1 ORDER BY e.id';
COMMENT ON FUNCTION optout.history(text) IS 'Every event of one contact, oldest first';
