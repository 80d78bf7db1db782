-- One confirmation after a stop (FCC 47 CFR 64.1200(a)(12)): a row that
-- matches the attachment's confirmation filter, or the send armed by
-- optout.confirm_next(), is accepted once per stop, within the window, for a
-- stop the contact sent (keyword) or the provider reported. Every other send
-- is blocked as before.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = notice;

CREATE TABLE c_msgs (id serial PRIMARY KEY, contact_id integer, channel text, direction text NOT NULL,
                     msg_type text NOT NULL DEFAULT 'plain', body text, status text NOT NULL DEFAULT 'Q');
CREATE TABLE c_errors (contact_id integer, code text);
SELECT optout.attach_inbound('c_msgs', 'body', 'contact_id', 'channel', row_filter => '{"direction": "in"}') > 0 AS inbound,
       optout.attach_outbound('c_msgs', 'contact_id', 'channel', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}', row_filter => '{"direction": "out"}',
                              confirmation => '{"msg_type": "confirmation"}') > 0 AS outbound,
       optout.attach_delivery_errors('c_errors', 'contact_id', code_column => 'code', provider => 'twilio') > 0 AS errors;
SELECT confirmation, help_reply FROM optout.attached WHERE kind = 'outbound';

-- 1. Contact 1 sends STOP. A broadcast in the window is blocked (marked);
--    the confirmation goes out; a second confirmation is blocked.
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (1, '+1', 'in', 'STOP');
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (1, '+1', 'out', 'Big sale today!');
INSERT INTO c_msgs (contact_id, channel, direction, msg_type, body)
VALUES (1, '+1', 'out', 'confirmation', 'You are unsubscribed. No more messages will be sent.');
INSERT INTO c_msgs (contact_id, channel, direction, msg_type, body)
VALUES (1, '+1', 'out', 'confirmation', 'You are unsubscribed (again).');
SELECT id, contact_id, msg_type, body, status FROM c_msgs WHERE direction = 'out' ORDER BY id;
-- The confirmation is recorded, linked to the stop event.
SELECT c.kind, c.contact, c.channel, c.source, c.table_name,
       (c.detail ->> 'for_event')::bigint = s.event_id AS links_the_stop, c.detail ->> 'stop_source' AS stop_source,
       (c.detail ->> 'seconds_after_stop')::numeric < 60 AS within_a_minute
  FROM optout.events c JOIN optout.stops s ON s.contact = c.contact
 WHERE c.kind = 'confirmation';
SELECT kind, contact, detail FROM optout.events WHERE kind = 'blocked' ORDER BY id;

-- 2. A confirmation-shaped row to a contact who is not stopped is an
--    ordinary send: not recorded, nothing used up.
INSERT INTO c_msgs (contact_id, channel, direction, msg_type, body) VALUES (2, '+1', 'out', 'confirmation', 'hello');
SELECT status FROM c_msgs WHERE contact_id = 2;
SELECT count(*) AS confirmations FROM optout.events WHERE kind = 'confirmation' AND contact = '2';

-- 3. After the window: blocked. (The stop is made 10 minutes old.)
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (3, '+1', 'in', 'STOP');
UPDATE optout.events SET at = at - interval '10 minutes' WHERE contact = '3' AND kind = 'stop';
INSERT INTO c_msgs (contact_id, channel, direction, msg_type, body) VALUES (3, '+1', 'out', 'confirmation', 'late');
SELECT status FROM c_msgs WHERE contact_id = 3 AND direction = 'out';
-- ... a longer window lets it through (the setting is the DBA's).
SET optout.confirmation_window = '15min';
SHOW optout.confirmation_window;
INSERT INTO c_msgs (contact_id, channel, direction, msg_type, body) VALUES (3, '+1', 'out', 'confirmation', 'later');
SELECT body, status FROM c_msgs WHERE contact_id = 3 AND direction = 'out' ORDER BY id;
-- ... and 0 turns confirmations off.
SET optout.confirmation_window = 0;
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (4, '+1', 'in', 'STOP');
INSERT INTO c_msgs (contact_id, channel, direction, msg_type, body) VALUES (4, '+1', 'out', 'confirmation', 'off');
SELECT status FROM c_msgs WHERE contact_id = 4 AND direction = 'out';
RESET optout.confirmation_window;
-- (out of range: the wording differs between PostgreSQL versions)
\set VERBOSITY sqlstate
SET optout.confirmation_window = '-1';
\set VERBOSITY default
SET optout.confirmation_window = '2 days';

-- 4. A manual stop does not allow a confirmation, unless the DBA says so.
SELECT optout.stop('5', reason => 'asked on the phone');
INSERT INTO c_msgs (contact_id, channel, direction, msg_type, body) VALUES (5, '+1', 'out', 'confirmation', 'manual');
SELECT status FROM c_msgs WHERE contact_id = 5 AND direction = 'out';
SET optout.confirm_manual_stops = on;
INSERT INTO c_msgs (contact_id, channel, direction, msg_type, body) VALUES (5, '+1', 'out', 'confirmation', 'manual ok');
SELECT body, status FROM c_msgs WHERE contact_id = 5 AND direction = 'out' ORDER BY id;
RESET optout.confirm_manual_stops;

-- 5. A provider stop (Twilio 21610) allows one.
INSERT INTO c_errors VALUES (6, '21610');
INSERT INTO c_msgs (contact_id, channel, direction, msg_type, body) VALUES (6, '+1', 'out', 'confirmation', 'provider');
SELECT status FROM c_msgs WHERE contact_id = 6 AND direction = 'out';

-- 6. COPY goes through the same decision: one confirmation, the rest marked.
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (7, '+1', 'in', 'UNSUBSCRIBE');
COPY c_msgs (contact_id, channel, direction, msg_type, body) FROM stdin;
7	+1	out	plain	copy promo
7	+1	out	confirmation	copy confirmation
7	+1	out	confirmation	copy confirmation twice
\.
SELECT body, status FROM c_msgs WHERE contact_id = 7 AND direction = 'out' ORDER BY id;

-- 7. UPDATE: re-targeting a confirmation row to a stopped contact, and a
--    resend of a failed one, go through the same decision.
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (8, '+1', 'in', 'STOP');
INSERT INTO c_msgs (contact_id, channel, direction, msg_type, body, status) VALUES (9, '+1', 'out', 'confirmation', 'retarget', 'Q');
UPDATE c_msgs SET contact_id = 8 WHERE body = 'retarget' RETURNING contact_id, status;
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (10, '+1', 'in', 'STOP');
INSERT INTO c_msgs (contact_id, channel, direction, msg_type, body) VALUES (10, '+1', 'out', 'confirmation', 'first');
INSERT INTO c_msgs (contact_id, channel, direction, msg_type, body) VALUES (10, '+1', 'out', 'confirmation', 'second');
UPDATE c_msgs SET status = 'Q' WHERE body = 'second' RETURNING body, status;
SELECT body, status FROM c_msgs WHERE contact_id IN (8, 10) AND direction = 'out' ORDER BY id;

-- 8. A rolled-back confirmation frees the stop's one confirmation.
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (11, '+1', 'in', 'STOP');
BEGIN;
INSERT INTO c_msgs (contact_id, channel, direction, msg_type, body) VALUES (11, '+1', 'out', 'confirmation', 'rolled back');
ROLLBACK;
INSERT INTO c_msgs (contact_id, channel, direction, msg_type, body) VALUES (11, '+1', 'out', 'confirmation', 'kept');
SELECT body, status FROM c_msgs WHERE contact_id = 11 AND direction = 'out' ORDER BY id;

-- 9. A new stop (after START) allows a new confirmation (and fails the
--    queued one, as every stop does).
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (11, '+1', 'in', 'START');
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (11, '+1', 'in', 'STOP');
INSERT INTO c_msgs (contact_id, channel, direction, msg_type, body) VALUES (11, '+1', 'out', 'confirmation', 'new stop');
SELECT body, status FROM c_msgs WHERE contact_id = 11 AND direction = 'out' ORDER BY id;
SELECT count(*) AS confirmations, count(DISTINCT detail ->> 'for_event') AS stops
  FROM optout.events WHERE kind = 'confirmation' AND contact = '11';

-- 10. optout.confirm_next(): no filter; the next blocked send to the contact
--     in this transaction is the confirmation. It says whether one would be
--     accepted now.
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (12, '+1', 'in', 'STOP');
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (12, '+1', 'out', 'not armed');
BEGIN;
SELECT optout.confirm_next('12') AS allowed;
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (12, '+1', 'out', 'armed: the confirmation');
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (12, '+1', 'out', 'armed once only');
SELECT optout.confirm_next('12') AS allowed_again;
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (12, '+1', 'out', 'armed, but already sent');
COMMIT;
SELECT body, status FROM c_msgs WHERE contact_id = 12 AND direction = 'out' ORDER BY id;
-- The arming ends with its transaction.
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (13, '+1', 'in', 'STOP');
BEGIN;
SELECT optout.confirm_next('13', '+2') AS allowed_on_2;
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (13, '+1', 'out', 'other channel: not armed');
COMMIT;
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (13, '+1', 'out', 'next transaction: not armed');
SELECT body, status FROM c_msgs WHERE contact_id = 13 AND direction = 'out' ORDER BY id;
SELECT optout.confirm_next(NULL);
SELECT optout.confirm_next('not a number');

-- A column a confirmation filter names cannot be dropped or renamed under it.
ALTER TABLE c_msgs RENAME COLUMN msg_type TO kind;
ALTER TABLE c_msgs DROP COLUMN msg_type;

-- 11. on_blocked 'error': the second confirmation is refused with the usual error.
CREATE TABLE c_strict (contact_id integer, kind text, body text);
SELECT optout.attach_outbound('c_strict', 'contact_id', confirmation => '{"kind": ["confirm", "stop-ack"]}') > 0 AS strict;
INSERT INTO c_msgs (contact_id, channel, direction, body) VALUES (14, '+1', 'in', 'STOP');
INSERT INTO c_strict VALUES (14, 'stop-ack', 'unsubscribed');
\set VERBOSITY terse
INSERT INTO c_strict VALUES (14, 'confirm', 'unsubscribed twice');
INSERT INTO c_strict VALUES (14, NULL, 'promo');
\set VERBOSITY default
SELECT * FROM c_strict;

-- Bad filters are refused when attaching, and nothing is attached.
SELECT optout.detach('c_strict');
SELECT optout.attach_outbound('c_strict', 'contact_id', confirmation => '{"nope": 1}');
SELECT optout.attach_outbound('c_strict', 'contact_id', help_reply => '[1]');
SELECT optout.attach_outbound('c_strict', 'contact_id', confirmation => '{"kind": {"a": 1}}');
SELECT count(*) AS attached FROM optout.attachments WHERE tbl = 'c_strict'::regclass;

SELECT optout.detach('c_msgs') + optout.detach('c_errors') AS detached;
DROP TABLE c_msgs, c_errors, c_strict;
DROP EXTENSION optout;
