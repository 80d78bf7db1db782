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
            attach_inbound.body_column, attach_inbound.row_filter, attach_inbound.mode, attach_inbound.scope,
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
