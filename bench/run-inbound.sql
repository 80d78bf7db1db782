-- Workloads "inbound" and "inbound_plain" (below) of bench/run.sh (psql
-- variables :rows, :contacts, :runs, :datadir).
-- COPY of :rows inbound messages (5% keyword messages, the rest
-- conversation) from :contacts contacts, each in 10 of 50 groups, into
--   attached    bench.msgs_in_a: attach_inbound + attach_outbound (same
--               table, RapidPro's way) + attach_contacts + attach_groups
--   unattached  bench.msgs_in_b: the same table, no trigger
--   by hand     bench.msgs_in_h, no trigger, then what the stops change done
--               by the platform itself, set-based, in the COPY's transaction
--               (no optout): the contacts that optout stops (listed once,
--               with optout.classify, in bench.inbound_stops) set stopped,
--               their other memberships deleted, the Stopped group joined
--               and their queued messages failed, on bench.contacts_h and
--               bench.members_h; no classification, no record, no lock
--   required    bench.msgs_in_r: "by hand" on a table with a BEFORE INSERT
--               row trigger whose WHEN classifies every row
--               (optout.classify(text, 'standard'), the attachment's mode)
--               and never holds, then, in the same transaction, the record
--               an attached run writes (its events and ledger rows, kept
--               from one untimed attached run) by plain INSERTs
--               (bench.write_record): the floor of the work the product
--               requires, without optout's triggers, locks or batching
-- Every STOP moves its contact (status, groups, queued messages); the state
-- is restored before every run: the contacts and memberships reloaded, the
-- ledger and events emptied, the message table reloaded with its history (one
-- sent message per contact).
\set ON_ERROR_STOP 1

CALL bench.build('inbound: ' || :contacts || ' contacts, ' || :contacts * 10 || ' memberships', format($q$
    CREATE TABLE bench.contacts_init AS
    SELECT i AS id, 'A'::char(1) AS status, timestamptz '2025-06-01' AS modified_on FROM generate_series(1, %1$s) AS i;
    CREATE TABLE bench.members_init AS
    SELECT c AS contact_id, g + 10 * (c %% 5) AS group_id FROM generate_series(1, %1$s) AS c, generate_series(1, 10) AS g;
    CREATE TABLE bench.contacts (id integer PRIMARY KEY, status char(1) NOT NULL, modified_on timestamptz);
    CREATE TABLE bench.members (contact_id integer NOT NULL, group_id integer NOT NULL, PRIMARY KEY (contact_id, group_id));
    CREATE INDEX ON bench.members (group_id);
    INSERT INTO bench.contacts SELECT * FROM bench.contacts_init;
    INSERT INTO bench.members SELECT * FROM bench.members_init;
    $q$, :contacts));

-- History: one sent message per contact; the inbound traffic to COPY.
CALL bench.build('inbound: ' || :rows || ' messages to COPY', format($q$
    CREATE TABLE bench.history_init AS
    SELECT -c::bigint AS id, c AS contact_id, 1 + c %% 3 AS channel_id, 'O'::char(1) AS direction,
           'S'::char(1) AS status, NULL::char(1) AS failed_reason, timestamptz '2025-12-01' AS sent_on,
           'Your appointment is confirmed. Reply STOP to opt out.' AS text, timestamptz '2025-12-01' AS created_on
      FROM generate_series(1, %1$s) AS c;
    COPY (SELECT i, bench.contact_of(i, %1$s), 1 + i %% 3, 'I', 'H', NULL, NULL,
                 CASE WHEN i %% 20 = 0 THEN bench.keyword_message(i / 20) ELSE bench.conversation(i) END,
                 timestamptz '2026-01-01' + i * interval '1 second'
            FROM generate_series(1, %2$s) AS i) TO %3$L;
    $q$, :contacts, :rows, :'datadir' || '/inbound.copy'));
-- The contacts the COPY stops (for "by hand"): an opt-out with no opt-in
-- after it.
CALL bench.build('inbound: the contacts its messages stop', format($q$
    CREATE TABLE bench.inbound_stops AS
    SELECT contact_id FROM (
        SELECT DISTINCT ON (c) c AS contact_id, optout.classify(bench.keyword_message(i / 20)) AS intent
          FROM generate_series(20, %2$s, 20) AS i, LATERAL (SELECT bench.contact_of(i, %1$s) AS c) AS x
         WHERE optout.classify(bench.keyword_message(i / 20)) IN ('opt_out', 'opt_in')
         ORDER BY c, i DESC) AS last WHERE intent = 'opt_out';
    CREATE TABLE bench.contacts_h (LIKE bench.contacts INCLUDING ALL);
    CREATE TABLE bench.members_h (LIKE bench.members INCLUDING ALL);
    $q$, :contacts, :rows));
\o /dev/null
SELECT bench.create_msgs('bench.msgs_in_a'), bench.create_msgs('bench.msgs_in_b'), bench.create_msgs('bench.msgs_in_h'),
       bench.create_msgs('bench.msgs_in_r');

SELECT optout.attach_contacts('bench.contacts', 'id', 'status', 'S', 'A', touch_column => 'modified_on') IS NOT NULL AS contacts_attached;
SELECT optout.attach_groups('bench.members', 'contact_id', 'group_id', stopped_group => '0') IS NOT NULL AS groups_attached;
SELECT optout.attach_inbound('bench.msgs_in_a', 'text', 'contact_id', 'channel_id',
                             row_filter => '{"direction": "I"}') IS NOT NULL AS inbound_attached;
SELECT optout.attach_outbound('bench.msgs_in_a', 'contact_id', 'channel_id', on_blocked => 'mark',
                              mark => '{"status": "F", "failed_reason": "C", "sent_on": null}',
                              queued => '{"status": ["I", "Q", "E"]}', row_filter => '{"direction": "O"}') IS NOT NULL AS outbound_attached;
\o
CREATE TRIGGER classify BEFORE INSERT ON bench.msgs_in_r FOR EACH ROW
    WHEN (NEW.direction = 'I' AND optout.classify(NEW.text, 'standard')::text = '')
    EXECUTE FUNCTION bench.never_called();

-- The statements a stop makes the platform's rows go through, by hand ("by
-- hand" and "required", on their own message table).
CREATE FUNCTION bench.inbound_by_hand(msgs text) RETURNS text LANGUAGE sql AS $f$
    SELECT format($q$
        UPDATE bench.contacts_h c SET status = 'S', modified_on = now() FROM bench.inbound_stops s
         WHERE c.id = s.contact_id AND c.status <> 'S';
        DELETE FROM bench.members_h m USING bench.inbound_stops s WHERE m.contact_id = s.contact_id AND m.group_id <> 0;
        INSERT INTO bench.members_h SELECT contact_id, 0 FROM bench.inbound_stops ON CONFLICT DO NOTHING;
        UPDATE %s x SET status = 'F', failed_reason = 'C', sent_on = NULL FROM bench.inbound_stops s
         WHERE x.contact_id = s.contact_id AND x.direction = 'O' AND x.status IN ('I', 'Q', 'E')$q$, msgs)
$f$;

INSERT INTO bench.variants (workload, variant, ord, reset, query) VALUES
    ('inbound', 'attached', 1,
     ARRAY['TRUNCATE bench.msgs_in_a, bench.contacts, bench.members, optout.stops, optout.events',
           'INSERT INTO bench.contacts SELECT * FROM bench.contacts_init',
           'INSERT INTO bench.members SELECT * FROM bench.members_init',
           'INSERT INTO bench.msgs_in_a SELECT * FROM bench.history_init',
           'VACUUM ANALYZE bench.msgs_in_a, bench.contacts, bench.members, optout.stops, optout.events'],
     format('COPY bench.msgs_in_a FROM %L', :'datadir' || '/inbound.copy')),
    ('inbound', 'unattached', 2,
     ARRAY['TRUNCATE bench.msgs_in_b',
           'INSERT INTO bench.msgs_in_b SELECT * FROM bench.history_init',
           'VACUUM ANALYZE bench.msgs_in_b'],
     format('COPY bench.msgs_in_b FROM %L', :'datadir' || '/inbound.copy')),
    ('inbound', 'by hand', 3,
     ARRAY['TRUNCATE bench.msgs_in_h, bench.contacts_h, bench.members_h',
           'INSERT INTO bench.contacts_h SELECT * FROM bench.contacts_init',
           'INSERT INTO bench.members_h SELECT * FROM bench.members_init',
           'INSERT INTO bench.msgs_in_h SELECT * FROM bench.history_init',
           'VACUUM ANALYZE bench.msgs_in_h, bench.contacts_h, bench.members_h'],
     format('COPY bench.msgs_in_h FROM %L;', :'datadir' || '/inbound.copy') || bench.inbound_by_hand('bench.msgs_in_h')),
    ('inbound', 'required', 4,
     ARRAY['TRUNCATE bench.msgs_in_r, bench.contacts_h, bench.members_h, bench.events_floor, bench.stops_floor',
           'INSERT INTO bench.contacts_h SELECT * FROM bench.contacts_init',
           'INSERT INTO bench.members_h SELECT * FROM bench.members_init',
           'INSERT INTO bench.msgs_in_r SELECT * FROM bench.history_init',
           'VACUUM ANALYZE bench.msgs_in_r, bench.contacts_h, bench.members_h, bench.events_floor, bench.stops_floor'],
     format('COPY bench.msgs_in_r FROM %L;', :'datadir' || '/inbound.copy') || bench.inbound_by_hand('bench.msgs_in_r')
     || '; ' || bench.write_record('inbound', stops => true));

-- What an attached run records (its events and ledger rows), kept for
-- "required": one untimed run.
SELECT bench.untimed('inbound') \gexec
SELECT bench.keep_record('inbound', stops => true);

SELECT s FROM bench.schedule('inbound', :runs) s \gexec

-- What the last attached run did.
SELECT (SELECT count(*) FROM optout.events WHERE kind = 'stop') AS stops,
       (SELECT count(*) FROM optout.events WHERE kind = 'start') AS starts,
       (SELECT count(*) FROM optout.events WHERE kind = 'help') AS helps,
       (SELECT count(*) FROM bench.contacts WHERE status = 'S') AS contacts_stopped_now,
       (SELECT count(*) FROM bench.members WHERE group_id = 0) AS in_stopped_group,
       (SELECT count(*) FROM bench.members) AS memberships_left;
-- And the last "by hand" run: the same contacts stopped, the same memberships.
SELECT (SELECT count(*) FROM bench.contacts_h WHERE status = 'S') AS by_hand_stopped,
       (SELECT count(*) FROM bench.members_h WHERE group_id = 0) AS by_hand_in_stopped_group,
       (SELECT count(*) FROM bench.members_h) AS by_hand_memberships_left;

SELECT * FROM bench.medians('inbound');
SELECT * FROM bench.target('inbound', 'COPY inbound, attached vs unattached', 'attached', 'unattached', '<=', 1.5)
UNION ALL SELECT * FROM bench.target('inbound', 'the floor: unattached, with the stops'' changes done by hand vs unattached (reference)',
                                     'by hand', 'unattached')
UNION ALL SELECT * FROM bench.target('inbound', 'COPY inbound, attached vs the stops by hand (reference)', 'attached', 'by hand')
UNION ALL SELECT * FROM bench.target('inbound', 'the floor of the required work: by hand, every row classified in a trigger''s WHEN, the record by plain INSERTs vs unattached (reference)',
                                     'required', 'unattached')
UNION ALL SELECT * FROM bench.target('inbound', 'COPY inbound, attached vs the required work (reference)', 'attached', 'required');
SELECT * FROM bench.figure('inbound', 'COPY inbound: attached − unattached, per keyword message (reference)',
                           round(((bench.median('inbound', 'attached') - bench.median('inbound', 'unattached')) * 1000
                                  / (:rows / 20))::numeric), 'µs');

-- inbound_plain: a COPY of :rows ordinary inbound messages (the
-- conversation bodies, each one that optout.classify() reads as anything,
-- such as a lone "No", replaced by 'ok thanks': no stop, start, help or
-- review), from the same contacts, into
--   attached        bench.msgs_in_a, attached as above
--   unattached      bench.msgs_in_b
--   floor           bench.msgs_in_f: a BEFORE INSERT row trigger that only
--                   returns NEW (PL/pgSQL): what any BEFORE ROW trigger costs
--                   a COPY (row by row instead of in batches) plus a trivial
--                   call per row
--   floor, no call  bench.msgs_in_n: the same trigger with a WHEN that never
--                   holds: the batches lost, and nothing called
-- The contacts, memberships and ledger are restored once (the last attached
-- "inbound" run stopped contacts); these messages change none of them, so
-- before every run only the message table (reloaded with its history) and
-- optout.events are reset.
CALL bench.build('inbound_plain: ' || :rows || ' ordinary messages to COPY', format($q$
    COPY (SELECT i, bench.contact_of(i, %1$s), 1 + i %% 3, 'I', 'H', NULL, NULL,
                 CASE WHEN optout.classify(b) IS NULL THEN b ELSE 'ok thanks' END,
                 timestamptz '2026-01-01' + i * interval '1 second'
            FROM generate_series(1, %2$s) AS i, LATERAL (SELECT bench.conversation(i) AS b) AS x) TO %3$L;
    $q$, :contacts, :rows, :'datadir' || '/inbound_plain.copy'));
\o /dev/null
SELECT bench.create_msgs('bench.msgs_in_f'), bench.create_msgs('bench.msgs_in_n');
\o
CREATE FUNCTION bench.inbound_return_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN NEW;
END
$$;
CREATE TRIGGER floor BEFORE INSERT ON bench.msgs_in_f FOR EACH ROW EXECUTE FUNCTION bench.inbound_return_new();
CREATE TRIGGER floor BEFORE INSERT ON bench.msgs_in_n FOR EACH ROW WHEN (NEW.direction = 'X')
    EXECUTE FUNCTION bench.never_called();
TRUNCATE bench.msgs_in_a, bench.contacts, bench.members, optout.stops, optout.events;
INSERT INTO bench.contacts SELECT * FROM bench.contacts_init;
INSERT INTO bench.members SELECT * FROM bench.members_init;
VACUUM ANALYZE bench.contacts, bench.members, optout.stops;

INSERT INTO bench.variants (workload, variant, ord, reset, query)
SELECT 'inbound_plain', v, o,
       ARRAY[format('TRUNCATE %s, optout.events', t), format('INSERT INTO %s SELECT * FROM bench.history_init', t),
             format('VACUUM ANALYZE %s, optout.events', t)],
       format('COPY %s FROM %L', t, :'datadir' || '/inbound_plain.copy')
  FROM (VALUES ('attached', 1, 'bench.msgs_in_a'), ('unattached', 2, 'bench.msgs_in_b'),
               ('floor', 3, 'bench.msgs_in_f'), ('floor, no call', 4, 'bench.msgs_in_n')) AS x (v, o, t);

SELECT s FROM bench.schedule('inbound_plain', :runs) s \gexec

-- What the last attached run did: nothing but store the messages.
SELECT (SELECT count(*) FROM optout.events) AS events, (SELECT count(*) FROM optout.stops) AS stops,
       (SELECT count(*) FROM bench.contacts WHERE status = 'S') AS contacts_stopped_now,
       (SELECT count(*) FROM bench.msgs_in_a WHERE direction = 'I') AS stored;

SELECT * FROM bench.medians('inbound_plain');
SELECT * FROM bench.target('inbound_plain', 'COPY of ordinary inbound messages only, attached vs unattached',
                           'attached', 'unattached', '<=', 1.1)
UNION ALL SELECT * FROM bench.target('inbound_plain', 'the floor: a BEFORE INSERT row trigger that returns NEW vs unattached (reference)',
                                     'floor', 'unattached')
UNION ALL SELECT * FROM bench.target('inbound_plain', 'the floor without the call: a BEFORE INSERT row trigger never called vs unattached (reference)',
                                     'floor, no call', 'unattached')
UNION ALL SELECT * FROM bench.target('inbound_plain', 'attached vs the floor (reference)', 'attached', 'floor');

\o /dev/null
SELECT optout.detach('bench.msgs_in_a'), optout.detach('bench.contacts'), optout.detach('bench.members');
\o
TRUNCATE optout.stops, optout.events;
