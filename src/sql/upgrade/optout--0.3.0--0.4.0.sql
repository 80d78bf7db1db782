-- optout 0.3.0 -> 0.4.0: ALTER EXTENSION optout UPDATE TO '0.4.0'.
-- The upgrade test (test/scripts/upgrade.sh) checks that a database updated
-- by this script has the same catalog as a fresh install of 0.4.0.
\echo Use "ALTER EXTENSION optout UPDATE TO '0.4.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- optout's tables

-- Review per attachment: attach_inbound(..., review, review_unless) (issue #24).
ALTER TABLE optout.attachments ADD COLUMN review boolean, ADD COLUMN review_unless text;

-- A contact identified by a phone number within an organization, and the
-- attachment kind 'optouts': a platform's own opt-out table (issue #24).
ALTER TABLE optout.attachments
    ADD COLUMN contact_format text CHECK (contact_format IN ('phone')),
    ADD COLUMN organization_column name,
    ADD COLUMN organization_query text;
ALTER TABLE optout.attachments DROP CONSTRAINT attachments_kind_check;
ALTER TABLE optout.attachments ADD CONSTRAINT attachments_kind_check
    CHECK (kind IN ('inbound', 'outbound', 'contacts', 'groups', 'delivery_errors', 'optouts'));

-- 'platform': a stop the platform recorded itself (its own opt-out row).
ALTER TABLE optout.stops DROP CONSTRAINT stops_source_check;
ALTER TABLE optout.stops ADD CONSTRAINT stops_source_check
    CHECK (source IN ('keyword', 'provider', 'manual', 'backfill', 'platform'));
ALTER TABLE optout.events DROP CONSTRAINT events_source_check;
ALTER TABLE optout.events ADD CONSTRAINT events_source_check
    CHECK (source IN ('keyword', 'provider', 'manual', 'backfill', 'send', 'update', 'platform'));

-- An inbound attachment's match mode is fixed at attach: enforcement no
-- longer follows the session's optout.match_mode, which any role may set
-- (issue #26, docs/security.md). Attachments made without a mode take the
-- mode in effect where the update runs (the database's or server's setting,
-- else standard).
UPDATE optout.attachments
   SET mode = coalesce(pg_catalog.current_setting('optout.match_mode', true), 'standard')::optout.match_mode
 WHERE kind = 'inbound' AND mode IS NULL;
ALTER TABLE optout.attachments
    ADD CONSTRAINT attachments_inbound_mode_check CHECK (kind <> 'inbound' OR mode IS NOT NULL);

-- ---------------------------------------------------------------------------
-- Functions whose arguments changed: _check_value takes the argument's name
-- (issue #26); attach_inbound, attach_outbound and attach_contacts take the
-- review and phone-number options (issue #24). Dropped and created again:
-- an EXECUTE granted on them must be granted again.
DROP FUNCTION optout._check_value(regclass, name, text);
DROP FUNCTION optout.attach_inbound(regclass, name, name, name, optout.match_mode, text, jsonb);
DROP FUNCTION optout.attach_outbound(regclass, name, name, text, jsonb, jsonb, jsonb, jsonb, jsonb);
DROP FUNCTION optout.attach_contacts(regclass, name, name, text, text, name);

-- ---------------------------------------------------------------------------
-- Every function and view new or changed since 0.3.0, in install order, then
-- the comments and privileges of the install script (they are idempotent).

CREATE FUNCTION optout._apply_existing_stops(attachment integer) RETURNS bigint
    AS 'MODULE_PATHNAME', 'optout_apply_existing_stops' LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION optout._cut(val text)
    RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN pg_catalog.length($1) > 60 THEN pg_catalog."left"($1, 57) OPERATOR(pg_catalog.||) '...' ELSE $1 END
$$;

CREATE OR REPLACE FUNCTION optout._filter_sql(tbl regclass, filter jsonb, prefix text)
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

CREATE OR REPLACE FUNCTION optout._action_sql(attachment integer)
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
    keys text;
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
    -- A table distributed by Citus (README "Citus").
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p '
                'WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1 AND p.partmethod OPERATOR(pg_catalog.=) ''h'')'
           INTO citus USING a.tbl;
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
        IF citus THEN
            RETURN QUERY VALUES
                ('groups.leave',
                    format('DELETE FROM %s x USING %s p WHERE x.%I OPERATOR(pg_catalog.=) p.c '
                           'AND (x.%I OPERATOR(pg_catalog.=) p.g) IS NOT TRUE',
                           t, pairs, a.contact_column, a.group_column)),
                ('groups.join_stopped', join_sql),
                ('groups.start', format('DELETE FROM %s x USING %s p WHERE x.%I OPERATOR(pg_catalog.=) p.c '
                                    'AND x.%I OPERATOR(pg_catalog.=) p.g',
                                    t, pairs, a.contact_column, a.group_column));
            RETURN;
        END IF;
        -- (The contact's Stopped group by NOT EXISTS, not by
        -- "(x.group = u.g) IS NOT TRUE" in an EXISTS: a semi-join on a
        -- clause other than "=" cannot start from the keys, and one stop's
        -- plan would scan every membership.)
        keys := format('ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[])) u(c, g) '
                       'WHERE x.%I OPERATOR(pg_catalog.=) u.c::%s AND x.%I OPERATOR(pg_catalog.=) u.g::%s',
                       a.contact_column, ctype, a.group_column, gtype);
        RETURN QUERY VALUES
            ('groups.leave',
                format('DELETE FROM %s x WHERE x.%I OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]::%s[]) '
                       'AND NOT EXISTS (SELECT 1 FROM %s)',
                       t, a.contact_column, ctype, keys)),
            ('groups.join_stopped', join_sql),
            ('groups.start', format('DELETE FROM %s x WHERE x.%I OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]::%s[]) '
                                'AND EXISTS (SELECT 1 FROM %s)',
                                t, a.contact_column, ctype, keys));
    WHEN 'outbound' THEN
        IF a.queued IS NULL THEN
            RETURN;
        END IF;
        cond := concat_ws(' AND ', optout._filter_sql(a.tbl, a.row_filter, 'x.'), optout._filter_sql(a.tbl, a.queued, 'x.'));
        IF a.channel_column IS NOT NULL THEN
            PERFORM optout._column(a.tbl, a.channel_column, 'channel');
            chtype := optout._qualified_type(a.tbl, a.channel_column);
        END IF;
        IF citus THEN
            -- Joined to the keys (pairs, below: FROM or USING).
            pairs := CASE WHEN a.channel_column IS NOT NULL
                          THEN format('(SELECT DISTINCT u.c::%s AS c, u.ch::%s AS ch '
                                      'FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[])) u(c, ch)) p',
                                      ctype, chtype)
                          ELSE format('(SELECT DISTINCT u.c::%s AS c FROM pg_catalog.unnest($1::pg_catalog.text[]) u(c)) p', ctype) END;
            cond := concat_ws(' AND ', format('x.%I OPERATOR(pg_catalog.=) p.c', a.contact_column), cond,
                              CASE WHEN a.channel_column IS NOT NULL
                                   THEN format('(p.ch IS NULL OR x.%I OPERATOR(pg_catalog.=) p.ch)', a.channel_column) END);
        ELSE
            -- By contact (an index scan for a few, one pass for many), then
            -- each stop's channel.
            cond := concat_ws(' AND ', format('x.%I OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]::%s[])', a.contact_column, ctype),
                              CASE WHEN a.channel_column IS NOT NULL
                                   THEN format('EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), '
                                               'pg_catalog.unnest($2::pg_catalog.text[])) u(c, ch) '
                                               'WHERE x.%I OPERATOR(pg_catalog.=) u.c::%s '
                                               'AND (u.ch IS NULL OR x.%I OPERATOR(pg_catalog.=) u.ch::%s))',
                                               a.contact_column, ctype, a.channel_column, chtype) END,
                              cond);
        END IF;
        IF a.mark IS NOT NULL AND a.mark <> '{}'::jsonb THEN
            SELECT string_agg(CASE WHEN value = 'null'::jsonb THEN format('%I = NULL', key)
                                   ELSE format('%I = %L', key, value #>> '{}') END, ', ' ORDER BY key)
              INTO sets FROM jsonb_each(a.mark);
            RETURN QUERY VALUES ('outbound.fail_queued', format('WITH f AS (UPDATE %s x SET %s%s WHERE %s RETURNING x.%I) '
                                'SELECT f.%I::pg_catalog.text, pg_catalog.count(*) FROM f GROUP BY 1 '
                                'ORDER BY f.%I::pg_catalog.text COLLATE pg_catalog."C"',
                                t, sets, CASE WHEN citus THEN ' FROM ' || pairs ELSE '' END, cond,
                                a.contact_column, a.contact_column, a.contact_column));
            RETURN;
        END IF;
        RETURN QUERY VALUES ('outbound.fail_queued', format('WITH f AS (DELETE FROM %s x%s WHERE %s RETURNING x.%I) '
                            'SELECT f.%I::pg_catalog.text, pg_catalog.count(*) FROM f GROUP BY 1 '
                            'ORDER BY f.%I::pg_catalog.text COLLATE pg_catalog."C"',
                            t, CASE WHEN citus THEN ' USING ' || pairs ELSE '' END, cond,
                            a.contact_column, a.contact_column, a.contact_column));
    ELSE
        RETURN;
    END CASE;
END
$$;

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

CREATE OR REPLACE FUNCTION optout._attach_check(tbl regclass, kind text, contact_column name, channel_column name DEFAULT NULL)
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

CREATE FUNCTION optout._check_statement(sql text, params regtype[], run_as regrole,
                                        query_name text DEFAULT NULL, returns regtype DEFAULT NULL)
    RETURNS void AS 'MODULE_PATHNAME', 'optout_check_statement' LANGUAGE C VOLATILE;

CREATE OR REPLACE FUNCTION optout._attach_verify(attachment integer)
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

CREATE OR REPLACE FUNCTION optout.attach_groups(tbl regclass, contact_column name, group_column name,
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

CREATE OR REPLACE FUNCTION optout.attach_delivery_errors(tbl regclass, contact_column name, code_column name DEFAULT NULL,
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

CREATE OR REPLACE FUNCTION optout.detach(tbl regclass)
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

CREATE OR REPLACE VIEW optout.attached AS
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

CREATE OR REPLACE FUNCTION optout._on_ddl_end() RETURNS event_trigger
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

CREATE FUNCTION optout._trigger_guard() RETURNS event_trigger
    AS 'MODULE_PATHNAME', 'optout_trigger_guard' LANGUAGE C;

CREATE EVENT TRIGGER optout_trigger_guard ON ddl_command_start
    WHEN TAG IN ('DROP TRIGGER', 'ALTER TABLE', 'ALTER TRIGGER', 'CREATE TRIGGER')
    EXECUTE FUNCTION optout._trigger_guard();

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

CREATE OR REPLACE FUNCTION optout.attach_rapidpro(schema name DEFAULT 'public', confirmation jsonb DEFAULT NULL)
    RETURNS SETOF optout.attached
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
    answering text;
BEGIN
    IF schema IS NULL THEN
        RAISE EXCEPTION 'optout.attach_rapidpro(schema): schema must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Name the schema that holds RapidPro''s tables (default: public).';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = schema) THEN
        RAISE EXCEPTION 'schema % does not exist', quote_ident(schema)
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
    -- RapidPro's flows ask questions: a contact with a waiting flow session
    -- (flows_flowsession, status W) is answering one, and a lone "No" or "A"
    -- from it is an answer, not a revocation to review. (A STOP still stops.)
    IF to_regclass(format('%I.flows_flowsession', schema)) IS NOT NULL THEN
        answering := format('SELECT 1 FROM %I.flows_flowsession s WHERE s.contact_id OPERATOR(pg_catalog.=) $1::pg_catalog.int4 '
                            'AND s.status OPERATOR(pg_catalog.=) ''W''', schema);
    END IF;
    PERFORM optout.attach_inbound(format('%I.msgs_msg', schema)::regclass, 'text', 'contact_id', 'channel_id',
                                  scope => 'contact', row_filter => '{"direction": "I"}',
                                  review_unless => answering);
    PERFORM optout.attach_outbound(format('%I.msgs_msg', schema)::regclass, 'contact_id', 'channel_id',
                                   on_blocked => 'mark',
                                   mark => '{"status": "F", "failed_reason": "C", "sent_on": null}',
                                   queued => '{"status": ["I", "Q", "E"]}', row_filter => '{"direction": "O"}',
                                   confirmation => attach_rapidpro.confirmation);
    PERFORM optout.attach_delivery_errors(format('%I.channels_channelevent', schema)::regclass, 'contact_id',
                                          channel_column => 'channel_id', event_column => 'event_type',
                                          stop_events => '{stop_contact}');
    RETURN QUERY SELECT * FROM optout.attached a
                  WHERE a.tbl::oid IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                        WHERE n.nspname = schema)
                  ORDER BY a.id;
END
$$;

CREATE FUNCTION optout.phone_key(phone text)
    RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d text := regexp_replace(phone, '[[:space:]().\-/]', '', 'g');
BEGIN
    IF d ~ '^\+[0-9]{8,15}$' THEN
        RETURN d;
    ELSIF d ~ '^[0-9]{10}$' THEN
        RETURN '+1' || d;
    ELSIF d ~ '^1[0-9]{10}$' THEN
        RETURN '+' || d;
    END IF;
    RAISE EXCEPTION 'optout cannot read % as a phone number', quote_literal(phone)
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Write it in E.164 (+, country code and number: +15550100000), or as 10 digits (a North American number), or 11 digits starting with 1.';
END
$$;

CREATE FUNCTION optout.contact_key(phone text, organization text)
    RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF phone IS NULL OR organization IS NULL THEN
        RAISE EXCEPTION 'a contact known by phone number needs a number and an organization'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF organization = '' OR strpos(organization, ':') > 0 THEN
        RAISE EXCEPTION 'organization % cannot be part of a contact key', quote_literal(organization)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'An organization key is not empty and has no colon.';
    END IF;
    RETURN organization || ':' || optout.phone_key(phone);
END
$$;

CREATE FUNCTION optout._row_key(attachment integer, phone text, org text, strict boolean)
    RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a record;
    p text;
    o text;
BEGIN
    SELECT x.tbl, x.contact_column, x.contact_format, x.organization_column, x.organization_query INTO a
      FROM optout.attachments x WHERE x.id = attachment;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'optout attachment % does not exist', attachment USING ERRCODE = 'undefined_object';
    END IF;
    IF phone IS NULL THEN
        IF strict THEN
            RAISE EXCEPTION 'a row of % has no %: optout cannot tell whom it is for', a.tbl, quote_ident(a.contact_column)
                USING ERRCODE = 'not_null_violation';
        END IF;
        RETURN NULL;
    END IF;
    IF a.contact_format = 'phone' THEN
        IF strict THEN
            p := optout.phone_key(phone);
        ELSE
            BEGIN
                p := optout.phone_key(phone);
            EXCEPTION WHEN invalid_parameter_value THEN
                RETURN NULL;
            END;
        END IF;
    ELSE
        p := phone;
    END IF;
    IF a.organization_column IS NULL THEN
        RETURN p;
    END IF;
    IF org IS NOT NULL AND a.organization_query IS NOT NULL THEN
        EXECUTE a.organization_query INTO o USING org;
    ELSE
        o := org;
    END IF;
    IF o IS NULL OR o = '' OR strpos(o, ':') > 0 THEN
        IF strict THEN
            RAISE EXCEPTION 'a row of % for % has no organization optout knows (% = %)', a.tbl, quote_literal(p),
                            quote_ident(a.organization_column), coalesce(quote_literal(org), 'NULL')
                USING ERRCODE = 'foreign_key_violation',
                      HINT = 'optout knows this table''s contacts by phone number within an organization: the row must name one.';
        END IF;
        RETURN NULL;
    END IF;
    RETURN o || ':' || p;
END
$$;

CREATE FUNCTION optout._key_check(tbl regclass, contact_column name, channel_column name, contact_format text,
                                  organization_column name, organization_query text)
    RETURNS text
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ text;
BEGIN
    IF contact_format IS NULL AND organization_column IS NULL THEN
        IF organization_query IS NOT NULL THEN
            RAISE EXCEPTION 'organization_query needs organization_column (the value it is given as $1)'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN NULL;
    END IF;
    IF contact_format IS NOT NULL AND contact_format <> 'phone' THEN
        RAISE EXCEPTION 'contact_format must be ''phone'' or NULL, not %', quote_literal(contact_format)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF channel_column IS NOT NULL THEN
        RAISE EXCEPTION 'a contact known by phone number or organization cannot also have a channel column'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Leave channel_column out: a stop of such a contact covers every channel.';
    END IF;
    typ := optout._column(tbl, contact_column, 'contact');
    IF contact_format = 'phone' AND typ NOT IN ('text', 'character varying') AND typ !~ '^character( varying)?\(' THEN
        RAISE EXCEPTION 'column "%" of table % has type %; a phone number must be text or varchar', contact_column, tbl, typ
            USING ERRCODE = 'datatype_mismatch';
    END IF;
    IF organization_column IS NULL THEN
        RETURN 'none';
    END IF;
    typ := optout._column(tbl, organization_column, 'organization');
    IF organization_query IS NOT NULL THEN
        BEGIN
            EXECUTE format('PREPARE optout_attach_verify(text) AS %s', organization_query);
            DEALLOCATE optout_attach_verify;
        EXCEPTION WHEN syntax_error_or_access_rule_violation THEN
            RAISE EXCEPTION 'optout cannot prepare organization_query: %', SQLERRM
                USING ERRCODE = SQLSTATE, DETAIL = format('Query: %s', organization_query),
                      HINT = 'Schema-qualify every name (it runs with search_path = pg_catalog); $1 is the organization column as text.';
        END;
    END IF;
    RETURN typ;
END
$$;

CREATE FUNCTION optout._keyed_action_sql(a optout.attachments)
    RETURNS TABLE (name text, sql text)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
    keys text;
    rowkey text;
    match text;
    cond text;
    sets text;
    cols text;
    vals text;
    reftbl text;
    refcol name;
BEGIN
    SELECT format('%I.%I', n.nspname, c.relname) INTO t
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = a.tbl;
    -- Only keys of this attachment's form: a stop may be another
    -- attachment's contact (a RapidPro contact id), never one of these rows.
    IF a.organization_column IS NOT NULL THEN
        keys := '(SELECT DISTINCT u.k, pg_catalog.split_part(u.k, '':'', 1) AS org, '
                'pg_catalog.substr(u.k, pg_catalog.strpos(u.k, '':'') OPERATOR(pg_catalog.+) 1) AS phone '
                'FROM pg_catalog.unnest($1::pg_catalog.text[]) u(k) '
                'WHERE pg_catalog.strpos(u.k, '':'') OPERATOR(pg_catalog.>) 1)';
    ELSE
        keys := '(SELECT DISTINCT u.k, NULL::pg_catalog.text AS org, u.k AS phone '
                'FROM pg_catalog.unnest($1::pg_catalog.text[]) u(k))';
    END IF;
    IF a.contact_format = 'phone' THEN
        keys := format('(SELECT * FROM %s q WHERE q.phone OPERATOR(pg_catalog.~) ''^\+[0-9]{8,15}$'')', keys);
    END IF;
    rowkey := format('optout._row_key(%s, x.%I::pg_catalog.text, %s, false)', a.id, a.contact_column,
                     coalesce(format('x.%I::pg_catalog.text', a.organization_column), 'NULL'));
    match := format('x.%I::pg_catalog.text OPERATOR(pg_catalog.=) p.phone AND %s OPERATOR(pg_catalog.=) p.k',
                    a.contact_column, rowkey);
    CASE a.kind
    WHEN 'contacts' THEN
        RETURN QUERY VALUES
            ('contacts.stop', format('UPDATE %s x SET %I = %L%s FROM %s p WHERE %s '
                                     'AND (x.%I OPERATOR(pg_catalog.=) %L) IS NOT TRUE',
                                     t, a.status_column, a.stopped_value,
                                     CASE WHEN a.touch_column IS NOT NULL THEN format(', %I = pg_catalog.now()', a.touch_column) ELSE '' END,
                                     keys, match, a.status_column, a.stopped_value)),
            ('contacts.start', format('UPDATE %s x SET %I = %L%s FROM %s p WHERE %s '
                                      'AND x.%I OPERATOR(pg_catalog.=) %L',
                                      t, a.status_column, a.active_value,
                                      CASE WHEN a.touch_column IS NOT NULL THEN format(', %I = pg_catalog.now()', a.touch_column) ELSE '' END,
                                      keys, match, a.status_column, a.stopped_value));
    WHEN 'outbound' THEN
        IF a.queued IS NULL THEN
            RETURN;
        END IF;
        cond := concat_ws(' AND ', match, optout._filter_sql(a.tbl, a.row_filter, 'x.'), optout._filter_sql(a.tbl, a.queued, 'x.'));
        IF a.mark IS NOT NULL AND a.mark <> '{}'::jsonb THEN
            SELECT string_agg(CASE WHEN value = 'null'::jsonb THEN format('%I = NULL', key)
                                   ELSE format('%I = %L', key, value #>> '{}') END, ', ' ORDER BY key)
              INTO sets FROM jsonb_each(a.mark);
            RETURN QUERY VALUES ('outbound.fail_queued', format('WITH f AS (UPDATE %s x SET %s FROM %s p WHERE %s RETURNING p.k) '
                                 'SELECT f.k, pg_catalog.count(*) FROM f GROUP BY 1 ORDER BY f.k COLLATE pg_catalog."C"',
                                 t, sets, keys, cond));
        ELSE
            RETURN QUERY VALUES ('outbound.fail_queued', format('WITH f AS (DELETE FROM %s x USING %s p WHERE %s RETURNING p.k) '
                                 'SELECT f.k, pg_catalog.count(*) FROM f GROUP BY 1 ORDER BY f.k COLLATE pg_catalog."C"',
                                 t, keys, cond));
        END IF;
    WHEN 'optouts' THEN
        -- A stop writes the platform's row (unless one is there); a start
        -- removes every row of the contact, the platform's own included.
        cols := quote_ident(a.contact_column);
        vals := format('p.phone::%s', optout._qualified_type(a.tbl, a.contact_column));
        cond := format('x.%I::pg_catalog.text OPERATOR(pg_catalog.=) p.phone', a.contact_column);
        IF a.organization_column IS NOT NULL THEN
            -- The organization must be one the platform has: where the column
            -- references a table (Spoke's opt_out.organization_id), a stop for
            -- an organization not in it writes no row; otherwise a key that
            -- does not fit the column's type writes none.
            SELECT format('%I.%I', rn.nspname, rc.relname), ra.attname INTO reftbl, refcol
              FROM pg_constraint k
              JOIN pg_attribute ca ON ca.attrelid = k.conrelid AND ca.attnum = k.conkey[1]
              JOIN pg_class rc ON rc.oid = k.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
              JOIN pg_attribute ra ON ra.attrelid = k.confrelid AND ra.attnum = k.confkey[1]
             WHERE k.conrelid = a.tbl AND k.contype = 'f' AND cardinality(k.conkey) = 1
               AND ca.attname = a.organization_column
             ORDER BY k.conname LIMIT 1;
            cols := cols || ', ' || quote_ident(a.organization_column);
            IF reftbl IS NOT NULL THEN
                vals := vals || ', p.org_ref';
                keys := format('(SELECT q.*, r.%1$I AS org_ref FROM %2$s q JOIN %3$s r ON r.%1$I::pg_catalog.text OPERATOR(pg_catalog.=) q.org)',
                               refcol, keys, reftbl);
            ELSE
                vals := vals || format(', p.org::%s', optout._qualified_type(a.tbl, a.organization_column));
                IF optout._column(a.tbl, a.organization_column, 'organization') IN ('smallint', 'integer', 'bigint') THEN
                    keys := format('(SELECT * FROM %s q WHERE q.org OPERATOR(pg_catalog.~) ''^-?[0-9]{1,18}$'')', keys);
                END IF;
            END IF;
            cond := cond || format(' AND x.%I::pg_catalog.text OPERATOR(pg_catalog.=) p.org', a.organization_column);
        END IF;
        SELECT cols || coalesce(string_agg(', ' || quote_ident(key), '' ORDER BY key), ''),
               vals || coalesce(string_agg(CASE WHEN value = 'null'::jsonb THEN ', NULL'
                                                ELSE format(', %L::%s', value #>> '{}', optout._qualified_type(a.tbl, key::name)) END,
                                           '' ORDER BY key), '')
          INTO cols, vals FROM jsonb_each(coalesce(a.mark, '{}'));
        RETURN QUERY VALUES
            ('optouts.stop', format('INSERT INTO %s (%s) SELECT %s FROM %s p WHERE NOT EXISTS (SELECT 1 FROM %s x WHERE %s)',
                                    t, cols, vals, keys, t, cond)),
            ('optouts.start', format('DELETE FROM %s x USING %s p WHERE %s', t, keys, cond));
    ELSE
        RETURN;
    END CASE;
END
$$;

CREATE FUNCTION optout.attach_optouts(tbl regclass, contact_column name, contact_format text DEFAULT NULL,
                                      organization_column name DEFAULT NULL, row_values jsonb DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text := optout._attach_check(tbl, 'optouts', contact_column);
    keyed text := optout._key_check(tbl, contact_column, NULL, contact_format, organization_column, NULL);
    c text;
    v jsonb;
    id integer;
BEGIN
    IF row_values IS NOT NULL AND jsonb_typeof(row_values) <> 'object' THEN
        RAISE EXCEPTION 'row_values must be a JSON object of column names and values, not %', row_values
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example: ''{"reason_code": "optout"}''.';
    END IF;
    FOR c, v IN SELECT key, value FROM jsonb_each(coalesce(row_values, '{}')) LOOP
        IF jsonb_typeof(v) IN ('object', 'array') THEN
            RAISE EXCEPTION 'the value for column "%" must be a value or null', c USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF c::name IN (contact_column, organization_column) THEN
            RAISE EXCEPTION 'column "%" is written by optout; it cannot be in row_values', c USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM optout._check_value(tbl, c::name, v #>> '{}');
    END LOOP;
    INSERT INTO optout.attachments AS a (tbl, kind, contact_column, mark, contact_format, organization_column)
    VALUES (attach_optouts.tbl, 'optouts', attach_optouts.contact_column, nullif(attach_optouts.row_values, '{}'),
            attach_optouts.contact_format, attach_optouts.organization_column)
    RETURNING a.id INTO id;
    PERFORM optout._attach_verify(id);
    EXECUTE format('CREATE TRIGGER optout_optouts AFTER INSERT ON %s FOR EACH ROW EXECUTE FUNCTION optout._optouts_trigger(%L)',
                   t, id);
    PERFORM optout._flush_triggers(tbl);
    RETURN id;
END
$$;

CREATE FUNCTION optout._optouts_trigger() RETURNS trigger AS 'MODULE_PATHNAME', 'optout_optouts_trigger' LANGUAGE C;

CREATE FUNCTION optout.attach_spoke(schema name DEFAULT 'public', confirmation jsonb DEFAULT '{"user_id": null}')
    RETURNS SETOF optout.attached
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
    org_of_contact text;
BEGIN
    IF schema IS NULL OR NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = schema) THEN
        RAISE EXCEPTION 'schema % does not exist', coalesce(quote_ident(schema), 'NULL')
            USING ERRCODE = 'invalid_schema_name', HINT = 'Name the schema that holds Spoke''s tables.';
    END IF;
    FOREACH t IN ARRAY ARRAY['organization', 'campaign', 'campaign_contact', 'message', 'opt_out'] LOOP
        IF to_regclass(format('%I.%I', schema, t)) IS NULL THEN
            RAISE EXCEPTION 'table %.% does not exist: is this a Spoke database?', quote_ident(schema), t
                USING ERRCODE = 'undefined_table';
        END IF;
    END LOOP;
    org_of_contact := format('SELECT c.organization_id::pg_catalog.text FROM %1$I.campaign_contact cc '
                             'JOIN %1$I.campaign c ON c.id OPERATOR(pg_catalog.=) cc.campaign_id '
                             'WHERE cc.id OPERATOR(pg_catalog.=) $1::pg_catalog.int4', schema);
    -- Order matters: is_opted_out first, then Spoke's opt_out rows, then messages.
    PERFORM optout.attach_contacts(format('%I.campaign_contact', schema)::regclass, 'cell', 'is_opted_out', 't', 'f',
                                   contact_format => 'phone', organization_column => 'campaign_id',
                                   organization_query => format('SELECT c.organization_id::pg_catalog.text FROM %I.campaign c '
                                                                'WHERE c.id OPERATOR(pg_catalog.=) $1::pg_catalog.int4', schema));
    PERFORM optout.attach_optouts(format('%I.opt_out', schema)::regclass, 'cell', contact_format => 'phone',
                                  organization_column => 'organization_id', row_values => '{"reason_code": "optout"}');
    PERFORM optout.attach_inbound(format('%I.message', schema)::regclass, 'text', 'contact_number',
                                  row_filter => '{"is_from_contact": true}', contact_format => 'phone',
                                  organization_column => 'campaign_contact_id', organization_query => org_of_contact);
    PERFORM optout.attach_outbound(format('%I.message', schema)::regclass, 'contact_number', on_blocked => 'error',
                                   mark => '{"send_status": "ERROR", "error_code": 21610}',
                                   queued => '{"send_status": ["QUEUED", "PAUSED"]}',
                                   row_filter => '{"is_from_contact": false}', confirmation => attach_spoke.confirmation,
                                   contact_format => 'phone',
                                   organization_column => 'campaign_contact_id', organization_query => org_of_contact);
    RETURN QUERY SELECT * FROM optout.attached a
                  WHERE a.tbl::oid IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                        WHERE n.nspname = schema)
                  ORDER BY a.id;
END
$$;

CREATE OR REPLACE FUNCTION optout.explain_contact(contact text) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result jsonb;
BEGIN
    IF contact IS NULL THEN
        RAISE EXCEPTION 'optout.explain_contact(contact): contact must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Give the contact''s key as text, e.g. optout.explain_contact(''42'').';
    END IF;
    -- One statement, planned for this contact (EXECUTE ... USING): on Citus
    -- it then goes to the contact's shard of the events. (An SQL function's
    -- statement is planned with its parameter unknown, which Citus cannot
    -- route.)
    EXECUTE $q$
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
    'open_reviews', (SELECT count(*) FROM optout.open_reviews r WHERE r.contact = $1),
    'status_changes_refused', (SELECT count(*) FROM optout.events e WHERE e.contact = $1 AND e.kind = 'status_kept'))
$q$ INTO result USING contact;
    RETURN result;
END
$$;

CREATE OR REPLACE FUNCTION optout.evidence(contact text) RETURNS jsonb
    LANGUAGE sql STABLE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
WITH ev AS (
    SELECT e.*, (SELECT min(n.id) FROM optout.events n
                  WHERE n.contact = e.contact AND n.kind = 'start' AND n.id > e.id
                    AND (n.detail ->> 'lifted') IS NOT NULL) AS lifted_by
      FROM optout.events e WHERE e.contact = $1
), stops AS (
    SELECT e.*, h.received_at, h.honour_time, h.business_days, h.within_10_business_days
      FROM ev e JOIN optout.honour_times h ON h.stop_event = e.id
     WHERE e.kind = 'stop'
)
SELECT jsonb_build_object(
    'contact', $1,
    'generated_at', pg_catalog.now(),
    'optout_version', (SELECT x.extversion FROM pg_extension x WHERE x.extname = 'optout'),
    'settings', jsonb_build_object(
        -- the mode inbound attachments classify with (fixed at attach; one
        -- mode, or {table: mode} when they differ), not the session's setting
        'match_mode', (SELECT CASE WHEN count(DISTINCT a.mode) = 1 THEN to_jsonb(min(a.mode::text))
                                   WHEN count(*) > 0 THEN jsonb_object_agg(a.tbl::text, a.mode) END
                         FROM optout.attachments a WHERE a.kind = 'inbound'),
        'confirmation_window', pg_catalog.current_setting('optout.confirmation_window', true),
        'revoke_all_from', nullif(pg_catalog.current_setting('optout.revoke_all_from', true), '')),
    'stopped_now', coalesce((SELECT jsonb_agg(jsonb_build_object(
                        'scope', CASE WHEN s.channel IS NULL THEN 'contact' ELSE 'channel' END,
                        'channel', s.channel, 'since', s.stopped_at, 'source', s.source, 'stop_event', s.event_id)
                      ORDER BY s.stopped_at, s.channel NULLS FIRST)
                    FROM optout.stops s WHERE s.contact = $1), '[]'::jsonb),
    'revocations', coalesce((SELECT jsonb_agg(jsonb_build_object(
        'event', s.id, 'source', s.source, 'channel', s.channel,
        'message', s.body, 'keyword', s.keyword, 'language', s.language, 'rule', s.rule,
        'provider', s.provider, 'code', s.code, 'reason', s.reason, 'table', s.table_name, 'actor', s.actor,
        'classified_by', CASE WHEN s.optout_version IS NOT NULL THEN jsonb_build_object(
                'optout_version', s.optout_version, 'keyword_set', s.keyword_set) END,
        'revoke_all_from', s.detail ->> 'revoke_all_from',
        'requested_channel', s.detail ->> 'requested_channel',
        'received_at', s.received_at, 'honoured_at', s.at,
        'honour_time_seconds', extract(epoch FROM s.honour_time),
        'business_days', s.business_days, 'within_10_business_days', s.within_10_business_days,
        'lifted_by_event', s.lifted_by,
        'sends_after', (SELECT jsonb_build_object(
                'blocked', coalesce(sum(CASE WHEN b.detail ? 'queued_failed' THEN 0
                                             ELSE coalesce((b.detail ->> 'count')::bigint, 1) END), 0),
                'queued_failed', coalesce(sum((b.detail ->> 'queued_failed')::bigint), 0),
                'first_at', min(b.at), 'last_at', max(b.at),
                'records', coalesce(jsonb_agg(jsonb_build_object(
                        'at', b.at, 'channel', b.channel, 'table', b.table_name, 'rule', b.detail ->> 'rule',
                        'count', coalesce((b.detail ->> 'count')::bigint, 0),
                        'queued_failed', coalesce((b.detail ->> 'queued_failed')::bigint, 0)) ORDER BY b.id)
                    FILTER (WHERE b.id IS NOT NULL), '[]'::jsonb))
              FROM ev b WHERE b.kind = 'blocked' AND b.id > s.id AND b.id < coalesce(s.lifted_by, 9223372036854775807)),
        'provider_errors_after', (SELECT jsonb_build_object('count', count(*), 'first_at', min(p.at), 'last_at', max(p.at))
              FROM ev p WHERE p.kind = 'provider_error' AND p.id > s.id
               AND p.id < coalesce(s.lifted_by, 9223372036854775807)),
        'confirmation', (SELECT jsonb_build_object('at', c.at, 'channel', c.channel, 'table', c.table_name,
                                                   'seconds_after_stop', (c.detail ->> 'seconds_after_stop')::numeric)
                           FROM ev c WHERE c.kind = 'confirmation' AND (c.detail ->> 'for_event')::bigint = s.id))
      ORDER BY s.id) FROM stops s), '[]'::jsonb),
    'opt_ins', coalesce((SELECT jsonb_agg(jsonb_build_object(
        'event', o.id, 'at', o.at, 'source', o.source, 'channel', o.channel, 'message', o.body,
        'keyword', o.keyword, 'rule', o.rule, 'reason', o.reason, 'actor', o.actor,
        'lifted', o.detail ->> 'lifted',
        'classified_by', CASE WHEN o.optout_version IS NOT NULL THEN jsonb_build_object(
                'optout_version', o.optout_version, 'keyword_set', o.keyword_set) END)
      ORDER BY o.id) FROM ev o WHERE o.kind = 'start'), '[]'::jsonb),
    'help_requests', coalesce((SELECT jsonb_agg(jsonb_build_object(
        'event', h.id, 'at', h.at, 'channel', h.channel, 'message', h.body, 'keyword', h.keyword,
        'reply', (SELECT jsonb_build_object('at', r.at, 'channel', r.channel, 'table', r.table_name,
                                            'seconds_after_help', (r.detail ->> 'seconds_after_help')::numeric)
                    FROM ev r WHERE r.kind = 'help_reply' AND (r.detail ->> 'for_event')::bigint = h.id))
      ORDER BY h.id) FROM ev h WHERE h.kind = 'help'), '[]'::jsonb),
    'status_changes_refused', (SELECT count(*) FROM ev k WHERE k.kind = 'status_kept'))
$$;

CREATE OR REPLACE PROCEDURE optout.backfill(tbl regclass, mode optout.match_mode DEFAULT NULL,
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
    -- (A contact known by phone number within an organization has a key the
    -- backfill does not build: refused rather than stopped under the wrong key.)
    IF FOUND AND (a.contact_format IS NOT NULL OR a.organization_column IS NOT NULL) THEN
        RAISE EXCEPTION 'optout.backfill cannot read table % yet: its contacts are known by phone number within an organization', tbl
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Find the opt-outs with a query of your own, and stop each with optout.stop(optout.contact_key(number, organization), reason => ...).';
    END IF;
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

COMMENT ON SCHEMA optout IS 'optout: SMS opt-out compliance (classifier, keywords, enforcement)';

GRANT USAGE ON SCHEMA optout TO PUBLIC;

COMMENT ON TYPE optout.intent IS 'What an inbound message asks for; NULL when it is not a keyword message; review: perhaps a revocation, too unclear to act on (never a stop; see optout.open_reviews)';

COMMENT ON TYPE optout.match_mode IS 'How strictly inbound messages are read: exact (Twilio), standard, reasonable (FCC "any reasonable means")';

COMMENT ON FUNCTION optout.normalize(text) IS
    'The standard normalisation of a message body: NFKC, case folding, ignorables and diacritics removed, white space collapsed, punctuation and emoji trimmed at both ends';

COMMENT ON FUNCTION optout.keyword_key(text) IS
    'The key the classifier matches a keyword by: its normalised words joined without separators (''Opt-Out'' -> ''optout'')';

COMMENT ON FUNCTION optout.classify(text, optout.match_mode) IS
    'Classifies an inbound message body as opt_out, opt_in, help or review (NULL otherwise); a NULL mode means the optout.match_mode setting';

COMMENT ON FUNCTION optout.explain(text, optout.match_mode) IS
    'Why a body classifies as it does: the intent, the keyword (or request phrase) that matched, its language, the rule (exact, normalized, separator, repeat, courtesy, phrase, lookalike, typo, sentence; for a review lone_negative, lone_letter, keyword_aside) and the normalised text';

COMMENT ON TABLE optout.keywords IS
    'Keywords the classifier matches. Add rows for custom keywords or languages; set enabled = false to stop matching a default';

COMMENT ON COLUMN optout.keywords.keyword IS 'The keyword as written; matched by its key, optout.keyword_key(keyword)';

COMMENT ON COLUMN optout.keywords.is_default IS 'Shipped with optout; defaults can be disabled but not deleted or renamed';

REVOKE ALL ON TABLE optout.keywords FROM PUBLIC;

GRANT SELECT ON TABLE optout.keywords TO PUBLIC;

REVOKE ALL ON FUNCTION optout._keywords_check() FROM PUBLIC;

REVOKE ALL ON FUNCTION optout._lock_keywords() FROM PUBLIC;

REVOKE ALL ON FUNCTION optout._config_changed() FROM PUBLIC;

COMMENT ON TABLE optout.stops IS
    'The ledger: one row per stopped contact and scope (channel NULL = every channel). Written only by optout';

COMMENT ON TABLE optout.events IS
    'Every stop, start, help request, blocked send, provider opt-out error and refused status change, with who, when, which channel, message, keyword and rule';

COMMENT ON TABLE optout.delivery_error_codes IS
    'Provider error codes optout knows; stops = true means the error stops the contact (recipient opted out)';

REVOKE ALL ON optout.stops, optout.events FROM PUBLIC;

REVOKE ALL ON optout.delivery_error_codes FROM PUBLIC;

GRANT SELECT ON optout.delivery_error_codes TO PUBLIC;

COMMENT ON FUNCTION optout.stop(text, text, text) IS
    'Stops a contact by hand (channel NULL: every channel), applying every attachment; true when newly stopped';

COMMENT ON FUNCTION optout.start(text, text, text) IS
    'Lifts a stop by hand; requires a reason, which is recorded; true when a stop was lifted';

COMMENT ON FUNCTION optout.is_stopped(text, text) IS
    'Is the contact stopped on this channel (contact-wide or on the channel)? A NULL channel asks about a contact-wide stop';

COMMENT ON FUNCTION optout.record_delivery_error(text, text, text, text) IS
    'Records a provider error; one that means "recipient opted out" (optout.delivery_error_codes) stops the contact; true when it stopped the contact';

COMMENT ON FUNCTION optout.history(text) IS 'Every event of one contact, oldest first';

COMMENT ON TABLE optout.attachments IS 'The platform tables optout enforces on; written by the optout.attach_* functions';

REVOKE ALL ON optout.attachments FROM PUBLIC;

GRANT SELECT ON optout.attachments TO PUBLIC;

COMMENT ON FUNCTION optout.confirm_next(text, text) IS
    'The next blocked send to the contact (on the channel; NULL: any) in this transaction is its stop''s one confirmation; true when one would be accepted now';

COMMENT ON FUNCTION optout.detach(regclass) IS 'Removes everything optout attached to a table; returns the number of attachments removed';

COMMENT ON VIEW optout.attached IS 'What optout is attached to, and whether every trigger it needs is in place and fires';

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

REVOKE ALL ON FUNCTION optout._on_sql_drop() FROM PUBLIC;

REVOKE ALL ON FUNCTION optout._on_ddl_end() FROM PUBLIC;

REVOKE ALL ON FUNCTION optout._trigger_guard() FROM PUBLIC;

REVOKE ALL ON FUNCTION optout.health(timestamptz) FROM PUBLIC;

COMMENT ON FUNCTION optout.health(timestamptz) IS
    'Per attachment: are all its triggers in place and firing (and what is wrong if not), and the stops, starts, blocked sends, provider opt-out errors and refused status changes recorded on its table since it was attached (or since the time given)';

REVOKE ALL ON FUNCTION optout.attach_rapidpro(name, jsonb) FROM PUBLIC;

COMMENT ON FUNCTION optout.attach_rapidpro(name, jsonb) IS
    'Wires a RapidPro database: keyword stops on msgs_msg (no review for a reply to a waiting flow session), sticky stops on contacts_contact, the \Stopped group, failed sends, stop_contact channel events';

COMMENT ON FUNCTION optout.phone_key(text) IS
    'A phone number in E.164 (+15550100000), from the usual ways of writing one; an error for anything else';

COMMENT ON FUNCTION optout.contact_key(text, text) IS
    'The ledger key of a phone number within an organization: ''<organization>:<E.164 number>''';

GRANT EXECUTE ON FUNCTION optout._row_key(integer, text, text, boolean) TO PUBLIC;

COMMENT ON FUNCTION optout.attach_optouts(regclass, name, text, name, jsonb) IS
    'Attaches a platform''s own opt-out table: optout''s stops write its rows, starts remove them, its own rows are stops';

REVOKE ALL ON FUNCTION optout.attach_spoke(name, jsonb) FROM PUBLIC;

COMMENT ON FUNCTION optout.attach_spoke(name, jsonb) IS
    'Wires a Spoke database: keyword stops on message, a stop per phone number and organization, Spoke''s opt_out rows, is_opted_out, refused sends, its auto-optout reply as the confirmation';

REVOKE ALL ON FUNCTION optout.attach_optouts(regclass, name, text, name, jsonb),
    optout._key_check(regclass, name, name, text, name, text), optout._keyed_action_sql(optout.attachments)
  FROM PUBLIC;

COMMENT ON VIEW optout.open_reviews IS
    'Replies too unclear to act on, waiting for a person: the message, its contact and channel, why (rule, word); closed by optout.stop() or optout.dismiss_review()';

COMMENT ON FUNCTION optout.dismiss_review(bigint, text) IS
    'Closes an open review without stopping the contact; requires a reason, recorded as an event of kind review_dismissed; true when it closed the review, false when it was already closed';

REVOKE ALL ON optout.open_reviews FROM PUBLIC;

REVOKE ALL ON FUNCTION optout.dismiss_review(bigint, text) FROM PUBLIC;

COMMENT ON VIEW optout.stopped_now IS
    'Who is stopped now, on which scope and channel, since when, and why (keyword, rule, source, the message itself)';

COMMENT ON VIEW optout.requests_daily IS 'Opt-outs, opt-ins, help requests and replies sent to review per day (UTC), channel, source, keyword and language';

COMMENT ON VIEW optout.blocked_daily IS
    'Messages blocked per day (UTC), channel and table: queued messages failed at stop time, and later sends refused, dropped or marked';

COMMENT ON VIEW optout.provider_errors_daily IS 'Provider errors per day (UTC), channel, provider and code';

COMMENT ON VIEW optout.errors_after_stop IS
    'Contacts that keep producing provider opt-out errors after their stop: a sign that something sends around the block';

COMMENT ON FUNCTION optout.explain_contact(text) IS
    'One contact in one call: its stops (the message, keyword, rule, source), blocked sends since, provider errors, the last opt-in';

COMMENT ON FUNCTION optout.prune_events(interval) IS
    'Deletes events older than the given age, keeping each contact''s latest stop and start, the events current stops refer to, and open reviews';

COMMENT ON VIEW optout.honour_times IS
    'For each stop: when the message arrived, when the stop took effect, the delay, and whether it met 10 business days (the FCC limit)';

COMMENT ON FUNCTION optout.evidence(text) IS
    'One contact''s evidence pack as JSON: revocations (message, rule, keyword, classifier version and keyword set, received and honoured), sends blocked after each, the confirmation, opt-ins, help requests and replies';

REVOKE ALL ON optout.stopped_now, optout.requests_daily, optout.blocked_daily, optout.provider_errors_daily,
    optout.errors_after_stop, optout.honour_times FROM PUBLIC;

REVOKE ALL ON FUNCTION optout.explain_contact(text), optout.prune_events(interval), optout.evidence(text) FROM PUBLIC;

COMMENT ON TABLE optout.backfill_runs IS 'One row per optout.backfill run; updated at every batch, so other sessions see its progress';

COMMENT ON TABLE optout.backfill_findings IS 'Opt-outs found in the history that the ledger does not reflect';

COMMENT ON VIEW optout.backfill_progress IS 'Progress of backfill runs: rows scanned, rate, estimated time left';

COMMENT ON FUNCTION optout.backfill_report(integer) IS
    'Per contact, the first opt-out a backfill run found unhonoured: the message, its time, keyword and rule, how many, whether a later opt-in lifted them, outbound messages sent after it, and whether the contact is stopped now';

COMMENT ON PROCEDURE optout.backfill(regclass, optout.match_mode, timestamptz, boolean, name, name, integer, integer, name, name, name, jsonb) IS
    'Scans an inbound table (attached, or named by its columns) for opt-outs the ledger does not reflect; with apply => true stops those contacts. Commits per batch; CALL it again with run_id => N to resume';

REVOKE ALL ON optout.backfill_runs, optout.backfill_findings, optout.backfill_progress FROM PUBLIC;

REVOKE ALL ON FUNCTION optout._apply_stop(text, text, text, text, text, text, text, text, text),
    optout.backfill_report(integer) FROM PUBLIC;

REVOKE ALL ON PROCEDURE optout.backfill(regclass, optout.match_mode, timestamptz, boolean, name, name, integer, integer, name, name, name, jsonb) FROM PUBLIC;

REVOKE ALL ON FUNCTION optout.distribute() FROM PUBLIC;

COMMENT ON FUNCTION optout.distribute() IS
    'On a Citus coordinator: makes the ledger, keywords, provider codes and attachments reference tables and the events a table distributed by contact';

REVOKE ALL ON FUNCTION optout._citus_check(regclass, text) FROM PUBLIC;

