-- optout: Citus (README "Citus"; tested by test/citus/run.sh).

-- Makes optout's own tables fit a Citus cluster; run once, on the
-- coordinator, after CREATE EXTENSION citus and optout and before attaching
-- distributed tables. Without Citus it refuses and changes nothing.
CREATE FUNCTION optout.distribute()
    RETURNS TABLE (tbl regclass, citus_table_type text)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'optout.distribute() needs Citus, which is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'On a single node nothing is to be done. On a Citus cluster: CREATE EXTENSION citus first.';
    END IF;
    IF NOT pg_catalog.citus_is_coordinator() THEN
        RAISE EXCEPTION 'optout.distribute() must run on the Citus coordinator'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF pg_catalog.current_setting('citus.enable_unsafe_triggers') <> 'on' THEN
        RAISE EXCEPTION 'optout needs citus.enable_unsafe_triggers = on on every node of the cluster'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'optout enforces with triggers on the shards of the platform''s tables: set it in postgresql.conf of every node and reload.';
    END IF;
    -- optout's event triggers and row checks read optout's tables; on a
    -- worker they run inside a command the coordinator sent (creating a
    -- shard, copying rows), where Citus refuses any query of a Citus table
    -- unless allowed. They only read the node's own copy (reference tables).
    PERFORM pg_catalog.run_command_on_all_nodes(pg_catalog.format(
                'ALTER FUNCTION %s SET citus.allow_nested_distributed_execution = on', f))
       FROM unnest(ARRAY['optout._on_ddl_end()', 'optout._on_sql_drop()', 'optout._keywords_check()',
                         'optout._codes_check()']) f;
    -- Reference tables (a copy on every node, read locally by each send and
    -- each trigger): the ledger, the keywords, the provider codes, the
    -- attachments. Their row checks are not run again on the copies.
    FOREACH t IN ARRAY ARRAY['optout.stops', 'optout.keywords', 'optout.delivery_error_codes', 'optout.attachments'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = t::regclass) THEN
            EXECUTE pg_catalog.format('ALTER TABLE %s DISABLE TRIGGER USER', t);
            PERFORM pg_catalog.create_reference_table(t::regclass);
            EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE TRIGGER USER', t);
        END IF;
    END LOOP;
    -- The events: append-only, distributed by contact (a distributed table's
    -- key must include its distribution column: (id, contact)).
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = 'optout.events'::regclass) THEN
        ALTER TABLE optout.events DROP CONSTRAINT events_pkey;
        ALTER TABLE optout.events ADD CONSTRAINT events_pkey PRIMARY KEY (id, contact);
        PERFORM pg_catalog.create_distributed_table('optout.events', 'contact');
    END IF;
    RETURN QUERY SELECT p.logicalrelid::regclass, CASE p.partmethod WHEN 'n' THEN 'reference' ELSE 'distributed' END
                   FROM pg_catalog.pg_dist_partition p JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid
                  WHERE c.relnamespace = 'optout'::regnamespace ORDER BY p.logicalrelid::regclass::text;
END
$$;
REVOKE ALL ON FUNCTION optout.distribute() FROM PUBLIC;
COMMENT ON FUNCTION optout.distribute() IS
    'On a Citus coordinator: makes the ledger, keywords, provider codes and attachments reference tables and the events a table distributed by contact';
