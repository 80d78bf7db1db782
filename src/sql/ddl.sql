-- optout: the event triggers that keep attachments true through DDL: a
-- dropped table, a new partition, a changed column, optout's own triggers.

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
