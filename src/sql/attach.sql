-- optout: the attach_* functions and detach, and who may call them.

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
-- The row trigger functions stay executable by PUBLIC: PostgreSQL requires
-- EXECUTE of whoever creates a partition of an attached table (it clones the
-- row triggers). Each acts only for its attachment's table and partitions.
