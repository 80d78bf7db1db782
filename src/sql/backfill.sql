-- optout: backfill, the opt-outs already sitting in a platform's history.

-- ---------------------------------------------------------------------------
-- Backfill: the opt-outs already sitting in a platform's history.

CREATE FUNCTION optout._apply_stop(contact text, channel text, source text, body text, keyword text,
                                   language text, rule text, table_name text, detail text)
    RETURNS boolean AS 'MODULE_PATHNAME', 'optout_apply_stop' LANGUAGE C VOLATILE;

CREATE TABLE optout.backfill_runs (
    id              serial PRIMARY KEY,
    tbl             regclass NOT NULL,
    mode            optout.match_mode NOT NULL,
    apply           boolean NOT NULL,
    since           timestamptz,
    time_column     name,
    key_column      name NOT NULL,
    batch_size      integer NOT NULL,
    status          text NOT NULL DEFAULT 'scanning' CHECK (status IN ('scanning', 'applying', 'done')),
    started_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at     timestamptz,
    last_key        text,
    rows_total      bigint,
    rows_scanned    bigint NOT NULL DEFAULT 0,
    opt_outs_found  bigint NOT NULL DEFAULT 0,
    contacts_stopped bigint NOT NULL DEFAULT 0,
    body_column     name,               -- for a table that was not attached
    contact_column  name,
    channel_column  name,
    row_filter      jsonb
);
COMMENT ON TABLE optout.backfill_runs IS 'One row per optout.backfill run; updated at every batch, so other sessions see its progress';

CREATE TABLE optout.backfill_findings (
    run_id      integer NOT NULL REFERENCES optout.backfill_runs ON DELETE CASCADE,
    contact     text NOT NULL,
    channel     text,
    message_key text NOT NULL,
    message_at  timestamptz,
    body        text,
    keyword     text,
    language    text,
    rule        text,
    lifted_at   timestamptz,           -- a later opt-in in the history lifted it
    lifted_key  text,
    sent_after  bigint,                -- outbound messages to the contact after it
    applied     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (run_id, contact, message_key)
);
COMMENT ON TABLE optout.backfill_findings IS 'Opt-outs found in the history that the ledger does not reflect';

CREATE VIEW optout.backfill_progress AS
SELECT r.id AS run_id, r.tbl, r.mode, r.apply, r.status, r.rows_scanned, r.rows_total,
       round(r.rows_scanned / greatest(extract(epoch FROM coalesce(r.finished_at, r.updated_at) - r.started_at), 0.001))
           AS rows_per_second,
       CASE WHEN r.status = 'scanning' AND r.rows_scanned > 0 AND r.rows_total > r.rows_scanned THEN
            (r.rows_total - r.rows_scanned) * (r.updated_at - r.started_at) / r.rows_scanned END AS time_left,
       r.opt_outs_found, r.contacts_stopped, r.started_at, r.updated_at, r.finished_at
  FROM optout.backfill_runs r;
COMMENT ON VIEW optout.backfill_progress IS 'Progress of backfill runs: rows scanned, rate, estimated time left';

-- Per contact: the opt-outs of a run the ledger did not reflect.
CREATE FUNCTION optout.backfill_report(run integer DEFAULT NULL)
    RETURNS TABLE (contact text, channel text, message_at timestamptz, message text, keyword text, rule text,
                   opt_outs bigint, lifted_by_opt_in boolean, sent_after bigint, stopped_now boolean)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH r AS (SELECT coalesce(run, (SELECT max(id) FROM optout.backfill_runs)) AS id),
    f AS (
        SELECT f.*, row_number() OVER (PARTITION BY f.contact ORDER BY f.message_at, f.message_key) AS n,
               count(*) OVER (PARTITION BY f.contact) AS total,
               bool_and(f.lifted_at IS NOT NULL) OVER (PARTITION BY f.contact) AS all_lifted
          FROM optout.backfill_findings f, r WHERE f.run_id = r.id)
    SELECT f.contact, f.channel, f.message_at, f.body, f.keyword, f.rule, f.total, f.all_lifted, f.sent_after,
           optout.is_stopped(f.contact, f.channel)
      FROM f WHERE f.n = 1 ORDER BY f.message_at, f.contact
$$;
COMMENT ON FUNCTION optout.backfill_report(integer) IS
    'Per contact, the first opt-out a backfill run found unhonoured: the message, its time, keyword and rule, how many, whether a later opt-in lifted them, outbound messages sent after it, and whether the contact is stopped now';

CREATE PROCEDURE optout.backfill(tbl regclass, mode optout.match_mode DEFAULT NULL,
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
COMMENT ON PROCEDURE optout.backfill(regclass, optout.match_mode, timestamptz, boolean, name, name, integer, integer, name, name, name, jsonb) IS
    'Scans an inbound table (attached, or named by its columns) for opt-outs the ledger does not reflect; with apply => true stops those contacts. Commits per batch; CALL it again with run_id => N to resume';

SELECT pg_catalog.pg_extension_config_dump('optout.backfill_runs', '');
SELECT pg_catalog.pg_extension_config_dump('optout.backfill_runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('optout.backfill_findings', '');
REVOKE ALL ON optout.backfill_runs, optout.backfill_findings, optout.backfill_progress FROM PUBLIC;
REVOKE ALL ON FUNCTION optout._apply_stop(text, text, text, text, text, text, text, text, text),
    optout.backfill_report(integer) FROM PUBLIC;
REVOKE ALL ON PROCEDURE optout.backfill(regclass, optout.match_mode, timestamptz, boolean, name, name, integer, integer, name, name, name, jsonb) FROM PUBLIC;
