-- The FCC's revoke-all rule (47 CFR 64.1200(a)(10), due 31 January 2027):
-- from the date in optout.revoke_all_from, a stop on one channel is a stop
-- on every channel. Stops before the date stay as they were.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = notice;

CREATE TABLE ra_in (contact_id integer, channel text, body text);
CREATE TABLE ra_out (id serial, contact_id integer, channel text, body text, status text NOT NULL DEFAULT 'Q');
CREATE TABLE ra_errors (contact_id integer, channel text, code text);
SELECT optout.attach_inbound('ra_in', 'body', 'contact_id', 'channel', scope => 'channel') > 0 AS inbound,
       optout.attach_outbound('ra_out', 'contact_id', 'channel', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}') > 0 AS outbound,
       optout.attach_delivery_errors('ra_errors', 'contact_id', code_column => 'code', provider => 'twilio',
                                     channel_column => 'channel', scope => 'channel') > 0 AS errors;
SHOW optout.revoke_all_from;

-- 1. Not set: a STOP on +1 stops +1 only.
INSERT INTO ra_out (contact_id, channel, body) VALUES (1, '+1', 'queued on 1'), (1, '+2', 'queued on 2');
INSERT INTO ra_in VALUES (1, '+1', 'STOP');
SELECT contact, channel, source FROM optout.stops ORDER BY contact, channel;

-- 2. A date in the future: nothing changes yet.
SET optout.revoke_all_from = '2099-01-01';
INSERT INTO ra_in VALUES (2, '+1', 'STOP');
SELECT contact, channel FROM optout.stops WHERE contact = '2';

-- 3. From today (midnight UTC): a STOP on +1 stops every channel; the event
--    keeps the channel it came on and says why.
SELECT set_config('optout.revoke_all_from', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD'), false) IS NOT NULL AS set_today;
INSERT INTO ra_out (contact_id, channel, body) VALUES (3, '+1', 'queued on 1'), (3, '+2', 'queued on 2');
INSERT INTO ra_in VALUES (3, '+1', 'STOP');
SELECT contact, channel, source FROM optout.stops WHERE contact = '3';
SELECT kind, channel, keyword, detail ->> 'requested_channel' AS requested_channel,
       detail ->> 'revoke_all_from' = current_setting('optout.revoke_all_from') AS says_the_date
  FROM optout.events WHERE contact = '3' AND kind = 'stop';
SELECT contact_id, channel, body, status FROM ra_out WHERE contact_id = 3 ORDER BY id;
INSERT INTO ra_out (contact_id, channel, body) VALUES (3, '+2', 'after, on 2');
SELECT status FROM ra_out WHERE body = 'after, on 2';
SELECT optout.is_stopped('3', '+2') AS stopped_on_2, optout.is_stopped('3') AS contact_wide;

-- 4. The stop from before the date stays a channel stop; a new STOP from
--    the same contact is a new, contact-wide one.
SELECT contact, channel FROM optout.stops WHERE contact = '1';
INSERT INTO ra_in VALUES (1, '+2', 'STOP');
SELECT contact, channel FROM optout.stops WHERE contact = '1' ORDER BY channel NULLS FIRST;
SELECT contact_id, channel, body, status FROM ra_out WHERE contact_id = 1 ORDER BY id;

-- 5. Every way a stop arrives: a manual stop on a channel, a provider
--    opt-out error on a channel.
SELECT optout.stop('4', '+1', 'asked by mail') AS manual;
INSERT INTO ra_errors VALUES (5, '+2', '21610');
SELECT contact, channel, source FROM optout.stops WHERE contact IN ('4', '5') ORDER BY contact;
SELECT contact, channel, source, detail ->> 'requested_channel' AS requested_channel
  FROM optout.events WHERE contact IN ('4', '5') AND kind = 'stop' ORDER BY contact;

-- 6. An opt-in is unchanged: START on a channel lifts the contact-wide stop
--    (docs/enforcement.md, channel scope).
INSERT INTO ra_in VALUES (3, '+1', 'START');
SELECT optout.is_stopped('3') AS still_stopped, (SELECT detail ->> 'lifted' FROM optout.events
                                                 WHERE contact = '3' AND kind = 'start') AS lifted;

-- 7. A rolled-back setting, and the DBA's setting only.
BEGIN;
SET LOCAL optout.revoke_all_from = '';
INSERT INTO ra_in VALUES (6, '+1', 'STOP');
SELECT contact, channel FROM optout.stops WHERE contact = '6';
ROLLBACK;
SET optout.revoke_all_from = '2027-02-30';
SET optout.revoke_all_from = 'tomorrow';
SET optout.revoke_all_from = '2027-1-31';
SET optout.revoke_all_from = '2027-01-31 00:00';
SET optout.revoke_all_from = '2027-01-31';
SHOW optout.revoke_all_from;
CREATE ROLE regress_ra_app;
SET ROLE regress_ra_app;
SET optout.revoke_all_from = '';
RESET ROLE;
DROP ROLE regress_ra_app;
RESET optout.revoke_all_from;
SELECT name, setting, context FROM pg_settings WHERE name = 'optout.revoke_all_from';

SELECT optout.detach('ra_in') + optout.detach('ra_out') + optout.detach('ra_errors') AS detached;
DROP TABLE ra_in, ra_out, ra_errors;
DROP EXTENSION optout;
