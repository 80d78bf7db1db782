-- Workload "breakdown" of bench/run.sh, not in the default run
-- (WORKLOADS=breakdown bash bench/run.sh): where the time of the attached
-- COPYs of "outbound" and "inbound" goes, one piece added at a time, each
-- variant on its own table of the same shape, alternated like the others.
-- Psql variables: :rows, :contacts, :runs, :datadir.
--
-- outbound (:rows messages, :contacts contacts):
--   o1 none              no trigger (COPY inserts in batches)
--   o2 trigger, no call  a BEFORE INSERT trigger whose WHEN never holds: no
--                        function is called, but COPY inserts row by row
--   o3 plpgsql no-op     a BEFORE INSERT trigger calling a PL/pgSQL function
--                        that returns NEW
--   o4 optout, none      attach_outbound(mark), no contact of the file stopped
--   o5 optout, 10%       attach_outbound(mark), 10% stopped (as "outbound")
-- inbound (:rows messages, 5% keyword messages, as "inbound"):
--   i1 none              no trigger
--   i2 outbound only     attach_outbound (its WHEN never holds for inbound
--                        rows): COPY inserts row by row
--   i3 inbound, no kw    attach_inbound, a file with no keyword message:
--                        the classifier on every row (the trigger's WHEN)
--   i4 inbound           attach_inbound, the file of "inbound": + the stops,
--                        applied at the end of the statement (ledger, events,
--                        contact locks, NOTIFY), no action
--   i5 inbound+outbound  + attach_outbound on the same table: + row-by-row
--                        inserts, + the UPDATE of the stopped contacts'
--                        queued messages
--   i6 + contacts+groups + attach_contacts, attach_groups: the "inbound" case
\set ON_ERROR_STOP 1

\o /dev/null
CREATE FUNCTION bench.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
SELECT bench.create_msgs('bench.bd_' || t)
  FROM unnest(ARRAY['o1', 'o2', 'o3', 'o4', 'o5', 'i1', 'i2', 'i3', 'i4', 'i5', 'i6']) AS t;
CREATE TRIGGER never BEFORE INSERT ON bench.bd_o2 FOR EACH ROW WHEN (NEW.direction = 'X') EXECUTE FUNCTION bench.never_called();
CREATE TRIGGER noop BEFORE INSERT ON bench.bd_o3 FOR EACH ROW EXECUTE FUNCTION bench.noop();
\o

CALL bench.build('breakdown: data', format($q$
    COPY (SELECT i, bench.contact_of(i, %1$s), 1 + i %% 3, 'O', 'Q', NULL, NULL,
                 'Hi! Your appointment is on Tuesday at 10:00. Reply STOP to opt out.',
                 timestamptz '2026-01-01' + (i - 1) * (interval '90 days' / %2$s)
            FROM generate_series(1, %2$s) AS i) TO %3$L;
    -- The same messages to contacts nobody stopped.
    COPY (SELECT i, 10000000 + bench.contact_of(i, %1$s), 1 + i %% 3, 'O', 'Q', NULL, NULL,
                 'Hi! Your appointment is on Tuesday at 10:00. Reply STOP to opt out.',
                 timestamptz '2026-01-01' + (i - 1) * (interval '90 days' / %2$s)
            FROM generate_series(1, %2$s) AS i) TO %4$L;
    COPY (SELECT i, bench.contact_of(i, %1$s), 1 + i %% 3, 'I', 'H', NULL, NULL,
                 CASE WHEN i %% 20 = 0 THEN bench.keyword_message(i / 20) ELSE bench.conversation(i) END,
                 timestamptz '2026-01-01' + i * interval '1 second'
            FROM generate_series(1, %2$s) AS i) TO %5$L;
    -- The same messages with no keyword message.
    COPY (SELECT i, bench.contact_of(i, %1$s), 1 + i %% 3, 'I', 'H', NULL, NULL, bench.conversation(i),
                 timestamptz '2026-01-01' + i * interval '1 second'
            FROM generate_series(1, %2$s) AS i) TO %6$L;
    CREATE TABLE bench.bd_contacts_init AS
    SELECT i AS id, 'A'::char(1) AS status, timestamptz '2025-06-01' AS modified_on FROM generate_series(1, %1$s) AS i;
    CREATE TABLE bench.bd_members_init AS
    SELECT c AS contact_id, g + 10 * (c %% 5) AS group_id FROM generate_series(1, %1$s) AS c, generate_series(1, 10) AS g;
    CREATE TABLE bench.bd_contacts (id integer PRIMARY KEY, status char(1) NOT NULL, modified_on timestamptz);
    CREATE TABLE bench.bd_members (contact_id integer NOT NULL, group_id integer NOT NULL, PRIMARY KEY (contact_id, group_id));
    CREATE INDEX ON bench.bd_members (group_id);
    CREATE TABLE bench.bd_history AS
    SELECT -c::bigint AS id, c AS contact_id, 1 + c %% 3 AS channel_id, 'O'::char(1) AS direction,
           'S'::char(1) AS status, NULL::char(1) AS failed_reason, timestamptz '2025-12-01' AS sent_on,
           'Your appointment is confirmed. Reply STOP to opt out.' AS text, timestamptz '2025-12-01' AS created_on
      FROM generate_series(1, %1$s) AS c;
    $q$, :contacts, :rows, :'datadir' || '/bd-out.copy', :'datadir' || '/bd-out-unstopped.copy',
         :'datadir' || '/bd-in.copy', :'datadir' || '/bd-in-nokw.copy'));

-- Each variant runs with exactly its own attachments (a stop acts on every
-- attached contacts, groups and outbound table): bench.bd_wire() detaches
-- every table of the breakdown, then attaches what the variant names.
CREATE PROCEDURE bench.bd_wire(v text) LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    PERFORM optout.detach(a.tbl) FROM (SELECT DISTINCT x.tbl FROM optout.attachments x
                                        WHERE x.tbl::text LIKE 'bench.bd\_%') a;
    IF v IN ('o4', 'o5', 'i2', 'i5', 'i6') THEN
        PERFORM optout.attach_outbound(format('bench.bd_%s', v)::regclass, 'contact_id', 'channel_id',
                                       on_blocked => 'mark', mark => '{"status": "F", "failed_reason": "C", "sent_on": null}',
                                       queued => '{"status": ["I", "Q", "E"]}', row_filter => '{"direction": "O"}');
    END IF;
    IF v IN ('i3', 'i4', 'i5', 'i6') THEN
        PERFORM optout.attach_inbound(format('bench.bd_%s', v)::regclass, 'text', 'contact_id', 'channel_id',
                                      row_filter => '{"direction": "I"}');
    END IF;
    IF v = 'i6' THEN
        PERFORM optout.attach_contacts('bench.bd_contacts', 'id', 'status', 'S', 'A', touch_column => 'modified_on');
        PERFORM optout.attach_groups('bench.bd_members', 'contact_id', 'group_id', stopped_group => '0');
    END IF;
END
$$;

-- outbound: 10% of the contacts stopped.
TRUNCATE optout.stops, optout.events;
SELECT count(*) FILTER (WHERE optout.stop(c::text)) AS contacts_stopped FROM generate_series(10, :contacts, 10) AS c;
TRUNCATE optout.events;
VACUUM ANALYZE optout.stops, optout.events;
INSERT INTO bench.variants (workload, variant, ord, reset, query)
SELECT 'breakdown-outbound', v, o, ARRAY[format('CALL bench.bd_wire(%L)', t), format('TRUNCATE bench.bd_%s, optout.events', t)],
       format('COPY bench.bd_%s FROM %L', t, :'datadir' || '/' || f)
  FROM (VALUES ('o1 none', 1, 'o1', 'bd-out.copy'), ('o2 trigger, no call', 2, 'o2', 'bd-out.copy'),
               ('o3 plpgsql no-op', 3, 'o3', 'bd-out.copy'), ('o4 optout, none stopped', 4, 'o4', 'bd-out-unstopped.copy'),
               ('o5 optout, 10% stopped', 5, 'o5', 'bd-out.copy')) AS x (v, o, t, f);
SELECT s FROM bench.schedule('breakdown-outbound', :runs) s \gexec
SELECT * FROM bench.medians('breakdown-outbound');
SELECT v.variant, round((bench.median('breakdown-outbound', v.variant) / bench.median('breakdown-outbound', 'o1 none'))::numeric, 2) AS vs_none,
       round(((bench.median('breakdown-outbound', v.variant) - lag(bench.median('breakdown-outbound', v.variant)) OVER (ORDER BY v.ord))
              * 1000 / :rows)::numeric, 2) AS added_us_per_row
  FROM bench.variants v WHERE v.workload = 'breakdown-outbound' ORDER BY v.ord;

-- inbound: every run from an empty ledger and fresh contacts and groups.
INSERT INTO bench.variants (workload, variant, ord, reset, query)
SELECT 'breakdown-inbound', v, o,
       ARRAY[format('CALL bench.bd_wire(%L)', t),
             format('TRUNCATE bench.bd_%s, bench.bd_contacts, bench.bd_members, optout.stops, optout.events', t),
             'INSERT INTO bench.bd_contacts SELECT * FROM bench.bd_contacts_init',
             'INSERT INTO bench.bd_members SELECT * FROM bench.bd_members_init',
             format('INSERT INTO bench.bd_%s SELECT * FROM bench.bd_history', t),
             format('VACUUM ANALYZE bench.bd_%s, bench.bd_contacts, bench.bd_members, optout.stops, optout.events', t)],
       format('COPY bench.bd_%s FROM %L', t, :'datadir' || '/' || f)
  FROM (VALUES ('i1 none', 1, 'i1', 'bd-in.copy'), ('i2 outbound only', 2, 'i2', 'bd-in.copy'),
               ('i3 inbound, no keywords', 3, 'i3', 'bd-in-nokw.copy'), ('i4 inbound', 4, 'i4', 'bd-in.copy'),
               ('i5 inbound + outbound', 5, 'i5', 'bd-in.copy'),
               ('i6 + contacts + groups', 6, 'i6', 'bd-in.copy')) AS x (v, o, t, f);
SELECT s FROM bench.schedule('breakdown-inbound', :runs) s \gexec
CALL bench.bd_wire('none');
SELECT * FROM bench.medians('breakdown-inbound');
SELECT count(*) FILTER (WHERE optout.classify(text) = 'opt_out') AS opt_outs,
       count(*) FILTER (WHERE optout.classify(text) IS NOT NULL) AS keyword_messages
  FROM bench.bd_i4 WHERE direction = 'I' \gset
SELECT v.variant, round((bench.median('breakdown-inbound', v.variant) / bench.median('breakdown-inbound', 'i1 none'))::numeric, 2) AS vs_none,
       round(((bench.median('breakdown-inbound', v.variant) - lag(bench.median('breakdown-inbound', v.variant)) OVER (ORDER BY v.ord))
              * 1000 / :rows)::numeric, 2) AS added_us_per_row,
       CASE WHEN v.ord >= 4 THEN round(((bench.median('breakdown-inbound', v.variant) - bench.median('breakdown-inbound', 'i3 inbound, no keywords'))
              * 1000 / :keyword_messages)::numeric, 1) END AS us_per_keyword_message_over_i3
  FROM bench.variants v WHERE v.workload = 'breakdown-inbound' ORDER BY v.ord;
SELECT :opt_outs AS opt_out_messages, :keyword_messages AS keyword_messages;

-- Per statement: one more COPY of i6 (untimed) with pg_stat_statements
-- tracking the statements optout runs (bench/run.sh preloads it when the
-- breakdown is asked for).
SELECT current_setting('shared_preload_libraries') LIKE '%pg_stat_statements%' AS have_pss \gset
\if :have_pss
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SELECT s FROM unnest((SELECT reset FROM bench.variants WHERE workload = 'breakdown-inbound' AND variant LIKE 'i6%')) AS s \gexec
SET pg_stat_statements.track = 'all';
SELECT pg_stat_statements_reset() IS NULL AS reset \gset
SELECT format('COPY bench.bd_i6 FROM %L', :'datadir' || '/bd-in.copy') AS q \gset
CALL bench.timed('breakdown-statements', 'i6 + contacts + groups, with pg_stat_statements', 1, :'q');
RESET pg_stat_statements.track;
CREATE TABLE bench.statements AS
SELECT calls, round(total_exec_time::numeric) AS total_ms, round((total_exec_time / nullif(calls, 0) * 1000)::numeric, 1) AS us_per_call,
       rows, regexp_replace(query, '\s+', ' ', 'g') AS query
  FROM pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND toplevel IS false AND calls > 0
   AND query NOT LIKE 'COPY bench.%'
 ORDER BY total_exec_time DESC LIMIT 12;
SELECT calls, total_ms, us_per_call, rows, left(query, 110) AS query FROM bench.statements;
CALL bench.bd_wire('none');
\endif

TRUNCATE optout.stops, optout.events;
