-- Attach validates everything it will later run, and runs nothing
-- (issue #26, section 1): values that do not fit their column, a
-- stopped_group_query checked without running it, the privileges of the
-- role the statements run as, contact keys of one kind, ill-formed input.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
\set VERBOSITY default
CREATE SCHEMA val;
SET search_path = val, public;

CREATE TABLE people (id integer PRIMARY KEY, org int, status varchar(1), touched timestamptz);
CREATE TABLE member (person integer, grp integer);
CREATE TABLE grp (id integer PRIMARY KEY, org int, kind varchar(1));
CREATE TABLE msgs (id serial, contact integer, channel int, direction char(1), status varchar(1),
                   body text, amount numeric(3,1));
CREATE TABLE victim (x int);
INSERT INTO victim VALUES (1);
INSERT INTO people VALUES (1, 1, 'A'), (2, 1, 'A');
INSERT INTO grp VALUES (10, 1, 'S'), (11, 1, 'U');
INSERT INTO member VALUES (1, 11), (2, 11);

-- 1. Values that do not fit their column are refused, not truncated.
SELECT optout.attach_contacts('people', 'id', 'status', 'STOPPED', 'A');
SELECT optout.attach_contacts('people', 'id', 'status', 'S', 'ACTIVE');
SELECT optout.attach_outbound('msgs', 'contact', on_blocked => 'mark', mark => '{"status": "FAILED"}');
SELECT optout.attach_outbound('msgs', 'contact', on_blocked => 'mark', mark => '{"amount": 1000}');
SELECT optout.attach_outbound('msgs', 'contact', queued => '{"status": ["Q", "QUEUED"]}');
SELECT optout.attach_outbound('msgs', 'contact', row_filter => '{"direction": "OUT"}');
SELECT optout.attach_outbound('msgs', 'contact', row_filter => '{"channel": "abc"}');
SELECT optout.attach_inbound('msgs', 'body', 'contact', row_filter => '{"channel": 1.5}');
SELECT optout.attach_outbound('msgs', 'contact', confirmation => '{"status": "CONFIRM"}');
SELECT optout.attach_groups('member', 'person', 'grp', stopped_group => 'ten');
-- a long value is cut in the message
SELECT optout.attach_outbound('msgs', 'contact', on_blocked => 'mark', mark => json_build_object('status', repeat('x', 200))::jsonb);
SELECT count(*) AS attachments FROM optout.attachments;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgname LIKE 'optout%';

-- 2. A stopped_group_query is checked, never run: one read-only SELECT
-- returning the group column's type.
SELECT optout.attach_groups('member', 'person', 'grp', stopped_group_query => 'SELECT 1; DROP TABLE val.victim');
SELECT count(*) AS victim_rows FROM victim;
SELECT optout.attach_groups('member', 'person', 'grp', stopped_group_query => 'DROP TABLE val.victim');
SELECT optout.attach_groups('member', 'person', 'grp',
       stopped_group_query => 'WITH d AS (DELETE FROM val.victim RETURNING x) SELECT x FROM d');
SELECT optout.attach_groups('member', 'person', 'grp',
       stopped_group_query => 'SELECT g.id FROM val.grp g WHERE g.kind = ''S'' FOR UPDATE');
SELECT optout.attach_groups('member', 'person', 'grp',
       stopped_group_query => 'SELECT x INTO val.victim2 FROM val.victim');
SELECT optout.attach_groups('member', 'person', 'grp',
       stopped_group_query => 'SELECT pg_catalog.nextval(''val.msgs_id_seq'')::integer');
SELECT optout.attach_groups('member', 'person', 'grp',
       stopped_group_query => 'SELECT g.id::text FROM val.grp g WHERE g.kind = ''S''');
SELECT optout.attach_groups('member', 'person', 'grp',
       stopped_group_query => 'SELECT g.id, g.org FROM val.grp g WHERE g.kind = ''S''');
SELECT optout.attach_groups('member', 'person', 'grp',
       stopped_group_query => 'SELECT g.id FROM grp g WHERE g.kind = ''S''');
SELECT optout.attach_groups('member', 'person', 'grp',
       stopped_group_query => 'SELECT g.id FROM val.grp g WHERE g.kind = $2');
SELECT optout.attach_groups('member', 'person', 'grp', stopped_group_query => 'SELEC 1');
SELECT optout.attach_groups('member', 'person', 'grp', stopped_group_query => '');
SELECT optout.attach_groups('member', 'person', 'grp',
       stopped_group_query => 'SELECT g.id FROM val.grp g WHERE g.kind = ''S'' AND g.org > 0 AND g.id > 0 AND g.id < 1000 AND g.org < 1000 AND g.kind <> ''x'' LIMIT 1; SELECT 2');
SELECT count(*) AS victim_rows FROM victim;
SELECT count(*) AS attachments FROM optout.attachments;
SELECT count(*) AS prepared FROM pg_prepared_statements;
-- after the refusals, the same session attaches (nothing was left behind)
SELECT optout.attach_contacts('people', 'id', 'status', 'S', 'A') > 0 AS contacts;
SELECT optout.attach_groups('member', 'person', 'grp',
       stopped_group_query => 'SELECT g.id FROM val.grp g JOIN val.people p ON p.org = g.org '
                              'WHERE p.id = $1::integer AND g.kind = ''S'' ORDER BY g.id LIMIT 1') > 0 AS groups;
SELECT optout.stop('1');
SELECT person, grp FROM member ORDER BY 1, 2;
SELECT id, status FROM people ORDER BY id;
SELECT optout.detach('member') + optout.detach('people') AS detached;

-- 3. Statements the table's owner cannot run are refused at attach: the
-- owner of the groups table cannot read the contacts table (the groups
-- statements check that a contact is known there).
CREATE ROLE optout_val_owner;
GRANT USAGE ON SCHEMA val TO optout_val_owner;
CREATE TABLE member2 (person integer, grp integer);
ALTER TABLE member2 OWNER TO optout_val_owner;
REVOKE ALL ON people FROM optout_val_owner;
SELECT optout.attach_contacts('people', 'id', 'status', 'S', 'A') > 0 AS contacts;
SELECT optout.attach_groups('member2', 'person', 'grp', stopped_group => '10');
-- ... nor the table its stopped_group_query reads
SELECT optout.detach('people');
SELECT optout.attach_groups('member2', 'person', 'grp',
       stopped_group_query => 'SELECT g.id FROM val.grp g WHERE g.kind = ''S''');
-- once granted, both attach
GRANT SELECT ON people, grp TO optout_val_owner;
SELECT optout.attach_groups('member2', 'person', 'grp',
       stopped_group_query => 'SELECT g.id FROM val.grp g WHERE g.kind = ''S'' LIMIT 1') > 0 AS groups;
-- a contacts table attached after the groups table is refused when the
-- groups table's owner cannot read it
REVOKE ALL ON people FROM optout_val_owner;
SELECT optout.attach_contacts('people', 'id', 'status', 'S', 'A');
SELECT kind, tbl FROM optout.attachments ORDER BY id;
SELECT optout.detach('member2');

-- 4. Contact keys of one kind: a uuid table and an integer table are refused.
CREATE TABLE upeople (id uuid PRIMARY KEY, status text);
CREATE TABLE bigmsgs (contact bigint, body text);
SELECT optout.attach_contacts('people', 'id', 'status', 'S', 'A') > 0 AS contacts;
SELECT optout.attach_contacts('upeople', 'id', 'status', 'S', 'A');
SELECT optout.attach_inbound('bigmsgs', 'body', 'contact') > 0 AS inbound_bigint;
SELECT optout.is_stopped('43');
\set SHOW_CONTEXT errors
SELECT optout.is_stopped('not a number');
\set SHOW_CONTEXT never
SELECT optout.detach('people') + optout.detach('bigmsgs') AS detached;

-- 5. Ill-formed input: a clear error naming the argument.
SELECT optout.attach_rapidpro(NULL);
SELECT optout.attach_rapidpro(repeat('s', 63));
SELECT optout.detach(NULL);
SELECT optout.explain_contact(NULL);
SELECT optout.attach_groups('member', 'persons', 'grp', stopped_group => '10');
SELECT optout.attach_groups('member', 'person', 'group', stopped_group => '10');
SELECT optout.attach_groups('member', 'person', NULL, stopped_group => '10');
SELECT optout.attach_delivery_errors('msgs', 'contact', code_column => 'status', provider => 'pigeon');
SELECT optout.attach_delivery_errors('msgs', 'contact', code_column => 'status', provider => repeat('p', 100));
SELECT optout.attach_outbound('msgs', 'contact', on_blocked => repeat('e', 100));
SELECT optout.attach_inbound('msgs', 'body', 'contact', row_filter => jsonb_build_array(repeat('r', 100)));
SELECT count(*) AS attachments FROM optout.attachments;

REVOKE ALL ON people, grp FROM optout_val_owner;
REVOKE ALL ON SCHEMA val FROM optout_val_owner;
SET client_min_messages = warning;
DROP SCHEMA val CASCADE;
RESET client_min_messages;
DROP ROLE optout_val_owner;
RESET search_path;
DROP EXTENSION optout;
