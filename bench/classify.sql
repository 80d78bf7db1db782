-- Driven by bench/classify.sh (psql variables :rows and :runs).
\pset footer off
CREATE EXTENSION optout;

-- Realistic inbound traffic: mostly conversation, about 3% keyword variants.
CREATE UNLOGGED TABLE bodies AS
SELECT CASE WHEN r < 0.97 THEN
            (ARRAY['Yes, see you at 3!', 'ok thanks', 'What time is my appointment tomorrow?',
                   'Can you send me the address again please', 'Thank you so much 😊', 'No', 'Sure',
                   'I''ll be there in 10 minutes', 'Who is this?', 'Please call me back when you can',
                   'Is the office open on Saturday?', 'Got it, thanks!', 'How much does it cost?',
                   'I already paid last week', 'Can we move it to Friday?', 'Stop by the office at 5',
                   'The end of the month works for me', 'Great, see you then 👍', 'wrong number',
                   'Hola, ¿a qué hora abren mañana?', 'Merci beaucoup, à demain'])[1 + (i % 21)]
            || CASE WHEN i % 7 = 0 THEN ' ' || (i % 1000)::text ELSE '' END
       ELSE
            (ARRAY['STOP', 'stop', 'Stop please', 'STOP.', 'unsubscribe', 'ＳＴＯＰ', 'Arrêt', 'opt-out',
                   'START', 'HELP', 'Cancel', 'stop texting me', 'quit', 'End'])[1 + (i % 14)]
       END AS body
  FROM (SELECT i, random() AS r FROM generate_series(1, :rows) AS i) s;
VACUUM ANALYZE bodies;
SELECT count(*) AS rows, round(avg(length(body)), 1) AS avg_length FROM bodies;

CREATE TEMP TABLE timings (workload text, run int, ms float8);

CREATE FUNCTION pg_temp.time_query(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; n bigint;
BEGIN
    t0 := clock_timestamp();
    EXECUTE q INTO n;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;

-- The floor uses exactly the enabled keyword list.
SELECT format('SELECT count(*) FILTER (WHERE lower(btrim(body)) = ANY(%L::text[])) FROM bodies',
              array_agg(keyword)) AS floor_q
  FROM optout.keywords WHERE enabled \gset

-- Warm-up: the cache, the buffers.
SELECT count(optout.classify(body)) AS warm FROM bodies;

SET bench.runs = :'runs';
SET bench.floor_q = :'floor_q';
DO $$
DECLARE
    r int;
BEGIN
    FOR r IN 1 .. current_setting('bench.runs')::int LOOP
        INSERT INTO timings VALUES ('floor', r, pg_temp.time_query(current_setting('bench.floor_q')));
        INSERT INTO timings VALUES ('standard', r, pg_temp.time_query(
            'SELECT count(*) FILTER (WHERE optout.classify(body, ''standard'') IS NOT NULL) FROM bodies'));
        INSERT INTO timings VALUES ('reasonable', r, pg_temp.time_query(
            'SELECT count(*) FILTER (WHERE optout.classify(body, ''reasonable'') IS NOT NULL) FROM bodies'));
    END LOOP;
END $$;

SELECT workload, count(*) AS runs,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS median_ms,
       round(min(ms)::numeric, 1) AS min_ms, round(max(ms)::numeric, 1) AS max_ms
  FROM timings GROUP BY workload ORDER BY median_ms;

WITH med AS (SELECT workload, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms FROM timings GROUP BY workload)
SELECT m.workload,
       round((m.ms / f.ms)::numeric, 2) AS ratio_to_floor,
       round((:rows / (m.ms / 1000))::numeric) AS bodies_per_second
  FROM med m, med f WHERE f.workload = 'floor' ORDER BY m.ms;
