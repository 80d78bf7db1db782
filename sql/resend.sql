-- Every way a row becomes sendable is checked, UPDATE included: an UPDATE
-- that makes a row match row_filter and queued again (mailroom's resend of a
-- failed message), or that sets the contact or channel column, changed or
-- not, is checked like an INSERT, in each on_blocked mode. An UPDATE that
-- leaves a row unsendable, or a sendable row to a contact that is not
-- stopped, goes through untouched.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- RapidPro's shape: msgs_msg with direction, status and failed_reason.
CREATE TABLE r_mark (id serial PRIMARY KEY, contact_id int, channel_id int, direction text, text text,
                     status text NOT NULL DEFAULT 'Q', failed_reason text, modified_on int DEFAULT 0);
CREATE TABLE r_skip (LIKE r_mark INCLUDING ALL);
CREATE TABLE r_error (LIKE r_mark INCLUDING ALL);
SELECT optout.attach_outbound('r_mark', 'contact_id', 'channel_id', on_blocked => 'mark',
                              mark => '{"status": "F", "failed_reason": "C"}',
                              queued => '{"status": ["I", "Q", "E"]}', row_filter => '{"direction": "O"}') > 0 AS mark,
       optout.attach_outbound('r_skip', 'contact_id', 'channel_id', on_blocked => 'skip',
                              queued => '{"status": ["I", "Q", "E"]}', row_filter => '{"direction": "O"}') > 0 AS skip,
       optout.attach_outbound('r_error', 'contact_id', 'channel_id', on_blocked => 'error',
                              queued => '{"status": ["I", "Q", "E"]}', row_filter => '{"direction": "O"}') > 0 AS error;
SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) ~ 'BEFORE UPDATE ON' AS on_any_update
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname LIKE 'optout%' ORDER BY 1, 2;

-- Contact 1 is stopped; contact 2 is not. Each table holds, for each, a
-- failed message, a sent one and an inbound one.
INSERT INTO r_mark (contact_id, channel_id, direction, text, status, failed_reason) VALUES
    (1, 10, 'O', 'failed', 'F', 'E'), (1, 10, 'O', 'sent', 'S', NULL), (1, 10, 'I', 'inbound', 'H', NULL),
    (2, 10, 'O', 'failed', 'F', 'E'), (2, 10, 'O', 'sent', 'S', NULL), (2, 10, 'I', 'inbound', 'H', NULL);
INSERT INTO r_skip SELECT * FROM r_mark;
INSERT INTO r_error SELECT * FROM r_mark;
SELECT optout.stop('1');
\set VERBOSITY terse

-- 1. mailroom's resend: the same channel, status back to queued, the reason
--    cleared. Marked failed again for contact 1, queued for contact 2.
UPDATE r_mark SET channel_id = 10, status = 'Q', failed_reason = NULL, modified_on = 1 WHERE text = 'failed';
SELECT contact_id, status, failed_reason, modified_on FROM r_mark WHERE text = 'failed' ORDER BY contact_id;
-- 'skip': the UPDATE of contact 1's row does not happen.
UPDATE r_skip SET channel_id = 10, status = 'Q', failed_reason = NULL, modified_on = 1 WHERE text = 'failed';
SELECT contact_id, status, failed_reason, modified_on FROM r_skip WHERE text = 'failed' ORDER BY contact_id;
-- 'error': refused; nothing changes.
UPDATE r_error SET channel_id = 10, status = 'Q', failed_reason = NULL, modified_on = 1 WHERE text = 'failed';
UPDATE r_error SET channel_id = 10, status = 'Q', failed_reason = NULL, modified_on = 1 WHERE text = 'failed' AND contact_id = 2;
SELECT contact_id, status, failed_reason, modified_on FROM r_error WHERE text = 'failed' ORDER BY contact_id;

-- 2. Only the status set back to a queued value (no contact or channel).
UPDATE r_mark SET status = 'E' WHERE text = 'sent';
UPDATE r_skip SET status = 'E' WHERE text = 'sent';
UPDATE r_error SET status = 'E' WHERE text = 'sent' AND contact_id = 1;
SELECT 'mark' AS tbl, contact_id, status FROM r_mark WHERE text = 'sent'
UNION ALL SELECT 'skip', contact_id, status FROM r_skip WHERE text = 'sent'
UNION ALL SELECT 'error', contact_id, status FROM r_error WHERE text = 'sent' ORDER BY 1, 2;

-- 3. The contact column set, to the same value, on a row that is not
--    queued: checked like an INSERT (the row matches row_filter).
UPDATE r_error SET contact_id = 1 WHERE text = 'sent' AND contact_id = 1;
UPDATE r_error SET contact_id = contact_id WHERE text = 'sent' AND contact_id = 2;
-- ... and a row re-targeted to the stopped contact.
UPDATE r_mark SET contact_id = 1 WHERE text = 'failed' AND contact_id = 2;
SELECT contact_id, status, failed_reason FROM r_mark WHERE text = 'failed' ORDER BY id;

-- 4. What changes nothing sendable goes through, for the stopped contact
--    too: a queued row moving on (Q -> W -> D), other columns of a failed
--    row, an inbound row.
INSERT INTO r_mark (contact_id, channel_id, direction, text, status) VALUES (2, 10, 'O', 'moving on', 'Q');
UPDATE r_mark SET status = 'W' WHERE text = 'moving on';
UPDATE r_mark SET status = 'D', modified_on = 2 WHERE text = 'moving on';
UPDATE r_error SET modified_on = 3 WHERE text = 'failed';
UPDATE r_error SET status = 'Q' WHERE direction = 'I';
SELECT contact_id, text, status, modified_on FROM r_error WHERE text IN ('failed', 'inbound') ORDER BY text, contact_id;
SELECT text, status, modified_on FROM r_mark WHERE text = 'moving on';

-- 5. A row made outbound and queued (direction changed) for a stopped contact.
UPDATE r_mark SET direction = 'O', status = 'Q' WHERE direction = 'I' AND contact_id = 1;
SELECT contact_id, direction, status, failed_reason FROM r_mark WHERE text = 'inbound' ORDER BY contact_id;

-- 6. INSERT ... ON CONFLICT DO UPDATE takes the UPDATE path (row 2 is
--    contact 1's 'sent' message, failed in 2.). The row proposed for the
--    INSERT is checked too (BEFORE INSERT triggers fire first): two blocked.
INSERT INTO r_mark (id, contact_id, channel_id, direction, text, status) VALUES (2, 1, 10, 'O', 'upsert', 'S')
    ON CONFLICT (id) DO UPDATE SET text = 'upserted', status = 'Q', failed_reason = NULL;
SELECT id, contact_id, text, status, failed_reason FROM r_mark WHERE id = 2;
\set VERBOSITY default

-- Every blocked UPDATE is on record, per table.
SELECT table_name, contact, detail ->> 'rule' AS rule, sum((detail ->> 'count')::int) AS blocked
  FROM optout.events WHERE kind = 'blocked' GROUP BY 1, 2, 3 ORDER BY 1, 2;

-- Detach removes both triggers.
SELECT optout.detach('r_mark') + optout.detach('r_skip') + optout.detach('r_error') AS detached;
SELECT count(*) AS optout_triggers_left FROM pg_trigger WHERE tgname LIKE 'optout%';
DROP TABLE r_mark, r_skip, r_error;
DROP EXTENSION optout;
