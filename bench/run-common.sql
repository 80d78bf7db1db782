-- bench/run.sh: what every workload shares. Psql variables: none.
--
-- Timing is server-side: bench.timed() reads clock_timestamp() around
-- EXECUTE of the workload's statement and its COMMIT (a procedure), so the
-- AFTER triggers, the commit and the NOTIFY queue are in the figure, and
-- psql, the socket and the client are not.
\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS optout;
CREATE SCHEMA bench;

-- One row per timed run.
CREATE TABLE bench.timings (workload text, variant text, run int, ms float8, at timestamptz DEFAULT clock_timestamp());
-- One row per single-message transaction (stop latency).
CREATE TABLE bench.latencies (workload text, variant text, kind text, n int, ms float8);
-- Percentiles of the stop latencies, per size and kind of message.
CREATE VIEW bench.latency_summary AS
SELECT variant AS size, kind, count(*) AS n,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p50_ms,
       round(percentile_cont(0.9) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p90_ms,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS p99_ms,
       round(max(ms)::numeric, 2) AS max_ms
  FROM bench.latencies WHERE workload = 'latency' GROUP BY variant, kind;
-- The STOPs slower than their size's p99, and how many of them had the plain
-- message timed just before them (the same n) slower than the plain
-- messages' p90: a pause of the machine tends to slow both; optout's own work
-- slows only the STOP.
CREATE VIEW bench.latency_slow AS
SELECT s.variant AS size, count(*) AS stops_over_p99,
       count(*) FILTER (WHERE p.ms > ps.p90_ms) AS plain_before_over_p90,
       round(min(s.ms)::numeric, 2) AS min_ms, round(max(s.ms)::numeric, 2) AS max_ms
  FROM bench.latencies s
  JOIN bench.latency_summary ss ON ss.size = s.variant AND ss.kind = 'stop'
  JOIN bench.latencies p ON p.workload = 'latency' AND p.variant = s.variant AND p.kind = 'plain' AND p.n = s.n
  JOIN bench.latency_summary ps ON ps.size = s.variant AND ps.kind = 'plain'
 WHERE s.workload = 'latency' AND s.kind = 'stop' AND s.ms > ss.p99_ms
 GROUP BY s.variant;
-- How long building each data set took.
CREATE TABLE bench.builds (what text, ms float8, at timestamptz DEFAULT clock_timestamp());
-- What each workload runs: per variant, the statements that reset its state
-- (each run of a variant starts from the same state) and the timed statement.
CREATE TABLE bench.variants (workload text, variant text, ord int, reset text[], query text,
                             PRIMARY KEY (workload, variant));
-- The targets, in the order of the final table.
CREATE TABLE bench.results (id serial, workload text, what text, value numeric, unit text,
                            target text, met boolean, detail text);

-- A timed run: the statement and its commit, server-side.
CREATE PROCEDURE bench.timed(workload text, variant text, run int, q text)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    ms float8;
BEGIN
    t0 := clock_timestamp();
    EXECUTE q;
    COMMIT;
    ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    INSERT INTO bench.timings (workload, variant, run, ms) VALUES (workload, variant, run, ms);
    COMMIT;
    RAISE NOTICE '% %: run %: % ms', workload, variant, run, round(ms::numeric, 1);
END
$$;

-- The statements of a workload, for \gexec: per run, every variant (the
-- order rotates from run to run, so none always comes first), each after its
-- reset statements and a CHECKPOINT (no checkpoint during a timed run).
CREATE FUNCTION bench.schedule(w text, runs int) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    vs bench.variants[];
    n int;
    r int;
    i int;
    v bench.variants;
    s text;
BEGIN
    SELECT array_agg(x ORDER BY x.ord) INTO vs FROM bench.variants x WHERE x.workload = w;
    n := cardinality(vs);
    FOR r IN 1 .. runs LOOP
        FOR i IN 0 .. n - 1 LOOP
            v := vs[1 + (i + r - 1) % n];
            FOREACH s IN ARRAY coalesce(v.reset, '{}') LOOP
                RETURN NEXT s;
            END LOOP;
            RETURN NEXT 'CHECKPOINT';
            RETURN NEXT format('CALL bench.timed(%L, %L, %s, %L)', w, v.variant, r, v.query);
        END LOOP;
    END LOOP;
END
$$;

-- The floor of the required work: what optout records, written without
-- optout. bench.keep_record() keeps what an attached run wrote to
-- optout.events (and, with stops, the ledger rows it added), in the order it
-- wrote them; bench.write_record() gives the statements that write the same
-- rows again, by plain INSERTs, into bench.events_floor and bench.stops_floor,
-- copies of optout's tables with their constraints, defaults and indexes.
-- A "floor + record" variant runs them after its own statement, in the same
-- timed transaction: the trigger floor plus the record that the product
-- requires (every stop and blocked send on record, by contact), at the cost
-- of plain SQL.
CREATE TABLE bench.events_floor (LIKE optout.events INCLUDING ALL);
CREATE TABLE bench.stops_floor (LIKE optout.stops INCLUDING ALL);
CREATE FUNCTION bench.keep_record(name text, stops boolean DEFAULT false) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    m bigint := 0;
BEGIN
    EXECUTE format('CREATE TABLE bench.%I AS SELECT * FROM optout.events', 'record_' || name || '_events');
    GET DIAGNOSTICS n = ROW_COUNT;
    IF stops THEN
        EXECUTE format('CREATE TABLE bench.%I AS SELECT * FROM optout.stops', 'record_' || name || '_stops');
        GET DIAGNOSTICS m = ROW_COUNT;
    END IF;
    RETURN format('%s: %s events, %s ledger rows kept', name, n, m);
END
$$;
CREATE FUNCTION bench.write_record(name text, stops boolean DEFAULT false) RETURNS text LANGUAGE sql AS $$
    SELECT format($q$INSERT INTO bench.events_floor (at, kind, contact, channel, source, body, keyword, language, rule,
                         provider, code, table_name, reason, actor, detail, optout_version, keyword_set)
                  SELECT now(), kind, contact, channel, source, body, keyword, language, rule,
                         provider, code, table_name, reason, actor, detail, optout_version, keyword_set
                    FROM bench.%I ORDER BY id$q$, 'record_' || name || '_events')
        || CASE WHEN stops THEN format($q$;
           INSERT INTO bench.stops_floor (contact, channel, stopped_at, source, keyword, rule, event_id)
           SELECT contact, channel, now(), source, keyword, rule, event_id FROM bench.%I$q$, 'record_' || name || '_stops') ELSE '' END
$$;

-- A workload's "floor + record" variant: the variant `base` (a trigger
-- floor), then the record kept as `record`, in the same timed transaction.
CREATE FUNCTION bench.add_floor_record(w text, base text, ord int, record text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO bench.variants (workload, variant, ord, reset, query)
    SELECT w, 'floor + record', ord, v.reset || 'TRUNCATE bench.events_floor'::text,
           v.query || '; ' || bench.write_record(record)
      FROM bench.variants v WHERE v.workload = w AND v.variant = base
$$;
-- For \gexec: one untimed run of a workload's variant (its reset statements,
-- then its statement), e.g. the attached run whose record keep_record keeps.
CREATE FUNCTION bench.untimed(w text, v text DEFAULT 'attached') RETURNS SETOF text LANGUAGE sql AS $$
    SELECT s FROM bench.variants x, unnest(x.reset || x.query) WITH ORDINALITY AS u (s, i)
     WHERE x.workload = w AND x.variant = v ORDER BY u.i
$$;

-- The function of every "never called" floor trigger (a WHEN that never
-- holds): called, it fails the run, so a floor cannot silently do more work
-- than it says.
CREATE FUNCTION bench.never_called() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'bench: trigger % on % was called; its WHEN must never hold', TG_NAME, TG_TABLE_NAME;
END
$$;

CREATE FUNCTION bench.median(w text, v text) RETURNS float8 LANGUAGE sql AS $$
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM bench.timings WHERE workload = w AND variant = v
$$;

-- Medians of a workload's variants.
CREATE FUNCTION bench.medians(w text)
    RETURNS TABLE (variant text, runs bigint, median_ms numeric, min_ms numeric, max_ms numeric)
    LANGUAGE sql AS $$
    SELECT t.variant, count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t.ms)::numeric, 1),
           round(min(t.ms)::numeric, 1), round(max(t.ms)::numeric, 1)
      FROM bench.timings t JOIN bench.variants v USING (workload, variant)
     WHERE t.workload = w GROUP BY t.variant, v.ord ORDER BY v.ord
$$;

-- A ratio against a target: the median, over the runs, of the variant's time
-- divided by the baseline's in the same run (each run times every variant
-- once, one after the other, so a slow spell of the machine weighs on both
-- sides of a run's ratio rather than on one median); the lowest and highest
-- of those per-run ratios are given with it (the spread). op '<=' means
-- "ratio at most goal", '>=' "ratio at least goal"; no op: a ratio reported
-- for reference, with no target.
CREATE FUNCTION bench.target(w text, what text, v text, base text, op text DEFAULT NULL, goal numeric DEFAULT NULL)
    RETURNS TABLE (workload text, measured text, ratio numeric, target text, met text)
    LANGUAGE plpgsql AS $$
DECLARE
    r numeric;
    lo numeric;
    hi numeric;
    ok boolean;
    t text := CASE WHEN op IS NOT NULL THEN format('%s %s', op, goal) END;
BEGIN
    SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY a.ms / b.ms)::numeric, 2),
           round(min(a.ms / b.ms)::numeric, 2), round(max(a.ms / b.ms)::numeric, 2)
      INTO r, lo, hi
      FROM bench.timings a JOIN bench.timings b ON b.workload = a.workload AND b.run = a.run
     WHERE a.workload = w AND a.variant = v AND b.variant = base;
    IF r IS NULL THEN
        RAISE EXCEPTION 'bench.target: no run of % has both % and %', w, v, base;
    END IF;
    ok := CASE op WHEN '<=' THEN r <= goal WHEN '>=' THEN r >= goal END;
    what := format('%s (per run: %s–%s)', what, lo, hi);
    INSERT INTO bench.results (workload, what, value, unit, target, met) VALUES (w, what, r, 'x', t, ok);
    RETURN QUERY SELECT w, what, r, t, CASE WHEN ok THEN 'met' WHEN NOT ok THEN 'MISSED' ELSE '' END;
END
$$;

-- A figure with no ratio (rows per second, a latency).
CREATE FUNCTION bench.figure(w text, what text, val numeric, u text, op text DEFAULT NULL,
                             goal numeric DEFAULT NULL)
    RETURNS TABLE (workload text, measured text, value numeric, unit text, target text, met text)
    LANGUAGE plpgsql AS $$
DECLARE
    ok boolean := CASE op WHEN '<=' THEN val <= goal WHEN '<' THEN val < goal WHEN '>=' THEN val >= goal END;
    t text := CASE WHEN op IS NOT NULL THEN format('%s %s', op, goal) END;
BEGIN
    INSERT INTO bench.results (workload, what, value, unit, target, met) VALUES (w, what, val, u, t, ok);
    RETURN QUERY SELECT w, what, val, u, t, CASE WHEN ok THEN 'met' WHEN NOT ok THEN 'MISSED' ELSE '' END;
END
$$;

-- Times a data build (not a benchmark: reported so its cost is known).
CREATE PROCEDURE bench.build(what text, q text)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    ms float8;
BEGIN
    EXECUTE q;
    COMMIT;
    ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    INSERT INTO bench.builds (what, ms) VALUES (what, ms);
    COMMIT;
    RAISE NOTICE 'built %: % s', what, round((ms / 1000)::numeric, 1);
END
$$;

-- The message tables, all the same shape (RapidPro's msgs_msg, reduced):
-- a primary key and an index on the contact (which a stop's "fail the queued
-- messages" UPDATE uses, as any platform's would).
CREATE FUNCTION bench.create_msgs(tbl text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE %s (id bigint PRIMARY KEY, contact_id integer NOT NULL, channel_id integer,
                        direction char(1) NOT NULL, status char(1) NOT NULL, failed_reason char(1),
                        sent_on timestamptz, text text, created_on timestamptz NOT NULL)', tbl);
    EXECUTE format('CREATE INDEX ON %s (contact_id)', tbl);
END
$$;

-- Realistic message bodies (bench.conversation, bench.keyword_message) and
-- bench.contact_of.
SET search_path = bench;
\ir bodies.sql
RESET search_path;
