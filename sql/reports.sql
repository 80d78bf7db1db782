-- Reports a compliance officer uses: views, explain_contact, retention.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE TABLE msg (contact int, channel text, direction text, body text, status text DEFAULT 'Q', error_code text);
SELECT optout.attach_inbound('msg', 'body', 'contact', 'channel', row_filter => '{"direction": "in"}') > 0,
       optout.attach_outbound('msg', 'contact', 'channel', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}', row_filter => '{"direction": "out"}') > 0;
CREATE TABLE receipts (contact int, channel text, code text);
SELECT optout.attach_delivery_errors('receipts', 'contact', code_column => 'code', provider => 'twilio',
                                     channel_column => 'channel') > 0;

-- Day 1: contact 1 texts "Stop please" on +100; a broadcast was queued.
INSERT INTO msg (contact, channel, direction, body) VALUES (1, '+100', 'out', 'Promo'), (2, '+100', 'out', 'Promo');
INSERT INTO msg (contact, channel, direction, body) VALUES (1, '+100', 'in', 'Stop please');
-- Day 2: contact 2 asks for help, contact 3 says ARRÊT, a send to 1 is blocked.
INSERT INTO msg (contact, channel, direction, body) VALUES (2, '+100', 'in', 'HELP'), (3, '+200', 'in', 'ARRÊT');
INSERT INTO msg (contact, channel, direction, body) VALUES (1, '+100', 'out', 'Reminder');
-- Day 3: Twilio reports 21610 for contact 4 (stops it), then again for 4
-- (sent around the block), and 30006 for 5 (not an opt-out).
INSERT INTO receipts VALUES (4, '+100', '21610');
INSERT INTO receipts VALUES (4, '+100', '21610'), (5, '+100', '30006');
-- Day 4: contact 1 sends START; contact 3 sends "thanks".
INSERT INTO msg (contact, channel, direction, body) VALUES (1, '+100', 'in', 'START'), (3, '+200', 'in', 'thanks');

-- Fix the clock for the expected output: events and stops get a day each.
UPDATE optout.events SET at = timestamptz '2026-11-01 09:00 UTC' + (CASE
        WHEN id <= (SELECT min(id) + 1 FROM optout.events) THEN 0
        WHEN kind IN ('help') OR (kind = 'stop' AND contact = '3') OR (kind = 'blocked' AND contact = '1' AND id > (SELECT min(id) + 1 FROM optout.events)) THEN 1
        WHEN kind = 'provider_error' OR contact = '4' THEN 2
        ELSE 3 END) * interval '1 day' + id * interval '1 minute';
UPDATE optout.stops s SET stopped_at = e.at FROM optout.events e WHERE e.id = s.event_id;

-- "the contact is in Stopped but claims they didn't opt out"
SELECT contact, scope, channel, since, source, keyword, language, rule, message, message_channel, provider, code
  FROM optout.stopped_now ORDER BY contact;

SELECT day, channel, request, source, keyword, language, requests, contacts
  FROM optout.requests_daily ORDER BY day, channel, request;

-- "my flow says it sent but the contact got nothing"
SELECT day, channel, table_name, queued_failed, sends_blocked, contacts FROM optout.blocked_daily ORDER BY day, channel;

-- "I keep seeing error 21610"
SELECT day, channel, provider, code, description, means_opted_out, errors, contacts
  FROM optout.provider_errors_daily ORDER BY day, code;
SELECT contact, channel, provider, code, errors FROM optout.errors_after_stop;

SELECT jsonb_pretty(optout.explain_contact('1'));
SELECT jsonb_pretty(optout.explain_contact('4'));
SELECT optout.explain_contact('999') ->> 'stopped' AS unknown_contact_stopped;

-- NOTIFY: every stop and start raises one on channel "optout", sent at
-- commit. A second session listens (through dblink) and reads the payloads.
CREATE EXTENSION dblink;
SELECT dblink_connect('listener', format('dbname=%s port=%s host=%s', current_database(), current_setting('port'),
                                         split_part(current_setting('unix_socket_directories'), ',', 1)));
SELECT dblink_exec('listener', 'LISTEN optout');
INSERT INTO msg (contact, channel, direction, body) VALUES (6, '+300', 'in', 'unsubscribe');
INSERT INTO msg (contact, channel, direction, body) VALUES (6, '+300', 'in', 'Start');
BEGIN;
INSERT INTO msg (contact, channel, direction, body) VALUES (7, '+300', 'in', 'STOP');
ROLLBACK;
CREATE TEMP TABLE heard AS SELECT * FROM dblink_get_notify('listener') WHERE false;
DO $$
BEGIN
    FOR i IN 1 .. 100 LOOP  -- up to 10 s for the listener to receive both
        INSERT INTO heard SELECT * FROM dblink_get_notify('listener');
        EXIT WHEN (SELECT count(*) FROM heard) >= 2;
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT notify_name, jsonb_pretty(regexp_replace(extra, '"at": "[^"]*"', '"at": "<time>"')::jsonb) AS payload
  FROM heard ORDER BY (extra::jsonb ->> 'event_id')::int;
SELECT dblink_disconnect('listener');
DROP EXTENSION dblink;

-- Retention: everything older than a day goes, except each contact's latest
-- stop and start, and the events current stops refer to.
SELECT count(*) AS events_before FROM optout.events;
SELECT optout.prune_events(interval '1 day') AS pruned;
SELECT contact, kind FROM optout.events ORDER BY id;
SELECT optout.prune_events(NULL);
SELECT optout.prune_events(interval '-1 day');

-- PUBLIC sees none of it.
CREATE ROLE optout_nobody;
SET ROLE optout_nobody;
SELECT * FROM optout.stopped_now;
SELECT optout.explain_contact('1');
SELECT optout.prune_events(interval '1 day');
RESET ROLE;
DROP ROLE optout_nobody;

-- errors_after_stop lists only errors that mean "opted out": an unreachable
-- handset (30006) for a stopped contact is not a sign that something sends
-- around the block.
SELECT optout.record_delivery_error(contact, NULL, 'twilio', '30006') FROM optout.stops ORDER BY contact LIMIT 1;
SELECT contact, channel, provider, code, errors FROM optout.errors_after_stop;
SELECT optout.detach('msg') + optout.detach('receipts') AS detached;
DROP TABLE msg, receipts;
DROP EXTENSION optout;
