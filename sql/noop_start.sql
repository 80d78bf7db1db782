-- An opt-in that lifts nothing records nothing (issue #26, section 5): an
-- opt-in keyword from a contact never stopped, a second START, a manual
-- start of a contact not stopped. The reports count only real opt-ins.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
CREATE TABLE ns_msg (contact int, channel text, body text);
SELECT optout.attach_inbound('ns_msg', 'body', 'contact', 'channel') > 0 AS attached;

-- Contact 1 was never stopped: START and UNSTOP record nothing.
INSERT INTO ns_msg VALUES (1, '+1', 'START'), (1, '+1', 'UNSTOP');
INSERT INTO ns_msg VALUES (1, '+1', 'START');
SELECT count(*) AS events_of_1 FROM optout.events WHERE contact = '1';
-- Contact 2 stops, starts (one start event, lifting the stop), starts again (nothing).
INSERT INTO ns_msg VALUES (2, '+1', 'STOP');
INSERT INTO ns_msg VALUES (2, '+1', 'START');
INSERT INTO ns_msg VALUES (2, '+1', 'START');
-- ... and in one statement: STOP, START, START.
INSERT INTO ns_msg VALUES (3, '+1', 'STOP'), (3, '+1', 'START'), (3, '+1', 'START');
-- A manual start of a contact not stopped returns false and records nothing.
SELECT optout.start('4', reason => 'not stopped') AS lifted;
SELECT contact, kind, source, keyword, detail FROM optout.events ORDER BY id;
SELECT request, sum(requests) AS requests, sum(contacts) AS contacts
  FROM optout.requests_daily GROUP BY request ORDER BY request;
SELECT optout.explain_contact('1') -> 'last_opt_in' AS last_opt_in_1,
       optout.explain_contact('2') #>> '{last_opt_in,lifted}' AS lifted_2;
SELECT count(*) AS opt_ins_of_2 FROM optout.history('2') h WHERE h.kind = 'start';

DROP TABLE ns_msg;
DROP EXTENSION optout;
