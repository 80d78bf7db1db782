-- optout: attaching a platform's tables: the attachments, the trigger
-- functions, the attach_* functions, detach, and the event triggers.

-- ---------------------------------------------------------------------------
-- What is attached: one row per table and role.
CREATE TABLE optout.attachments (
    id              serial PRIMARY KEY,
    tbl             regclass NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('inbound', 'outbound', 'contacts', 'groups', 'delivery_errors', 'optouts')),
    contact_column  name NOT NULL,
    channel_column  name,
    body_column     name,
    row_filter      jsonb,              -- {"column": value | [values] | null}: the rows that matter
    mode            optout.match_mode,  -- inbound: fixed at attach (never the session's setting)
    scope           text CHECK (scope IN ('contact', 'channel')),
    on_blocked      text CHECK (on_blocked IN ('error', 'skip', 'mark')),
    mark            jsonb,              -- outbound: {"column": value} given to blocked and failed rows
    queued          jsonb,              -- outbound: {"column": value | [values]}: rows still to be sent
    confirmation    jsonb,              -- outbound: a row filter: the one confirmation after a stop
    help_reply      jsonb,              -- outbound: a row filter: the one reply to a help request
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
    review          boolean,            -- inbound: false records no reviews (NULL: true)
    review_unless   text,               -- inbound: a query with $1 = contact key (text): a row means no review
    -- A contact identified by a phone number within an organization
    -- (docs/spoke.md): the ledger's key is '<organization>:<E.164 number>'.
    contact_format  text CHECK (contact_format IN ('phone')),  -- the contact column holds a phone number
    organization_column name,           -- the row's organization, or the value organization_query maps to it
    organization_query  text,           -- $1 = organization_column as text; returns the organization
    CONSTRAINT attachments_tbl_kind_key UNIQUE (tbl, kind),
    CONSTRAINT attachments_inbound_mode_check CHECK (kind <> 'inbound' OR mode IS NOT NULL)
);
COMMENT ON TABLE optout.attachments IS 'The platform tables optout enforces on; written by the optout.attach_* functions';

-- Changes to attachments reach every backend's cache of them.
CREATE TRIGGER attachments_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON optout.attachments
    FOR EACH STATEMENT EXECUTE FUNCTION optout._config_changed();

SELECT pg_catalog.pg_extension_config_dump('optout.attachments', '');
SELECT pg_catalog.pg_extension_config_dump('optout.attachments_id_seq', '');
REVOKE ALL ON optout.attachments FROM PUBLIC;
GRANT SELECT ON optout.attachments TO PUBLIC;

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
-- ... for a table with no channel column: a stop on any channel blocks.
CREATE FUNCTION optout._outbound_when(attachment integer, contact "any") RETURNS boolean
    AS 'MODULE_PATHNAME', 'optout_outbound_when' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
-- ... for a row that matches the confirmation ('c') or help_reply ('h')
-- filter: blocked unless it is the one such message the stop (the help
-- request) allows, which it records.
CREATE FUNCTION optout._reply_when(attachment integer, reply "char", contact "any", channel "any") RETURNS boolean
    AS 'MODULE_PATHNAME', 'optout_reply_when' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
CREATE FUNCTION optout._reply_when(attachment integer, reply "char", contact "any") RETURNS boolean
    AS 'MODULE_PATHNAME', 'optout_reply_when' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
-- The contact-wide stops already on record, applied to a contacts or groups
-- attachment as a stop applies them; returns the table's rows changed.
CREATE FUNCTION optout._apply_existing_stops(attachment integer) RETURNS bigint
    AS 'MODULE_PATHNAME', 'optout_apply_existing_stops' LANGUAGE C VOLATILE STRICT;
-- The platform's way to say "the next send is the confirmation" (no filter).
CREATE FUNCTION optout.confirm_next(contact text, channel text DEFAULT NULL) RETURNS boolean
    AS 'MODULE_PATHNAME', 'optout_confirm_next' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION optout.confirm_next(text, text) IS
    'The next blocked send to the contact (on the channel; NULL: any) in this transaction is its stop''s one confirmation; true when one would be accepted now';

-- ---------------------------------------------------------------------------
-- Attaching a platform's tables. All names are quoted with %I, all values
-- with %L: a name with quotes, spaces or semicolons is just a name.

-- A user's input as an error message shows it: at most 60 characters.
CREATE FUNCTION optout._cut(val text)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN pg_catalog.length($1) > 60 THEN pg_catalog."left"($1, 57) OPERATOR(pg_catalog.||) '...' ELSE $1 END
$$;

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
        RAISE EXCEPTION 'a row filter must be a JSON object of column names and values, not %', optout._cut(filter::text)
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
    citus boolean := false;
    join_sql text;
BEGIN
    SELECT * INTO a FROM optout.attachments WHERE id = attachment;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT format('%I.%I', n.nspname, c.relname) INTO t
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = a.tbl;
    PERFORM optout._column(a.tbl, a.contact_column, 'contact');
    ctype := optout._qualified_type(a.tbl, a.contact_column);
    -- A platform's opt-out table, and contacts keyed by phone number within
    -- an organization: their statements are in spoke.sql.
    IF a.kind = 'optouts' OR a.contact_format IS NOT NULL OR a.organization_column IS NOT NULL THEN
        RETURN QUERY SELECT k.name, k.sql FROM optout._keyed_action_sql(a) k;
        RETURN;
    END IF;
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
        -- On Citus, a table distributed by contact (README "Citus"): Citus
        -- cannot plan the NOT EXISTS below for a set of contacts. apply.cpp
        -- runs this form instead, once per contact ($1[1], $2[1]): every
        -- table it reads is filtered by that contact's key, so Citus sends
        -- the whole statement to the contact's shard.
        IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
            EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p '
                    'WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1 AND p.partmethod OPERATOR(pg_catalog.=) ''h'')'
               INTO citus USING a.tbl;
        END IF;
        IF citus THEN
            SELECT string_agg(format(' AND EXISTS (SELECT 1 FROM %I.%I k WHERE k.%I OPERATOR(pg_catalog.=) '
                                     '($1::pg_catalog.text[])[1]::%s)',
                                     n.nspname, c.relname, ca.contact_column, ctype), '')
              INTO known
              FROM optout.attachments ca JOIN pg_class c ON c.oid = ca.tbl JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE ca.kind = 'contacts';
            join_sql := format('INSERT INTO %1$s (%2$I, %3$I) '
                               'SELECT ($1::pg_catalog.text[])[1]::%4$s, ($2::pg_catalog.text[])[1]::%5$s '
                               'WHERE ($2::pg_catalog.text[])[1] IS NOT NULL '
                               'AND NOT EXISTS (SELECT 1 FROM %1$s x WHERE x.%2$I OPERATOR(pg_catalog.=) ($1::pg_catalog.text[])[1]::%4$s '
                               'AND x.%3$I OPERATOR(pg_catalog.=) ($2::pg_catalog.text[])[1]::%5$s)%6$s',
                               t, a.contact_column, a.group_column, ctype, gtype, coalesce(known, ''));
        ELSE
            join_sql := format('INSERT INTO %s (%I, %I) SELECT p.c, p.g FROM %s p '
                               'WHERE p.g IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %s x WHERE x.%I OPERATOR(pg_catalog.=) p.c '
                               'AND x.%I OPERATOR(pg_catalog.=) p.g)%s',
                               t, a.contact_column, a.group_column, pairs, t, a.contact_column, a.group_column,
                               coalesce(known, ''));
        END IF;
        RETURN QUERY VALUES
            ('groups.leave',
                format('DELETE FROM %s x USING %s p WHERE x.%I OPERATOR(pg_catalog.=) p.c '
                       'AND (x.%I OPERATOR(pg_catalog.=) p.g) IS NOT TRUE',
                       t, pairs, a.contact_column, a.group_column)),
            ('groups.join_stopped', join_sql),
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

-- The kind of contact key a type is: keys of one kind are read alike.
CREATE FUNCTION optout._key_family(typ oid)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN $1 IN ('pg_catalog.int2'::pg_catalog.regtype, 'pg_catalog.int4'::pg_catalog.regtype,
                            'pg_catalog.int8'::pg_catalog.regtype) THEN 'integer'
                WHEN $1 IN ('pg_catalog.text'::pg_catalog.regtype, 'pg_catalog.varchar'::pg_catalog.regtype) THEN 'text'
                ELSE $1::pg_catalog.regtype::pg_catalog.text END
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
    other record;
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
    -- optout.stop(), start() and is_stopped() read a contact key one way for
    -- every attached table: their contact columns agree on the kind of key.
    SELECT a.id, a.tbl, a.contact_column, format_type(o.atttypid, NULL) AS old_type,
           format_type(n.atttypid, NULL) AS new_type INTO other
      FROM optout.attachments a
      JOIN pg_attribute o ON o.attrelid = a.tbl AND o.attname = a.contact_column
      JOIN pg_attribute n ON n.attrelid = _attach_check.tbl AND n.attname = _attach_check.contact_column
     WHERE optout._key_family(o.atttypid) <> optout._key_family(n.atttypid)
     ORDER BY a.id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'contact column "%" of table % has type %, but attachment % (table %) keys contacts by %',
                        contact_column, tbl, other.new_type, other.id, other.tbl, other.old_type
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = format('Column "%s" of table %s is of type %s.', other.contact_column, other.tbl, other.old_type),
                  HINT = 'Every attached table names a contact by the same kind of key (integers, text, uuid...): '
                         'optout.stop(), start() and is_stopped() read one.';
    END IF;
    IF channel_column IS NOT NULL THEN
        PERFORM optout._column(tbl, channel_column, 'channel', true);
    END IF;
    PERFORM optout._citus_check(tbl, kind);  -- Citus only (src/sql/citus.sql)
    RETURN t;
END
$$;

-- Parses and analyses one statement as a role, checking that role's
-- privileges on every table it names; with query_name, that it is one
-- read-only SELECT of one column of type `returns` (src/pg/validate.cpp).
-- Nothing is planned or run.
CREATE FUNCTION optout._check_statement(sql text, params regtype[], run_as regrole,
                                        query_name text DEFAULT NULL, returns regtype DEFAULT NULL)
    RETURNS void AS 'MODULE_PATHNAME', 'optout_check_statement' LANGUAGE C VOLATILE;

-- Checks, without running anything, what an attachment will run: its
-- statements and its stopped_group_query parse and analyse, as the table's
-- owner (who runs them), with that role's privileges; a stopped_group_query
-- is one read-only SELECT returning the group column's type. A contacts
-- attachment changes what the groups attachments run: they are checked again.
CREATE FUNCTION optout._attach_verify(attachment integer)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a optout.attachments;
    owner regrole;
    nm text;
    s text;
    st text;
    msg text;
    hint text;
BEGIN
    FOR a IN SELECT * FROM optout.attachments x
              WHERE x.id = attachment
                 OR (x.kind = 'groups' AND EXISTS (SELECT 1 FROM optout.attachments y
                                                    WHERE y.id = attachment AND y.kind = 'contacts'))
              ORDER BY x.id LOOP
        SELECT c.relowner::regrole INTO owner FROM pg_class c WHERE c.oid = a.tbl;
        IF a.stopped_group_query IS NOT NULL THEN
            BEGIN
                PERFORM optout._check_statement(a.stopped_group_query, '{text}', owner, 'stopped_group_query',
                                                (SELECT t.atttypid::regtype FROM pg_attribute t
                                                  WHERE t.attrelid = a.tbl AND t.attname = a.group_column));
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
                RAISE EXCEPTION 'the stopped_group_query of table % cannot be used: %', a.tbl, msg
                    USING ERRCODE = st, DETAIL = format('The query: %s', optout._cut(a.stopped_group_query)),
                          HINT = coalesce(nullif(hint, ''),
                                 'Give one read-only SELECT of the group key for contact $1 (text), every name '
                                 'schema-qualified; it runs as the table''s owner with search_path = pg_catalog.');
            END;
        END IF;
        IF a.review_unless IS NOT NULL THEN
            BEGIN
                PERFORM optout._check_statement(a.review_unless, '{text}', owner);
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
                RAISE EXCEPTION 'the review_unless query of table % cannot be used: %', a.tbl, msg
                    USING ERRCODE = st, DETAIL = format('The query: %s', optout._cut(a.review_unless)),
                          HINT = 'Give a read-only query that returns a row while contact $1 (text) is answering a question, '
                                 'every name schema-qualified; it runs as the table''s owner with search_path = pg_catalog.';
            END;
        END IF;
        FOR nm, s IN SELECT q.name, q.sql FROM optout._action_sql(a.id) q LOOP
            BEGIN
                PERFORM optout._check_statement(s, '{text[],text[]}', owner);
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
                IF st = '42501' THEN
                    RAISE EXCEPTION 'role % cannot run what optout runs on table %: %', owner, a.tbl, msg
                        USING ERRCODE = st,
                              DETAIL = format('optout runs its %s statement as the table''s owner, %s.', nm, owner),
                              HINT = format('Grant role %s what it lacks, or attach a table owned by a role that has it.', owner);
                END IF;
                RAISE EXCEPTION 'optout cannot prepare what it runs on table % (%): %', a.tbl, nm, msg
                    USING ERRCODE = st,
                          HINT = 'The table or a table it refers to may have changed; check the names and types given.';
            END;
        END LOOP;
    END LOOP;
END
$$;

-- A value optout will write to (or compare with) a column fits it as an
-- assignment does: the type's input function with the column's typmod, so
-- 'FAILED' does not fit varchar(1) (a cast would truncate it to 'F'); read
-- as the table's owner (src/pg/validate.cpp).
CREATE FUNCTION optout._check_value_input(tbl regclass, col name, val text)
    RETURNS void AS 'MODULE_PATHNAME', 'optout_check_value_input' LANGUAGE C VOLATILE;

CREATE FUNCTION optout._check_value(tbl regclass, col name, val text, what text DEFAULT 'value')
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typname text := optout._column(tbl, col, 'value');
BEGIN
    PERFORM optout._check_value_input(tbl, col, val);
EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
    RAISE EXCEPTION 'the % % does not fit column "%" of table %, of type %', what, optout._cut(quote_literal(val)), col, tbl, typname
        USING ERRCODE = 'invalid_parameter_value', DETAIL = SQLERRM;
END
$$;

-- A row filter argument (row_filter, queued, confirmation, help_reply):
-- its shape, and each value fits its column.
CREATE FUNCTION optout._check_filter(tbl regclass, filter jsonb, what text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    v text;
BEGIN
    PERFORM optout._filter_sql(tbl, filter, '');
    FOR k, v IN SELECT e.key, x.v
                  FROM jsonb_each(CASE WHEN jsonb_typeof(filter) = 'object' THEN filter END) e
                 CROSS JOIN LATERAL (SELECT e.value #>> '{}' AS v WHERE jsonb_typeof(e.value) NOT IN ('array', 'null')
                                     UNION ALL
                                     SELECT y FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(e.value) = 'array'
                                                                                  THEN e.value END) y) x LOOP
        PERFORM optout._check_value(tbl, k::name, v, what || ' value');
    END LOOP;
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
                                      scope text DEFAULT 'contact', row_filter jsonb DEFAULT NULL,
                                      review boolean DEFAULT true, review_unless text DEFAULT NULL,
                                      contact_format text DEFAULT NULL, organization_column name DEFAULT NULL,
                                      organization_query text DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text := optout._attach_check(tbl, 'inbound', contact_column, channel_column);
    keyed text := optout._key_check(tbl, contact_column, channel_column, contact_format, organization_column, organization_query);
    w text;
    id integer;
BEGIN
    PERFORM optout._column(tbl, body_column, 'body');
    IF scope IS NULL OR scope NOT IN ('contact', 'channel') THEN
        RAISE EXCEPTION 'scope must be ''contact'' or ''channel'', not %', coalesce(optout._cut(quote_literal(scope)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF scope = 'channel' AND channel_column IS NULL THEN
        RAISE EXCEPTION 'scope ''channel'' needs a channel column' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A reply the classifier sends to review (a lone "No", a lone letter)
    -- is an answer where the platform asks questions: review => false
    -- records none; review_unless records none while its query finds the
    -- contact answering (docs/reference.md, "attach_inbound").
    IF review IS FALSE AND review_unless IS NOT NULL THEN
        RAISE EXCEPTION 'review_unless has no use with review => false'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'review => false records no reviews at all; review_unless records none only while its query returns a row.';
    END IF;
    IF review_unless IS NOT NULL AND btrim(review_unless) = '' THEN
        RAISE EXCEPTION 'review_unless must be a query, not an empty string'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A query with $1 = the contact key (text) that returns a row when the contact is answering a question.';
    END IF;
    PERFORM optout._check_filter(tbl, row_filter, 'row_filter');
    w := optout._filter_sql(tbl, row_filter, 'NEW.');
    INSERT INTO optout.attachments AS a (tbl, kind, contact_column, channel_column, body_column, row_filter, mode, scope,
                                         review, review_unless, contact_format, organization_column, organization_query)
    VALUES (attach_inbound.tbl, 'inbound', attach_inbound.contact_column, attach_inbound.channel_column,
            attach_inbound.body_column, attach_inbound.row_filter,
            -- The mode is fixed here: enforcement never reads the session's
            -- optout.match_mode, which any role may set (docs/security.md).
            coalesce(attach_inbound.mode,
                     coalesce(current_setting('optout.match_mode', true), 'standard')::optout.match_mode),
            attach_inbound.scope,
            coalesce(attach_inbound.review, true), attach_inbound.review_unless,
            attach_inbound.contact_format, attach_inbound.organization_column, attach_inbound.organization_query)
    RETURNING a.id INTO id;
    PERFORM optout._attach_verify(id);
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
                                       queued jsonb DEFAULT NULL, row_filter jsonb DEFAULT NULL,
                                       confirmation jsonb DEFAULT NULL, help_reply jsonb DEFAULT NULL,
                                       contact_format text DEFAULT NULL, organization_column name DEFAULT NULL,
                                       organization_query text DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text := optout._attach_check(tbl, 'outbound', contact_column, channel_column);
    -- The contact as the ledger knows it (the contact column itself, or its
    -- key by phone number and organization), as SQL over NEW.
    keyed text := optout._key_check(tbl, contact_column, channel_column, contact_format, organization_column, organization_query);
    ck text;
    w text;
    bw text;
    sendable text;
    cw text;
    hw text;
    k text;
    v jsonb;
    id integer;
BEGIN
    IF on_blocked IS NULL OR on_blocked NOT IN ('error', 'skip', 'mark') THEN
        RAISE EXCEPTION 'on_blocked must be ''error'', ''skip'' or ''mark'', not %', coalesce(optout._cut(quote_literal(on_blocked)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF mark IS NOT NULL AND jsonb_typeof(mark) <> 'object' THEN
        RAISE EXCEPTION 'mark must be a JSON object of column names and values, not %', optout._cut(mark::text)
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
        PERFORM optout._check_value(tbl, k::name, v #>> '{}', 'mark value');
    END LOOP;
    PERFORM optout._check_filter(tbl, queued, 'queued');
    PERFORM optout._check_filter(tbl, row_filter, 'row_filter');
    PERFORM optout._check_filter(tbl, confirmation, 'confirmation');
    PERFORM optout._check_filter(tbl, help_reply, 'help_reply');
    w := optout._filter_sql(tbl, row_filter, 'NEW.');
    cw := optout._filter_sql(tbl, confirmation, 'NEW.');
    hw := optout._filter_sql(tbl, help_reply, 'NEW.');
    INSERT INTO optout.attachments AS a (tbl, kind, contact_column, channel_column, row_filter, on_blocked, mark, queued,
                                         confirmation, help_reply, contact_format, organization_column, organization_query)
    VALUES (attach_outbound.tbl, 'outbound', attach_outbound.contact_column, attach_outbound.channel_column,
            attach_outbound.row_filter, attach_outbound.on_blocked, attach_outbound.mark, attach_outbound.queued,
            nullif(attach_outbound.confirmation, '{}'), nullif(attach_outbound.help_reply, '{}'),
            attach_outbound.contact_format, attach_outbound.organization_column, attach_outbound.organization_query)
    RETURNING a.id INTO id;
    PERFORM optout._attach_verify(id);
    ck := CASE WHEN keyed IS NULL THEN format('NEW.%I', contact_column)
               ELSE format('optout._row_key(%s, NEW.%I::pg_catalog.text, %s, true)', id, contact_column,
                           coalesce(format('NEW.%I::pg_catalog.text', organization_column), 'NULL')) END;
    -- The WHEN checks every row against the ledger as it is written (and
    -- takes the contact's send lock); only a blocked row calls the trigger
    -- function, which refuses, drops or marks it. Every way a row becomes
    -- sendable is checked: an INSERT (COPY included); an UPDATE that sets
    -- the contact or channel column, changed or not; and an UPDATE that makes
    -- a row match row_filter and queued when it did not before (a resend).
    bw := format('optout._outbound_when(%s, %s%s)', id, ck,
                 coalesce(', NEW.' || quote_ident(channel_column), ''));
    -- A row that looks like a confirmation (a help reply) asks whether it is
    -- the one allowed instead; every other row is checked as before.
    IF cw IS NOT NULL OR hw IS NOT NULL THEN
        bw := format('CASE %s%sELSE %s END', 
                     CASE WHEN cw IS NOT NULL THEN format('WHEN (%s) IS TRUE THEN optout._reply_when(%s, %L, %s%s) ',
                          cw, id, 'c', ck, coalesce(', NEW.' || quote_ident(channel_column), '')) ELSE '' END,
                     CASE WHEN hw IS NOT NULL THEN format('WHEN (%s) IS TRUE THEN optout._reply_when(%s, %L, %s%s) ',
                          hw, id, 'h', ck, coalesce(', NEW.' || quote_ident(channel_column), '')) ELSE '' END,
                     bw);
    END IF;
    EXECUTE format('CREATE TRIGGER optout_outbound BEFORE INSERT OR UPDATE OF %s ON %s FOR EACH ROW WHEN (%s) '
                   'EXECUTE FUNCTION optout._outbound_trigger(%L)',
                   concat_ws(', ', quote_ident(contact_column), quote_ident(channel_column), quote_ident(organization_column)), t,
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
                                       stopped_value text, active_value text, touch_column name DEFAULT NULL,
                                       contact_format text DEFAULT NULL, organization_column name DEFAULT NULL,
                                       organization_query text DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text := optout._attach_check(tbl, 'contacts', key_column);
    keyed text := optout._key_check(tbl, key_column, NULL, contact_format, organization_column, organization_query);
    id integer;
    changed bigint;
BEGIN
    PERFORM optout._column(tbl, status_column, 'status');
    IF stopped_value IS NULL OR active_value IS NULL OR stopped_value = active_value THEN
        RAISE EXCEPTION 'the stopped and active values must be given and differ'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM optout._check_value(tbl, status_column, stopped_value, 'stopped_value');
    PERFORM optout._check_value(tbl, status_column, active_value, 'active_value');
    IF touch_column IS NOT NULL THEN
        PERFORM optout._column(tbl, touch_column, 'touch');
    END IF;
    INSERT INTO optout.attachments AS a (tbl, kind, contact_column, status_column, stopped_value, active_value, touch_column,
                                         contact_format, organization_column, organization_query)
    VALUES (attach_contacts.tbl, 'contacts', key_column, status_column, stopped_value, active_value, touch_column,
            attach_contacts.contact_format, attach_contacts.organization_column, attach_contacts.organization_query)
    RETURNING a.id INTO id;
    PERFORM optout._attach_verify(id);
    EXECUTE format('CREATE TRIGGER optout_contacts BEFORE UPDATE OF %I ON %s FOR EACH ROW '
                   'WHEN (NEW.%I OPERATOR(pg_catalog.=) %L AND OLD.%I IS DISTINCT FROM NEW.%I) '
                   'EXECUTE FUNCTION optout._contacts_trigger(%L)',
                   status_column, t, status_column, active_value, status_column, status_column, id);
    -- Keyed by phone number, one number is many rows: a row added for a
    -- stopped number (a campaign's contact upload) starts stopped.
    IF keyed IS NOT NULL THEN
        EXECUTE format('CREATE TRIGGER optout_contacts_insert BEFORE INSERT ON %s FOR EACH ROW '
                       'WHEN ((NEW.%I OPERATOR(pg_catalog.=) %L) IS NOT TRUE) '
                       'EXECUTE FUNCTION optout._contacts_trigger(%L)',
                       t, status_column, stopped_value, id);
    END IF;
    -- Stops already on record (a table attached after optout was in use, or
    -- attached again) are applied now, as a stop applies them.
    changed := optout._apply_existing_stops(id);
    IF changed > 0 THEN
        RAISE NOTICE 'optout: % contacts of % set to % (stopped before the table was attached)', changed, tbl, stopped_value;
    END IF;
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
    changed bigint;
BEGIN
    PERFORM optout._attach_check(tbl, 'groups', contact_column);
    PERFORM optout._column(tbl, group_column, 'group');
    IF (stopped_group IS NULL) = (stopped_group_query IS NULL) THEN
        RAISE EXCEPTION 'give exactly one of stopped_group and stopped_group_query'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'stopped_group names a fixed group; stopped_group_query returns the group for contact $1 (text).';
    END IF;
    PERFORM optout._check_value(tbl, group_column, stopped_group, 'stopped_group');
    INSERT INTO optout.attachments AS a (tbl, kind, contact_column, group_column, stopped_group, stopped_group_query)
    VALUES (attach_groups.tbl, 'groups', contact_column, group_column, stopped_group, stopped_group_query)
    RETURNING a.id INTO id;
    PERFORM optout._attach_verify(id);
    -- Stops already on record: the contacts leave their other groups and
    -- join their Stopped group now, as a stop makes them.
    changed := optout._apply_existing_stops(id);
    IF changed > 0 THEN
        RAISE NOTICE 'optout: % group memberships of % changed (contacts stopped before the table was attached)', changed, tbl;
    END IF;
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
        ELSIF NOT EXISTS (SELECT 1 FROM optout.delivery_error_codes d WHERE d.provider = lower(attach_delivery_errors.provider)) THEN
            RAISE EXCEPTION 'provider % is unknown to optout', optout._cut(quote_literal(provider))
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = format('Known providers: %s; add a provider''s codes to optout.delivery_error_codes first.',
                                    (SELECT string_agg(DISTINCT d.provider, ', ') FROM optout.delivery_error_codes d));
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
    PERFORM optout._check_filter(tbl, row_filter, 'row_filter');
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
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'optout.detach(tbl): tbl must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Name the attached table, e.g. optout.detach(''public.msgs_msg'').';
    END IF;
    SELECT format('%I.%I', ns.nspname, c.relname) INTO t
      FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE c.oid = tbl;
    -- The attachments go first: the event trigger that guards optout's
    -- triggers (optout_trigger_guard) lets a table's be dropped once it has none.
    DELETE FROM optout.attachments a WHERE a.tbl = detach.tbl;
    GET DIAGNOSTICS n = ROW_COUNT;
    FOR trg IN SELECT tgname FROM pg_trigger
                WHERE tgrelid = tbl AND NOT tgisinternal AND tgparentid = 0
                  AND tgname IN ('optout_inbound', 'optout_outbound', 'optout_outbound_requeue', 'optout_contacts',
                                 'optout_delivery_errors', 'optout_contacts_insert', 'optout_optouts') LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', trg, t);
    END LOOP;
    -- The statement-level triggers, on the table and on each of its partitions.
    FOR p IN SELECT tg.tgrelid::regclass FROM pg_trigger tg
              WHERE tg.tgname = 'optout_flush' AND NOT tg.tgisinternal
                AND tg.tgrelid IN (SELECT relid FROM pg_partition_tree(tbl)
                                   UNION ALL SELECT tbl::oid) LOOP
        EXECUTE format('DROP TRIGGER optout_flush ON %s', p);
    END LOOP;
    IF n = 0 THEN
        RAISE NOTICE 'table % was not attached to optout', tbl;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION optout.detach(regclass) IS 'Removes everything optout attached to a table; returns the number of attachments removed';

-- `triggers`: each trigger an attachment needs, on its table and on each
-- partition of it (the row triggers are cloned there, the statement trigger
-- is made there), and its state: enabled (tgenabled O) or always (A): it
-- fires; replica (R), disabled (D) or missing: it does not, and enforcement
-- is off there. trigger_enabled: all of them fire (NULL for groups: none).
CREATE VIEW optout.attached AS
SELECT a.id, a.tbl, a.kind, a.contact_column, a.channel_column, a.body_column, a.row_filter,
       a.mode, a.scope, a.on_blocked, a.mark, a.queued, a.confirmation, a.help_reply, a.status_column, a.stopped_value, a.active_value,
       a.group_column, a.stopped_group, a.stopped_group_query, a.code_column, a.provider, a.event_column,
       a.stop_events, a.created_at,
       t.tgname AS trigger_name,
       CASE WHEN a.kind = 'groups' THEN NULL ELSE coalesce(h.ok, false) END AS trigger_enabled,
       h.triggers,
       a.contact_format, a.organization_column, a.organization_query
  FROM optout.attachments a
  LEFT JOIN pg_catalog.pg_trigger t
    ON t.tgrelid = a.tbl AND t.tgname = 'optout_' || a.kind AND NOT t.tgisinternal
  LEFT JOIN LATERAL (
        SELECT pg_catalog.bool_and(s.state IN ('enabled', 'always')) AS ok,
               coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                            'table', s.relation::pg_catalog.regclass::pg_catalog.text, 'trigger', s.tgname,
                            'state', s.state) ORDER BY s.relation <> a.tbl::pg_catalog.oid,
                                                    s.relation::pg_catalog.regclass::pg_catalog.text, s.tgname),
                        '[]') AS triggers
          FROM (SELECT r.relid AS relation, n.tgname,
                       CASE g.tgenabled WHEN 'O' THEN 'enabled' WHEN 'A' THEN 'always' WHEN 'R' THEN 'replica'
                                        WHEN 'D' THEN 'disabled' ELSE 'missing' END AS state
                  FROM (SELECT a.tbl::pg_catalog.oid AS relid
                        UNION SELECT pt.relid FROM pg_catalog.pg_partition_tree(a.tbl) pt) r
                 CROSS JOIN pg_catalog.unnest(CASE a.kind
                            WHEN 'inbound' THEN ARRAY['optout_inbound', 'optout_flush']
                            WHEN 'outbound' THEN CASE WHEN coalesce(a.row_filter, '{}') <> '{}'
                                                        OR coalesce(a.queued, '{}') <> '{}'
                                                      THEN ARRAY['optout_outbound', 'optout_outbound_requeue']
                                                      ELSE ARRAY['optout_outbound'] END
                            WHEN 'contacts' THEN CASE WHEN a.contact_format IS NOT NULL OR a.organization_column IS NOT NULL
                                                      THEN ARRAY['optout_contacts', 'optout_contacts_insert']
                                                      ELSE ARRAY['optout_contacts'] END
                            WHEN 'delivery_errors' THEN ARRAY['optout_delivery_errors', 'optout_flush']
                            WHEN 'optouts' THEN ARRAY['optout_optouts', 'optout_flush']
                            ELSE ARRAY[]::pg_catalog.text[] END::pg_catalog.name[]) n(tgname)
                  LEFT JOIN pg_catalog.pg_trigger g ON g.tgrelid = r.relid AND g.tgname = n.tgname AND NOT g.tgisinternal
               ) s) h ON true;
COMMENT ON VIEW optout.attached IS 'What optout is attached to, and whether every trigger it needs is in place and fires';

-- ---------------------------------------------------------------------------
-- Privileges: the application needs none of these to send and receive.
REVOKE ALL ON FUNCTION optout.stop(text, text, text), optout.start(text, text, text),
    optout.record_delivery_error(text, text, text, text), optout.history(text),
    optout._flush(), optout._flush_triggers(regclass),
    optout._column(regclass, name, text, boolean), optout._filter_sql(regclass, jsonb, text),
    optout._qualified_type(regclass, name),
    optout._action_sql(integer), optout._attach_check(regclass, text, name, name), optout._attach_verify(integer),
    optout._apply_existing_stops(integer),
    optout._check_value(regclass, name, text, text), optout._codes_check(),
    optout._check_filter(regclass, jsonb, text), optout._check_statement(text, regtype[], regrole, text, regtype),
    optout._cut(text), optout._key_family(oid), optout._check_value_input(regclass, name, text),
    optout.attach_inbound(regclass, name, name, name, optout.match_mode, text, jsonb, boolean, text, text, name, text),
    optout.attach_outbound(regclass, name, name, text, jsonb, jsonb, jsonb, jsonb, jsonb, text, name, text),
    optout.attach_contacts(regclass, name, name, text, text, name, text, name, text),
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
                                           a.event_column, a.organization_column]) x(col)
            UNION ALL SELECT jsonb_object_keys(coalesce(a.row_filter, '{}'))::name
            UNION ALL SELECT jsonb_object_keys(coalesce(a.mark, '{}'))::name
            UNION ALL SELECT jsonb_object_keys(coalesce(a.queued, '{}'))::name
            UNION ALL SELECT jsonb_object_keys(coalesce(a.confirmation, '{}'))::name
            UNION ALL SELECT jsonb_object_keys(coalesce(a.help_reply, '{}'))::name) u
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

-- optout's triggers on an attached table cannot be dropped, disabled, set to
-- ENABLE REPLICA, renamed or replaced by a role that is not superuser (an
-- ERROR with a hint to detach); a superuser may, with a WARNING
-- (src/pg/trigger_guard.cpp). optout.detach() removes the attachments first.
CREATE FUNCTION optout._trigger_guard() RETURNS event_trigger
    AS 'MODULE_PATHNAME', 'optout_trigger_guard' LANGUAGE C;
REVOKE ALL ON FUNCTION optout._trigger_guard() FROM PUBLIC;
CREATE EVENT TRIGGER optout_trigger_guard ON ddl_command_start
    WHEN TAG IN ('DROP TRIGGER', 'ALTER TABLE', 'ALTER TRIGGER', 'CREATE TRIGGER')
    EXECUTE FUNCTION optout._trigger_guard();

-- ---------------------------------------------------------------------------
-- For a monitoring job: per attachment, whether every trigger it needs is
-- there and fires, what is wrong if not, and what was recorded on its table
-- since it was attached (or since the time given, whichever is later).
CREATE FUNCTION optout.health(since timestamptz DEFAULT NULL)
    RETURNS TABLE (attachment integer, tbl regclass, kind text, triggers_ok boolean, problems text[],
                   counted_from timestamptz, stops bigint, starts bigint, blocked bigint, provider_errors bigint,
                   status_kept bigint, last_event_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
SELECT a.id, a.tbl, a.kind, coalesce(a.trigger_enabled, true),
       ARRAY(SELECT format('trigger %s of %s: %s', t ->> 'trigger', t ->> 'table', t ->> 'state')
               FROM jsonb_array_elements(a.triggers) t
              WHERE t ->> 'state' NOT IN ('enabled', 'always')),
       f.from_at, e.stops, e.starts, e.blocked, e.provider_errors, e.status_kept, e.last_at
  FROM optout.attached a
 CROSS JOIN LATERAL (SELECT greatest(a.created_at, $1) AS from_at,
                            format('%I.%I', n.nspname, c.relname) AS table_name
                       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = a.tbl) f
 CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE v.kind = 'stop') AS stops,
                            count(*) FILTER (WHERE v.kind = 'start') AS starts,
                            count(*) FILTER (WHERE v.kind = 'blocked') AS blocked,
                            count(*) FILTER (WHERE v.kind = 'provider_error') AS provider_errors,
                            count(*) FILTER (WHERE v.kind = 'status_kept') AS status_kept,
                            max(v.at) AS last_at
                       FROM optout.events v WHERE v.at >= f.from_at AND v.table_name = f.table_name) e
 ORDER BY a.id
$$;
REVOKE ALL ON FUNCTION optout.health(timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION optout.health(timestamptz) IS
    'Per attachment: are all its triggers in place and firing (and what is wrong if not), and the stops, starts, blocked sends, provider opt-out errors and refused status changes recorded on its table since it was attached (or since the time given)';
