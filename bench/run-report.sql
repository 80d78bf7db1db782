-- bench/run.sh: the report (Markdown) from what the workloads recorded.
-- Psql variables: cpu, mem, nproc, secs, command, revision, scale, runs,
-- stops, workloads, rows, contacts, lat_contacts, broadcast, opts, load.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
\pset null ''

CREATE TEMP TABLE about (workload text PRIMARY KEY, ord numeric, title text, rows bigint, text text);
INSERT INTO about VALUES
('classify', 1, 'classify', :rows,
 format('One query over %s realistic bodies (97%% conversation, 3%% keyword variants, generated in `bench/run-common.sql`) per variant: '
        'the floor `lower(btrim(body)) = ANY(<the enabled keywords>)`, `optout.classify(body, ''standard'')`, '
        '`optout.classify(body, ''reasonable'')`, and `bench.plpgsql_standard()`, the `standard` mode written in PL/pgSQL '
        'for the benchmark (`bench/run-classify.sql`). That function is an approximation, not a port: lower case, NFKC and '
        'the common accents, punctuation and emoji stripped at both ends, white space collapsed, the keyword array (the '
        'whole message, however its letters are separated), then opt-out keywords with courtesy words; it has no quote '
        'rule and no full Unicode case folding. On these bodies it agrees with `optout.classify` (the run checks it on '
        'the first 100,000).', to_char(:rows, 'FM999,999,999'))),
('inbound', 2, 'inbound', :rows,
 format('`COPY` of %s inbound messages (5%% keyword messages: STOP variants mostly, some START and HELP; the rest '
        'conversation) from %s contacts, each in 10 of 50 groups (%s memberships), into `bench.msgs_in_a`, attached '
        'RapidPro''s way (`attach_inbound` and `attach_outbound` with `mark` and `queued` on the message table, '
        '`attach_contacts` with a touch column, `attach_groups` with a fixed Stopped group), versus `bench.msgs_in_b`, '
        'the same table unattached. Every STOP updates its contact, deletes its other memberships, adds it to Stopped '
        'and fails its queued messages, in the COPY''s transaction. Before every run the contacts and memberships are '
        'reloaded, `optout.stops` and `optout.events` emptied and the message table reloaded with its history (one '
        'sent message per contact), then VACUUM ANALYZE. Two floors: "by hand", the unattached table with what the stops '
        'change done by the platform itself, set-based, in the COPY''s transaction (no classification, no record); and '
        '"required", the same on a table with a BEFORE INSERT row trigger whose WHEN classifies every row '
        '(`optout.classify(text, ''standard'')`) and never holds, then the record an attached run writes (its events and '
        'ledger rows, kept from one untimed attached run) written again by plain INSERTs into copies of `optout.events` '
        'and `optout.stops` with their indexes: the work the product requires, without optout''s triggers, locks or '
        'batching.',
        to_char(:rows, 'FM999,999,999'), to_char(:contacts, 'FM999,999,999'), to_char(:contacts * 10, 'FM999,999,999'))),
('inbound_plain', 2.5, 'inbound: ordinary messages', :rows,
 format('`COPY` of %s ordinary inbound messages (the conversation bodies of "inbound", each one that `optout.classify()` '
        'reads as anything, such as a lone "No", replaced by "ok thanks": no stop, start, help or review) from the same '
        'contacts into `bench.msgs_in_a`, attached as in "inbound", versus `bench.msgs_in_b`, unattached; and the floor: '
        'the same table with a BEFORE INSERT row trigger that only returns NEW (PL/pgSQL), on which COPY inserts row by '
        'row instead of in batches and calls the trigger for each row, and the floor without the call, that trigger with '
        'a WHEN that never holds (the batches lost, nothing called). The contacts, memberships and ledger are restored '
        'once; before every run the message table is reloaded with its history and `optout.events` emptied.',
        to_char(:rows, 'FM999,999,999'))),
('outbound', 3, 'outbound', :rows,
 format('`COPY` of %s queued outbound messages to %s contacts, 10%% of them stopped (with `optout.stop()`), into '
        '`bench.out_a`, attached with `attach_outbound(on_blocked => ''mark'')` (each blocked row is stored marked '
        'failed and gets a `blocked` event), versus the same table unattached, and versus a PL/pgSQL BEFORE INSERT '
        'trigger that looks the contact up in a plain table of stopped contacts (primary key) and marks the row; '
        'and the floor: the same table with a BEFORE INSERT row trigger whose WHEN never holds (on which COPY '
        'inserts row by row instead of in batches, as on any table with a BEFORE ROW trigger, and nothing is '
        'called); and the floor with the record: that floor, then the `blocked` events an attached run records (kept '
        'from one untimed attached run) written again by a plain INSERT into a copy of `optout.events` with its '
        'indexes, in the same transaction. Before every run the table and `optout.events` are emptied.',
        to_char(:rows, 'FM999,999,999'), to_char(:contacts, 'FM999,999,999'))),
('broadcast', 4, 'broadcast', :broadcast,
 format('A bulk broadcast, `INSERT INTO … SELECT` one message to each of %s contacts (10%% stopped) from a contacts '
        'table, into the attached, unattached, PL/pgSQL and trigger floor tables of "outbound" (an `INSERT … SELECT` '
        'inserts row by row with or without a trigger: its trigger floor is the trigger machinery alone), and the floor '
        'with the record, as in "outbound": the trigger floor plus the `blocked` events (one per stopped contact) by a '
        'plain INSERT.',
        to_char(:broadcast, 'FM999,999,999'))),
('update', 4.2, 'update', :broadcast,
 format('The status `UPDATE` a platform makes as it hands messages to the provider (`SET status = ''W'', sent_on = now() '
        'WHERE status = ''Q''`) over the %s rows of the broadcast (the stopped contacts'' tenth already failed in '
        'every table, as the attached one marks them, so that each UPDATE changes the same rows), in `bench.out_a` '
        '(attached: its UPDATE triggers are there, `optout_outbound` for an UPDATE of the contact or channel column and '
        '`optout_outbound_requeue` for one that makes a row queued again, and neither applies) versus `bench.out_b`, '
        'unattached, and versus `bench.out_p` with a BEFORE UPDATE trigger whose WHEN never holds (the floor of any '
        'BEFORE UPDATE row trigger: PostgreSQL fetches each old row for it): what optout costs an UPDATE that changes '
        'nothing sendable.', to_char(:broadcast, 'FM999,999,999'))),
('large_ledger', 4.5, 'large ledger', NULL,
 format('Sends on a large ledger: %s stops of other contacts are added to `optout.stops`, then an `INSERT … SELECT` '
        'of 300 rows to 300 contacts (10%% stopped) into `bench.out_a`, past the 256 contacts at which a send escalates '
        'to one database-wide lock, versus 250 rows, below it (a reference, no target: the escalated send looks its '
        'contacts up one by one instead of reading the whole ledger).', to_char(:rows, 'FM999,999,999'))),
('rapidpro', 4.7, 'rapidpro', :rows,
 format('The "outbound" `COPY` (%s queued messages to %s contacts, 10%% of them stopped with `optout.stop()`) on RapidPro''s '
        'own `msgs_msg`: its columns, its three CHECK constraints and its indexes as its Django model declares them (the '
        'primary key; `channel_id`, `contact_urn_id`, `broadcast_id`, `created_on`, `status`; by org and by contact; '
        'and the partial indexes of the retry queue, the Android queue, the external ids, the Inbox, Flows, Archived, '
        'Outbox/Failed, Sent and incoming API folders), every column given in the file, as mailroom inserts a broadcast. '
        '`rapidpro.msgs_msg` is wired with `optout.attach_rapidpro()` (contacts, groups and channel events of the same '
        'schema, the inbound and the outbound attachments on the message table), versus the same table unattached; and '
        'the floor: the same table with a BEFORE INSERT row trigger that only returns NEW (PL/pgSQL), on which COPY '
        'inserts row by row instead of in batches and calls the trigger for each row, and the floor without the call, '
        'that trigger with a WHEN that never holds (the batches lost, nothing called), and that floor with the record (the '
        '`blocked` events an attached run records, written again by a plain INSERT, as in "outbound"). RapidPro''s foreign keys are left '
        'out of every variant (their checks, AFTER row triggers, would add the same work to each, and so make the ratio '
        'smaller). Before every run the table and `optout.events` are emptied.',
        to_char(:rows, 'FM999,999,999'), to_char(:contacts, 'FM999,999,999'))),
('rapidpro_update', 4.8, 'rapidpro: update', :broadcast,
 format('The status `UPDATE` courier makes as it hands messages to the provider (`SET status = ''W'', sent_on = now(), '
        'modified_on = now() WHERE status = ''Q''`) over %s messages of the "rapidpro" shape to as many contacts (the '
        'stopped contacts'' tenth already failed in every table, as the attached one marks them, so that each UPDATE '
        'changes the same rows), in `rapidpro.msgs_msg` (attached with `attach_rapidpro()`) versus the same table '
        'unattached, and versus the table with a BEFORE UPDATE row trigger whose WHEN never holds (the floor of any '
        'BEFORE UPDATE row trigger). It makes nothing sendable; with RapidPro''s partial indexes on the status, no '
        'row is updated in place (HOT) in any variant.', to_char(:broadcast, 'FM999,999,999'))),
('partitioned', 5, 'partitioned', :rows,
 'The "outbound" COPY into a message table partitioned by month (three monthly partitions, January to March 2026; '
 'the messages span them), attached on the parent (optout''s trigger is cloned onto the partitions), versus the same '
 'partitioned table unattached, and the floor: the same with a BEFORE INSERT row trigger on the parent whose WHEN '
 'never holds (COPY inserts row by row, nothing is called), and that floor with the record, as in "outbound".'),
('backfill', 7, 'backfill', :rows,
 format('`CALL optout.backfill(''bench.history'', time_column => ''created_on'')` (report only) over %s inbound '
        'messages stored before the table was attached (5%% keyword messages, %s contacts); its time is its run''s '
        '`finished_at - started_at` (what `optout.backfill_progress` reports its rate from). For reference, the '
        'set-based classification it is built on: one query counting the opt-out and opt-in rows of the table.',
        to_char(:rows, 'FM999,999,999'), to_char(:contacts, 'FM999,999,999'))),
('breakdown-outbound', 8, 'breakdown: outbound', :rows,
 'Where the attached outbound COPY''s time goes (`WORKLOADS=breakdown`, `bench/run-breakdown.sql`), a piece at a time, '
 'each on its own table: o1 no trigger; o2 a BEFORE INSERT trigger whose WHEN never holds (no call, but COPY '
 'inserts row by row instead of in batches); o3 a PL/pgSQL trigger that returns NEW; o4 `attach_outbound(mark)` '
 'with none of the file''s contacts stopped; o5 the same with 10% stopped (the "outbound" case).'),
('breakdown-inbound', 9, 'breakdown: inbound', :rows,
 'The same for the inbound COPY: i1 no trigger; i2 `attach_outbound` only (its WHEN never holds for inbound rows: '
 'row-by-row inserts); i3 `attach_inbound` only, over a file without keyword messages (the classifier on every row, '
 'in the trigger''s WHEN); i4 `attach_inbound` only, the "inbound" file (+ the stops, applied at the end of the '
 'statement: ledger, events, contact locks, NOTIFY); i5 + `attach_outbound` on the same table (+ row-by-row inserts, '
 '+ the UPDATE of the stopped contacts'' queued messages); '
 'i6 + `attach_contacts` and `attach_groups` (the "inbound" case).'),
('concurrent', 7.5, 'concurrent', NULL,
 'A mixed concurrent load (`bench/run-concurrent.sh`; the pgbench scripts of `test/scripts/concurrency/`): a '
 'RapidPro-shaped schema of 20,000 contacts, pgbench clients running inbound messages (STOP, START, HELP, "please '
 'stop texting me" and ordinary text for contacts drawn from a Zipf distribution, each stored with the contact''s '
 'last_seen_on updated and a reply queued, in one transaction; 40%), single sends (30%), `INSERT … SELECT` '
 'broadcasts to 20 to 300 contacts (4%), re-queue `UPDATE`s of failed messages (10%) and stops and starts by hand '
 'with provider stop events (16%), `CONC_SECONDS` (10) a run, on the schema attached with `attach_rapidpro()` '
 'versus the same schema unattached (whose stops and starts are the platform''s own UPDATEs, its inbound STOPs '
 'ignored), and the floor, "by hand": the unattached schema made compliant with plain PL/pgSQL triggers '
 '(`bench/concurrent-byhand.sql`: exact keywords, each STOP, START, HELP and blocked send logged in a table of '
 'its own and acted on as the platform''s own stop does, a send to a stopped contact stored failed; no classifier, '
 'no contact locks, no ledger), the three rotated in each of the RUNS runs. The times are milliseconds per '
 'transaction (1 / tps); the target is on the median of the per-run throughput ratios.');

SELECT '# Benchmarks';
SELECT '';
SELECT 'Generated by `bench/run.sh`; do not edit by hand: run it again. Every figure is a ratio against a '
       'baseline measured in the same run (or, for the stop latency, a time).';
SELECT '';
SELECT '| | |';
SELECT '|---|---|';
SELECT format('| command | `%s` (as root; it re-runs itself as the `postgres` user) |', :'command');
SELECT format('| date | %s |', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'));
SELECT format('| revision | %s |', :'revision');
SELECT format('| machine | %s CPUs (`nproc`), %s, %s of memory |', :'nproc', :'cpu', :'mem');
SELECT format('| PostgreSQL | %s |', version());
SELECT format('| scale | SCALE=%s: %s messages per COPY, %s contacts, %s broadcast rows; stop latency at %s contacts and %s memberships |',
              :'scale', to_char(:rows, 'FM999,999,999'), to_char(:contacts, 'FM999,999,999'),
              to_char(:broadcast, 'FM999,999,999'), to_char(:lat_contacts, 'FM999,999,999'),
              to_char(:lat_contacts * 10, 'FM999,999,999'));
SELECT format('| repetitions | RUNS=%s per variant (the broadcast: %s), alternated (ratios: the median of the per-run ratios); STOPS=%s per size |', :'runs', 3 * :runs, :'stops');
SELECT format('| workloads | %s |', :'workloads');
SELECT format('| wall time | %s min %s s, build and data included |', :secs / 60, :secs % 60);
SELECT format('| load average | %s (1, 5, 15 min; before / after the run: the machine is shared) |', :'load');
SELECT format('| server | `%s` |', regexp_replace(:'opts', '\s+', ' ', 'g'));
SELECT format('| data | %s in the database at the end of the run (shared_buffers %s) |',
              pg_size_pretty(pg_database_size(current_database())), current_setting('shared_buffers'));

SELECT '';
SELECT '## Targets';
SELECT '';
SELECT '| workload | measure | measured | target | met |';
SELECT '|---|---|---|---|---|';
SELECT format('| %s | %s | %s | %s | %s |', workload, what,
              CASE unit WHEN 'x' THEN to_char(value, 'FM999990.00') || 'x'
                        WHEN 'rows/s' THEN to_char(value, 'FM999,999,999') || ' rows/s'
                        ELSE value::text || ' ' || unit END,
              coalesce(replace(replace(target, '<=', '≤'), '>=', '≥'), '(reference)'),
              CASE WHEN met THEN 'yes' WHEN NOT met THEN '**no**' ELSE '' END)
  FROM bench.results ORDER BY id;
SELECT '';
SELECT 'A ratio is the median over the runs of variant / baseline within a run (each run times every variant of a '
       'workload once, one after the other, in an order that rotates from run to run), with the lowest and highest '
       'of those per-run ratios in brackets: the spread. The tables below give each variant''s own median, lowest '
       'and highest time. "x" for classify''s PL/pgSQL line is how many times slower the PL/pgSQL function is than '
       '`optout.classify`.';
SELECT '';
SELECT 'Where the time goes in the targets missed, measured piece by piece (`WORKLOADS=breakdown`): '
       '[benchmarks-analysis.md](benchmarks-analysis.md), written by hand and dated.';

SELECT '';
SELECT '## Workloads';
SELECT string_agg(block, E'\n' ORDER BY ord) FROM (
    SELECT a.ord, format(E'\n### %s\n\n%s\n\n| variant | runs | median | min | max | per row |\n|---|---|---|---|---|---|\n%s',
                         a.title, a.text,
                         (SELECT string_agg(format('| %s | %s | %s ms | %s ms | %s ms | %s |', m.variant, m.runs,
                                                   m.median_ms, m.min_ms, m.max_ms,
                                                   coalesce(round(m.median_ms * 1000 / a.rows, 2) || ' µs', '–')), E'\n')
                            FROM bench.medians(a.workload) m)) AS block
      FROM about a WHERE EXISTS (SELECT 1 FROM bench.timings t WHERE t.workload = a.workload)
    UNION ALL
    SELECT 6, format(E'\n### latency\n\n%s\n\n| size | message | n | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|\n%s',
                     format('One STOP (an `INSERT` of an inbound `STOP` message, in its own transaction: the INSERT and its '
                            'COMMIT, timed server-side in a procedure) for a contact in 20 groups, at two sizes: "big", '
                            '%s contacts with 10 memberships each (%s) and a message table of one sent message per contact; '
                            '"small", 10 times fewer of each. Both are wired like "inbound" (contacts, groups, inbound and '
                            'outbound attachments), attached in turn; the STOPs are timed in %s blocks, the sizes '
                            'alternating, each block after one untimed STOP (the backend''s caches). Each STOP is for a '
                            'different contact, which is in 20 groups and has 2 queued messages (failed by the STOP). '
                            'Before each STOP an ordinary message ("ok thanks, see you at 3") from another contact is timed '
                            'the same way: the cost of a one-row insert and its commit without a stop.',
                            to_char(:lat_contacts, 'FM999,999,999'), to_char(:lat_contacts * 10, 'FM999,999,999'),
                            greatest(least(:runs, :stops), 1)),
                     (SELECT string_agg(format('| %s | %s | %s | %s ms | %s ms | %s ms | %s ms |', size,
                                               CASE kind WHEN 'stop' THEN 'STOP' ELSE 'ordinary' END, n,
                                               p50_ms, p90_ms, p99_ms, max_ms), E'\n' ORDER BY size, kind DESC)
                        FROM bench.latency_summary))
           || coalesce(E'\n\nThe STOPs over the p99, and the ordinary message timed just before each: '
                       || (SELECT string_agg(format('%s, %s STOPs (%s–%s ms), %s of them after an ordinary message over '
                                                    'its p90', size, stops_over_p99, min_ms, max_ms,
                                                    plain_before_over_p90), '; ' ORDER BY size)
                             FROM bench.latency_slow)
                       || '. A pause of the machine tends to slow both; optout''s own work only the STOP.', '')
     WHERE EXISTS (SELECT 1 FROM bench.latencies WHERE workload = 'latency')
) b;

SELECT to_regclass('bench.statements') IS NOT NULL AS have_statements \gset
\if :have_statements
SELECT E'\n### breakdown: the statements of a stop\n\n'
       'The statements optout ran during one more COPY of i6 (untimed; pg_stat_statements with `track = all`), '
       'by total time.' || E'\n\n| calls | total | per call | rows | statement |\n|---|---|---|---|---|';
SELECT format('| %s | %s ms | %s µs | %s | `%s` |', calls, total_ms, us_per_call, rows,
              replace(left(query, 160), '|', '\|') || CASE WHEN length(query) > 160 THEN '…' ELSE '' END)
  FROM bench.statements ORDER BY total_ms DESC;
\endif

SELECT '';
SELECT '### Building the data';
SELECT '';
SELECT '| what | time |';
SELECT '|---|---|';
SELECT format('| %s | %s s |', what, round((ms / 1000)::numeric, 1)) FROM bench.builds ORDER BY at;

SELECT '';
SELECT '## Method';
SELECT '';
SELECT '- Timing is server-side: a procedure reads `clock_timestamp()` around `EXECUTE` of the statement and its '
       '`COMMIT` (`bench.timed` in `bench/run-common.sql`), so AFTER triggers, the commit and the NOTIFY queue are '
       'counted, and psql and the socket are not. Backfill, a procedure that commits, is timed by its own run record.';
SELECT '- Each workload''s variants run in the same session, alternated, the order rotating from run to run; each run '
       'starts from the same state (the tables it writes emptied or reloaded, then VACUUM ANALYZE where they were '
       'reloaded) and after a `CHECKPOINT`, so that no checkpoint falls inside a timed run. Autovacuum is off.';
SELECT '- All tables, attached or not, are ordinary logged tables with a primary key and an index on the contact '
       '(which a stop''s UPDATE of queued messages uses); those of "rapidpro" have RapidPro''s own indexes instead. '
       'COPY reads a file written by the server beforehand.';
SELECT '- Each workload attaches only its own tables and detaches them after, so a stop does the work of that '
       'workload''s attachments only.';
SELECT '- The server is a throwaway one built from the tree (`scripts/common.sh`), with the settings above.';
