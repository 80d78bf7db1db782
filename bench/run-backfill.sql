-- Workload "backfill" of bench/run.sh (psql variables :rows, :contacts,
-- :runs): CALL optout.backfill() (report only) over :rows inbound messages
-- already stored (5% keyword messages), inserted before the table was
-- attached. Its rate is read from optout.backfill_progress. For reference,
-- the same run times the set-based classification it is built on: one query
-- counting the opt-out and opt-in rows of the table.
\set ON_ERROR_STOP 1

\o /dev/null
SELECT bench.create_msgs('bench.history');
\o
CALL bench.build('backfill: ' || :rows || ' stored messages', format($q$
    INSERT INTO bench.history
    SELECT i, bench.contact_of(i, %1$s), 1 + i %% 3, 'I', 'H', NULL, NULL,
           CASE WHEN i %% 20 = 0 THEN bench.keyword_message(i / 20) ELSE bench.conversation(i) END,
           timestamptz '2024-01-01' + i * interval '30 seconds'
      FROM generate_series(1, %2$s) AS i;
    $q$, :contacts, :rows));
VACUUM ANALYZE bench.history;
\o /dev/null
SELECT optout.attach_inbound('bench.history', 'text', 'contact_id', 'channel_id', row_filter => '{"direction": "I"}');
\o
TRUNCATE optout.stops, optout.events;

-- Warm-up.
SELECT count(*) AS keyword_rows FROM bench.history WHERE optout.classify(text) IN ('opt_out', 'opt_in');

-- Per run: the backfill (its own transactions: CALLed at top level; its time
-- is its run's finished_at - started_at), then the classification query.
\o /dev/null
INSERT INTO bench.variants (workload, variant, ord, query) VALUES
    ('backfill', 'backfill', 1, NULL),
    ('backfill', 'classify scan', 2,
     'SELECT count(*) FROM bench.history WHERE optout.classify(text) IN (''opt_out'', ''opt_in'')');
SELECT unnest(ARRAY[
           'TRUNCATE optout.backfill_runs, optout.backfill_findings',
           'CHECKPOINT',
           $$CALL optout.backfill('bench.history', time_column => 'created_on')$$,
           format($$INSERT INTO bench.timings (workload, variant, run, ms)
                    SELECT 'backfill', 'backfill', %s, extract(epoch FROM finished_at - started_at) * 1000
                      FROM optout.backfill_progress$$, r),
           'CHECKPOINT',
           format('CALL bench.timed(%L, %L, %s, %L)', 'backfill', 'classify scan', r,
                  'SELECT count(*) FROM bench.history WHERE optout.classify(text) IN (''opt_out'', ''opt_in'')')])
  FROM generate_series(1, :runs) AS r \gexec
\o

SELECT run_id, status, rows_scanned, rows_per_second, opt_outs_found, finished_at - started_at AS took
  FROM optout.backfill_progress;
SELECT * FROM bench.medians('backfill');
SELECT * FROM bench.figure('backfill', 'CALL optout.backfill() over stored messages: rows per second (median)',
                           round(:rows / (bench.median('backfill', 'backfill') / 1000))::numeric, 'rows/s');
SELECT * FROM bench.target('backfill', 'backfill vs the bare classification query (for reference)', 'backfill', 'classify scan');

\o /dev/null
SELECT optout.detach('bench.history');
\o
TRUNCATE optout.stops, optout.events;
