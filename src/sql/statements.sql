-- optout: the statements an attachment runs on its table, generated from
-- its row (_action_sql), and the checks attach makes of them and of every
-- value and query a caller gives, as the table's owner, without running them.

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
-- The statements that change rows find them by contact,
-- "x.contact = ANY ($1)", then check each contact's Stopped group or
-- stop's channel by [NOT] EXISTS over the keys: a key listed twice changes
-- nothing; the planner knows how many keys there are (the array's length),
-- so a batch of 30,000 contacts may scan a table once where a few are read
-- by index (sql/plans.sql); and for one contact attachments.cpp makes the
-- ANY an "=". (A join with SELECT DISTINCT over the keys, as before, was
-- estimated at a tenth of them and probed an index 30,000 times; and a
-- join in USING or FROM made every joined row carry a copy of the keys'
-- row: 0.55 s against 0.26 s to leave 320,000 memberships.) On Citus the
-- joins stay: see groups.join_stopped.
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
