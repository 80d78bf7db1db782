-- One reply to a help request, accepted even when the contact is stopped,
-- when the outbound attachment names what a help reply looks like
-- (help_reply filter); recorded as a 'help_reply' event linked to the help
-- request. Off unless configured.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = notice;

CREATE TABLE h_in (contact_id bigint, channel text, body text);
CREATE TABLE h_out (id serial PRIMARY KEY, contact_id bigint, channel text, kind text NOT NULL DEFAULT 'broadcast',
                    body text, status text NOT NULL DEFAULT 'Q');
CREATE TABLE h_plain (id serial PRIMARY KEY, contact_id bigint, channel text, kind text NOT NULL DEFAULT 'broadcast',
                      body text, status text NOT NULL DEFAULT 'Q');
SELECT optout.attach_inbound('h_in', 'body', 'contact_id', 'channel') > 0 AS inbound,
       optout.attach_outbound('h_out', 'contact_id', 'channel', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}', help_reply => '{"kind": "help"}',
                              confirmation => '{"kind": "confirmation"}') > 0 AS outbound,
       optout.attach_outbound('h_plain', 'contact_id', 'channel', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}') > 0 AS not_configured;

-- 1. A stopped contact asks for HELP: one reply goes out; a second, a
--    broadcast, and a reply on a table that names no help reply, do not.
INSERT INTO h_in VALUES (1, '+1', 'STOP');
INSERT INTO h_in VALUES (1, '+1', 'HELP');
INSERT INTO h_out (contact_id, channel, kind, body) VALUES (1, '+1', 'help', 'Acme alerts: reply STOP to stop, START to resume. help@acme.example');
INSERT INTO h_out (contact_id, channel, kind, body) VALUES (1, '+1', 'help', 'second reply');
INSERT INTO h_out (contact_id, channel, kind, body) VALUES (1, '+1', 'broadcast', 'promo');
INSERT INTO h_plain (contact_id, channel, kind, body) VALUES (1, '+1', 'help', 'not configured here');
SELECT body, status FROM h_out WHERE contact_id = 1 ORDER BY id;
SELECT body, status FROM h_plain WHERE contact_id = 1 ORDER BY id;
SELECT r.kind, r.contact, r.channel, r.source, r.table_name, (r.detail ->> 'for_event')::bigint = h.id AS links_the_help,
       (r.detail ->> 'seconds_after_help')::numeric < 60 AS within_a_minute
  FROM optout.events r JOIN optout.events h ON h.contact = r.contact AND h.kind = 'help'
 WHERE r.kind = 'help_reply';

-- 2. A help reply is not a confirmation, nor the other way round: the
--    confirmation of the stop is still available.
INSERT INTO h_out (contact_id, channel, kind, body) VALUES (1, '+1', 'confirmation', 'You are unsubscribed.');
SELECT body, status FROM h_out WHERE contact_id = 1 AND kind = 'confirmation';

-- 3. A second HELP allows a second reply.
INSERT INTO h_in VALUES (1, '+1', 'info');
INSERT INTO h_out (contact_id, channel, kind, body) VALUES (1, '+1', 'help', 'reply to the second HELP');
SELECT body, status FROM h_out WHERE contact_id = 1 AND kind = 'help' ORDER BY id;

-- 4. No help request, or one too old, or on another channel: no reply.
INSERT INTO h_in VALUES (2, '+1', 'STOP');
INSERT INTO h_out (contact_id, channel, kind, body) VALUES (2, '+1', 'help', 'unasked');
INSERT INTO h_in VALUES (2, '+1', 'HELP');
INSERT INTO h_out (contact_id, channel, kind, body) VALUES (2, '+2', 'help', 'other channel');
UPDATE optout.events SET at = at - interval '1 hour' WHERE contact = '2' AND kind = 'help';
INSERT INTO h_out (contact_id, channel, kind, body) VALUES (2, '+1', 'help', 'too late');
SET optout.help_reply_window = '2h';
INSERT INTO h_out (contact_id, channel, kind, body) VALUES (2, '+1', 'help', 'longer window');
RESET optout.help_reply_window;
SELECT body, status FROM h_out WHERE contact_id = 2 ORDER BY id;

-- 5. A contact who is not stopped gets the reply as any send: nothing recorded.
INSERT INTO h_in VALUES (3, '+1', 'HELP');
INSERT INTO h_out (contact_id, channel, kind, body) VALUES (3, '+1', 'help', 'not stopped');
SELECT status, (SELECT count(*) FROM optout.events WHERE contact = '3' AND kind = 'help_reply') AS recorded
  FROM h_out WHERE contact_id = 3;

-- 6. COPY and a resend go through the same decision.
INSERT INTO h_in VALUES (4, '+1', 'STOP'), (4, '+1', 'HELP');
COPY h_out (contact_id, channel, kind, body) FROM stdin;
4	+1	help	copied reply
4	+1	help	copied reply twice
\.
UPDATE h_out SET status = 'Q' WHERE body = 'copied reply twice' RETURNING body, status;
SELECT body, status FROM h_out WHERE contact_id = 4 ORDER BY id;

-- 7. The window setting: 0 turns replies off; it is the DBA's.
SET optout.help_reply_window = 0;
INSERT INTO h_in VALUES (5, '+1', 'STOP'), (5, '+1', 'HELP');
INSERT INTO h_out (contact_id, channel, kind, body) VALUES (5, '+1', 'help', 'off');
SELECT body, status FROM h_out WHERE contact_id = 5;
RESET optout.help_reply_window;
SELECT name, setting, unit, context FROM pg_settings WHERE name LIKE 'optout.%window' OR name = 'optout.confirm_manual_stops' ORDER BY name;

SELECT optout.detach('h_in') + optout.detach('h_out') + optout.detach('h_plain') AS detached;
DROP TABLE h_in, h_out, h_plain;
DROP EXTENSION optout;
