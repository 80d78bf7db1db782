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
-- The evidence and the honour times show message bodies: not for the app.
SELECT optout.evidence('1');
SELECT count(*) FROM optout.honour_times;
-- It may arm the next send as the confirmation (PUBLIC may: the platform
-- calls it), which gives it nothing but the one confirmation a stop allows.
SELECT optout.confirm_next('1') IS NOT NULL AS may_arm;
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
-- ... and the evidence pack and the honour times, deliberately.
GRANT EXECUTE ON FUNCTION optout.evidence(text) TO optout_officer;
GRANT SELECT ON optout.honour_times TO optout_officer;
SET ROLE optout_officer;
SELECT jsonb_array_length(optout.evidence('1') -> 'revocations') AS revocations;
SELECT contact, source, within_10_business_days FROM optout.honour_times ORDER BY stop_event;
RESET ROLE;

-- Whoever causes a stop, the statements on the platform's tables run as
-- their owner (as a foreign-key check does): a trigger the application put
-- on its own table never runs with a superuser's or a support role's
-- rights. A support role needs EXECUTE on optout.stop, and no right on the
-- platform's tables.
SET ROLE optout_app;
CREATE TABLE platform.seen (by_user name, during text);
CREATE FUNCTION platform.note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO platform.seen VALUES (current_user, TG_TABLE_NAME || ' ' || TG_OP); RETURN NEW; END $$;
CREATE TRIGGER note BEFORE UPDATE ON platform.contacts FOR EACH ROW EXECUTE FUNCTION platform.note();
CREATE TRIGGER note BEFORE UPDATE ON platform.outbox FOR EACH ROW EXECUTE FUNCTION platform.note();
INSERT INTO platform.outbox (contact, body) VALUES (3, 'queued for 3');
RESET ROLE;
SELECT optout.stop('3') AS superuser_stopped;
CREATE ROLE optout_support;
GRANT EXECUTE ON FUNCTION optout.stop(text, text, text) TO optout_support;
SET ROLE optout_support;
SELECT optout.stop('2') AS support_stopped;
RESET ROLE;
SELECT by_user, during, count(*) FROM platform.seen GROUP BY 1, 2 ORDER BY 1, 2;
SELECT id, status FROM platform.contacts ORDER BY id;
SELECT contact, body, status FROM platform.outbox WHERE contact = 3;
SELECT contact, CASE WHEN actor = session_user THEN '(the superuser)' ELSE actor END AS actor
  FROM optout.events WHERE kind = 'stop' AND contact IN ('2', '3') ORDER BY contact;

-- The review queue: the app's unclear reply is recorded (as the app), but
-- the app can neither read the queue nor close a review; an officer granted
-- the view and the function can, and is on record as who did.
SET ROLE optout_app;
INSERT INTO platform.inbox VALUES (1, 'no');
SELECT * FROM optout.open_reviews;
SELECT optout.dismiss_review(1, 'the app decides');
RESET ROLE;
GRANT SELECT ON optout.open_reviews TO optout_officer;
GRANT EXECUTE ON FUNCTION optout.dismiss_review(bigint, text) TO optout_officer;
SET ROLE optout_officer;
SELECT contact, message, rule FROM optout.open_reviews;
SELECT optout.dismiss_review((SELECT review_id FROM optout.open_reviews WHERE contact = '1'), 'answered a question') AS dismissed;
RESET ROLE;
SELECT kind, contact, actor, reason FROM optout.events WHERE kind IN ('review', 'review_dismissed') ORDER BY id;

SELECT optout.detach('platform.inbox') + optout.detach('platform.outbox') + optout.detach('platform.contacts') AS detached;
DROP SCHEMA platform CASCADE;
DROP OWNED BY optout_officer;
DROP OWNED BY optout_support;
DROP ROLE optout_app, optout_officer, optout_support;
DROP EXTENSION optout;
