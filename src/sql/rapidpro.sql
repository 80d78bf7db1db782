-- optout: RapidPro in one call.

-- ---------------------------------------------------------------------------
-- RapidPro in one call (see docs/reference.md, "RapidPro").
-- RapidPro has no notion of a confirmation message. An org that sends one
-- does it with a flow started by its STOP keyword trigger; the flow's
-- messages carry its flow_id, so confirmation => '{"flow_id": 42}' names
-- them (one message from that flow per stop, within the window). Off unless
-- given: without it every send to a stopped contact is failed, as before.
CREATE FUNCTION optout.attach_rapidpro(schema name DEFAULT 'public', confirmation jsonb DEFAULT NULL)
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
REVOKE ALL ON FUNCTION optout.attach_rapidpro(name, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION optout.attach_rapidpro(name, jsonb) IS
    'Wires a RapidPro database: keyword stops on msgs_msg (no review for a reply to a waiting flow session), sticky stops on contacts_contact, the \Stopped group, failed sends, stop_contact channel events';
