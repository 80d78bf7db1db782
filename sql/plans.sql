-- A stop for a few contacts runs each statement's generic plan, made once
-- per backend; the plan is made again when a table it reads has grown past
-- twice its size since (PostgreSQL itself replans only after an ANALYZE or
-- DDL, and a plan made on a nearly empty table scans all of it). A plan
-- that reads more tables than are watched (a table of many partitions) is
-- not used: the statement is planned at each execution, as before.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE TABLE contacts (id integer PRIMARY KEY, status text NOT NULL DEFAULT 'A');
CREATE TABLE msgs (id bigserial PRIMARY KEY, contact_id integer, direction char(1), body text,
                   status text NOT NULL DEFAULT 'Q');
CREATE INDEX ON msgs (contact_id);
INSERT INTO contacts (id) SELECT generate_series(1, 20000);
SELECT optout.attach_contacts('contacts', 'id', 'status', 'S', 'A') > 0 AS contacts,
       optout.attach_inbound('msgs', 'body', 'contact_id', row_filter => '{"direction": "I"}') > 0 AS inbound,
       optout.attach_outbound('msgs', 'contact_id', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": ["Q", "I", "E"]}', row_filter => '{"direction": "O"}') > 0 AS outbound;
INSERT INTO msgs (contact_id, direction, body) VALUES (1, 'O', 'queued'), (2, 'O', 'queued'), (3, 'O', 'queued');
ANALYZE msgs;

-- Sequential scans of a table in this transaction (pending statistics),
-- and those an inbound STOP of a contact makes.
CREATE FUNCTION seq_scans(t regclass) RETURNS bigint LANGUAGE sql
    AS $$ SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = t $$;
CREATE FUNCTION stop_seq_scans(t regclass, contact integer) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint := seq_scans(t);
BEGIN
    INSERT INTO msgs (contact_id, direction, body) VALUES (contact, 'I', 'STOP');
    RETURN seq_scans(t) - n;
END $$;
CREATE TEMP TABLE before (n bigint);

-- The first stop plans "fail the queued messages" on a one-page table: a
-- sequential scan.
SELECT stop_seq_scans('msgs', 1) AS seq_scans;

-- The table grows a thousand times, with no ANALYZE: the next stop in the
-- same backend plans again, and reads msgs by its index.
INSERT INTO msgs (contact_id, direction, body, status)
    SELECT c % 20000 + 1, 'O', 'sent', 'D' FROM generate_series(1, 200000) c;
SELECT stop_seq_scans('msgs', 2) AS seq_scans;

-- After an ANALYZE (PostgreSQL's own replan) the next stop still enforces.
ANALYZE msgs;
INSERT INTO msgs (contact_id, direction, body) VALUES (3, 'I', 'STOP');
SELECT contact_id, status FROM msgs WHERE body = 'queued' ORDER BY contact_id;
SELECT id, status FROM contacts WHERE id <= 4 ORDER BY id;

-- The plan for one contact reads that contact's messages by its index, even
-- where the statistics have queued messages rare (analyzed before any was
-- queued) and many are queued for others: planned for a set of contacts
-- (ten, the estimate of a parameter's array) it would read every queued
-- message by status instead, and a stop of a contact with one message
-- would read them all (RapidPro's index on status; new: the plan is made
-- again).
DELETE FROM msgs WHERE status = 'D' AND id >= (SELECT min(id) FROM msgs WHERE status = 'D') + 20000;  -- one a contact
ANALYZE msgs;
CREATE INDEX ON msgs (status) WHERE direction = 'O';
INSERT INTO msgs (contact_id, direction, body) SELECT c % 1000 + 100, 'O', 'queued' FROM generate_series(1, 20000) c;
CREATE FUNCTION msgs_rows_read() RETURNS bigint LANGUAGE sql
    AS $$ SELECT seq_tup_read + idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relid = 'msgs'::regclass $$;
BEGIN;
DELETE FROM before;
INSERT INTO before SELECT msgs_rows_read();
INSERT INTO msgs (contact_id, direction, body) VALUES (5, 'I', 'STOP');
SELECT msgs_rows_read() - n < 100 AS read_its_own FROM before;
COMMIT;

-- A message table of 20 partitions: its plan reads more tables than are
-- watched, so "fail the queued messages" is planned at every stop.
CREATE TABLE pmsgs (id bigint, contact_id integer, direction char(1), body text,
                    status text NOT NULL DEFAULT 'Q', part integer NOT NULL DEFAULT 0) PARTITION BY LIST (part);
DO $$
BEGIN
    FOR i IN 0..19 LOOP
        EXECUTE format('CREATE TABLE pmsgs_%s PARTITION OF pmsgs FOR VALUES IN (%s)', i, i);
    END LOOP;
END $$;
SELECT optout.attach_inbound('pmsgs', 'body', 'contact_id', row_filter => '{"direction": "I"}') > 0 AS inbound,
       optout.attach_outbound('pmsgs', 'contact_id', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}', row_filter => '{"direction": "O"}') > 0 AS outbound;
INSERT INTO pmsgs (id, contact_id, direction, body, part)
    SELECT i, 10 + i % 3, 'O', 'queued', i FROM generate_series(0, 19) i;
INSERT INTO pmsgs (id, contact_id, direction, body) VALUES (100, 10, 'I', 'STOP');
INSERT INTO pmsgs (id, contact_id, direction, body) VALUES (101, 11, 'I', 'STOP');
SELECT contact_id, status, count(*) FROM pmsgs WHERE body = 'queued' GROUP BY 1, 2 ORDER BY 1, 2;

-- A stop reads the ledger's rows for its one contact with a plan made once
-- per backend too (watched like the others, made here on a ledger of a few
-- rows): with 5,000 stops on record it reads optout.stops by its index,
-- and finds what is there (the START of contact 7, stopped by hand, lifts
-- its stop).
SELECT count(*) FILTER (WHERE s) AS stopped FROM (SELECT optout.stop(g::text) AS s FROM generate_series(1001, 6000) g) x;
SELECT optout.stop('7');
SELECT stop_seq_scans('optout.stops', 8) AS stops_seq_scans;
INSERT INTO msgs (contact_id, direction, body) VALUES (7, 'I', 'START');
SELECT id, status FROM contacts WHERE id IN (7, 8) ORDER BY id;

-- A stop of one contact locks its row in each contacts table, and finds
-- its Stopped group with the stopped_group_query, with plans made once per
-- backend too, watched like the others: made on a table of ten rows (a
-- sequential scan), then the table grows two thousand times with no
-- ANALYZE, and the next stop reads it by its key. Planned at each stop
-- instead (the plan cache never settles on a generic plan of the lock's
-- = ANY ($1), and the query was prepared so), the two were a tenth of a
-- stop's instructions.
CREATE TABLE people (id integer PRIMARY KEY, status text NOT NULL DEFAULT 'A', org integer NOT NULL DEFAULT 1);
CREATE TABLE memberships (contact_id integer NOT NULL, group_id integer NOT NULL);
INSERT INTO people (id) SELECT generate_series(1, 10);
INSERT INTO memberships SELECT c, 7 FROM generate_series(1, 10) c;
ANALYZE people;
SELECT optout.attach_contacts('people', 'id', 'status', 'S', 'A') > 0 AS people,
       optout.attach_groups('memberships', 'contact_id', 'group_id',
                            stopped_group_query => 'SELECT p.org * 100 FROM public.people p WHERE p.id = $1::integer') > 0 AS memberships;
SELECT stop_seq_scans('people', 9) > 0 AS people_seq_scans;
INSERT INTO people (id) SELECT generate_series(11, 20010);
SELECT stop_seq_scans('people', 10) AS people_seq_scans;
SELECT id, status FROM people WHERE id IN (8, 9, 10) ORDER BY id;
SELECT contact_id, group_id FROM memberships WHERE contact_id IN (8, 9, 10) ORDER BY 1, 2;

-- A help request (a review too) changes no stop: a batch of those alone
-- does not read the ledger; a STOP does.
CREATE FUNCTION ledger_reads(body text, contact integer) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint := (SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables WHERE relid = 'optout.stops'::regclass);
BEGIN
    INSERT INTO msgs (contact_id, direction, body) VALUES (contact, 'I', body);
    RETURN (SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables WHERE relid = 'optout.stops'::regclass) - n;
END $$;
SELECT ledger_reads('HELP', 11) AS help, ledger_reads('STOP', 11) AS stop;
SELECT count(*) AS help_events FROM optout.events WHERE contact = '11' AND kind = 'help';

-- A stop of a few contacts in one statement is planned for them, and reads
-- their rows only: their memberships (all left but the Stopped group) and
-- their queued messages on each stop's channel, found by contact. (Joined
-- to the keys by a semi-join on "(group = Stopped group) IS NOT TRUE", or
-- on "channel is NULL or matches", the plan could not start from the keys,
-- and read every membership and message.)
CREATE TABLE chmsgs (id bigserial PRIMARY KEY, contact_id integer, channel_id integer, direction char(1),
                     body text, status text NOT NULL DEFAULT 'Q');
CREATE INDEX ON chmsgs (contact_id);
CREATE TABLE groupm (contact_id integer NOT NULL, group_id integer NOT NULL, PRIMARY KEY (contact_id, group_id));
INSERT INTO groupm SELECT c, g FROM generate_series(1, 20000) c, generate_series(1, 5) g;
INSERT INTO chmsgs (contact_id, channel_id, direction, body, status)
    SELECT c % 20000 + 1, c % 3, 'O', 'sent', 'D' FROM generate_series(1, 100000) c;
INSERT INTO chmsgs (contact_id, channel_id, direction, body)
    VALUES (21, 1, 'O', 'queued'), (21, 2, 'O', 'queued'), (22, 2, 'O', 'queued'), (23, 1, 'O', 'queued');
ANALYZE groupm, chmsgs;
SELECT optout.attach_groups('groupm', 'contact_id', 'group_id', stopped_group => '0') > 0 AS groups,
       optout.attach_inbound('chmsgs', 'body', 'contact_id', 'channel_id', row_filter => '{"direction": "I"}') > 0 AS inbound,
       optout.attach_outbound('chmsgs', 'contact_id', 'channel_id', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}', row_filter => '{"direction": "O"}') > 0 AS outbound;
CREATE FUNCTION rows_read(t regclass) RETURNS bigint LANGUAGE sql
    AS $$ SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables WHERE relid = t $$;
BEGIN;
DELETE FROM before;
INSERT INTO before SELECT rows_read('groupm') * 1000000 + rows_read('chmsgs');
INSERT INTO chmsgs (contact_id, channel_id, direction, body) VALUES (21, 1, 'I', 'STOP'), (22, 1, 'I', 'STOP');
SELECT rows_read('groupm') - n / 1000000 < 100 AS memberships_read_their_own,
       rows_read('chmsgs') - n % 1000000 < 100 AS messages_read_their_own FROM before;
COMMIT;
SELECT contact_id, channel_id, status FROM chmsgs WHERE body = 'queued' ORDER BY 1, 2;
SELECT contact_id, array_agg(group_id ORDER BY group_id) AS groups FROM groupm WHERE contact_id IN (21, 22, 23)
 GROUP BY 1 ORDER BY 1;

DROP TABLE pmsgs, msgs, contacts, people, memberships, chmsgs, groupm;
DROP FUNCTION stop_seq_scans(regclass, integer), seq_scans(regclass), msgs_rows_read(), ledger_reads(text, integer),
              rows_read(regclass);
DROP EXTENSION optout;
