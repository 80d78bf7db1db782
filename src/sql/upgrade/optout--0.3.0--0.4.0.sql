-- optout 0.3.0 -> 0.4.0: ALTER EXTENSION optout UPDATE TO '0.4.0'.
-- Every change to the SQL API between the two releases, in the order made.
-- The upgrade test (test/upgrade/) checks that a database updated by this
-- script has the same catalog as a fresh install of 0.4.0.
\echo Use "ALTER EXTENSION optout UPDATE TO '0.4.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Spoke: contacts known by phone number within an organization, a platform's
-- own opt-out table, attach_spoke() (issue #24)

-- 'platform': a stop the platform recorded itself (its own opt-out row).
ALTER TABLE optout.stops DROP CONSTRAINT stops_source_check;
ALTER TABLE optout.stops ADD CONSTRAINT stops_source_check
    CHECK (source IN ('keyword', 'provider', 'manual', 'backfill', 'platform'));
ALTER TABLE optout.events DROP CONSTRAINT events_source_check;
ALTER TABLE optout.events ADD CONSTRAINT events_source_check
    CHECK (source IN ('keyword', 'provider', 'manual', 'backfill', 'send', 'update', 'platform'));

-- The attachments: kind 'optouts', and the keyed options.
ALTER TABLE optout.attachments DROP CONSTRAINT attachments_kind_check;
ALTER TABLE optout.attachments ADD CONSTRAINT attachments_kind_check
    CHECK (kind IN ('inbound', 'outbound', 'contacts', 'groups', 'delivery_errors', 'optouts'));
ALTER TABLE optout.attachments
    ADD COLUMN contact_format text CHECK (contact_format IN ('phone')),
    ADD COLUMN organization_column name,
    ADD COLUMN organization_query text;

CREATE OR REPLACE VIEW optout.attached AS
SELECT a.id, a.tbl, a.kind, a.contact_column, a.channel_column, a.body_column, a.row_filter,
       a.mode, a.scope, a.on_blocked, a.mark, a.queued, a.confirmation, a.help_reply, a.status_column, a.stopped_value, a.active_value,
       a.group_column, a.stopped_group, a.stopped_group_query, a.code_column, a.provider, a.event_column,
       a.stop_events, a.created_at,
       t.tgname AS trigger_name,
       CASE WHEN a.kind = 'groups' THEN NULL ELSE t.tgname IS NOT NULL AND t.tgenabled <> 'D' END AS trigger_enabled,
       a.contact_format, a.organization_column, a.organization_query
  FROM optout.attachments a
  LEFT JOIN pg_catalog.pg_trigger t
    ON t.tgrelid = a.tbl AND t.tgname = 'optout_' || a.kind AND NOT t.tgisinternal;

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

-- attach_inbound, attach_outbound and attach_contacts take the keyed options.
DROP FUNCTION optout.attach_inbound(regclass, name, name, name, optout.match_mode, text, jsonb);
DROP FUNCTION optout.attach_outbound(regclass, name, name, text, jsonb, jsonb, jsonb, jsonb, jsonb);
DROP FUNCTION optout.attach_contacts(regclass, name, name, text, text, name);
CREATE FUNCTION optout.attach_inbound(tbl regclass, body_column name, contact_column name,
                                      channel_column name DEFAULT NULL, mode optout.match_mode DEFAULT NULL,
                                      scope text DEFAULT 'contact', row_filter jsonb DEFAULT NULL,
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
        RAISE EXCEPTION 'scope must be ''contact'' or ''channel'', not %', coalesce(quote_literal(scope), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF scope = 'channel' AND channel_column IS NULL THEN
        RAISE EXCEPTION 'scope ''channel'' needs a channel column' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    w := optout._filter_sql(tbl, row_filter, 'NEW.');
    INSERT INTO optout.attachments AS a (tbl, kind, contact_column, channel_column, body_column, row_filter, mode, scope,
                                         contact_format, organization_column, organization_query)
    VALUES (attach_inbound.tbl, 'inbound', attach_inbound.contact_column, attach_inbound.channel_column,
            attach_inbound.body_column, attach_inbound.row_filter, attach_inbound.mode, attach_inbound.scope,
            attach_inbound.contact_format, attach_inbound.organization_column, attach_inbound.organization_query)
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
    RETURN id;
END
$$;
REVOKE ALL ON FUNCTION optout.attach_inbound(regclass, name, name, name, optout.match_mode, text, jsonb, text, name, text),
    optout.attach_outbound(regclass, name, name, text, jsonb, jsonb, jsonb, jsonb, jsonb, text, name, text),
    optout.attach_contacts(regclass, name, name, text, text, name, text, name, text)
  FROM PUBLIC;

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
    SELECT format('%I.%I', ns.nspname, c.relname) INTO t
      FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE c.oid = tbl;
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
    DELETE FROM optout.attachments a WHERE a.tbl = detach.tbl;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE NOTICE 'table % was not attached to optout', tbl;
    END IF;
    RETURN n;
END
$$;

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

-- The backfill refuses a keyed inbound attachment.
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

-- New: src/sql/spoke.sql, as it is.
-- optout: contacts identified by a phone number within an organization, a
-- platform's own opt-out table, and Spoke in one call (docs/spoke.md).

-- ---------------------------------------------------------------------------
-- Phone numbers. A number is normalised to E.164 ('+' and 8 to 15 digits):
-- spaces, brackets, dots, slashes and dashes are dropped; '+' and digits
-- are kept as they are; 10 digits are a North American number (+1 is
-- added), 11 digits starting with 1 get their '+'. Anything else is an
-- error, never a guess.
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
COMMENT ON FUNCTION optout.phone_key(text) IS
    'A phone number in E.164 (+15550100000), from the usual ways of writing one; an error for anything else';

-- The ledger's key of a contact known by phone number within an
-- organization: '<organization>:<E.164 number>'.
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
COMMENT ON FUNCTION optout.contact_key(text, text) IS
    'The ledger key of a phone number within an organization: ''<organization>:<E.164 number>''';

-- The ledger key of one row of a keyed attachment, from its contact column
-- (phone) and its organization column (org, as text). strict: a row that has
-- no key (no number, a number optout cannot read, no organization) is an
-- error; otherwise it has key NULL. Runs as the role that writes the row (it
-- is called in the WHEN of optout's triggers), with search_path pinned.
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
GRANT EXECUTE ON FUNCTION optout._row_key(integer, text, text, boolean) TO PUBLIC;

-- The checks of the keyed options of an attach_* function; returns the
-- organization column's type (NULL: the attachment is not keyed).
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

-- The statements of a keyed attachment (and of a platform's opt-out table),
-- by name as optout._action_sql returns them. $1 holds ledger keys;
-- '<organization>:<number>' is split into p.org and p.phone, and a row is
-- found by its number (an index on it serves) and then by its own key.
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

-- A platform's own opt-out table: a row there is a stop. A stop optout
-- records writes one (contact column, organization column, and the values
-- given), a start removes them, and a row the platform writes itself stops
-- the contact (an event with source 'platform').
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
COMMENT ON FUNCTION optout.attach_optouts(regclass, name, text, name, jsonb) IS
    'Attaches a platform''s own opt-out table: optout''s stops write its rows, starts remove them, its own rows are stops';

-- ---------------------------------------------------------------------------
-- Spoke in one call (see docs/spoke.md). A contact is a phone number within
-- an organization; Spoke's opt_out rows are the stops; a send to a stopped
-- number is refused (Spoke sends the message it saved, not the row, so a
-- marked row would still go out); queued messages are failed. Spoke's own
-- reply to a STOP (auto-optout's SEND_AUTO_OPT_OUT_RESPONSE) is sent with
-- no texter (user_id NULL): by default that row is the stop's one
-- confirmation; confirmation => NULL refuses it too.
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
REVOKE ALL ON FUNCTION optout.attach_spoke(name, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION optout.attach_spoke(name, jsonb) IS
    'Wires a Spoke database: keyword stops on message, a stop per phone number and organization, Spoke''s opt_out rows, is_opted_out, refused sends, its auto-optout reply as the confirmation';

REVOKE ALL ON FUNCTION optout.attach_optouts(regclass, name, text, name, jsonb),
    optout._key_check(regclass, name, name, text, name, text), optout._keyed_action_sql(optout.attachments)
  FROM PUBLIC;
-- (end of the Spoke section)
