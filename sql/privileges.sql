-- An application role that may only write its own message tables can send
-- and receive (the triggers do their work), but cannot change the ledger or
-- the events, read message bodies in the event record, or lift a stop.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE ROLE optout_app LOGIN;
CREATE SCHEMA platform AUTHORIZATION optout_app;
SET ROLE optout_app;
CREATE TABLE platform.contacts (id int PRIMARY KEY, status text NOT NULL DEFAULT 'A');
CREATE TABLE platform.inbox (contact int, body text);
CREATE TABLE platform.outbox (contact int, body text, status text DEFAULT 'Q');
INSERT INTO platform.contacts SELECT generate_series(1, 3);
RESET ROLE;

-- The DBA attaches the application's tables.
SELECT optout.attach_inbound('platform.inbox', 'body', 'contact') > 0 AS inbound,
       optout.attach_outbound('platform.outbox', 'contact', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}') > 0 AS outbound,
       optout.attach_contacts('platform.contacts', 'id', 'status', 'S', 'A') > 0 AS contacts;

SET ROLE optout_app;
-- Receiving and sending work, and do everything a stop does.
INSERT INTO platform.outbox (contact, body) VALUES (1, 'queued before the stop');
INSERT INTO platform.inbox VALUES (1, 'STOP');
INSERT INTO platform.outbox (contact, body) VALUES (1, 'after the stop'), (2, 'to someone else');
SELECT contact, body, status FROM platform.outbox ORDER BY body;
SELECT id, status FROM platform.contacts ORDER BY id;
SELECT optout.is_stopped('1') AS is_stopped;
-- ... but nothing reaches the ledger or the record directly.
SELECT * FROM optout.stops;
SELECT body FROM optout.events;
INSERT INTO optout.stops (contact, source) VALUES ('2', 'manual');
DELETE FROM optout.stops;
UPDATE optout.events SET body = 'forged';
DELETE FROM optout.events;
SELECT optout.start('1', reason => 'the app wants to send again');
SELECT optout.stop('2');
SELECT * FROM optout.history('1');
SELECT optout.record_delivery_error('2', NULL, 'twilio', '21610');
UPDATE optout.keywords SET enabled = false WHERE keyword = 'stop';
SELECT optout.detach('platform.inbox');
-- A stray status update does not lift the stop either.
UPDATE platform.contacts SET status = 'A' WHERE id = 1;
SELECT status FROM platform.contacts WHERE id = 1;
-- Only the contact's own opt-in does.
INSERT INTO platform.inbox VALUES (1, 'START');
SELECT status FROM platform.contacts WHERE id = 1;
RESET ROLE;

-- The record shows who did what.
SELECT kind, contact, source, actor, body FROM optout.events ORDER BY id;

-- A compliance role may be granted the record, nothing else.
CREATE ROLE optout_officer;
GRANT EXECUTE ON FUNCTION optout.history(text) TO optout_officer;
SET ROLE optout_officer;
SELECT kind, body FROM optout.history('1') ORDER BY id;
SELECT count(*) FROM optout.events;
RESET ROLE;

SELECT optout.detach('platform.inbox') + optout.detach('platform.outbox') + optout.detach('platform.contacts') AS detached;
DROP SCHEMA platform CASCADE;
DROP OWNED BY optout_officer;
DROP ROLE optout_app, optout_officer;
DROP EXTENSION optout;
