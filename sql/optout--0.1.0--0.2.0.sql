-- optout 0.1.0 -> 0.2.0: enforcement on a platform's own tables.

\echo Use "ALTER EXTENSION optout UPDATE TO '0.2.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- The ledger: who is stopped, on which scope, since when and why.

CREATE TABLE optout.stops (
    contact     text NOT NULL,
    channel     text,                       -- NULL: every channel (contact-wide)
    stopped_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    source      text NOT NULL CHECK (source IN ('keyword', 'provider', 'manual', 'backfill')),
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
    kind        text NOT NULL CHECK (kind IN ('stop', 'start', 'help', 'blocked', 'provider_error', 'status_kept')),
    contact     text NOT NULL,
    channel     text,
    source      text NOT NULL CHECK (source IN ('keyword', 'provider', 'manual', 'backfill', 'send', 'update')),
    body        text,
    keyword     text,
    language    text,
    rule        text,
    provider    text,
    code        text,
    table_name  text,
    reason      text,
    actor       name NOT NULL,
    detail      jsonb
);
CREATE INDEX events_contact_idx ON optout.events (contact, id);
CREATE INDEX events_at_idx ON optout.events (at);
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

-- What is attached: one row per table and role.
CREATE TABLE optout.attachments (
    id              serial PRIMARY KEY,
    tbl             regclass NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('inbound', 'outbound', 'contacts', 'groups', 'delivery_errors')),
    contact_column  name NOT NULL,
    channel_column  name,
    body_column     name,
    row_filter      jsonb,              -- {"column": value | [values] | null}: the rows that matter
    mode            optout.match_mode,  -- inbound: NULL means the optout.match_mode setting
    scope           text CHECK (scope IN ('contact', 'channel')),
    on_blocked      text CHECK (on_blocked IN ('error', 'skip', 'mark')),
    mark            jsonb,              -- outbound: {"column": value} given to blocked and failed rows
    queued          jsonb,              -- outbound: {"column": value | [values]}: rows still to be sent
    status_column   name,               -- contacts
    stopped_value   text,
    active_value    text,
    touch_column    name,               -- contacts: set to now() when optout changes the status
    group_column    name,               -- groups
    stopped_group   text,               -- groups: a fixed group key, or
    stopped_group_query text,           -- a query with $1 = contact key (text) returning the group key
    code_column     name,               -- delivery errors
    provider        text,
    provider_column name,
    event_column    name,
    stop_events     text[],
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT attachments_tbl_kind_key UNIQUE (tbl, kind)
);
COMMENT ON TABLE optout.attachments IS 'The platform tables optout enforces on; written by the optout.attach_* functions';

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

-- Changes to attachments reach every backend's cache of them.
CREATE TRIGGER attachments_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON optout.attachments
    FOR EACH STATEMENT EXECUTE FUNCTION optout._config_changed();

SELECT pg_catalog.pg_extension_config_dump('optout.stops', '');
SELECT pg_catalog.pg_extension_config_dump('optout.events', '');
SELECT pg_catalog.pg_extension_config_dump('optout.events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('optout.delivery_error_codes', '');
SELECT pg_catalog.pg_extension_config_dump('optout.attachments', '');
SELECT pg_catalog.pg_extension_config_dump('optout.attachments_id_seq', '');

REVOKE ALL ON optout.stops, optout.events, optout.attachments FROM PUBLIC;
REVOKE ALL ON optout.delivery_error_codes FROM PUBLIC;
GRANT SELECT ON optout.delivery_error_codes, optout.attachments TO PUBLIC;

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

CREATE FUNCTION optout._inbound_trigger() RETURNS trigger AS 'MODULE_PATHNAME', 'optout_inbound_trigger' LANGUAGE C;
CREATE FUNCTION optout._outbound_trigger() RETURNS trigger AS 'MODULE_PATHNAME', 'optout_outbound_trigger' LANGUAGE C;
CREATE FUNCTION optout._contacts_trigger() RETURNS trigger AS 'MODULE_PATHNAME', 'optout_contacts_trigger' LANGUAGE C;
CREATE FUNCTION optout._delivery_trigger() RETURNS trigger AS 'MODULE_PATHNAME', 'optout_delivery_trigger' LANGUAGE C;
CREATE FUNCTION optout._flush() RETURNS trigger AS 'MODULE_PATHNAME', 'optout_flush' LANGUAGE C;
-- Called in the WHEN of optout's row triggers, as the role that inserts: does
-- this message classify as a keyword; is this send blocked (it takes the
-- contact's send lock, like the trigger did).
CREATE FUNCTION optout._inbound_when(attachment integer, body text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'optout_inbound_when' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION optout._outbound_when(attachment integer, contact "any", channel "any") RETURNS boolean
    AS 'MODULE_PATHNAME', 'optout_outbound_when' LANGUAGE C VOLATILE PARALLEL RESTRICTED;

-- ---------------------------------------------------------------------------
-- Attaching a platform's tables. All names are quoted with %I, all values
-- with %L: a name with quotes, spaces or semicolons is just a name.

-- The type of a column, or a clear error.
CREATE FUNCTION optout._column(tbl regclass, col name, what text, key_type boolean DEFAULT false)
    RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ oid;
    typname text;
BEGIN
    IF col IS NULL THEN
        RAISE EXCEPTION 'the % column of % must be given', what, tbl USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT a.atttypid, format_type(a.atttypid, a.atttypmod) INTO typ, typname
      FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table % does not exist', col, tbl
            USING ERRCODE = 'undefined_column',
                  HINT = format('Name the %s column; the table has: %s.', what,
                                (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                                  WHERE attrelid = tbl AND attnum > 0 AND NOT attisdropped));
    END IF;
    IF key_type AND typ NOT IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'uuid'::regtype,
                                'text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'numeric'::regtype) THEN
        RAISE EXCEPTION 'column "%" of table % has type %, which optout cannot use as a % key', col, tbl, typname, what
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Contact and channel keys may be smallint, integer, bigint, numeric, uuid, text, varchar or char.';
    END IF;
    IF what = 'body' AND typ NOT IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype) THEN
        RAISE EXCEPTION 'column "%" of table % has type %; a message body must be text, varchar or char', col, tbl, typname
            USING ERRCODE = 'datatype_mismatch';
    END IF;
    RETURN typname;
END
$$;

-- A column's type, schema-qualified, for casts in statements that run under
-- the session's search_path.
CREATE FUNCTION optout._qualified_type(tbl regclass, col name)
    RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('%I.%I', n.nspname, t.typname)
      FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE a.attrelid = $1 AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped
$$;

-- A row filter ({"column": value | [values] | null}) as SQL over the row;
-- prefix is 'NEW.' for a trigger WHEN clause, '' for a statement. Operators
-- are schema-qualified: the statement means the same under any search_path.
CREATE FUNCTION optout._filter_sql(tbl regclass, filter jsonb, prefix text)
    RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    v jsonb;
    parts text[] := '{}';
    vals text[];
BEGIN
    IF filter IS NULL OR filter = '{}'::jsonb THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(filter) <> 'object' THEN
        RAISE EXCEPTION 'a row filter must be a JSON object of column names and values, not %', filter
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example: ''{"direction": "I"}'' or ''{"status": ["I", "Q", "E"]}''.';
    END IF;
    FOR k, v IN SELECT key, value FROM jsonb_each(filter) ORDER BY key LOOP
        PERFORM optout._column(tbl, k::name, 'filter');
        CASE jsonb_typeof(v)
            WHEN 'null' THEN
                parts := parts || format('%s%I IS NULL', prefix, k);
            WHEN 'array' THEN
                IF jsonb_array_length(v) = 0 OR EXISTS (SELECT 1 FROM jsonb_array_elements(v) e
                                                         WHERE jsonb_typeof(e) IN ('object', 'array', 'null')) THEN
                    RAISE EXCEPTION 'the filter on column "%" must list scalar values', k
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                SELECT array_agg(format('%s%I OPERATOR(pg_catalog.=) %L', prefix, k, e)) INTO vals
                  FROM jsonb_array_elements_text(v) e;
                parts := parts || format('(%s)', array_to_string(vals, ' OR '));
            WHEN 'object' THEN
                RAISE EXCEPTION 'the filter on column "%" must be a value, a list of values or null', k
                    USING ERRCODE = 'invalid_parameter_value';
            ELSE
                parts := parts || format('%s%I OPERATOR(pg_catalog.=) %L', prefix, k, v #>> '{}');
        END CASE;
    END LOOP;
    RETURN array_to_string(parts, ' AND ');
END
$$;

-- The statements an attachment runs when contacts are stopped or their
-- stops are lifted, once for a whole batch, each by its name:
--   contacts.stop         the contacts' status becomes stopped_value
--   contacts.start        ... and back to active_value
--   groups.leave          the contacts leave every group but their Stopped group
--   groups.join_stopped   ... and join their Stopped group
--   groups.start          ... and leave it
--   outbound.fail_queued  their queued messages are failed (deleted or marked)
-- $1 is the array of contact keys (text[]); $2 (text[], aligned with $1) is,
-- for a groups table, each contact's Stopped group, and for an outbound
-- table, each stop's channel (NULL: every channel). outbound.fail_queued
-- returns (contact, failed) pairs, by contact in byte order: how many queued
-- messages each contact's stops failed.
CREATE FUNCTION optout._action_sql(attachment integer)
    RETURNS TABLE (name text, sql text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a optout.attachments;
    t text;
    ctype text;
    chtype text;
    gtype text;
    cond text;
    sets text;
    known text;
    pairs text;
BEGIN
    SELECT * INTO a FROM optout.attachments WHERE id = attachment;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT format('%I.%I', n.nspname, c.relname) INTO t
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = a.tbl;
    PERFORM optout._column(a.tbl, a.contact_column, 'contact');
    ctype := optout._qualified_type(a.tbl, a.contact_column);
    CASE a.kind
    WHEN 'contacts' THEN
        RETURN QUERY VALUES
            ('contacts.stop', format('UPDATE %s SET %I = %L%s WHERE %I OPERATOR(pg_catalog.=) ANY ($1::%s[]) '
                                'AND (%I OPERATOR(pg_catalog.=) %L) IS NOT TRUE',
                                t, a.status_column, a.stopped_value,
                                CASE WHEN a.touch_column IS NOT NULL THEN format(', %I = pg_catalog.now()', a.touch_column) ELSE '' END,
                                a.contact_column, ctype, a.status_column, a.stopped_value)),
            ('contacts.start', format('UPDATE %s SET %I = %L%s WHERE %I OPERATOR(pg_catalog.=) ANY ($1::%s[]) '
                                'AND %I OPERATOR(pg_catalog.=) %L',
                                t, a.status_column, a.active_value,
                                CASE WHEN a.touch_column IS NOT NULL THEN format(', %I = pg_catalog.now()', a.touch_column) ELSE '' END,
                                a.contact_column, ctype, a.status_column, a.stopped_value));
    WHEN 'groups' THEN
        PERFORM optout._column(a.tbl, a.group_column, 'group');
        gtype := optout._qualified_type(a.tbl, a.group_column);
        pairs := format('(SELECT DISTINCT u.c::%s AS c, u.g::%s AS g '
                        'FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[])) u(c, g))',
                        ctype, gtype);
        -- A contact the platform does not know (a manual stop of an unknown
        -- key) joins no group: with a contacts table attached, it must be there.
        SELECT string_agg(format(' AND EXISTS (SELECT 1 FROM %I.%I k WHERE k.%I OPERATOR(pg_catalog.=) p.c)',
                                 n.nspname, c.relname, ca.contact_column), '')
          INTO known
          FROM optout.attachments ca JOIN pg_class c ON c.oid = ca.tbl JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE ca.kind = 'contacts';
        RETURN QUERY VALUES
            ('groups.leave',
                format('DELETE FROM %s x USING %s p WHERE x.%I OPERATOR(pg_catalog.=) p.c '
                       'AND (x.%I OPERATOR(pg_catalog.=) p.g) IS NOT TRUE',
                       t, pairs, a.contact_column, a.group_column)),
            ('groups.join_stopped',
                format('INSERT INTO %s (%I, %I) SELECT p.c, p.g FROM %s p '
                       'WHERE p.g IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %s x WHERE x.%I OPERATOR(pg_catalog.=) p.c '
                       'AND x.%I OPERATOR(pg_catalog.=) p.g)%s',
                       t, a.contact_column, a.group_column, pairs, t, a.contact_column, a.group_column,
                       coalesce(known, ''))),
            ('groups.start', format('DELETE FROM %s x USING %s p WHERE x.%I OPERATOR(pg_catalog.=) p.c '
                                'AND x.%I OPERATOR(pg_catalog.=) p.g',
                                t, pairs, a.contact_column, a.group_column));
    WHEN 'outbound' THEN
        IF a.queued IS NULL THEN
            RETURN;
        END IF;
        cond := concat_ws(' AND ', optout._filter_sql(a.tbl, a.row_filter, 'x.'), optout._filter_sql(a.tbl, a.queued, 'x.'));
        IF a.channel_column IS NOT NULL THEN
            PERFORM optout._column(a.tbl, a.channel_column, 'channel');
            chtype := optout._qualified_type(a.tbl, a.channel_column);
            pairs := format('(SELECT DISTINCT u.c::%s AS c, u.ch::%s AS ch '
                            'FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[])) u(c, ch))',
                            ctype, chtype);
            cond := concat_ws(' AND ', cond, format('(p.ch IS NULL OR x.%I OPERATOR(pg_catalog.=) p.ch)', a.channel_column));
        ELSE
            pairs := format('(SELECT DISTINCT u.c::%s AS c FROM pg_catalog.unnest($1::pg_catalog.text[]) u(c))', ctype);
        END IF;
        cond := concat_ws(' AND ', format('x.%I OPERATOR(pg_catalog.=) p.c', a.contact_column), cond);
        IF a.mark IS NOT NULL AND a.mark <> '{}'::jsonb THEN
            SELECT string_agg(CASE WHEN value = 'null'::jsonb THEN format('%I = NULL', key)
                                   ELSE format('%I = %L', key, value #>> '{}') END, ', ' ORDER BY key)
              INTO sets FROM jsonb_each(a.mark);
            RETURN QUERY VALUES ('outbound.fail_queued', format('WITH f AS (UPDATE %s x SET %s FROM %s p WHERE %s RETURNING x.%I) '
                                'SELECT f.%I::pg_catalog.text, pg_catalog.count(*) FROM f GROUP BY 1 '
                                'ORDER BY f.%I::pg_catalog.text COLLATE pg_catalog."C"',
                                t, sets, pairs, cond, a.contact_column, a.contact_column, a.contact_column));
            RETURN;
        END IF;
        RETURN QUERY VALUES ('outbound.fail_queued', format('WITH f AS (DELETE FROM %s x USING %s p WHERE %s RETURNING x.%I) '
                            'SELECT f.%I::pg_catalog.text, pg_catalog.count(*) FROM f GROUP BY 1 '
                            'ORDER BY f.%I::pg_catalog.text COLLATE pg_catalog."C"',
                            t, pairs, cond, a.contact_column, a.contact_column, a.contact_column));
    ELSE
        RETURN;
    END CASE;
END
$$;

-- Shared checks of every attach_* function (the table, a second attach, the
-- contact and channel key columns); returns the quoted table name.
CREATE FUNCTION optout._attach_check(tbl regclass, kind text, contact_column name, channel_column name DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
    rk "char";
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'a table must be given' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT format('%I.%I', n.nspname, c.relname), c.relkind INTO t, rk
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
    IF rk NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', tbl
            USING ERRCODE = 'wrong_object_type', HINT = 'optout attaches ordinary and partitioned tables.';
    END IF;
    IF EXISTS (SELECT 1 FROM optout.attachments a WHERE a.tbl = _attach_check.tbl AND a.kind = _attach_check.kind) THEN
        RAISE EXCEPTION 'table % is already attached as %', tbl, kind
            USING ERRCODE = 'duplicate_object',
                  HINT = format('Run optout.detach(%L) first to attach it again.', t);
    END IF;
    PERFORM optout._column(tbl, contact_column, 'contact', true);
    IF channel_column IS NOT NULL THEN
        PERFORM optout._column(tbl, channel_column, 'channel', true);
    END IF;
    RETURN t;
END
$$;

-- Checks that an attachment's statements prepare, so mistakes surface now.
CREATE FUNCTION optout._attach_verify(attachment integer)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text;
    params text;
BEGIN
    -- The statements take arrays of keys; a stopped_group_query one key.
    FOR s, params IN
        SELECT q.sql, '(text[], text[])' FROM optout._action_sql(attachment) q
        UNION ALL
        SELECT a.stopped_group_query, '(text)' FROM optout.attachments a
         WHERE a.id = attachment AND a.stopped_group_query IS NOT NULL
    LOOP
        BEGIN
            EXECUTE format('PREPARE optout_attach_verify%s AS %s', params, s);
            DEALLOCATE optout_attach_verify;
        EXCEPTION WHEN syntax_error_or_access_rule_violation THEN  -- class 42: unknown names, types
            RAISE EXCEPTION 'optout cannot prepare what this attachment runs: %', SQLERRM
                USING ERRCODE = SQLSTATE, DETAIL = format('Statement: %s', s),
                      HINT = 'Schema-qualify every name in a query you pass (it runs with search_path = pg_catalog); $1 is the contact key as text.';
        END;
    END LOOP;
END
$$;

CREATE FUNCTION optout._check_value(tbl regclass, col name, val text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF val IS NOT NULL THEN
        EXECUTE format('SELECT %L::%s', val, optout._column(tbl, col, 'value'));
    END IF;
EXCEPTION WHEN data_exception THEN
    RAISE EXCEPTION 'value % does not fit column "%" of table %: %', quote_literal(val), col, tbl, SQLERRM
        USING ERRCODE = 'invalid_parameter_value';
END
$$;

-- The statement-level trigger that applies what the row triggers of a
-- statement collected (stops, starts, help requests), on the table and on each
-- of its partitions (a statement may name a partition). Partitions made
-- later get it from optout._on_ddl_end; should that event trigger be
-- disabled, what their statements collect is applied before commit.
CREATE FUNCTION optout._flush_triggers(tbl regclass)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r regclass;
BEGIN
    FOR r IN SELECT tbl UNION SELECT relid FROM pg_partition_tree(tbl) LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = r AND tgname = 'optout_flush') THEN
            EXECUTE format('CREATE TRIGGER optout_flush AFTER INSERT ON %s FOR EACH STATEMENT '
                           'EXECUTE FUNCTION optout._flush()', r);
        END IF;
    END LOOP;
END
$$;

CREATE FUNCTION optout.attach_inbound(tbl regclass, body_column name, contact_column name,
                                      channel_column name DEFAULT NULL, mode optout.match_mode DEFAULT NULL,
                                      scope text DEFAULT 'contact', row_filter jsonb DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text := optout._attach_check(tbl, 'inbound', contact_column, channel_column);
    w text;
    id integer;
BEGIN
    PERFORM optout._column(tbl, body_column, 'body');
    IF scope IS NULL OR scope NOT IN ('contact', 'channel') THEN
        RAISE EXCEPTION 'scope must be ''contact'' or ''channel'', not %', coalesce(quote_literal(scope), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF scope = 'channel' AND channel_column IS NULL THEN
        RAISE EXCEPTION 'scope ''channel'' needs a channel column' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    w := optout._filter_sql(tbl, row_filter, 'NEW.');
    INSERT INTO optout.attachments AS a (tbl, kind, contact_column, channel_column, body_column, row_filter, mode, scope)
    VALUES (attach_inbound.tbl, 'inbound', attach_inbound.contact_column, attach_inbound.channel_column,
            attach_inbound.body_column, attach_inbound.row_filter, attach_inbound.mode, attach_inbound.scope)
    RETURNING a.id INTO id;
    -- Only the rows that classify as a keyword fire the trigger (the WHEN
    -- classifies every row as it is inserted, which keeps COPY's batched
    -- inserts); their stops and starts are applied at the end of the statement.
    EXECUTE format('CREATE TRIGGER optout_inbound AFTER INSERT ON %s FOR EACH ROW WHEN (%s) '
                   'EXECUTE FUNCTION optout._inbound_trigger(%L)',
                   t, concat_ws(' AND ', w, format('optout._inbound_when(%s, NEW.%I::pg_catalog.text)', id, body_column)),
                   id);
    PERFORM optout._flush_triggers(tbl);
    RETURN id;
END
$$;

CREATE FUNCTION optout.attach_outbound(tbl regclass, contact_column name, channel_column name DEFAULT NULL,
                                       on_blocked text DEFAULT 'error', mark jsonb DEFAULT NULL,
                                       queued jsonb DEFAULT NULL, row_filter jsonb DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text := optout._attach_check(tbl, 'outbound', contact_column, channel_column);
    w text;
    bw text;
    sendable text;
    k text;
    v jsonb;
    id integer;
BEGIN
    IF on_blocked IS NULL OR on_blocked NOT IN ('error', 'skip', 'mark') THEN
        RAISE EXCEPTION 'on_blocked must be ''error'', ''skip'' or ''mark'', not %', coalesce(quote_literal(on_blocked), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF mark IS NOT NULL AND jsonb_typeof(mark) <> 'object' THEN
        RAISE EXCEPTION 'mark must be a JSON object of column names and values, not %', mark
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example: ''{"status": "F", "failed_reason": "C"}''.';
    END IF;
    IF on_blocked = 'mark' AND (mark IS NULL OR mark = '{}'::jsonb) THEN
        RAISE EXCEPTION 'on_blocked ''mark'' needs the values to mark a blocked row with'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass mark => ''{"status": "F"}'' or similar.';
    END IF;
    FOR k, v IN SELECT key, value FROM jsonb_each(coalesce(mark, '{}')) LOOP
        IF jsonb_typeof(v) IN ('object', 'array') THEN
            RAISE EXCEPTION 'the mark for column "%" must be a value or null', k USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM optout._check_value(tbl, k::name, v #>> '{}');
    END LOOP;
    PERFORM optout._filter_sql(tbl, queued, '');
    w := optout._filter_sql(tbl, row_filter, 'NEW.');
    INSERT INTO optout.attachments AS a (tbl, kind, contact_column, channel_column, row_filter, on_blocked, mark, queued)
    VALUES (attach_outbound.tbl, 'outbound', attach_outbound.contact_column, attach_outbound.channel_column,
            attach_outbound.row_filter, attach_outbound.on_blocked, attach_outbound.mark, attach_outbound.queued)
    RETURNING a.id INTO id;
    PERFORM optout._attach_verify(id);
    -- The WHEN checks every row against the ledger as it is written (and
    -- takes the contact's send lock); only a blocked row calls the trigger
    -- function, which refuses, drops or marks it. Every way a row becomes
    -- sendable is checked: an INSERT (COPY included); an UPDATE that sets
    -- the contact or channel column, changed or not; and an UPDATE that makes
    -- a row match row_filter and queued when it did not before (a resend).
    bw := format('optout._outbound_when(%s, NEW.%I, %s)', id, contact_column,
                 coalesce('NEW.' || quote_ident(channel_column), 'NULL::pg_catalog.text'));
    EXECUTE format('CREATE TRIGGER optout_outbound BEFORE INSERT OR UPDATE OF %s ON %s FOR EACH ROW WHEN (%s) '
                   'EXECUTE FUNCTION optout._outbound_trigger(%L)',
                   concat_ws(', ', quote_ident(contact_column), quote_ident(channel_column)), t,
                   concat_ws(' AND ', w, bw), id);
    sendable := concat_ws(' AND ', optout._filter_sql(tbl, row_filter, 'NEW.'), optout._filter_sql(tbl, queued, 'NEW.'));
    IF sendable IS NOT NULL AND sendable <> '' THEN
        EXECUTE format('CREATE TRIGGER optout_outbound_requeue BEFORE UPDATE ON %s FOR EACH ROW '
                       'WHEN (%s AND (%s) IS NOT TRUE AND %s) EXECUTE FUNCTION optout._outbound_trigger(%L)',
                       t, sendable,
                       concat_ws(' AND ', optout._filter_sql(tbl, row_filter, 'OLD.'), optout._filter_sql(tbl, queued, 'OLD.')),
                       bw, id);
    END IF;
    RETURN id;
END
$$;

CREATE FUNCTION optout.attach_contacts(tbl regclass, key_column name, status_column name,
                                       stopped_value text, active_value text, touch_column name DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text := optout._attach_check(tbl, 'contacts', key_column);
    id integer;
BEGIN
    PERFORM optout._column(tbl, status_column, 'status');
    IF stopped_value IS NULL OR active_value IS NULL OR stopped_value = active_value THEN
        RAISE EXCEPTION 'the stopped and active values must be given and differ'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM optout._check_value(tbl, status_column, stopped_value);
    PERFORM optout._check_value(tbl, status_column, active_value);
    IF touch_column IS NOT NULL THEN
        PERFORM optout._column(tbl, touch_column, 'touch');
    END IF;
    INSERT INTO optout.attachments AS a (tbl, kind, contact_column, status_column, stopped_value, active_value, touch_column)
    VALUES (attach_contacts.tbl, 'contacts', key_column, status_column, stopped_value, active_value, touch_column)
    RETURNING a.id INTO id;
    PERFORM optout._attach_verify(id);
    EXECUTE format('CREATE TRIGGER optout_contacts BEFORE UPDATE OF %I ON %s FOR EACH ROW '
                   'WHEN (NEW.%I OPERATOR(pg_catalog.=) %L AND OLD.%I IS DISTINCT FROM NEW.%I) '
                   'EXECUTE FUNCTION optout._contacts_trigger(%L)',
                   status_column, t, status_column, active_value, status_column, status_column, id);
    RETURN id;
END
$$;

CREATE FUNCTION optout.attach_groups(tbl regclass, contact_column name, group_column name,
                                     stopped_group text DEFAULT NULL, stopped_group_query text DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id integer;
BEGIN
    PERFORM optout._attach_check(tbl, 'groups', contact_column);
    PERFORM optout._column(tbl, group_column, 'group');
    IF (stopped_group IS NULL) = (stopped_group_query IS NULL) THEN
        RAISE EXCEPTION 'give exactly one of stopped_group and stopped_group_query'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'stopped_group names a fixed group; stopped_group_query returns the group for contact $1 (text).';
    END IF;
    PERFORM optout._check_value(tbl, group_column, stopped_group);
    INSERT INTO optout.attachments AS a (tbl, kind, contact_column, group_column, stopped_group, stopped_group_query)
    VALUES (attach_groups.tbl, 'groups', contact_column, group_column, stopped_group, stopped_group_query)
    RETURNING a.id INTO id;
    PERFORM optout._attach_verify(id);
    RETURN id;
END
$$;

CREATE FUNCTION optout.attach_delivery_errors(tbl regclass, contact_column name, code_column name DEFAULT NULL,
                                              provider text DEFAULT NULL, provider_column name DEFAULT NULL,
                                              channel_column name DEFAULT NULL, event_column name DEFAULT NULL,
                                              stop_events text[] DEFAULT NULL, scope text DEFAULT 'contact',
                                              row_filter jsonb DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text := optout._attach_check(tbl, 'delivery_errors', contact_column, channel_column);
    w text;
    id integer;
BEGIN
    IF code_column IS NULL AND event_column IS NULL THEN
        RAISE EXCEPTION 'give a code column (with provider or provider_column) or an event column (with stop_events)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF code_column IS NOT NULL THEN
        PERFORM optout._column(tbl, code_column, 'code');
        IF (provider IS NULL) = (provider_column IS NULL) THEN
            RAISE EXCEPTION 'a code column needs exactly one of provider and provider_column'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF provider_column IS NOT NULL THEN
            PERFORM optout._column(tbl, provider_column, 'provider');
        END IF;
    END IF;
    IF event_column IS NOT NULL THEN
        PERFORM optout._column(tbl, event_column, 'event');
        IF stop_events IS NULL OR cardinality(stop_events) = 0 THEN
            RAISE EXCEPTION 'an event column needs the events that mean "stopped" (stop_events)'
                USING ERRCODE = 'invalid_parameter_value', HINT = 'For RapidPro: stop_events => ''{stop_contact}''.';
        END IF;
    END IF;
    IF scope IS NULL OR scope NOT IN ('contact', 'channel') OR (scope = 'channel' AND channel_column IS NULL) THEN
        RAISE EXCEPTION 'scope must be ''contact'', or ''channel'' with a channel column'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    w := optout._filter_sql(tbl, row_filter, 'NEW.');
    INSERT INTO optout.attachments AS a (tbl, kind, contact_column, channel_column, code_column, provider,
                                         provider_column, event_column, stop_events, scope, row_filter)
    VALUES (attach_delivery_errors.tbl, 'delivery_errors', contact_column, channel_column, code_column,
            lower(provider), provider_column, event_column, stop_events, scope, row_filter)
    RETURNING a.id INTO id;
    EXECUTE format('CREATE TRIGGER optout_delivery_errors AFTER INSERT ON %s FOR EACH ROW %s EXECUTE FUNCTION optout._delivery_trigger(%L)',
                   t, CASE WHEN w IS NOT NULL THEN format('WHEN (%s)', w) ELSE '' END, id);
    -- The stops a statement's rows cause are applied at its end, together.
    PERFORM optout._flush_triggers(tbl);
    RETURN id;
END
$$;

CREATE FUNCTION optout.detach(tbl regclass)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
    n integer;
    trg name;
    p regclass;
BEGIN
    SELECT format('%I.%I', ns.nspname, c.relname) INTO t
      FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE c.oid = tbl;
    FOR trg IN SELECT tgname FROM pg_trigger
                WHERE tgrelid = tbl AND NOT tgisinternal AND tgparentid = 0
                  AND tgname IN ('optout_inbound', 'optout_outbound', 'optout_outbound_requeue', 'optout_contacts',
                                 'optout_delivery_errors') LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', trg, t);
    END LOOP;
    -- The statement-level triggers, on the table and on each of its partitions.
    FOR p IN SELECT tg.tgrelid::regclass FROM pg_trigger tg
              WHERE tg.tgname = 'optout_flush' AND NOT tg.tgisinternal
                AND tg.tgrelid IN (SELECT relid FROM pg_partition_tree(tbl)
                                   UNION ALL SELECT tbl::oid) LOOP
        EXECUTE format('DROP TRIGGER optout_flush ON %s', p);
    END LOOP;
    DELETE FROM optout.attachments a WHERE a.tbl = detach.tbl;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE NOTICE 'table % was not attached to optout', tbl;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION optout.detach(regclass) IS 'Removes everything optout attached to a table; returns the number of attachments removed';

CREATE VIEW optout.attached AS
SELECT a.id, a.tbl, a.kind, a.contact_column, a.channel_column, a.body_column, a.row_filter,
       a.mode, a.scope, a.on_blocked, a.mark, a.queued, a.status_column, a.stopped_value, a.active_value,
       a.group_column, a.stopped_group, a.stopped_group_query, a.code_column, a.provider, a.event_column,
       a.stop_events, a.created_at,
       t.tgname AS trigger_name,
       CASE WHEN a.kind = 'groups' THEN NULL ELSE t.tgname IS NOT NULL AND t.tgenabled <> 'D' END AS trigger_enabled
  FROM optout.attachments a
  LEFT JOIN pg_catalog.pg_trigger t
    ON t.tgrelid = a.tbl AND t.tgname = 'optout_' || a.kind AND NOT t.tgisinternal;
COMMENT ON VIEW optout.attached IS 'What optout is attached to, and whether its trigger is in place';

-- ---------------------------------------------------------------------------
-- Privileges: the application needs none of these to send and receive.
REVOKE ALL ON FUNCTION optout.stop(text, text, text), optout.start(text, text, text),
    optout.record_delivery_error(text, text, text, text), optout.history(text),
    optout._flush(), optout._flush_triggers(regclass),
    optout._column(regclass, name, text, boolean), optout._filter_sql(regclass, jsonb, text),
    optout._qualified_type(regclass, name),
    optout._action_sql(integer), optout._attach_check(regclass, text, name, name), optout._attach_verify(integer),
    optout._check_value(regclass, name, text), optout._codes_check(),
    optout.attach_inbound(regclass, name, name, name, optout.match_mode, text, jsonb),
    optout.attach_outbound(regclass, name, name, text, jsonb, jsonb, jsonb),
    optout.attach_contacts(regclass, name, name, text, text, name),
    optout.attach_groups(regclass, name, name, text, text),
    optout.attach_delivery_errors(regclass, name, name, text, name, name, name, text[], text, jsonb),
    optout.detach(regclass)
  FROM PUBLIC;
GRANT SELECT ON optout.attached TO PUBLIC;
-- The row trigger functions stay executable by PUBLIC: PostgreSQL requires
-- EXECUTE of whoever creates a partition of an attached table (it clones the
-- row triggers). Each acts only for its attachment's table and partitions.

-- The event triggers fire for every role's DDL (a migration run as the
-- application role included): they run as optout's owner, with a pinned
-- search_path, and touch only optout's own rows and optout's own triggers.

-- A dropped table takes its attachments with it.
CREATE FUNCTION optout._on_sql_drop() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM optout.attachments a
     USING pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_class'::regclass AND d.objid = a.tbl::oid AND d.objsubid = 0;
END
$$;
REVOKE ALL ON FUNCTION optout._on_sql_drop() FROM PUBLIC;
CREATE EVENT TRIGGER optout_sql_drop ON sql_drop
    WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
    EXECUTE FUNCTION optout._on_sql_drop();

-- A partition created or attached later under an attached table gets the
-- statement-level trigger too (its row triggers are cloned by PostgreSQL).
-- A column an attachment names cannot be dropped or renamed under it: the
-- ALTER TABLE is refused (as PostgreSQL refuses to drop a column a view uses).
CREATE FUNCTION optout._on_ddl_end() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r regclass;
    bad record;
BEGIN
    SELECT a.id, a.kind, a.tbl, u.col INTO bad
      FROM optout.attachments a
     CROSS JOIN LATERAL (
            SELECT x.col FROM unnest(ARRAY[a.contact_column, a.channel_column, a.body_column, a.status_column,
                                           a.touch_column, a.group_column, a.code_column, a.provider_column,
                                           a.event_column]) x(col)
            UNION ALL SELECT jsonb_object_keys(coalesce(a.row_filter, '{}'))::name
            UNION ALL SELECT jsonb_object_keys(coalesce(a.mark, '{}'))::name
            UNION ALL SELECT jsonb_object_keys(coalesce(a.queued, '{}'))::name) u
     WHERE u.col IS NOT NULL
       AND a.tbl::oid IN (SELECT d.objid FROM pg_event_trigger_ddl_commands() d
                           WHERE d.classid = 'pg_class'::regclass)
       AND NOT EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = a.tbl AND t.attname = u.col
                          AND t.attnum > 0 AND NOT t.attisdropped)
     ORDER BY a.id
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'column "%" of table % is used by optout (attachment %, %)', bad.col, bad.tbl, bad.id, bad.kind
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = 'optout enforces on this table through that column; without it, it could not.',
                  HINT = format('Detach the table first (SELECT optout.detach(%L);), change it, then attach it again.',
                                bad.tbl::text);
    END IF;

    -- CREATE TABLE ... PARTITION OF names the partition; ALTER TABLE ...
    -- ATTACH PARTITION names the parent: look at each one's partitions too.
    FOR r IN SELECT DISTINCT c.relid::regclass
               FROM pg_event_trigger_ddl_commands() d,
                    LATERAL (SELECT d.objid AS relid UNION SELECT pt.relid FROM pg_partition_tree(d.objid::regclass) pt) c
              WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND d.object_type IN ('table', 'table column')
                AND EXISTS (SELECT 1 FROM pg_partition_ancestors(c.relid) anc
                              JOIN pg_trigger t ON t.tgrelid = anc.relid AND t.tgname = 'optout_flush'
                             WHERE anc.relid <> c.relid) LOOP
        -- (_flush_triggers skips the tables that have it already.)
        PERFORM optout._flush_triggers(r);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION optout._on_ddl_end() FROM PUBLIC;
CREATE EVENT TRIGGER optout_ddl_end ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION optout._on_ddl_end();

-- ---------------------------------------------------------------------------
-- RapidPro in one call (see docs/reference.md, "RapidPro").
CREATE FUNCTION optout.attach_rapidpro(schema name DEFAULT 'public')
    RETURNS SETOF optout.attached
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
BEGIN
    IF schema IS NULL OR NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = schema) THEN
        RAISE EXCEPTION 'schema % does not exist', coalesce(quote_ident(schema), 'NULL')
            USING ERRCODE = 'invalid_schema_name', HINT = 'Name the schema that holds RapidPro''s tables.';
    END IF;
    FOREACH t IN ARRAY ARRAY['msgs_msg', 'contacts_contact', 'contacts_contactgroup',
                             'contacts_contactgroup_contacts', 'channels_channelevent'] LOOP
        IF to_regclass(format('%I.%I', schema, t)) IS NULL THEN
            RAISE EXCEPTION 'table %.% does not exist: is this a RapidPro database?', quote_ident(schema), t
                USING ERRCODE = 'undefined_table';
        END IF;
    END LOOP;
    -- Order matters: the contact's status first (RapidPro's own trigger then
    -- moves it between status groups), then its other groups, then messages.
    PERFORM optout.attach_contacts(format('%I.contacts_contact', schema)::regclass, 'id', 'status', 'S', 'A',
                                   touch_column => 'modified_on');
    PERFORM optout.attach_groups(format('%I.contacts_contactgroup_contacts', schema)::regclass,
                                 'contact_id', 'contactgroup_id',
                                 stopped_group_query => format(
                                     'SELECT g.id FROM %1$I.contacts_contactgroup g JOIN %1$I.contacts_contact c '
                                     'ON c.org_id = g.org_id WHERE c.id = $1::integer AND g.group_type = ''S'' '
                                     'ORDER BY g.id LIMIT 1', schema));
    PERFORM optout.attach_inbound(format('%I.msgs_msg', schema)::regclass, 'text', 'contact_id', 'channel_id',
                                  scope => 'contact', row_filter => '{"direction": "I"}');
    PERFORM optout.attach_outbound(format('%I.msgs_msg', schema)::regclass, 'contact_id', 'channel_id',
                                   on_blocked => 'mark',
                                   mark => '{"status": "F", "failed_reason": "C", "sent_on": null}',
                                   queued => '{"status": ["I", "Q", "E"]}', row_filter => '{"direction": "O"}');
    PERFORM optout.attach_delivery_errors(format('%I.channels_channelevent', schema)::regclass, 'contact_id',
                                          channel_column => 'channel_id', event_column => 'event_type',
                                          stop_events => '{stop_contact}');
    RETURN QUERY SELECT * FROM optout.attached a
                  WHERE a.tbl::oid IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                        WHERE n.nspname = schema)
                  ORDER BY a.id;
END
$$;
REVOKE ALL ON FUNCTION optout.attach_rapidpro(name) FROM PUBLIC;
COMMENT ON FUNCTION optout.attach_rapidpro(name) IS
    'Wires a RapidPro database: keyword stops on msgs_msg, sticky stops on contacts_contact, the \Stopped group, failed sends, stop_contact channel events';

-- ---------------------------------------------------------------------------
-- Reports for a compliance officer. They show message bodies: PUBLIC has no
-- access; grant SELECT (and EXECUTE on optout.explain_contact) to the roles
-- that answer compliance questions.

CREATE VIEW optout.stopped_now AS
SELECT s.contact,
       CASE WHEN s.channel IS NULL THEN 'contact' ELSE 'channel' END AS scope,
       s.channel, s.stopped_at AS since, s.source, s.keyword, e.language, s.rule,
       e.body AS message, e.channel AS message_channel, e.provider, e.code, e.table_name, e.actor, e.reason
  FROM optout.stops s
  LEFT JOIN optout.events e ON e.id = s.event_id;
COMMENT ON VIEW optout.stopped_now IS
    'Who is stopped now, on which scope and channel, since when, and why (keyword, rule, source, the message itself)';

CREATE VIEW optout.requests_daily AS
SELECT (e.at AT TIME ZONE 'UTC')::date AS day, e.channel,
       CASE e.kind WHEN 'stop' THEN 'opt_out' WHEN 'start' THEN 'opt_in' ELSE 'help' END AS request,
       e.source, e.keyword, e.language, count(*) AS requests, count(DISTINCT e.contact) AS contacts
  FROM optout.events e
 WHERE e.kind IN ('stop', 'start', 'help')
 GROUP BY 1, 2, 3, 4, 5, 6;
COMMENT ON VIEW optout.requests_daily IS 'Opt-outs, opt-ins and help requests per day (UTC), channel, source, keyword and language';

CREATE VIEW optout.blocked_daily AS
SELECT (e.at AT TIME ZONE 'UTC')::date AS day, e.channel, e.table_name,
       sum(CASE WHEN e.detail ? 'queued_failed' THEN (e.detail ->> 'queued_failed')::bigint ELSE 0 END) AS queued_failed,
       sum(CASE WHEN e.detail ? 'queued_failed' THEN 0 ELSE coalesce((e.detail ->> 'count')::bigint, 1) END) AS sends_blocked,
       count(DISTINCT e.contact) AS contacts
  FROM optout.events e
 WHERE e.kind = 'blocked'
 GROUP BY 1, 2, 3;
COMMENT ON VIEW optout.blocked_daily IS
    'Messages blocked per day (UTC), channel and table: queued messages failed at stop time, and later sends refused, dropped or marked';

CREATE VIEW optout.provider_errors_daily AS
SELECT (e.at AT TIME ZONE 'UTC')::date AS day, e.channel, e.provider, e.code,
       c.description, coalesce((e.detail ->> 'stops')::boolean, c.stops) AS means_opted_out,
       count(*) AS errors, count(DISTINCT e.contact) AS contacts
  FROM optout.events e
  LEFT JOIN optout.delivery_error_codes c ON c.provider = lower(e.provider) AND c.code = e.code
 WHERE e.kind = 'provider_error'
 GROUP BY 1, 2, 3, 4, 5, 6;
COMMENT ON VIEW optout.provider_errors_daily IS 'Provider errors per day (UTC), channel, provider and code';

-- A provider opt-out error for a contact already stopped means a message got
-- past the block: something sends around it.
CREATE VIEW optout.errors_after_stop AS
SELECT e.contact, e.channel, e.provider, e.code, count(*) AS errors,
       min(e.at) AS first_error, max(e.at) AS last_error, min(s.stopped_at) AS stopped_since
  FROM optout.events e
  JOIN optout.stops s ON s.contact = e.contact AND (s.channel IS NULL OR s.channel = e.channel)
 WHERE e.kind = 'provider_error' AND e.id > coalesce(s.event_id, 0)
   AND (e.detail ->> 'stops')::boolean IS NOT FALSE   -- opt-out errors only
 GROUP BY e.contact, e.channel, e.provider, e.code;
COMMENT ON VIEW optout.errors_after_stop IS
    'Contacts that keep producing provider opt-out errors after their stop: a sign that something sends around the block';

-- Everything about one contact in one call.
CREATE FUNCTION optout.explain_contact(contact text) RETURNS jsonb
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
SELECT jsonb_build_object(
    'contact', $1,
    'stopped', EXISTS (SELECT 1 FROM optout.stops s WHERE s.contact = $1),
    'stops', coalesce((SELECT jsonb_agg(jsonb_build_object(
                    'scope', CASE WHEN s.channel IS NULL THEN 'contact' ELSE 'channel' END,
                    'channel', s.channel, 'since', s.stopped_at, 'source', s.source,
                    'message', e.body, 'message_channel', e.channel, 'keyword', s.keyword,
                    'language', e.language, 'rule', s.rule,
                    'provider', e.provider, 'code', e.code, 'reason', e.reason, 'table', e.table_name,
                    'blocked_since', (SELECT coalesce(sum(coalesce((b.detail ->> 'count')::bigint, 1)), 0)
                                        FROM optout.events b
                                       WHERE b.contact = $1 AND b.kind = 'blocked' AND b.id > s.event_id
                                         AND NOT coalesce(b.detail ? 'queued_failed', false)),
                    'queued_failed', (SELECT coalesce(sum((b.detail ->> 'queued_failed')::bigint), 0) FROM optout.events b
                                       WHERE b.contact = $1 AND b.kind = 'blocked' AND b.id > s.event_id
                                         AND b.detail ? 'queued_failed'))
                  ORDER BY s.stopped_at, s.channel NULLS FIRST)
                FROM optout.stops s LEFT JOIN optout.events e ON e.id = s.event_id
               WHERE s.contact = $1), '[]'::jsonb),
    'provider_errors', coalesce((SELECT jsonb_agg(jsonb_build_object('at', e.at, 'channel', e.channel,
                                        'provider', e.provider, 'code', e.code) ORDER BY e.id)
                                   FROM optout.events e WHERE e.contact = $1 AND e.kind = 'provider_error'), '[]'::jsonb),
    'last_opt_out', (SELECT jsonb_build_object('at', e.at, 'channel', e.channel, 'source', e.source, 'message', e.body,
                                               'keyword', e.keyword, 'language', e.language, 'rule', e.rule,
                                               'provider', e.provider, 'code', e.code, 'reason', e.reason)
                       FROM optout.events e WHERE e.contact = $1 AND e.kind = 'stop' ORDER BY e.id DESC LIMIT 1),
    'last_opt_in', (SELECT jsonb_build_object('at', e.at, 'channel', e.channel, 'source', e.source, 'message', e.body,
                                              'keyword', e.keyword, 'reason', e.reason, 'lifted', e.detail ->> 'lifted')
                      FROM optout.events e WHERE e.contact = $1 AND e.kind = 'start' ORDER BY e.id DESC LIMIT 1),
    'help_requests', (SELECT count(*) FROM optout.events e WHERE e.contact = $1 AND e.kind = 'help'),
    'status_changes_refused', (SELECT count(*) FROM optout.events e WHERE e.contact = $1 AND e.kind = 'status_kept'))
$$;
COMMENT ON FUNCTION optout.explain_contact(text) IS
    'One contact in one call: its stops (the message, keyword, rule, source), blocked sends since, provider errors, the last opt-in';

-- Retention: drop events older than an age, but never a contact's latest
-- stop and latest start, nor the event a current stop refers to.
CREATE FUNCTION optout.prune_events(older_than interval) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must be a positive interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM optout.events e
     WHERE e.at < now() - older_than
       AND NOT EXISTS (SELECT 1 FROM optout.stops s WHERE s.event_id = e.id)
       AND NOT (e.kind IN ('stop', 'start')
                AND e.id = (SELECT max(l.id) FROM optout.events l WHERE l.contact = e.contact AND l.kind = e.kind));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION optout.prune_events(interval) IS
    'Deletes events older than the given age, keeping each contact''s latest stop and start and the events current stops refer to';

REVOKE ALL ON optout.stopped_now, optout.requests_daily, optout.blocked_daily, optout.provider_errors_daily,
    optout.errors_after_stop FROM PUBLIC;
REVOKE ALL ON FUNCTION optout.explain_contact(text), optout.prune_events(interval) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Backfill: the opt-outs already sitting in a platform's history.

CREATE FUNCTION optout._apply_stop(contact text, channel text, source text, body text, keyword text,
                                   language text, rule text, table_name text, detail text)
    RETURNS boolean AS 'MODULE_PATHNAME', 'optout_apply_stop' LANGUAGE C VOLATILE;

CREATE TABLE optout.backfill_runs (
    id              serial PRIMARY KEY,
    tbl             regclass NOT NULL,
    mode            optout.match_mode NOT NULL,
    apply           boolean NOT NULL,
    since           timestamptz,
    time_column     name,
    key_column      name NOT NULL,
    batch_size      integer NOT NULL,
    status          text NOT NULL DEFAULT 'scanning' CHECK (status IN ('scanning', 'applying', 'done')),
    started_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at     timestamptz,
    last_key        text,
    rows_total      bigint,
    rows_scanned    bigint NOT NULL DEFAULT 0,
    opt_outs_found  bigint NOT NULL DEFAULT 0,
    contacts_stopped bigint NOT NULL DEFAULT 0,
    body_column     name,               -- for a table that was not attached
    contact_column  name,
    channel_column  name,
    row_filter      jsonb
);
COMMENT ON TABLE optout.backfill_runs IS 'One row per optout.backfill run; updated at every batch, so other sessions see its progress';

CREATE TABLE optout.backfill_findings (
    run_id      integer NOT NULL REFERENCES optout.backfill_runs ON DELETE CASCADE,
    contact     text NOT NULL,
    channel     text,
    message_key text NOT NULL,
    message_at  timestamptz,
    body        text,
    keyword     text,
    language    text,
    rule        text,
    lifted_at   timestamptz,           -- a later opt-in in the history lifted it
    lifted_key  text,
    sent_after  bigint,                -- outbound messages to the contact after it
    applied     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (run_id, contact, message_key)
);
COMMENT ON TABLE optout.backfill_findings IS 'Opt-outs found in the history that the ledger does not reflect';

CREATE VIEW optout.backfill_progress AS
SELECT r.id AS run_id, r.tbl, r.mode, r.apply, r.status, r.rows_scanned, r.rows_total,
       round(r.rows_scanned / greatest(extract(epoch FROM coalesce(r.finished_at, r.updated_at) - r.started_at), 0.001))
           AS rows_per_second,
       CASE WHEN r.status = 'scanning' AND r.rows_scanned > 0 AND r.rows_total > r.rows_scanned THEN
            (r.rows_total - r.rows_scanned) * (r.updated_at - r.started_at) / r.rows_scanned END AS time_left,
       r.opt_outs_found, r.contacts_stopped, r.started_at, r.updated_at, r.finished_at
  FROM optout.backfill_runs r;
COMMENT ON VIEW optout.backfill_progress IS 'Progress of backfill runs: rows scanned, rate, estimated time left';

-- Per contact: the opt-outs of a run the ledger did not reflect.
CREATE FUNCTION optout.backfill_report(run integer DEFAULT NULL)
    RETURNS TABLE (contact text, channel text, message_at timestamptz, message text, keyword text, rule text,
                   opt_outs bigint, lifted_by_opt_in boolean, sent_after bigint, stopped_now boolean)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH r AS (SELECT coalesce(run, (SELECT max(id) FROM optout.backfill_runs)) AS id),
    f AS (
        SELECT f.*, row_number() OVER (PARTITION BY f.contact ORDER BY f.message_at, f.message_key) AS n,
               count(*) OVER (PARTITION BY f.contact) AS total,
               bool_and(f.lifted_at IS NOT NULL) OVER (PARTITION BY f.contact) AS all_lifted
          FROM optout.backfill_findings f, r WHERE f.run_id = r.id)
    SELECT f.contact, f.channel, f.message_at, f.body, f.keyword, f.rule, f.total, f.all_lifted, f.sent_after,
           optout.is_stopped(f.contact, f.channel)
      FROM f WHERE f.n = 1 ORDER BY f.message_at, f.contact
$$;
COMMENT ON FUNCTION optout.backfill_report(integer) IS
    'Per contact, the first opt-out a backfill run found unhonoured: the message, its time, keyword and rule, how many, whether a later opt-in lifted them, outbound messages sent after it, and whether the contact is stopped now';

CREATE PROCEDURE optout.backfill(tbl regclass, mode optout.match_mode DEFAULT NULL,
                                 since timestamptz DEFAULT NULL, apply boolean DEFAULT false,
                                 time_column name DEFAULT NULL, key_column name DEFAULT NULL,
                                 batch_size integer DEFAULT 10000, INOUT run_id integer DEFAULT NULL,
                                 body_column name DEFAULT NULL, contact_column name DEFAULT NULL,
                                 channel_column name DEFAULT NULL, row_filter jsonb DEFAULT NULL)
    LANGUAGE plpgsql
    -- No SET clause: a procedure with one cannot COMMIT. The search_path is
    -- pinned for each transaction instead (set_config(..., true)).
AS $$
DECLARE
    a optout.attachments;
    run optout.backfill_runs;
    t text;
    ktype text;
    q text;
    qk text;
    lower_bound text;
    next_key text;
    cond text;
    rec record;
    scope_channel text;
    n integer;
    last_notice timestamptz := pg_catalog.clock_timestamp();  -- before the path is pinned: qualified
    o optout.attachments;
    ot text;
    cnt bigint;
    f record;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    SELECT * INTO a FROM optout.attachments x WHERE x.tbl = backfill.tbl AND x.kind = 'inbound';
    IF NOT FOUND THEN
        -- Not attached (yet): the columns say where the messages are. A report
        -- needs nothing else; so a platform can look before it adopts optout.
        IF body_column IS NULL AND run_id IS NOT NULL THEN
            SELECT r.body_column, r.contact_column, r.channel_column, r.row_filter
              INTO body_column, contact_column, channel_column, row_filter
              FROM optout.backfill_runs r WHERE r.id = run_id;
        END IF;
        IF body_column IS NULL OR contact_column IS NULL THEN
            RAISE EXCEPTION 'table % is not attached as inbound', tbl
                USING ERRCODE = 'undefined_object',
                      HINT = 'Attach it with optout.attach_inbound(), or name body_column and contact_column.';
        END IF;
        PERFORM optout._column(tbl, body_column, 'body');
        PERFORM optout._column(tbl, contact_column, 'contact', true);
        IF channel_column IS NOT NULL THEN
            PERFORM optout._column(tbl, channel_column, 'channel', true);
        END IF;
        PERFORM optout._filter_sql(tbl, row_filter, '');
        a.tbl := tbl;
        a.body_column := body_column;
        a.contact_column := contact_column;
        a.channel_column := channel_column;
        a.row_filter := row_filter;
        a.scope := 'contact';
    END IF;
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT format('%I.%I', ns.nspname, c.relname) INTO t
      FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE c.oid = tbl;

    IF run_id IS NOT NULL THEN
        -- Resume a run where it stopped.
        SELECT * INTO run FROM optout.backfill_runs r WHERE r.id = run_id;
        IF NOT FOUND OR run.tbl <> tbl THEN
            RAISE EXCEPTION 'no backfill run % for table %', run_id, tbl USING ERRCODE = 'undefined_object';
        END IF;
        RAISE NOTICE 'backfill run %: resuming (% rows scanned so far)', run.id, run.rows_scanned;
    ELSE
        IF key_column IS NULL THEN
            SELECT att.attname INTO key_column
              FROM pg_index i JOIN pg_attribute att ON att.attrelid = i.indrelid AND att.attnum = i.indkey[0]
             WHERE i.indrelid = tbl AND i.indisprimary AND i.indnkeyatts = 1;
            IF key_column IS NULL THEN
                RAISE EXCEPTION 'table % has no single-column primary key', tbl
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Name a column that orders the messages (an id or a time) as key_column.';
            END IF;
        END IF;
        PERFORM optout._column(tbl, key_column, 'key');
        IF time_column IS NOT NULL THEN
            PERFORM optout._column(tbl, time_column, 'time');
        ELSIF since IS NOT NULL THEN
            RAISE EXCEPTION 'since needs a time_column' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        INSERT INTO optout.backfill_runs AS r (tbl, mode, apply, since, time_column, key_column, batch_size,
                                               body_column, contact_column, channel_column, row_filter, rows_total)
        VALUES (tbl, coalesce(mode, a.mode, coalesce(current_setting('optout.match_mode', true), 'standard')::optout.match_mode), apply, since,
                time_column, key_column, batch_size,
                CASE WHEN a.id IS NULL THEN a.body_column END, CASE WHEN a.id IS NULL THEN a.contact_column END,
                CASE WHEN a.id IS NULL THEN a.channel_column END, CASE WHEN a.id IS NULL THEN a.row_filter END,
                -- the planner's estimate (NULL before the table was ever analysed)
                (SELECT nullif(sum(greatest(c.reltuples, 0)), 0)::bigint FROM pg_class c
                  WHERE c.oid = tbl OR c.oid IN (SELECT relid FROM pg_partition_tree(tbl))))
        RETURNING * INTO run;
        run_id := run.id;
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    END IF;

    ktype := optout._column(tbl, run.key_column, 'key');
    cond := concat_ws(' AND ', optout._filter_sql(tbl, a.row_filter, ''),
                      CASE WHEN run.since IS NOT NULL THEN format('%I >= %L', run.time_column, run.since) END);

    -- Scan, a batch per transaction.
    WHILE run.status = 'scanning' LOOP
        -- Per batch: the next batch_size keys (one index range), then, within
        -- that range, only the rows the classifier reads as opt-out or opt-in
        -- (set-based, in C); the loop below sees only those. The first batch
        -- has no lower bound ($1, the last key scanned, is NULL then).
        lower_bound := CASE WHEN run.last_key IS NULL THEN 'true' ELSE format('%I > $1::%s', run.key_column, ktype) END;
        qk := format('SELECT max(s.k)::text, count(*) FROM (SELECT %I AS k FROM %s WHERE %s %s ORDER BY %I LIMIT %s) s',
                     run.key_column, t, lower_bound, CASE WHEN cond <> '' THEN 'AND ' || cond ELSE '' END,
                     run.key_column, run.batch_size);
        q := format('SELECT s.*, e.intent, e.keyword, e.language, e.rule FROM ('
                    'SELECT %I::text AS k, %I::text AS contact, %s AS channel, %s AS at, %I AS body FROM %s '
                    'WHERE %s AND %I <= $2::%s %s '
                    'AND optout.classify(%I, $3) IN (''opt_out'', ''opt_in'')) s '
                    'CROSS JOIN LATERAL optout.explain(s.body, $3) e ORDER BY s.k::%s',
                    run.key_column, a.contact_column,
                    CASE WHEN a.channel_column IS NOT NULL THEN format('%I::text', a.channel_column) ELSE 'NULL::text' END,
                    CASE WHEN run.time_column IS NOT NULL THEN format('%I::timestamptz', run.time_column) ELSE 'NULL::timestamptz' END,
                    a.body_column, t, lower_bound, run.key_column, ktype,
                    CASE WHEN cond <> '' THEN 'AND ' || cond ELSE '' END, a.body_column, ktype);
        EXECUTE qk INTO next_key, n USING run.last_key;
        IF n > 0 THEN
            FOR rec IN EXECUTE q USING run.last_key, next_key, run.mode LOOP
                CONTINUE WHEN rec.contact IS NULL;
                IF rec.intent = 'opt_out' THEN
                    scope_channel := CASE WHEN a.scope = 'channel' AND optout.keyword_key(rec.keyword) <> 'stopall'
                                          THEN rec.channel END;
                    IF NOT optout.is_stopped(rec.contact, scope_channel) THEN
                        INSERT INTO optout.backfill_findings AS x (run_id, contact, channel, message_key, message_at, body,
                                                                   keyword, language, rule)
                        VALUES (run.id, rec.contact, scope_channel, rec.k, rec.at, rec.body, rec.keyword, rec.language, rec.rule)
                        ON CONFLICT DO NOTHING;
                        run.opt_outs_found := run.opt_outs_found + 1;
                    END IF;
                ELSE
                    UPDATE optout.backfill_findings x SET lifted_at = rec.at, lifted_key = rec.k
                     WHERE x.run_id = run.id AND x.contact = rec.contact AND x.lifted_key IS NULL
                       AND (a.scope = 'contact' OR x.channel IS NULL OR x.channel = rec.channel);
                END IF;
            END LOOP;
            run.last_key := next_key;
        END IF;
        run.rows_scanned := run.rows_scanned + n;
        IF n < run.batch_size THEN
            run.status := CASE WHEN run.apply THEN 'applying' ELSE 'done' END;
        END IF;
        UPDATE optout.backfill_runs r
           SET last_key = run.last_key, rows_scanned = run.rows_scanned, opt_outs_found = run.opt_outs_found,
               status = run.status, updated_at = clock_timestamp()
         WHERE r.id = run.id
        RETURNING * INTO run;
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        IF clock_timestamp() - last_notice >= interval '5 seconds' OR run.status <> 'scanning' THEN
            SELECT * INTO f FROM optout.backfill_progress p WHERE p.run_id = run.id;
            RAISE NOTICE 'backfill run %: % of about % rows scanned (% rows/s)%, % unhonoured opt-outs',
                run.id, run.rows_scanned, coalesce(run.rows_total::text, '?'), f.rows_per_second,
                coalesce(', about ' || date_trunc('second', f.time_left)::text || ' left', ''), run.opt_outs_found;
            last_notice := clock_timestamp();
        END IF;
    END LOOP;

    -- Outbound messages to each contact after its opt-out.
    IF run.time_column IS NOT NULL THEN
        FOR o IN SELECT * FROM optout.attachments x WHERE x.kind = 'outbound' LOOP
            CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_attribute att WHERE att.attrelid = o.tbl
                                        AND att.attname = run.time_column AND NOT att.attisdropped);
            SELECT format('%I.%I', ns.nspname, c.relname) INTO ot
              FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE c.oid = o.tbl;
            FOR f IN SELECT * FROM optout.backfill_findings x WHERE x.run_id = run.id AND x.sent_after IS NULL LOOP
                EXECUTE format('SELECT count(*) FROM %s WHERE %I = $1::%s AND %I > $2 %s', ot, o.contact_column,
                               optout._column(o.tbl, o.contact_column, 'contact'), run.time_column,
                               coalesce('AND ' || optout._filter_sql(o.tbl, o.row_filter, ''), ''))
                   INTO cnt USING f.contact, f.message_at;
                UPDATE optout.backfill_findings x SET sent_after = coalesce(x.sent_after, 0) + cnt
                 WHERE x.run_id = f.run_id AND x.contact = f.contact AND x.message_key = f.message_key;
            END LOOP;
        END LOOP;
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    END IF;

    -- Apply: stop every contact whose latest unhonoured opt-out no later
    -- opt-in lifted, as if the message had just arrived; 1,000 a transaction.
    WHILE run.status = 'applying' LOOP
        n := 0;
        FOR f IN SELECT DISTINCT ON (x.contact, x.channel) x.*
                   FROM optout.backfill_findings x
                  WHERE x.run_id = run.id AND NOT x.applied AND x.lifted_key IS NULL
                  ORDER BY x.contact, x.channel, x.message_at DESC, x.message_key DESC
                  LIMIT 1000 LOOP
            n := n + 1;
            IF optout._apply_stop(f.contact, f.channel, 'backfill', f.body, f.keyword, f.language, f.rule,
                                  t, jsonb_build_object('message_at', f.message_at, 'message_key', f.message_key,
                                                        'backfill_run', run.id)::text) THEN
                UPDATE optout.stops s SET stopped_at = coalesce(f.message_at, s.stopped_at)
                 WHERE s.contact = f.contact AND s.channel IS NOT DISTINCT FROM f.channel;
                run.contacts_stopped := run.contacts_stopped + 1;
            END IF;
            UPDATE optout.backfill_findings x SET applied = true
             WHERE x.run_id = run.id AND x.contact = f.contact AND x.channel IS NOT DISTINCT FROM f.channel;
        END LOOP;
        IF n = 0 THEN
            run.status := 'done';
        END IF;
        UPDATE optout.backfill_runs r SET contacts_stopped = run.contacts_stopped, status = run.status,
               updated_at = clock_timestamp() WHERE r.id = run.id;
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    END LOOP;

    UPDATE optout.backfill_runs r SET finished_at = clock_timestamp() WHERE r.id = run.id AND r.finished_at IS NULL;
    SELECT * INTO run FROM optout.backfill_runs r WHERE r.id = run_id;
    RAISE NOTICE 'backfill run % done: % rows scanned, % unhonoured opt-outs, % contacts stopped',
        run.id, run.rows_scanned, run.opt_outs_found, run.contacts_stopped;
END
$$;
COMMENT ON PROCEDURE optout.backfill(regclass, optout.match_mode, timestamptz, boolean, name, name, integer, integer, name, name, name, jsonb) IS
    'Scans an inbound table (attached, or named by its columns) for opt-outs the ledger does not reflect; with apply => true stops those contacts. Commits per batch; CALL it again with run_id => N to resume';

SELECT pg_catalog.pg_extension_config_dump('optout.backfill_runs', '');
SELECT pg_catalog.pg_extension_config_dump('optout.backfill_runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('optout.backfill_findings', '');
REVOKE ALL ON optout.backfill_runs, optout.backfill_findings, optout.backfill_progress FROM PUBLIC;
REVOKE ALL ON FUNCTION optout._apply_stop(text, text, text, text, text, text, text, text, text),
    optout.backfill_report(integer) FROM PUBLIC;
REVOKE ALL ON PROCEDURE optout.backfill(regclass, optout.match_mode, timestamptz, boolean, name, name, integer, integer, name, name, name, jsonb) FROM PUBLIC;
