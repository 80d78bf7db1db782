-- An error or a cancel at any point of optout's work never leaves the
-- backend enforcing less: after each fault, in the same backend, a STOP still
-- stops (ledger, status, Stopped group, queued messages failed), a send to
-- the stopped contact is still marked, and a START still lifts the stop.
-- Faults come from the test hook optout.fault_injection ('POINT' raises an
-- error there, 'POINT:cancel' cancels the statement there).
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE TABLE f_contacts (id int PRIMARY KEY, status text NOT NULL DEFAULT 'A');
CREATE TABLE f_members (contact_id int, group_id int);
CREATE TABLE f_msgs (id serial PRIMARY KEY, contact_id int, direction text, body text, status text DEFAULT 'Q');
INSERT INTO f_contacts SELECT generate_series(1, 400);
INSERT INTO f_members SELECT c, 1 FROM generate_series(1, 40) c;
SELECT optout.attach_contacts('f_contacts', 'id', 'status', 'S', 'A') > 0 AS contacts,
       optout.attach_groups('f_members', 'contact_id', 'group_id', stopped_group => '99') > 0 AS groups,
       optout.attach_inbound('f_msgs', 'body', 'contact_id', row_filter => '{"direction": "I"}') > 0 AS inbound,
       optout.attach_outbound('f_msgs', 'contact_id', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}', row_filter => '{"direction": "O"}') > 0 AS outbound;

-- What optout has done for contact c.
CREATE FUNCTION enforced(c int) RETURNS text LANGUAGE sql AS $$
    SELECT format('stopped=%s status=%s groups=%s queued=%s failed=%s', optout.is_stopped(c::text),
                  (SELECT status FROM f_contacts WHERE id = c),
                  (SELECT coalesce(string_agg(group_id::text, ',' ORDER BY group_id), '-') FROM f_members WHERE contact_id = c),
                  (SELECT count(*) FROM f_msgs WHERE contact_id = c AND direction = 'O' AND status = 'Q'),
                  (SELECT count(*) FROM f_msgs WHERE contact_id = c AND direction = 'O' AND status = 'F')) $$;

-- One round of enforcement for contact c, statement by statement: a queued
-- message, a STOP, a send after it, a START.
CREATE FUNCTION round(c int) RETURNS TABLE (step text, result text) LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO f_msgs (contact_id, direction, body) VALUES (c, 'O', 'queued before');
    INSERT INTO f_msgs (contact_id, direction, body) VALUES (c, 'I', 'STOP');
    step := 'after STOP'; result := enforced(c); RETURN NEXT;
    INSERT INTO f_msgs (contact_id, direction, body) VALUES (c, 'O', 'sent after');
    step := 'send after'; result := enforced(c); RETURN NEXT;
    INSERT INTO f_msgs (contact_id, direction, body) VALUES (c, 'I', 'START');
    step := 'after START'; result := enforced(c); RETURN NEXT;
END $$;

-- Optout's caches are built; each fault below comes after they are, except
-- where a change invalidates them first.
SELECT * FROM round(1);

-- 1. A load of the attachments cache that fails (a column an outbound
--    attachment needs was renamed behind optout's back, its event trigger
--    bypassed): a clear error, not a cache marked valid with nothing in it.
SET session_replication_role = replica;
ALTER TABLE f_msgs RENAME COLUMN status TO state;
RESET session_replication_role;
INSERT INTO f_msgs (contact_id, direction, body) VALUES (2, 'O', 'queued');
INSERT INTO f_msgs (contact_id, direction, body) VALUES (2, 'I', 'STOP');
SELECT optout.stop('2');
SELECT optout.is_stopped('2');
SET session_replication_role = replica;
ALTER TABLE f_msgs RENAME COLUMN state TO status;
RESET session_replication_role;
-- put back, the same backend applies a stop to every attached table
SELECT optout.stop('2') AS stopped, enforced(2);
SELECT optout.start('2', reason => 'test') AS started;
SELECT * FROM round(2);

-- 2. Each point, an error then a cancel. The caches are invalidated first
--    where the point is in their load.
UPDATE optout.attachments SET created_at = created_at WHERE false;
SET optout.fault_injection = 'cache_load';
INSERT INTO f_msgs (contact_id, direction, body) VALUES (3, 'I', 'STOP');
RESET optout.fault_injection;
SELECT enforced(3);
SELECT * FROM round(3);

UPDATE optout.attachments SET created_at = created_at WHERE false;
SET optout.fault_injection = 'cache_load:cancel';
INSERT INTO f_msgs (contact_id, direction, body) VALUES (4, 'I', 'STOP');
RESET optout.fault_injection;
SELECT enforced(4);
SELECT * FROM round(4);

UPDATE optout.keywords SET note = note WHERE false;
SET optout.fault_injection = 'keywords_load';
INSERT INTO f_msgs (contact_id, direction, body) VALUES (5, 'I', 'STOP');
RESET optout.fault_injection;
SELECT enforced(5);
SELECT * FROM round(5);

UPDATE optout.keywords SET note = note WHERE false;
SET optout.fault_injection = 'keywords_load:cancel';
INSERT INTO f_msgs (contact_id, direction, body) VALUES (6, 'I', 'STOP');
RESET optout.fault_injection;
SELECT enforced(6);
SELECT * FROM round(6);

-- (How an event row is filled: an ALTER TABLE of optout.events, here one
-- that changes nothing, invalidates it.)
ALTER TABLE optout.events ALTER COLUMN at SET DEFAULT pg_catalog.now();
SET optout.fault_injection = 'events_columns';
INSERT INTO f_msgs (contact_id, direction, body) VALUES (14, 'I', 'STOP');
RESET optout.fault_injection;
SELECT enforced(14);
SELECT * FROM round(14);

ALTER TABLE optout.events ALTER COLUMN at SET DEFAULT pg_catalog.now();
SET optout.fault_injection = 'events_columns:cancel';
INSERT INTO f_msgs (contact_id, direction, body) VALUES (15, 'I', 'STOP');
RESET optout.fault_injection;
SELECT enforced(15);
SELECT * FROM round(15);

-- (How a ledger row is filled, kept the same way: an ALTER TABLE of
-- optout.stops invalidates it.)
ALTER TABLE optout.stops ALTER COLUMN stopped_at SET DEFAULT pg_catalog.now();
SET optout.fault_injection = 'stops_columns';
INSERT INTO f_msgs (contact_id, direction, body) VALUES (16, 'I', 'STOP');
RESET optout.fault_injection;
SELECT enforced(16);
SELECT * FROM round(16);

ALTER TABLE optout.stops ALTER COLUMN stopped_at SET DEFAULT pg_catalog.now();
SET optout.fault_injection = 'stops_columns:cancel';
INSERT INTO f_msgs (contact_id, direction, body) VALUES (17, 'I', 'STOP');
RESET optout.fault_injection;
SELECT enforced(17);
SELECT * FROM round(17);

INSERT INTO f_msgs (contact_id, direction, body) VALUES (7, 'O', 'queued');
SET optout.fault_injection = 'apply_events';
INSERT INTO f_msgs (contact_id, direction, body) VALUES (7, 'I', 'STOP');
SET optout.fault_injection = 'apply_events:cancel';
SELECT optout.stop('7');
RESET optout.fault_injection;
SELECT enforced(7);
SELECT * FROM round(7);

INSERT INTO f_msgs (contact_id, direction, body) VALUES (8, 'O', 'queued');
SET optout.fault_injection = 'apply_ledger';
INSERT INTO f_msgs (contact_id, direction, body) VALUES (8, 'I', 'STOP');
SET optout.fault_injection = 'apply_ledger:cancel';
SELECT optout.stop('8');
RESET optout.fault_injection;
SELECT enforced(8);
SELECT * FROM round(8);

INSERT INTO f_msgs (contact_id, direction, body) VALUES (9, 'O', 'queued');
SET optout.fault_injection = 'apply_platform';
INSERT INTO f_msgs (contact_id, direction, body) VALUES (9, 'I', 'STOP');
SET optout.fault_injection = 'apply_platform:cancel';
SELECT optout.stop('9');
RESET optout.fault_injection;
SELECT enforced(9);
SELECT * FROM round(9);

-- The same inside a transaction that goes on after the error (a savepoint):
-- what the failed statement collected is gone, the rest holds.
BEGIN;
SAVEPOINT s;
SET LOCAL optout.fault_injection = 'apply_platform';
INSERT INTO f_msgs (contact_id, direction, body) VALUES (10, 'I', 'STOP'), (11, 'I', 'STOP');
ROLLBACK TO SAVEPOINT s;
SET LOCAL optout.fault_injection = '';
INSERT INTO f_msgs (contact_id, direction, body) VALUES (11, 'I', 'STOP');
COMMIT;
SELECT enforced(10) AS contact_10, enforced(11) AS contact_11;

-- 3. A bulk send reads the whole ledger once it has escalated: a fault
--    there, then the same send marks every stopped contact.
SELECT optout.stop('12'), optout.stop('13');
SET optout.fault_injection = 'send_ledger_read';
INSERT INTO f_msgs (contact_id, direction, body) SELECT c, 'O', 'bulk' FROM generate_series(100, 400) c;
INSERT INTO f_msgs (contact_id, direction, body) SELECT c, 'O', 'bulk' FROM generate_series(12, 400) c;
SET optout.fault_injection = 'send_ledger_read:cancel';
INSERT INTO f_msgs (contact_id, direction, body) SELECT c, 'O', 'bulk' FROM generate_series(12, 400) c;
RESET optout.fault_injection;
INSERT INTO f_msgs (contact_id, direction, body) SELECT c, 'O', 'bulk' FROM generate_series(12, 400) c;
SELECT status, count(*), min(contact_id), max(contact_id) FROM f_msgs WHERE body = 'bulk' GROUP BY status ORDER BY status;

-- 4. The claim of a confirmation (issue #17) fails: the send fails with it,
--    nothing is stored or recorded, and the confirmation is still there to
--    send; then exactly one goes out.
CREATE TABLE f_conf (contact_id int, kind text, status text DEFAULT 'Q');
SELECT optout.attach_outbound('f_conf', 'contact_id', on_blocked => 'mark', mark => '{"status": "F"}',
                              confirmation => '{"kind": "confirmation"}') > 0 AS confirmable;
INSERT INTO f_msgs (contact_id, direction, body) VALUES (20, 'I', 'STOP');
SET optout.fault_injection = 'reply_claim';
INSERT INTO f_conf VALUES (20, 'confirmation');
SET optout.fault_injection = 'reply_claim:cancel';
INSERT INTO f_conf VALUES (20, 'confirmation');
RESET optout.fault_injection;
SELECT count(*) AS rows_stored, (SELECT count(*) FROM optout.events WHERE kind = 'confirmation') AS recorded FROM f_conf;
INSERT INTO f_conf VALUES (20, 'confirmation'), (20, 'confirmation'), (20, 'promo');
SELECT kind, status, count(*) FROM f_conf GROUP BY 1, 2 ORDER BY 1, 2;
SELECT optout.detach('f_conf') AS detached;
DROP TABLE f_conf;

-- Nothing was left behind: the ledger holds the stops that committed, and
-- this backend holds no lock of optout's between statements.
SELECT contact, channel, source FROM optout.stops ORDER BY contact::int;
SELECT count(*) AS optout_locks_held FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();

-- The test hook is for superusers only.
CREATE ROLE regress_optout_faults;
SET ROLE regress_optout_faults;
SET optout.fault_injection = 'apply_ledger';
RESET ROLE;
DROP ROLE regress_optout_faults;

SELECT optout.detach('f_msgs') + optout.detach('f_contacts') + optout.detach('f_members') AS detached;
DROP TABLE f_contacts, f_members, f_msgs;
DROP FUNCTION round(int);
DROP FUNCTION enforced(int);
DROP EXTENSION optout;
