-- Enforcement on a platform with integer keys and one table for both
-- directions (a "direction" column): contact scope, the "mark" rule.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE SCHEMA app;
CREATE TABLE app.contacts (id integer PRIMARY KEY, name text, status text NOT NULL DEFAULT 'active',
                           modified_on timestamptz);
CREATE TABLE app.groups (id integer PRIMARY KEY, name text);
CREATE TABLE app.memberships (contact_id integer REFERENCES app.contacts, group_id integer REFERENCES app.groups,
                              PRIMARY KEY (contact_id, group_id));
CREATE TABLE app.messages (id bigserial PRIMARY KEY, contact_id integer, channel_id integer, direction char(1) NOT NULL,
                           text text, status text NOT NULL DEFAULT 'queued', failed_reason text);
-- The platform's own triggers keep working: an audit of group changes.
CREATE TABLE app.group_log (contact_id integer, group_id integer, op text);
CREATE FUNCTION app.log_groups() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN INSERT INTO app.group_log VALUES (OLD.contact_id, OLD.group_id, 'out'); RETURN OLD; END IF;
    INSERT INTO app.group_log VALUES (NEW.contact_id, NEW.group_id, 'in'); RETURN NEW;
END $$;
CREATE TRIGGER log_groups AFTER INSERT OR DELETE ON app.memberships FOR EACH ROW EXECUTE FUNCTION app.log_groups();

INSERT INTO app.groups VALUES (1, 'Stopped'), (2, 'Customers'), (3, 'Newsletter'), (4, 'VIP');
INSERT INTO app.contacts (id, name) SELECT i, 'contact ' || i FROM generate_series(1, 20) i;
INSERT INTO app.memberships SELECT c, g FROM generate_series(1, 20) c, generate_series(2, 4) g;

SELECT optout.attach_inbound('app.messages', body_column => 'text', contact_column => 'contact_id',
                             channel_column => 'channel_id', row_filter => '{"direction": "I"}') > 0 AS inbound;
SELECT optout.attach_outbound('app.messages', contact_column => 'contact_id', channel_column => 'channel_id',
                              on_blocked => 'mark', mark => '{"status": "failed", "failed_reason": "stopped"}',
                              queued => '{"status": "queued"}', row_filter => '{"direction": "O"}') > 0 AS outbound;
SELECT optout.attach_contacts('app.contacts', key_column => 'id', status_column => 'status',
                              stopped_value => 'stopped', active_value => 'active', touch_column => 'modified_on') > 0 AS contacts;
SELECT optout.attach_groups('app.memberships', contact_column => 'contact_id', group_column => 'group_id',
                            stopped_group => '1') > 0 AS groups;
SELECT tbl, kind, trigger_name, trigger_enabled FROM optout.attached ORDER BY id;

-- Two messages are queued for contact 1 before it says STOP; one was sent.
INSERT INTO app.messages (contact_id, channel_id, direction, text, status) VALUES
    (1, 10, 'O', 'Sale today!', 'queued'), (1, 10, 'O', 'Reminder', 'queued'), (1, 10, 'O', 'Welcome', 'sent');

-- Promise 1 and 2: a STOP stops the contact in the same transaction; it is
-- in the Stopped group and no other.
BEGIN;
INSERT INTO app.messages (contact_id, channel_id, direction, text, status) VALUES (1, 10, 'I', 'Stop please', 'handled');
SELECT optout.is_stopped('1') AS stopped_in_same_transaction;
COMMIT;
SELECT status, modified_on IS NOT NULL AS touched FROM app.contacts WHERE id = 1;
SELECT group_id FROM app.memberships WHERE contact_id = 1 ORDER BY group_id;
SELECT op, group_id FROM app.group_log WHERE contact_id = 1 ORDER BY op, group_id;
-- Queued messages were failed by the outbound rule; the sent one is untouched.
SELECT text, status, failed_reason FROM app.messages WHERE contact_id = 1 AND direction = 'O' ORDER BY id;

-- Promise 3: later sends are marked, by INSERT, INSERT ... SELECT, COPY and a
-- re-targeting UPDATE; other contacts are untouched.
INSERT INTO app.messages (contact_id, channel_id, direction, text) VALUES (1, 10, 'O', 'plain insert'), (2, 10, 'O', 'to contact 2');
INSERT INTO app.messages (contact_id, channel_id, direction, text)
SELECT c, 10, 'O', 'broadcast' FROM generate_series(1, 5) c;
COPY app.messages (contact_id, channel_id, direction, text) FROM stdin;
1	11	O	copied
3	11	O	copied
\.
INSERT INTO app.messages (contact_id, channel_id, direction, text) VALUES (4, 10, 'O', 'retargeted');
UPDATE app.messages SET contact_id = 1 WHERE text = 'retargeted';
UPDATE app.messages SET text = 'edited' WHERE text = 'to contact 2';  -- not a re-target: untouched
SELECT contact_id, text, status, failed_reason FROM app.messages
 WHERE direction = 'O' AND text <> ALL (ARRAY['Sale today!', 'Reminder', 'Welcome']) ORDER BY id;

-- 10,000 rows in one INSERT ... SELECT: every row to contact 1 is marked.
INSERT INTO app.messages (contact_id, channel_id, direction, text)
SELECT 1 + (i % 20), 10, 'O', 'bulk' FROM generate_series(1, 10000) i;
SELECT contact_id = 1 AS to_stopped, status, count(*) FROM app.messages WHERE text = 'bulk'
 GROUP BY 1, 2 ORDER BY 1, 2;
-- Past 256 contacts a bulk send takes one database-wide lock and counts its
-- blocked rows by value: contact 9000's rows before and after that point
-- (ten of them) are one record, with one count.
SELECT optout.stop('9000') AS stopped_9000, max(id) AS last_event FROM optout.events \gset
INSERT INTO app.messages (contact_id, channel_id, direction, text)
SELECT CASE WHEN i % 100 = 0 THEN 9000 ELSE 100 + i END, 10, 'O', 'escalated' FROM generate_series(1, 1000) i;
SELECT contact, channel, table_name, detail FROM optout.events WHERE kind = 'blocked' AND id > :last_event;
SELECT count(*) FILTER (WHERE status = 'failed') AS marked, count(*) AS rows FROM app.messages WHERE text = 'escalated';
-- An escalated send compares integer contacts with the ledger's contacts
-- written the way an integer's text is (optout.stop() writes them so; a row
-- put in the ledger another way may not be): '0500' and '+501' stop no
-- contact 500 or 501, as on a send of one row; '502' does. The same with the
-- ledger's integers dense (a bitmap) and sparse (a hash table: one more stop,
-- far off). Contacts 500 to 502 come after 300 others, past the point where
-- the send escalates and reads the whole ledger.
BEGIN;
INSERT INTO optout.stops (contact, source) VALUES ('0500', 'manual'), ('+501', 'manual'), ('502', 'manual');
INSERT INTO optout.stops (contact, source) SELECT (10000 + i)::text, 'manual' FROM generate_series(0, 199) i;
INSERT INTO app.messages (contact_id, channel_id, direction, text) VALUES (500, 10, 'O', 'spelled, one'), (502, 10, 'O', 'spelled, one');
SELECT contact_id, status FROM app.messages WHERE text = 'spelled, one' ORDER BY contact_id;
INSERT INTO app.messages (contact_id, channel_id, direction, text)
SELECT CASE WHEN i < 300 THEN 1000 + i ELSE 200 + i END, 10, 'O', 'spelled, dense' FROM generate_series(0, 302) i;
SELECT array_agg(contact_id ORDER BY contact_id) AS marked FROM app.messages WHERE text = 'spelled, dense' AND status = 'failed';
SELECT optout.stop('2000000000') AS stopped_far_off;
INSERT INTO app.messages (contact_id, channel_id, direction, text)
SELECT CASE WHEN i < 300 THEN 1000 + i ELSE 200 + i END, 10, 'O', 'spelled, sparse' FROM generate_series(0, 302) i;
SELECT array_agg(contact_id ORDER BY contact_id) AS marked FROM app.messages WHERE text = 'spelled, sparse' AND status = 'failed';
ROLLBACK;
-- With a large ledger (60,000 stops) the escalated send looks contacts up
-- one by one, and reads the whole ledger only after 12,000 of them: the
-- stopped contacts met before escalation (20000), while looking up (21000 to
-- 32000) and after the ledger is read (33000) are all marked.
BEGIN;
INSERT INTO optout.stops (contact, source) SELECT 'other ' || i, 'manual' FROM generate_series(1, 60000) i;
SELECT count(*) FILTER (WHERE optout.stop((20000 + 1000 * k)::text)) AS stopped FROM generate_series(0, 13) k;
ANALYZE optout.stops;
INSERT INTO app.messages (contact_id, channel_id, direction, text)
SELECT 20000 + i, 10, 'O', 'large ledger' FROM generate_series(0, 13999) i;
SELECT array_agg(contact_id ORDER BY contact_id) AS marked FROM app.messages WHERE text = 'large ledger' AND status = 'failed';
ROLLBACK;
VACUUM ANALYZE optout.stops;

-- Promise 4: "thanks" does not lift the stop; a stray status update does not either.
INSERT INTO app.messages (contact_id, channel_id, direction, text, status) VALUES (1, 10, 'I', 'thanks', 'handled');
UPDATE app.contacts SET status = 'active' WHERE id = 1;
SELECT status FROM app.contacts WHERE id = 1;
SELECT optout.is_stopped('1') AS still_stopped;
-- Help is recorded, and changes nothing.
INSERT INTO app.messages (contact_id, channel_id, direction, text, status) VALUES (1, 10, 'I', 'HELP', 'handled');
-- An opt-in lifts the stop: active again, out of the Stopped group.
INSERT INTO app.messages (contact_id, channel_id, direction, text, status) VALUES (1, 10, 'I', 'START', 'handled');
SELECT status FROM app.contacts WHERE id = 1;
SELECT group_id FROM app.memberships WHERE contact_id = 1 ORDER BY group_id;
SELECT optout.is_stopped('1') AS stopped_after_start;
INSERT INTO app.messages (contact_id, channel_id, direction, text) VALUES (1, 10, 'O', 'welcome back');
SELECT status FROM app.messages WHERE text = 'welcome back';

-- Promise 6: the record of contact 1. Blocked sends are recorded once per
-- contact, channel and table in each transaction, with their count.
SELECT kind, contact, channel, source, body, keyword, rule, table_name, reason, detail
  FROM optout.history('1') WHERE kind <> 'blocked' OR detail ? 'queued_failed' ORDER BY id;
SELECT count(*) AS blocked_events, sum((detail ->> 'count')::int) AS blocked_sends
  FROM optout.history('1') WHERE kind = 'blocked' AND NOT detail ? 'queued_failed';

-- Rollback: a rolled-back STOP leaves nothing behind.
SELECT count(*) AS events_before FROM optout.events \gset
BEGIN;
INSERT INTO app.messages (contact_id, channel_id, direction, text, status) VALUES (5, 10, 'I', 'STOP', 'handled');
SELECT optout.is_stopped('5') AS inside;
ROLLBACK;
SELECT optout.is_stopped('5') AS after_rollback, (SELECT status FROM app.contacts WHERE id = 5),
       (SELECT count(*) FROM app.memberships WHERE contact_id = 5) AS groups,
       (SELECT count(*) FROM optout.events) = :events_before AS no_new_events;
BEGIN;
SAVEPOINT s;
INSERT INTO app.messages (contact_id, channel_id, direction, text, status) VALUES (5, 10, 'I', 'STOP', 'handled');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT optout.is_stopped('5') AS after_savepoint_rollback;

-- A bulk stop: 2,000 contacts in one transaction hold at most 256 contact
-- locks, then one database-wide lock (no "out of shared memory").
BEGIN;
SELECT count(*) FILTER (WHERE optout.stop(c::text)) AS stopped FROM generate_series(1000, 2999) c;
SELECT count(*) BETWEEN 2 AND 260 AS locks_bounded FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
ROLLBACK;

-- Manual stop and start; start needs a reason.
SELECT optout.stop('6', reason => 'complaint by phone') AS stopped, optout.stop('6') AS again;
SELECT status FROM app.contacts WHERE id = 6;
SELECT optout.start('6');
SELECT optout.start('6', reason => '   ');
SELECT optout.start('6', reason => 'signed consent form 2026-11-02') AS lifted, optout.start('6', reason => 'again') AS again;
SELECT status FROM app.contacts WHERE id = 6;
SELECT kind, source, reason, detail FROM optout.history('6') ORDER BY id;
SELECT optout.stop(NULL);
SELECT optout.is_stopped(NULL) IS NULL AS null_contact;

-- Provider errors (promise 5): Twilio 21610 stops; 30006 is recorded only.
SELECT optout.record_delivery_error('7', '10', 'Twilio', '21610') AS stopped_by_21610,
       optout.record_delivery_error('8', '10', 'twilio', '30006') AS stopped_by_30006,
       optout.record_delivery_error('8', '10', 'acme', '1') AS unknown_code;
SELECT contact, kind, source, provider, code FROM optout.events WHERE contact IN ('7', '8') ORDER BY id;
SELECT id, status FROM app.contacts WHERE id IN (7, 8) ORDER BY id;
-- A provider's code list is a table users extend.
INSERT INTO optout.delivery_error_codes (provider, code, description) VALUES ('ACME ', '4711', 'opted out at ACME');
SELECT optout.record_delivery_error('9', NULL, 'acme', '4711') AS stopped_by_custom_code;

-- A message row without a contact is not enforced (documented), and no error.
INSERT INTO app.messages (contact_id, channel_id, direction, text, status) VALUES (NULL, 10, 'I', 'STOP', 'handled');
INSERT INTO app.messages (contact_id, channel_id, direction, text) VALUES (NULL, 10, 'O', 'nobody');

-- The ledger.
SELECT contact, channel, source, keyword, rule FROM optout.stops ORDER BY contact::int, channel;

-- Detach removes the triggers and the rows; sends are no longer checked.
SELECT optout.detach('app.messages') AS detached;
SELECT tbl, kind FROM optout.attached ORDER BY id;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'app.messages'::regclass AND NOT tgisinternal ORDER BY tgname;
SELECT optout.detach('app.messages') AS detached_again;

DROP SCHEMA app CASCADE;
DROP EXTENSION optout;
