-- Workload "partitioned" of bench/run.sh (psql variables :rows, :contacts,
-- :runs, :datadir): the "outbound" workload against a message table
-- partitioned by month (three monthly partitions; the messages span them):
--   attached    bench.outp_a: attach_outbound(on_blocked => 'mark') on the
--               parent (its trigger is cloned onto the partitions)
--   unattached  bench.outp_b: the same partitioned table, no trigger
--   trigger floor bench.outp_f: the same with a BEFORE INSERT row trigger
--               on the parent (cloned onto the partitions) whose WHEN never
--               holds: COPY inserts row by row and nothing is called
--   floor + record bench.outp_f, then the blocked events an attached run
--               records written by a plain INSERT in the same transaction
--               (bench.write_record in bench/run-common.sql)
\set ON_ERROR_STOP 1

CREATE FUNCTION bench.create_partitioned(tbl text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    m date;
BEGIN
    EXECUTE format('CREATE TABLE %s (id bigint NOT NULL, contact_id integer NOT NULL, channel_id integer,
                        direction char(1) NOT NULL, status char(1) NOT NULL, failed_reason char(1),
                        sent_on timestamptz, text text, created_on timestamptz NOT NULL,
                        PRIMARY KEY (id, created_on)) PARTITION BY RANGE (created_on)', tbl);
    EXECUTE format('CREATE INDEX ON %s (contact_id)', tbl);
    FOREACH m IN ARRAY ARRAY[date '2026-01-01', date '2026-02-01', date '2026-03-01'] LOOP
        EXECUTE format('CREATE TABLE %s_%s PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                       tbl, to_char(m, 'YYYY_MM'), tbl, m, m + interval '1 month');
    END LOOP;
END
$$;
\o /dev/null
SELECT bench.create_partitioned('bench.outp_a'), bench.create_partitioned('bench.outp_b'),
       bench.create_partitioned('bench.outp_f');
\o
CREATE TRIGGER floor BEFORE INSERT ON bench.outp_f
    FOR EACH ROW WHEN (NEW.direction = 'X') EXECUTE FUNCTION bench.never_called();

-- The messages of "outbound" (over 90 days: January to March 2026).
CALL bench.build('partitioned: ' || :rows || ' messages to COPY', format($q$
    COPY (SELECT i, bench.contact_of(i, %1$s), 1 + i %% 3, 'O', 'Q', NULL, NULL,
                 'Hi! Your appointment is on Tuesday at 10:00. Reply STOP to opt out.',
                 timestamptz '2026-01-01' + (i - 1) * (interval '90 days' / %2$s)
            FROM generate_series(1, %2$s) AS i) TO %3$L;
    $q$, :contacts, :rows, :'datadir' || '/partitioned.copy'));

-- 10% of the contacts are stopped.
TRUNCATE optout.stops, optout.events;
\o /dev/null
SELECT optout.attach_outbound('bench.outp_a', 'contact_id', 'channel_id', on_blocked => 'mark',
                              mark => '{"status": "F", "failed_reason": "C", "sent_on": null}',
                              queued => '{"status": ["I", "Q", "E"]}', row_filter => '{"direction": "O"}') IS NOT NULL AS attached;
\o
SELECT count(*) FILTER (WHERE optout.stop(c::text)) AS contacts_stopped FROM generate_series(10, :contacts, 10) AS c;
TRUNCATE optout.events;
VACUUM ANALYZE optout.stops, optout.events;

INSERT INTO bench.variants (workload, variant, ord, reset, query)
SELECT 'partitioned', v, o, ARRAY[format('TRUNCATE %s, optout.events', t)],
       format('COPY %s FROM %L', t, :'datadir' || '/partitioned.copy')
  FROM (VALUES ('attached', 1, 'bench.outp_a'), ('unattached', 2, 'bench.outp_b'),
               ('trigger floor', 3, 'bench.outp_f')) AS x (v, o, t);
SELECT bench.add_floor_record('partitioned', 'trigger floor', 4, 'partitioned');
-- What an attached run records, kept for "floor + record": one untimed run.
SELECT bench.untimed('partitioned') \gexec
SELECT bench.keep_record('partitioned');
TRUNCATE bench.outp_a, optout.events;
VACUUM ANALYZE bench.outp_a, optout.events;

SELECT s FROM bench.schedule('partitioned', :runs) s \gexec
SELECT tableoid::regclass AS partition, count(*) AS messages, count(*) FILTER (WHERE status = 'F') AS marked
  FROM bench.outp_a GROUP BY 1 ORDER BY 1;
SELECT * FROM bench.medians('partitioned');
SELECT * FROM bench.target('partitioned', 'COPY outbound (mark) into a table partitioned by month, attached vs unattached',
                           'attached', 'unattached', '<=', 1.2)
UNION ALL SELECT * FROM bench.target('partitioned', 'the floor: a BEFORE INSERT row trigger never called vs unattached (reference)',
                                     'trigger floor', 'unattached')
UNION ALL SELECT * FROM bench.target('partitioned', 'COPY outbound (mark), attached vs the floor (reference)',
                                     'attached', 'trigger floor')
UNION ALL SELECT * FROM bench.target('partitioned', 'the floor with the record: the trigger floor plus the blocked events by a plain INSERT vs unattached (reference)',
                                     'floor + record', 'unattached')
UNION ALL SELECT * FROM bench.target('partitioned', 'COPY outbound (mark), attached vs the floor with the record (reference)',
                                     'attached', 'floor + record');

\o /dev/null
SELECT optout.detach('bench.outp_a');
\o
TRUNCATE optout.stops, optout.events;
