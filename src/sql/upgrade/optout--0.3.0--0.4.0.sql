-- optout 0.3.0 -> 0.4.0: ALTER EXTENSION optout UPDATE TO '0.4.0'.
-- Every change to the SQL API between the two releases, in the order made.
-- The upgrade test (test/upgrade/) checks that a database updated by this
-- script has the same catalog as a fresh install of 0.4.0.
\echo Use "ALTER EXTENSION optout UPDATE TO '0.4.0'" to load this file. \quit

-- RapidPro's conversations: review per attachment, a stop and a start in one
-- statement, stops applied at attach (issue #24; issue #26 section 5)

-- Review per attachment: attach_inbound(..., review, review_unless).
ALTER TABLE optout.attachments ADD COLUMN review boolean, ADD COLUMN review_unless text;
DROP FUNCTION optout.attach_inbound(regclass, name, name, name, optout.match_mode, text, jsonb);

CREATE FUNCTION optout.attach_inbound(tbl regclass, body_column name, contact_column name,
                                      channel_column name DEFAULT NULL, mode optout.match_mode DEFAULT NULL,
                                      scope text DEFAULT 'contact', row_filter jsonb DEFAULT NULL,
                                      review boolean DEFAULT true, review_unless text DEFAULT NULL)
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
    w := optout._filter_sql(tbl, row_filter, 'NEW.');
    INSERT INTO optout.attachments AS a (tbl, kind, contact_column, channel_column, body_column, row_filter, mode, scope,
                                         review, review_unless)
    VALUES (attach_inbound.tbl, 'inbound', attach_inbound.contact_column, attach_inbound.channel_column,
            attach_inbound.body_column, attach_inbound.row_filter,
            -- The mode is fixed here: enforcement never reads the session's
            -- optout.match_mode, which any role may set (docs/security.md).
            coalesce(attach_inbound.mode,
                     coalesce(current_setting('optout.match_mode', true), 'standard')::optout.match_mode),
            attach_inbound.scope,
            coalesce(attach_inbound.review, true), attach_inbound.review_unless)
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
ALTER TABLE optout.attachments
    ADD CONSTRAINT attachments_inbound_mode_check CHECK (kind <> 'inbound' OR mode IS NOT NULL);
CREATE OR REPLACE FUNCTION optout.attach_inbound(tbl regclass, body_column name, contact_column name,
                                      channel_column name DEFAULT NULL, mode optout.match_mode DEFAULT NULL,
                                      scope text DEFAULT 'contact', row_filter jsonb DEFAULT NULL,
                                      review boolean DEFAULT true, review_unless text DEFAULT NULL)
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
    w := optout._filter_sql(tbl, row_filter, 'NEW.');
    INSERT INTO optout.attachments AS a (tbl, kind, contact_column, channel_column, body_column, row_filter, mode, scope,
                                         review, review_unless)
    VALUES (attach_inbound.tbl, 'inbound', attach_inbound.contact_column, attach_inbound.channel_column,
            attach_inbound.body_column, attach_inbound.row_filter,
            -- The mode is fixed here: enforcement never reads the session's
            -- optout.match_mode, which any role may set (docs/security.md).
            coalesce(attach_inbound.mode,
                     coalesce(current_setting('optout.match_mode', true), 'standard')::optout.match_mode),
            attach_inbound.scope,
            coalesce(attach_inbound.review, true), attach_inbound.review_unless)
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

REVOKE ALL ON FUNCTION optout.attach_inbound(regclass, name, name, name, optout.match_mode, text, jsonb, boolean, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION optout._attach_verify(attachment integer)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text;
    params text;
BEGIN
    -- The statements take arrays of keys; a stopped_group_query or a
    -- review_unless query one key.
    FOR s, params IN
        SELECT q.sql, '(text[], text[])' FROM optout._action_sql(attachment) q
        UNION ALL
        SELECT a.stopped_group_query, '(text)' FROM optout.attachments a
         WHERE a.id = attachment AND a.stopped_group_query IS NOT NULL
        UNION ALL
        SELECT a.review_unless, '(text)' FROM optout.attachments a
         WHERE a.id = attachment AND a.review_unless IS NOT NULL
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


-- Stops already on record applied by attach_contacts and attach_groups.
-- The contact-wide stops already on record, applied to a contacts or groups
-- attachment as a stop applies them; returns the table's rows changed.
CREATE FUNCTION optout._apply_existing_stops(attachment integer) RETURNS bigint
    AS 'MODULE_PATHNAME', 'optout_apply_existing_stops' LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION optout._apply_existing_stops(integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION optout.attach_contacts(tbl regclass, key_column name, status_column name,
                                       stopped_value text, active_value text, touch_column name DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text := optout._attach_check(tbl, 'contacts', key_column);
    id integer;
    changed bigint;
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
    -- Stops already on record (a table attached after optout was in use, or
    -- attached again) are applied now, as a stop applies them.
    changed := optout._apply_existing_stops(id);
    IF changed > 0 THEN
        RAISE NOTICE 'optout: % contacts of % set to % (stopped before the table was attached)', changed, tbl, stopped_value;
    END IF;
    RETURN id;
END
$$; trigger_enabled: all of them fire);
-- detach removes the attachments before the triggers; an event trigger
-- guards optout's triggers; optout.health() for monitoring.
CREATE OR REPLACE VIEW optout.attached AS
SELECT a.id, a.tbl, a.kind, a.contact_column, a.channel_column, a.body_column, a.row_filter,
       a.mode, a.scope, a.on_blocked, a.mark, a.queued, a.confirmation, a.help_reply, a.status_column, a.stopped_value, a.active_value,
       a.group_column, a.stopped_group, a.stopped_group_query, a.code_column, a.provider, a.event_column,
       a.stop_events, a.created_at,
       t.tgname AS trigger_name,
       CASE WHEN a.kind = 'groups' THEN NULL ELSE coalesce(h.ok, false) END AS trigger_enabled,
       h.triggers
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
                            WHEN 'contacts' THEN ARRAY['optout_contacts']
                            WHEN 'delivery_errors' THEN ARRAY['optout_delivery_errors', 'optout_flush']
                            ELSE ARRAY[]::pg_catalog.text[] END::pg_catalog.name[]) n(tgname)
                  LEFT JOIN pg_catalog.pg_trigger g ON g.tgrelid = r.relid AND g.tgname = n.tgname AND NOT g.tgisinternal
               ) s) h ON true;
COMMENT ON VIEW optout.attached IS 'What optout is attached to, and whether every trigger it needs is in place and fires';

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
    -- The attachments go first: the event trigger that guards optout's
    -- triggers (optout_trigger_guard) lets a table's be dropped once it has none.
    DELETE FROM optout.attachments a WHERE a.tbl = detach.tbl;
    GET DIAGNOSTICS n = ROW_COUNT;
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
    IF n = 0 THEN
        RAISE NOTICE 'table % was not attached to optout', tbl;
    END IF;
    RETURN n;
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
    PERFORM optout._check_value(tbl, group_column, stopped_group);
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


-- RapidPro: no review for a reply to a waiting flow session.

CREATE OR REPLACE FUNCTION optout.attach_rapidpro(schema name DEFAULT 'public', confirmation jsonb DEFAULT NULL)
    RETURNS SETOF optout.attached
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
    answering text;
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

COMMENT ON FUNCTION optout.attach_rapidpro(name, jsonb) IS
    'Wires a RapidPro database: keyword stops on msgs_msg (no review for a reply to a waiting flow session), sticky stops on contacts_contact, the \Stopped group, failed sends, stop_contact channel events';
    t text;
    n integer;
    trg name;
    p regclass;
BEGIN
    SELECT format('%I.%I', ns.nspname, c.relname) INTO t
      FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE c.oid = tbl;
    -- The attachments go first: the event trigger that guards optout's
    -- triggers (optout_trigger_guard) lets a table's be dropped once it has none.
    DELETE FROM optout.attachments a WHERE a.tbl = detach.tbl;
    GET DIAGNOSTICS n = ROW_COUNT;
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
    IF n = 0 THEN
        RAISE NOTICE 'table % was not attached to optout', tbl;
    END IF;
    RETURN n;
END
$$;

CREATE FUNCTION optout._trigger_guard() RETURNS event_trigger
    AS 'MODULE_PATHNAME', 'optout_trigger_guard' LANGUAGE C;
REVOKE ALL ON FUNCTION optout._trigger_guard() FROM PUBLIC;
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
REVOKE ALL ON FUNCTION optout.health(timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION optout.health(timestamptz) IS
    'Per attachment: are all its triggers in place and firing (and what is wrong if not), and the stops, starts, blocked sends, provider opt-out errors and refused status changes recorded on its table since it was attached (or since the time given)';

-- The evidence pack reports the stored match mode (issue #26)
-- settings.match_mode is the mode the inbound attachments classify with,
-- not the calling session's optout.match_mode.
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
