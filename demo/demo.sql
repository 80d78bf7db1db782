-- optout demo: the classifier, then the whole STOP -> stopped -> blocked -> START
-- story on a small sample platform, its history, and the compliance reports.
\pset footer off
\pset null '·'
CREATE EXTENSION optout;

\echo '1. An afternoon of inbound SMS, read in each mode.'
\echo '   exact is how providers match; standard (the default) adds Unicode'
\echo '   normalisation, separators, repeats and courtesy words; reasonable adds'
\echo '   natural-language requests, as the FCC requires since April 2025.'
CREATE TEMP TABLE inbound (id serial, body text);
INSERT INTO inbound (body) VALUES
    ('Yes, see you at 3!'),
    ('STOP'),
    ('Stop please'),
    ('ＳＴＯＰ'),
    (E'S\u200bTOP'),
    ('opt-out'),
    ('Arrêt'),
    ('BAJA'),
    ('stop texting me'),
    ('please remove me from your list'),
    ('Liked “Reply STOP to unsubscribe”'),
    ('Stop by the office at 5'),
    ('I can''t stop laughing 😂'),
    ('thanks'),
    ('START'),
    ('Help?'),
    ('yes please');

SELECT id, body,
       optout.classify(body, 'exact')      AS exact,
       optout.classify(body, 'standard')   AS standard,
       optout.classify(body, 'reasonable') AS reasonable
  FROM inbound ORDER BY id;

\echo '2. Why? explain() names the keyword, its language, the rule and the normalised text.'
SELECT i.body, e.intent, e.keyword, e.language, e.rule, e.normalized
  FROM inbound i, LATERAL optout.explain(i.body, 'reasonable') e
 WHERE e.intent IS NOT NULL ORDER BY i.id;

\echo '3. Keywords are a table: add your own, disable a default.'
INSERT INTO optout.keywords (keyword, intent, language) VALUES ('desinscribir', 'opt_out', 'es');
UPDATE optout.keywords SET enabled = false WHERE keyword = 'yes';
SELECT b AS body, optout.classify(b) AS standard
  FROM (VALUES ('Desinscribir'), ('yes'), ('start')) AS v(b);

\echo '4. A keyword belongs to one intent: a conflicting one is refused.'
\set ON_ERROR_STOP 0
\set SHOW_CONTEXT never
INSERT INTO optout.keywords (keyword, intent) VALUES ('S.T.O.P', 'opt_in');
\set ON_ERROR_STOP 1

\echo '5. The setting optout.match_mode picks the mode for a database or session.'
SET optout.match_mode = 'reasonable';
SELECT optout.classify('please stop messaging me') AS reasonable_by_setting;

\echo
\echo '6. A small platform of its own: contacts, groups, one message table, and a'
\echo '   history from before optout, in which Dana texted STOP and kept getting messages.'
RESET optout.match_mode;
CREATE SCHEMA shop;
CREATE TABLE shop.contacts (id int PRIMARY KEY, name text, status text NOT NULL DEFAULT 'active');
CREATE TABLE shop.groups (id int PRIMARY KEY, name text);
CREATE TABLE shop.members (contact_id int, group_id int, PRIMARY KEY (contact_id, group_id));
CREATE TABLE shop.messages (id serial PRIMARY KEY, contact_id int, direction text, body text,
                            status text DEFAULT 'queued', created_on timestamptz DEFAULT now(),
                            kind text NOT NULL DEFAULT 'marketing');
INSERT INTO shop.groups VALUES (1, 'Stopped'), (2, 'Customers'), (3, 'Newsletter');
INSERT INTO shop.contacts (id, name) VALUES (1, 'Ana'), (2, 'Ben'), (3, 'Chloé'), (4, 'Dana');
INSERT INTO shop.members VALUES (1, 2), (1, 3), (2, 2), (2, 3), (3, 3), (4, 2), (4, 3);
INSERT INTO shop.messages (contact_id, direction, body, status, created_on) VALUES
    (4, 'out', 'Spring sale!', 'sent', '2026-03-01 10:00'),
    (4, 'in', 'STOP', 'received', '2026-03-01 10:05'),
    (4, 'in', 'thanks', 'received', '2026-03-01 10:06'),
    (4, 'out', 'Summer sale!', 'sent', '2026-06-01 10:00'),
    (4, 'out', 'Autumn sale!', 'sent', '2026-09-01 10:00');

\echo
\echo '7. Before adopting optout: which opt-outs in the history were never honoured?'
CALL optout.backfill('shop.messages', body_column => 'body', contact_column => 'contact_id',
                     row_filter => '{"direction": "in"}', time_column => 'created_on');
SELECT contact, message_at, message, keyword, rule, lifted_by_opt_in, sent_after FROM optout.backfill_report();
\echo 'And what was sent to them after?'
SELECT r.contact, count(m.*) AS messages_sent_after
  FROM optout.backfill_report() r
  JOIN shop.messages m ON m.contact_id = r.contact::int AND m.direction = 'out' AND m.created_on > r.message_at
 GROUP BY r.contact;

\echo
\echo '8. Attach the platform: one call per table, naming which column is what,'
\echo '   what a blocked message gets, and what a confirmation and a help reply look like.'
SELECT optout.attach_contacts('shop.contacts', 'id', 'status', stopped_value => 'stopped', active_value => 'active') AS contacts,
       optout.attach_groups('shop.members', 'contact_id', 'group_id', stopped_group => '1') AS groups,
       optout.attach_inbound('shop.messages', body_column => 'body', contact_column => 'contact_id',
                             mode => 'reasonable', row_filter => '{"direction": "in"}') AS inbound,
       optout.attach_outbound('shop.messages', contact_column => 'contact_id', on_blocked => 'mark',
                              mark => '{"status": "blocked"}', queued => '{"status": "queued"}',
                              row_filter => '{"direction": "out"}', confirmation => '{"kind": "confirmation"}',
                              help_reply => '{"kind": "help"}') AS outbound;

\echo 'Now apply the backfill: Dana is stopped, with her original message on record.'
CALL optout.backfill('shop.messages', time_column => 'created_on', apply => true);
SELECT name, status, optout.is_stopped('4') AS stopped FROM shop.contacts WHERE id = 4;

\echo
\echo '9. Live: a newsletter is queued for everyone; Ana writes ＳＴＯＰ (full-width),'
\echo '   Ben "please remove me from your list".'
INSERT INTO shop.messages (contact_id, direction, body) SELECT id, 'out', 'Black Friday: 30% off!' FROM shop.contacts;
INSERT INTO shop.messages (contact_id, direction, body, status) VALUES
    (1, 'in', 'ＳＴＯＰ', 'received'), (2, 'in', 'please remove me from your list', 'received');
\echo 'Stopped in the same transaction: Stopped group in, every other group out.'
SELECT c.name, c.status, string_agg(g.name, ', ' ORDER BY g.name) AS groups
  FROM shop.contacts c LEFT JOIN shop.members m ON m.contact_id = c.id LEFT JOIN shop.groups g ON g.id = m.group_id
 GROUP BY c.id, c.name, c.status ORDER BY c.id;
\echo 'Their queued newsletter was failed; a new send is blocked too.'
INSERT INTO shop.messages (contact_id, direction, body) VALUES (1, 'out', 'Last chance!'), (3, 'out', 'Last chance!');
SELECT m.id, c.name, m.body, m.status FROM shop.messages m JOIN shop.contacts c ON c.id = m.contact_id
 WHERE m.direction = 'out' AND m.created_on > '2026-11-01' ORDER BY m.id;

\echo 'The platform confirms Ben''s opt-out (the one message the FCC allows, within 5 minutes):'
\echo 'accepted once; a second confirmation, or a promotion dressed up in the window, is blocked.'
INSERT INTO shop.messages (contact_id, direction, kind, body) VALUES
    (2, 'out', 'confirmation', 'Shop: you are unsubscribed and will get no more messages.'),
    (2, 'out', 'confirmation', 'Shop: you are unsubscribed (again).'),
    (2, 'out', 'marketing', 'Before you go: 50% off!');
SELECT m.id, m.kind, m.body, m.status FROM shop.messages m WHERE m.contact_id = 2 AND m.direction = 'out'
   AND m.created_on > '2026-11-01' ORDER BY m.id;
\echo 'Ben asks for HELP: one reply goes out even though he is stopped.'
INSERT INTO shop.messages (contact_id, direction, body, status) VALUES (2, 'in', 'HELP', 'received');
INSERT INTO shop.messages (contact_id, direction, kind, body) VALUES
    (2, 'out', 'help', 'Shop help: shop.example/help. Reply START to resubscribe.');
SELECT kind, body, status FROM shop.messages WHERE contact_id = 2 AND kind = 'help';

\echo 'Ana says "thanks", and the platform sets her back to active: the stop holds.'
INSERT INTO shop.messages (contact_id, direction, body, status) VALUES (1, 'in', 'thanks', 'received');
UPDATE shop.contacts SET status = 'active' WHERE id = 1;
SELECT name, status, optout.is_stopped('1') AS stopped FROM shop.contacts WHERE id = 1;
\echo 'Ana sends START: only an opt-in lifts a stop.'
INSERT INTO shop.messages (contact_id, direction, body, status) VALUES (1, 'in', 'START', 'received');
SELECT name, status, optout.is_stopped('1') AS stopped FROM shop.contacts WHERE id = 1;

\echo
\echo '10. Everything is on record: the history of Ana.'
SELECT id, kind, source, body, keyword, rule, detail FROM optout.history('1');

\echo
\echo '11. The compliance officer''s reports.'
SELECT contact, scope, source, keyword, rule, message FROM optout.stopped_now ORDER BY contact;
SELECT request, source, keyword, language, requests FROM optout.requests_daily ORDER BY request, source, keyword;
SELECT queued_failed, sends_blocked, contacts FROM optout.blocked_daily;
\echo 'Why is Ben stopped?'
SELECT jsonb_pretty(optout.explain_contact('2') - 'provider_errors' - 'help_requests' - 'status_changes_refused');

\echo
\echo '12. A lawyer asks about Ben: his evidence pack, one JSON document (the revocation shown).'
SELECT jsonb_pretty((optout.evidence('2') -> 'revocations' -> 0) - 'sends_after');
SELECT jsonb_pretty((optout.evidence('2') -> 'revocations' -> 0 -> 'sends_after') - 'records');
\echo 'And each stop''s honour time, for the monthly report (Dana''s came from the backfill).'
SELECT contact, source, message, received_at::date AS received, honoured_at::date AS honoured,
       business_days, within_10_business_days FROM optout.honour_times ORDER BY stop_event;
