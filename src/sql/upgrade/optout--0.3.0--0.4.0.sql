-- optout 0.3.0 -> 0.4.0: ALTER EXTENSION optout UPDATE TO '0.4.0'.
-- Every change to the SQL API between the two releases, in the order made.
-- The upgrade test (test/upgrade/) checks that a database updated by this
-- script has the same catalog as a fresh install of 0.4.0.
\echo Use "ALTER EXTENSION optout UPDATE TO '0.4.0'" to load this file. \quit

-- Settings the application cannot weaken (issue #26)
-- An inbound attachment's match mode is fixed at attach: enforcement no
-- longer follows the session's optout.match_mode, which any role may set
-- (docs/security.md). Attachments made without a mode follow the mode in
-- effect where the update runs (the database's or server's setting, else
-- standard).
UPDATE optout.attachments
   SET mode = coalesce(pg_catalog.current_setting('optout.match_mode', true), 'standard')::optout.match_mode
 WHERE kind = 'inbound' AND mode IS NULL;
ALTER TABLE optout.attachments
    ADD CONSTRAINT attachments_inbound_mode_check CHECK (kind <> 'inbound' OR mode IS NOT NULL);
CREATE OR REPLACE FUNCTION optout.attach_inbound(tbl regclass, body_column name, contact_column name,
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
            attach_inbound.body_column, attach_inbound.row_filter,
            -- The mode is fixed here: enforcement never reads the session's
            -- optout.match_mode, which any role may set (docs/security.md).
            coalesce(attach_inbound.mode,
                     coalesce(current_setting('optout.match_mode', true), 'standard')::optout.match_mode),
            attach_inbound.scope)
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
