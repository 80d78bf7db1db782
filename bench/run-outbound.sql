-- Workloads "outbound" and "broadcast" of bench/run.sh (psql variables
-- :rows, :contacts, :broadcast, :runs, :datadir).
--
-- outbound: COPY of :rows outbound messages to :contacts contacts, 10% of
-- whom are stopped, into
--   attached    bench.out_a: attach_outbound(on_blocked => 'mark'); the
--               stopped contacts stopped with optout.stop()
--   unattached  bench.out_b: the same table, no trigger
--   confirmable bench.out_c: as attached, with a confirmation filter (issue
--               #17) that no row matches: what the filter costs every send
--   plpgsql     bench.out_p: a PL/pgSQL BEFORE INSERT trigger that looks the
--               contact up in a plain table of stopped contacts and marks
--               the row (what a platform might write by hand)
--   trigger floor bench.out_f: a BEFORE INSERT row trigger whose WHEN never
--               holds: COPY inserts row by row (as on any table with a
--               BEFORE ROW trigger, optout's included) and nothing is called
--   floor + record bench.out_f as "trigger floor", then, in the same
--               transaction, the blocked events an attached run records
--               written by a plain INSERT (bench.write_record): the floor
--               of the work the product requires
-- broadcast: INSERT ... SELECT of one message to each of :broadcast contacts
-- (10% stopped) into the attached, unattached, plpgsql and trigger floor
-- tables, and "floor + record" as above; 3 * :runs runs (it is ten times
-- smaller than the others, and its medians need more runs to settle). (An
-- INSERT ... SELECT inserts row by row with or without a trigger: its
-- trigger floor is the trigger machinery alone.)
-- Before every run the message table is emptied and optout.events too (each
-- blocked row adds an event); the ledger stays as set up.
\set ON_ERROR_STOP 1

\o /dev/null
SELECT bench.create_msgs('bench.out_a'), bench.create_msgs('bench.out_b'), bench.create_msgs('bench.out_p'),
       bench.create_msgs('bench.out_c'), bench.create_msgs('bench.out_f');
\o

-- The messages: :contacts contacts, three channels, over 90 days.
CALL bench.build('outbound: ' || :rows || ' messages to COPY', format($q$
    COPY (SELECT i, bench.contact_of(i, %1$s), 1 + i %% 3, 'O', 'Q', NULL, NULL,
                 'Hi! Your appointment is on Tuesday at 10:00. Reply STOP to opt out.',
                 timestamptz '2026-01-01' + (i - 1) * (interval '90 days' / %2$s)
            FROM generate_series(1, %2$s) AS i) TO %3$L;
    CREATE TABLE bench.broadcast_contacts AS
    SELECT i AS id, 'contact ' || i AS name FROM generate_series(1, %4$s) AS i;
    ALTER TABLE bench.broadcast_contacts ADD PRIMARY KEY (id);
    $q$, :contacts, :rows, :'datadir' || '/outbound.copy', :broadcast));
VACUUM ANALYZE bench.broadcast_contacts;

-- 10% of the contacts are stopped: in optout's ledger, and in a plain table.
TRUNCATE optout.stops, optout.events;
\o /dev/null
SELECT optout.attach_outbound('bench.out_a', 'contact_id', 'channel_id', on_blocked => 'mark',
                              mark => '{"status": "F", "failed_reason": "C", "sent_on": null}',
                              queued => '{"status": ["I", "Q", "E"]}', row_filter => '{"direction": "O"}') IS NOT NULL AS attached;
SELECT optout.attach_outbound('bench.out_c', 'contact_id', 'channel_id', on_blocked => 'mark',
                              mark => '{"status": "F", "failed_reason": "C", "sent_on": null}',
                              queued => '{"status": ["I", "Q", "E"]}', row_filter => '{"direction": "O"}',
                              confirmation => '{"failed_reason": "K"}') IS NOT NULL AS attached;
\o
SELECT count(*) FILTER (WHERE optout.stop(c::text)) AS contacts_stopped
  FROM generate_series(10, greatest(:contacts, :broadcast), 10) AS c;
CREATE TABLE bench.stopped (contact_id integer PRIMARY KEY);
INSERT INTO bench.stopped SELECT c FROM generate_series(10, greatest(:contacts, :broadcast), 10) AS c;
TRUNCATE optout.events;
VACUUM ANALYZE optout.stops, optout.events, bench.stopped;

CREATE FUNCTION bench.block_stopped() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM bench.stopped s WHERE s.contact_id = NEW.contact_id) THEN
        NEW.status := 'F';
        NEW.failed_reason := 'C';
        NEW.sent_on := NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER block_stopped BEFORE INSERT ON bench.out_p
    FOR EACH ROW WHEN (NEW.direction = 'O') EXECUTE FUNCTION bench.block_stopped();
CREATE TRIGGER floor BEFORE INSERT ON bench.out_f
    FOR EACH ROW WHEN (NEW.direction = 'X') EXECUTE FUNCTION bench.never_called();

INSERT INTO bench.variants (workload, variant, ord, reset, query)
SELECT 'outbound', v, o, ARRAY[format('TRUNCATE %s, optout.events', t)], format('COPY %s FROM %L', t, :'datadir' || '/outbound.copy')
  FROM (VALUES ('attached', 1, 'bench.out_a'), ('unattached', 2, 'bench.out_b'), ('plpgsql', 3, 'bench.out_p'),
               ('confirmable', 4, 'bench.out_c'), ('trigger floor', 5, 'bench.out_f')) AS x (v, o, t);
INSERT INTO bench.variants (workload, variant, ord, reset, query)
SELECT 'broadcast', v, o, ARRAY[format('TRUNCATE %s, optout.events', t)],
       format($q$INSERT INTO %s (id, contact_id, channel_id, direction, status, text, created_on)
                 SELECT c.id, c.id, 1, 'O', 'Q', 'Flash sale: 20%% off today only. Reply STOP to opt out.', now()
                   FROM bench.broadcast_contacts c$q$, t)
  FROM (VALUES ('attached', 1, 'bench.out_a'), ('unattached', 2, 'bench.out_b'), ('plpgsql', 3, 'bench.out_p'),
               ('trigger floor', 4, 'bench.out_f')) AS x (v, o, t);
SELECT bench.add_floor_record('outbound', 'trigger floor', 6, 'outbound'),
       bench.add_floor_record('broadcast', 'trigger floor', 5, 'broadcast');

-- What an attached run records (a blocked event per stopped contact, channel
-- and table), kept for the "floor + record" variants: one untimed run each.
SELECT bench.untimed('outbound') \gexec
SELECT bench.keep_record('outbound');
SELECT bench.untimed('broadcast') \gexec
SELECT bench.keep_record('broadcast');
TRUNCATE bench.out_a, optout.events;
VACUUM ANALYZE bench.out_a, optout.events;

SELECT s FROM bench.schedule('outbound', :runs) s \gexec
SELECT (SELECT count(*) FROM bench.out_a WHERE status = 'F') AS attached_marked,
       (SELECT count(*) FROM bench.out_p WHERE status = 'F') AS plpgsql_marked,
       (SELECT count(*) FROM optout.events WHERE kind = 'blocked') AS blocked_events;
SELECT * FROM bench.medians('outbound');
SELECT * FROM bench.target('outbound', 'COPY outbound (mark), attached vs unattached', 'attached', 'unattached', '<=', 1.15)
UNION ALL SELECT * FROM bench.target('outbound', 'the floor: a BEFORE INSERT row trigger never called vs unattached (reference)', 'trigger floor', 'unattached')
UNION ALL SELECT * FROM bench.target('outbound', 'COPY outbound (mark), attached vs the floor (reference)', 'attached', 'trigger floor')
UNION ALL SELECT * FROM bench.target('outbound', 'the floor with the record: the trigger floor plus the blocked events by a plain INSERT vs unattached (reference)', 'floor + record', 'unattached')
UNION ALL SELECT * FROM bench.target('outbound', 'COPY outbound (mark), attached vs the floor with the record (reference)', 'attached', 'floor + record')
UNION ALL SELECT * FROM bench.target('outbound', 'COPY outbound, PL/pgSQL trigger vs unattached (for reference)', 'plpgsql', 'unattached')
UNION ALL SELECT * FROM bench.target('outbound', 'COPY outbound, attached vs PL/pgSQL trigger (for reference)', 'attached', 'plpgsql')
UNION ALL SELECT * FROM bench.target('outbound', 'COPY outbound, with a confirmation filter vs attached (for reference)', 'confirmable', 'attached');

SELECT s FROM bench.schedule('broadcast', 3 * :runs) s \gexec
SELECT (SELECT count(*) FROM bench.out_a WHERE status = 'F') AS attached_marked,
       (SELECT count(*) FROM bench.out_p WHERE status = 'F') AS plpgsql_marked;
SELECT * FROM bench.medians('broadcast');
SELECT * FROM bench.target('broadcast', 'INSERT … SELECT broadcast (mark), attached vs unattached', 'attached', 'unattached', '<=', 1.15)
UNION ALL SELECT * FROM bench.target('broadcast', 'the floor: a BEFORE INSERT row trigger never called vs unattached (reference)', 'trigger floor', 'unattached')
UNION ALL SELECT * FROM bench.target('broadcast', 'INSERT … SELECT broadcast (mark), attached vs the floor (reference)', 'attached', 'trigger floor')
UNION ALL SELECT * FROM bench.target('broadcast', 'the floor with the record: the trigger floor plus the blocked events by a plain INSERT vs unattached (reference)', 'floor + record', 'unattached')
UNION ALL SELECT * FROM bench.target('broadcast', 'INSERT … SELECT broadcast (mark), attached vs the floor with the record (reference)', 'attached', 'floor + record')
UNION ALL SELECT * FROM bench.target('broadcast', 'INSERT … SELECT broadcast, PL/pgSQL trigger vs unattached (for reference)', 'plpgsql', 'unattached');

-- update: the status UPDATE a platform makes as it sends (queued -> wired)
-- over the broadcast's :broadcast rows, attached vs unattached (target:
-- 1.05x, issue #25). It changes nothing sendable, so optout's UPDATE checks
-- (optout_outbound fires only for an UPDATE of the contact or channel column,
-- optout_outbound_requeue only when a row becomes queued again) cost no more
-- than their WHEN. The floor:
-- bench.out_p with a BEFORE UPDATE trigger whose WHEN never holds (any BEFORE
-- UPDATE row trigger makes PostgreSQL fetch each old row for it).
-- Every table starts each run with the same rows: the stopped contacts'
-- (every tenth) already failed, as the attached table marks them, so that the
-- UPDATE changes the same 90% of the rows in each.
CREATE TRIGGER never BEFORE UPDATE ON bench.out_p FOR EACH ROW WHEN (NEW.direction = 'X')
    EXECUTE FUNCTION bench.never_called();
INSERT INTO bench.variants (workload, variant, ord, reset, query)
SELECT 'update', v, o,
       ARRAY[format('TRUNCATE %s, optout.events', t),
             format($q$INSERT INTO %s (id, contact_id, channel_id, direction, status, failed_reason, text, created_on)
                       SELECT c.id, c.id, 1, 'O', CASE WHEN c.id %% 10 = 0 THEN 'F' ELSE 'Q' END,
                              CASE WHEN c.id %% 10 = 0 THEN 'C' END,
                              'Flash sale: 20%% off today only. Reply STOP to opt out.', now()
                         FROM bench.broadcast_contacts c$q$, t),
             format('VACUUM ANALYZE %s', t)],
       format($q$UPDATE %s SET status = 'W', sent_on = now() WHERE status = 'Q'$q$, t)
  FROM (VALUES ('attached', 1, 'bench.out_a'), ('unattached', 2, 'bench.out_b'), ('trigger floor', 3, 'bench.out_p')) AS x (v, o, t);
SELECT s FROM bench.schedule('update', 3 * :runs) s \gexec
SELECT (SELECT count(*) FROM bench.out_a WHERE status = 'W') AS attached_wired,
       (SELECT count(*) FROM bench.out_b WHERE status = 'W') AS unattached_wired,
       (SELECT count(*) FROM bench.out_p WHERE status = 'W') AS floor_wired;
SELECT * FROM bench.medians('update');
SELECT * FROM bench.target('update', 'UPDATE queued -> wired, nothing made sendable, attached vs unattached',
                           'attached', 'unattached', '<=', 1.05)
UNION ALL SELECT * FROM bench.target('update', 'the floor: a BEFORE UPDATE trigger that never fires vs unattached (reference)',
                                     'trigger floor', 'unattached')
UNION ALL SELECT * FROM bench.target('update', 'the same, attached vs a BEFORE UPDATE trigger that never fires (reference)',
                                     'attached', 'trigger floor');

-- large_ledger (a reference, no target): sends on a ledger of :rows stops
-- (other contacts, added here): 300 rows, past the 256 contacts at which a
-- send escalates to one database-wide lock, versus 250 rows, below it. The
-- escalated send looks its contacts up one by one instead of reading the
-- whole ledger (which a ledger this large would cost about a second).
CALL bench.build('large_ledger: ' || :rows || ' more stops', format($q$
    INSERT INTO optout.stops (contact, source) SELECT 'other ' || i, 'manual' FROM generate_series(1, %s) AS i
    $q$, :rows));
VACUUM ANALYZE optout.stops;
INSERT INTO bench.variants (workload, variant, ord, reset, query)
SELECT 'large_ledger', v, o, ARRAY['TRUNCATE bench.out_a, optout.events'],
       format($q$INSERT INTO bench.out_a (id, contact_id, channel_id, direction, status, text, created_on)
                 SELECT c.id, c.id, 1, 'O', 'Q', 'Flash sale: 20%% off today only. Reply STOP to opt out.', now()
                   FROM bench.broadcast_contacts c WHERE c.id <= %s$q$, n)
  FROM (VALUES ('escalated', 1, 300), ('below', 2, 250)) AS x (v, o, n);
SELECT s FROM bench.schedule('large_ledger', 3 * :runs) s \gexec
SELECT * FROM bench.medians('large_ledger');
SELECT * FROM bench.target('large_ledger', 'INSERT of 300 rows (escalated) vs 250 rows (not), on a ledger of ' || to_char(:rows, 'FM999,999,999') || ' stops (reference)',
                           'escalated', 'below');

\o /dev/null
-- Every table this workload attached, so that the later workloads (partitioned,
-- latency, backfill) do not fail queued rows or count sends in them too.
SELECT optout.detach('bench.out_a'), optout.detach('bench.out_c');
\o
TRUNCATE optout.stops, optout.events;
