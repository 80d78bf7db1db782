-- The review queue end to end: replies too unclear to act on are recorded as
-- 'review' events by an attached inbound table, listed by
-- optout.open_reviews, and closed by optout.stop() or optout.dismiss_review(),
-- both on record. A review is never a stop.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE SCHEMA app;
CREATE TABLE app.contacts (id integer PRIMARY KEY, status text NOT NULL DEFAULT 'active');
CREATE TABLE app.inbox (id bigserial PRIMARY KEY, contact_id integer, channel text, body text);
CREATE TABLE app.outbox (id bigserial PRIMARY KEY, contact_id integer, channel text, body text);
INSERT INTO app.contacts (id) SELECT generate_series(1, 6);
SELECT optout.attach_inbound('app.inbox', body_column => 'body', contact_column => 'contact_id',
                             channel_column => 'channel', mode => 'reasonable') > 0 AS inbound;
SELECT optout.attach_outbound('app.outbox', contact_column => 'contact_id', channel_column => 'channel',
                              on_blocked => 'error') > 0 AS outbound;
SELECT optout.attach_contacts('app.contacts', key_column => 'id', status_column => 'status',
                              stopped_value => 'stopped', active_value => 'active') > 0 AS contacts;

-- What the classifier says about the replies, and why.
SELECT b AS body, x.intent, x.rule, x.keyword, x.language
  FROM unnest(ARRAY['no', 'S', 'Stop, you''re killing me 😂', 'nope', 'STOP', 'stop?', 'see you at 5']) b,
       LATERAL optout.explain(b, 'reasonable') x;
-- In standard mode the lone "no" and "S" go to review too; exact never does.
SELECT optout.classify('no', 'standard') AS std_no, optout.classify('S', 'standard') AS std_s,
       optout.classify('Stop, you''re killing me', 'standard') AS std_aside, optout.classify('no', 'exact') AS exact_no;

-- Replies arrive.
INSERT INTO app.inbox (contact_id, channel, body) VALUES
    (1, 'sms', 'no'),
    (2, 'sms', 'S'),
    (3, 'whatsapp', 'Stop, you''re killing me 😂'),
    (4, 'sms', 'STOP'),
    (5, 'sms', 'see you at 5');
-- The events: one review per unclear reply, a stop for contact 4, nothing for 5.
SELECT kind, contact, channel, source, body, keyword, rule, table_name FROM optout.events ORDER BY id;
-- A review is never a stop: contacts 1-3 are still active and can be sent to.
SELECT id, status FROM app.contacts ORDER BY id;
SELECT optout.is_stopped('1') AS c1, optout.is_stopped('2') AS c2, optout.is_stopped('3') AS c3, optout.is_stopped('4') AS c4;
INSERT INTO app.outbox (contact_id, channel, body) VALUES (1, 'sms', 'ok, noted'), (2, 'sms', 'Did you mean STOP?');
SELECT count(*) AS sent FROM app.outbox;

-- The queue.
SELECT contact, channel, message, rule, word, language, table_name, stopped_now FROM optout.open_reviews ORDER BY review_id;

-- Contact 2 meant STOP: the officer stops it; the review closes.
SELECT optout.stop('2', reason => 'review: "S" confirmed as stop by phone') AS stopped;
-- Contact 1 was answering a question: dismissed, with a reason.
SELECT optout.dismiss_review((SELECT review_id FROM optout.open_reviews WHERE contact = '1'),
                             reason => 'answered "Do you need a reminder?"') AS dismissed;
-- Dismissing again changes nothing and records nothing.
SELECT optout.dismiss_review((SELECT max(id) FROM optout.events WHERE kind = 'review' AND contact = '1'),
                             reason => 'again') AS dismissed_again;
SELECT contact, message, rule FROM optout.open_reviews ORDER BY review_id;
-- Both closings are on record.
SELECT kind, contact, channel, source, reason, detail ->> 'review' IS NOT NULL AS names_review
  FROM optout.events WHERE kind IN ('stop', 'review_dismissed') ORDER BY id;
SELECT id, status FROM app.contacts WHERE id IN (1, 2) ORDER BY id;

-- A later unclear reply from the dismissed contact opens a new review.
INSERT INTO app.inbox (contact_id, channel, body) VALUES (1, 'sms', 'NO.');
SELECT contact, message, rule FROM optout.open_reviews ORDER BY review_id;

-- Bad input: a clear error, nothing recorded.
SELECT optout.dismiss_review((SELECT review_id FROM optout.open_reviews WHERE contact = '1'), reason => '  ');
SELECT optout.dismiss_review((SELECT review_id FROM optout.open_reviews WHERE contact = '1'), NULL);
SELECT optout.dismiss_review(NULL, 'x');
SELECT optout.dismiss_review((SELECT min(id) FROM optout.events WHERE kind = 'stop'), 'not a review');
SELECT optout.dismiss_review(-1, 'no such event');
SELECT count(*) AS dismissals FROM optout.events WHERE kind = 'review_dismissed';

-- No keyword can have the intent review.
\set VERBOSITY terse
INSERT INTO optout.keywords (keyword, intent) VALUES ('maybe', 'review');
\set VERBOSITY default

-- The reports count reviews as their own request.
SELECT request, keyword, sum(requests) AS requests FROM optout.requests_daily GROUP BY 1, 2 ORDER BY 1, 2;
SELECT optout.explain_contact('1') -> 'open_reviews' AS c1_open, optout.explain_contact('3') -> 'open_reviews' AS c3_open;
-- Retention keeps open reviews, whatever their age.
UPDATE optout.events SET at = at - interval '400 days';
SELECT optout.prune_events('30 days') > 0 AS pruned;
SELECT contact, message FROM optout.open_reviews ORDER BY review_id;

-- PUBLIC sees neither the queue nor the function.
SELECT has_table_privilege('public', 'optout.open_reviews', 'SELECT') AS public_view,
       has_function_privilege('public', 'optout.dismiss_review(bigint, text)', 'EXECUTE') AS public_dismiss;

DROP SCHEMA app CASCADE;
DROP EXTENSION optout;
