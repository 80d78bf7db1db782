-- Stops and starts applied once per statement: a statement with many
-- keyword messages has the outcome of applying them one by one, in order.
-- Also: what a statement collected is dropped with a rolled-back savepoint;
-- 'mark' marks the row as it is written (RETURNING shows the mark).
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE TABLE contacts (id integer PRIMARY KEY, status text NOT NULL DEFAULT 'A');
CREATE TABLE members (contact_id integer REFERENCES contacts, group_id integer, PRIMARY KEY (contact_id, group_id));
CREATE TABLE msgs (id bigserial PRIMARY KEY, contact_id integer, direction char(1), body text,
                   status text NOT NULL DEFAULT 'Q');
INSERT INTO contacts (id) SELECT generate_series(1, 6);
INSERT INTO members SELECT c, g FROM generate_series(1, 6) c, generate_series(2, 3) g;
SELECT optout.attach_contacts('contacts', 'id', 'status', 'S', 'A') > 0 AS contacts,
       optout.attach_groups('members', 'contact_id', 'group_id', stopped_group => '1') > 0 AS groups,
       optout.attach_inbound('msgs', 'body', 'contact_id', row_filter => '{"direction": "I"}') > 0 AS inbound,
       optout.attach_outbound('msgs', 'contact_id', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}', row_filter => '{"direction": "O"}') > 0 AS outbound;
INSERT INTO msgs (contact_id, direction, body) SELECT c, 'O', 'queued' FROM generate_series(1, 6) c;

-- One statement: 1 stops; 2 stops then starts; 3 starts then stops (3 was
-- stopped before); 4 stops twice; 5 asks for help; 6 says something else.
SELECT optout.stop('3', reason => 'before the statement');
INSERT INTO msgs (contact_id, direction, body) VALUES
    (1, 'I', 'STOP'), (2, 'I', 'stop'), (3, 'I', 'START'), (4, 'I', 'Stop please'), (5, 'I', 'HELP'),
    (2, 'I', 'START'), (3, 'I', 'STOP'), (4, 'I', 'STOP'), (6, 'I', 'thanks, see you');
SELECT c.id, c.status, array_agg(m.group_id ORDER BY m.group_id) AS groups, optout.is_stopped(c.id::text) AS stopped
  FROM contacts c LEFT JOIN members m ON m.contact_id = c.id GROUP BY c.id ORDER BY c.id;
SELECT contact_id, status FROM msgs WHERE direction = 'O' ORDER BY id;
SELECT kind, contact, keyword, detail FROM optout.events ORDER BY id;
SELECT contact, source, keyword FROM optout.stops ORDER BY contact;

-- A later AFTER trigger of the platform fails the statement inside a
-- savepoint: the STOP it carried is not applied later by another statement.
CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.body = 'boom' THEN RAISE EXCEPTION 'boom'; END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER zz_boom AFTER INSERT ON msgs FOR EACH ROW EXECUTE FUNCTION boom();
BEGIN;
SAVEPOINT s;
INSERT INTO msgs (contact_id, direction, body) VALUES (6, 'I', 'STOP'), (6, 'I', 'boom');
ROLLBACK TO SAVEPOINT s;
INSERT INTO msgs (contact_id, direction, body) VALUES (6, 'I', 'ok');
COMMIT;
SELECT optout.is_stopped('6') AS six_stopped, (SELECT status FROM contacts WHERE id = 6) AS six_status;
DROP TRIGGER zz_boom ON msgs;

-- 'mark' marks the row as it is written: RETURNING and the table show the
-- mark; an unblocked row is untouched.
INSERT INTO msgs (contact_id, direction, body) VALUES (1, 'O', 'late'), (6, 'O', 'fine') RETURNING contact_id, status;
SELECT contact_id, body, status FROM msgs WHERE body IN ('late', 'fine') ORDER BY id;
-- Inside one transaction, a second statement sees the mark.
BEGIN;
INSERT INTO msgs (contact_id, direction, body) VALUES (1, 'O', 'later');
SELECT status FROM msgs WHERE body = 'later';
COMMIT;

-- Many contacts in one statement (past the 256 contact locks: one lock).
INSERT INTO contacts (id) SELECT generate_series(100, 1099);
INSERT INTO members SELECT c, 2 FROM generate_series(100, 1099) c;
INSERT INTO msgs (contact_id, direction, body) SELECT c, 'O', 'queued' FROM generate_series(100, 1099) c;
INSERT INTO msgs (contact_id, direction, body)
SELECT c, 'I', CASE WHEN c % 2 = 0 THEN 'STOP' ELSE 'hello' END FROM generate_series(100, 1099) c;
SELECT count(*) FILTER (WHERE status = 'S') AS stopped, count(*) FILTER (WHERE status = 'A') AS active
  FROM contacts WHERE id >= 100;
SELECT group_id, count(*) FROM members WHERE contact_id >= 100 GROUP BY group_id ORDER BY group_id;
SELECT status, count(*) FROM msgs WHERE contact_id >= 100 AND direction = 'O' GROUP BY status ORDER BY status;
SELECT count(*) AS ledger_rows FROM optout.stops WHERE contact::integer >= 100;
SELECT kind, count(*) FROM optout.events WHERE contact::integer >= 100 GROUP BY kind ORDER BY kind;
-- and a broadcast to them marks exactly the stopped half
INSERT INTO msgs (contact_id, direction, body) SELECT c, 'O', 'broadcast' FROM generate_series(100, 1099) c;
SELECT status, count(*) FROM msgs WHERE body = 'broadcast' GROUP BY status ORDER BY status;

-- Without its statement trigger (a partition made while the event trigger
-- that adds it was disabled), what a statement collected is applied just
-- before commit, before the blocked sends are recorded.
DROP TRIGGER optout_flush ON msgs;
BEGIN;
INSERT INTO msgs (contact_id, direction, body) VALUES (5, 'I', 'STOP');
SELECT optout.is_stopped('5') AS five_stopped_before_commit;
COMMIT;
SELECT optout.is_stopped('5') AS five_stopped, (SELECT status FROM contacts WHERE id = 5) AS five_status;
SELECT optout._flush_triggers('msgs');

-- Provider opt-out errors are collected the same way: the stops of a
-- statement's receipts are applied at its end, together (7 twice, 9 once;
-- 30006 for 8 is not an opt-out), and a send later in the same transaction
-- is marked.
CREATE TABLE receipts (contact_id integer, code text);
SELECT optout.attach_delivery_errors('receipts', 'contact_id', code_column => 'code', provider => 'twilio') > 0 AS receipts;
SELECT tgname, tgtype FROM pg_trigger WHERE tgrelid = 'receipts'::regclass ORDER BY tgname;
INSERT INTO contacts (id) VALUES (7), (8), (9);
INSERT INTO members VALUES (7, 2), (8, 2), (9, 2);
SELECT max(id) AS last_event FROM optout.events \gset
BEGIN;
INSERT INTO receipts VALUES (7, '21610'), (8, '30006'), (9, '21610'), (7, '21610');
SELECT c.id, c.status, array_agg(m.group_id ORDER BY m.group_id) AS groups, optout.is_stopped(c.id::text) AS stopped
  FROM contacts c LEFT JOIN members m ON m.contact_id = c.id WHERE c.id BETWEEN 7 AND 9 GROUP BY c.id ORDER BY c.id;
INSERT INTO msgs (contact_id, direction, body) VALUES (7, 'O', 'after the receipts'), (8, 'O', 'after the receipts')
RETURNING contact_id, status;
COMMIT;
SELECT kind, contact, source, provider, code, detail FROM optout.events
 WHERE id > :last_event AND kind <> 'blocked' ORDER BY id;
SELECT optout.detach('receipts') AS receipts_detached;
DROP TABLE receipts;

-- Events are written without SQL, but a trigger a DBA puts on optout.events
-- still fires (such a table is written by an INSERT), for one event and for
-- a batch; a CHECK constraint added to it is enforced. It runs as optout's
-- owner with search_path = pg_catalog, pg_temp, so it names its schema.
CREATE TABLE event_log (kind text, contact text);
CREATE FUNCTION log_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.event_log VALUES (NEW.kind, NEW.contact); RETURN NEW; END $$;
CREATE TRIGGER log_event AFTER INSERT ON optout.events FOR EACH ROW EXECUTE FUNCTION log_event();
SELECT optout.stop('7') AS again;
INSERT INTO msgs (contact_id, direction, body) VALUES (8, 'I', 'STOP'), (9, 'I', 'START');
SELECT * FROM event_log;
DROP TRIGGER log_event ON optout.events;
ALTER TABLE optout.events ADD CONSTRAINT no_contact_42 CHECK (contact <> '42');
\set VERBOSITY terse
SELECT optout.stop('42');
-- The constraints are parsed once a backend, kept by their text: the same
-- name on another text is the new one.
ALTER TABLE optout.events DROP CONSTRAINT no_contact_42, ADD CONSTRAINT no_contact_42 CHECK (contact <> '43');
SELECT optout.stop('42') AS stopped_42;
SELECT optout.stop('43');
\set VERBOSITY default
ALTER TABLE optout.events DROP CONSTRAINT no_contact_42;
SELECT optout.stop('43') AS stopped_43;
-- So are its columns and their defaults, until the table is altered: a
-- changed default, a column added with one, then dropped, are what the next
-- events get.
ALTER TABLE optout.events ALTER COLUMN at SET DEFAULT '2000-01-01 00:00+00';
ALTER TABLE optout.events ADD COLUMN note text DEFAULT 'added';
SELECT optout.stop('44') AS stopped_44;
SELECT contact, at = '2000-01-01 00:00+00' AS default_changed, note FROM optout.events WHERE contact = '44';
ALTER TABLE optout.events DROP COLUMN note, ALTER COLUMN at SET DEFAULT pg_catalog.now();
SELECT optout.start('44', reason => 'test') AS started_44;
SELECT contact, kind, at = '2000-01-01 00:00+00' AS default_changed FROM optout.events WHERE contact = '44' ORDER BY id;
-- The defaults are kept planned (a SQL function inlined): a function
-- replaced, or a type changed, is what the next events get.
CREATE FUNCTION public.event_note() RETURNS text LANGUAGE sql AS $$ SELECT 'first' $$;
CREATE DOMAIN public.note_text AS text;
ALTER TABLE optout.events ADD COLUMN note public.note_text DEFAULT public.event_note();
SELECT optout.stop('45') AS stopped_45;
CREATE OR REPLACE FUNCTION public.event_note() RETURNS text LANGUAGE sql AS $$ SELECT 'second' $$;
SELECT optout.start('45', reason => 'test') AS started_45;
\set VERBOSITY terse
ALTER DOMAIN public.note_text ADD CONSTRAINT not_third CHECK (VALUE <> 'third');
CREATE OR REPLACE FUNCTION public.event_note() RETURNS text LANGUAGE sql AS $$ SELECT 'third' $$;
SELECT optout.stop('45');
\set VERBOSITY default
SELECT contact, kind, note FROM optout.events WHERE contact = '45' ORDER BY id;
ALTER TABLE optout.events DROP COLUMN note;
DROP DOMAIN public.note_text;
DROP FUNCTION public.event_note();
-- The ledger's new rows are written without SQL as well, the same way: a
-- trigger a DBA puts on optout.stops fires (the table is then written by
-- an INSERT), for one stop and for a batch; a CHECK constraint added to it
-- is enforced, and a column added with a default gets it.
TRUNCATE event_log;
CREATE FUNCTION log_stop() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.event_log VALUES ('ledger', NEW.contact); RETURN NEW; END $$;
CREATE TRIGGER log_stop AFTER INSERT ON optout.stops FOR EACH ROW EXECUTE FUNCTION log_stop();
SELECT optout.stop('46') AS stopped_46;
INSERT INTO msgs (contact_id, direction, body) VALUES (47, 'I', 'STOP'), (48, 'I', 'STOP');
SELECT * FROM event_log ORDER BY contact;
DROP TRIGGER log_stop ON optout.stops;
ALTER TABLE optout.stops ADD CONSTRAINT no_keyword_end CHECK (keyword IS DISTINCT FROM 'end');
ALTER TABLE optout.stops ADD COLUMN note text;
ALTER TABLE optout.stops ALTER COLUMN note SET DEFAULT 'added';
\set VERBOSITY terse
INSERT INTO msgs (contact_id, direction, body) VALUES (49, 'I', 'END');
\set VERBOSITY default
INSERT INTO msgs (contact_id, direction, body) VALUES (49, 'I', 'STOP');
SELECT contact, keyword, note, stopped_at IS NOT NULL AS has_time FROM optout.stops
 WHERE contact IN ('46', '47', '48', '49') ORDER BY contact;
ALTER TABLE optout.stops DROP CONSTRAINT no_keyword_end, DROP COLUMN note;
-- A unique index a DBA adds is no arbiter of the ledger's write: a stop that
-- breaks it fails (and its message with it) rather than leave no row; only
-- the ledger's own key gives way to a row already there.
CREATE UNIQUE INDEX one_end_stop ON optout.stops (keyword) WHERE keyword = 'end';
INSERT INTO msgs (contact_id, direction, body) VALUES (50, 'I', 'END');
\set VERBOSITY terse
INSERT INTO msgs (contact_id, direction, body) VALUES (51, 'I', 'END');
\set VERBOSITY default
-- The same through the INSERT (the ledger given a trigger).
CREATE TRIGGER log_stop AFTER INSERT ON optout.stops FOR EACH ROW EXECUTE FUNCTION log_stop();
\set VERBOSITY terse
INSERT INTO msgs (contact_id, direction, body) VALUES (52, 'I', 'END');
\set VERBOSITY default
DROP TRIGGER log_stop ON optout.stops;
SELECT contact, keyword FROM optout.stops WHERE contact IN ('50', '51', '52') ORDER BY contact;
SELECT count(*) AS messages_51_52 FROM msgs WHERE contact_id IN (51, 52);
DROP INDEX optout.one_end_stop;
DROP TABLE event_log;
DROP FUNCTION log_event(), log_stop();

SELECT optout.detach('msgs') + optout.detach('contacts') + optout.detach('members') AS detached;
SELECT count(*) AS optout_triggers_left FROM pg_trigger WHERE tgname LIKE 'optout%';
DROP TABLE msgs, members, contacts;
DROP FUNCTION boom();
DROP EXTENSION optout;
