-- Every attach function validates its arguments: a clear error, and nothing
-- changed.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never

CREATE TABLE msgs (id serial, contact bigint, channel text, body text, status text, sent boolean,
                   doc jsonb, created timestamptz DEFAULT now());
CREATE TABLE people (id bigint PRIMARY KEY, status text, kind int);
CREATE TABLE member (person bigint, grp int);
CREATE VIEW msgs_view AS SELECT * FROM msgs;
CREATE SEQUENCE seq;

-- missing table, not a table, missing column, unusable types
SELECT optout.attach_inbound('nosuch', 'body', 'contact');
SELECT optout.attach_inbound('msgs_view', 'body', 'contact');
SELECT optout.attach_inbound('seq', 'body', 'contact');
SELECT optout.attach_inbound('msgs', 'text', 'contact');
SELECT optout.attach_inbound('msgs', 'body', 'contact_id');
SELECT optout.attach_inbound('msgs', 'body', NULL);
SELECT optout.attach_inbound('msgs', 'created', 'contact');
SELECT optout.attach_inbound('msgs', 'body', 'doc');
SELECT optout.attach_inbound(NULL, 'body', 'contact');
-- bad options
SELECT optout.attach_inbound('msgs', 'body', 'contact', scope => 'planet');
SELECT optout.attach_inbound('msgs', 'body', 'contact', scope => 'channel');
SELECT optout.attach_inbound('msgs', 'body', 'contact', mode => 'fuzzy');
SELECT optout.attach_inbound('msgs', 'body', 'contact', row_filter => '["I"]');
SELECT optout.attach_inbound('msgs', 'body', 'contact', row_filter => '{"direction": "I"}');
SELECT optout.attach_inbound('msgs', 'body', 'contact', row_filter => '{"status": {"a": 1}}');
SELECT optout.attach_inbound('msgs', 'body', 'contact', row_filter => '{"status": []}');
SELECT optout.attach_inbound('msgs', 'body', 'contact', row_filter => '{"sent": "maybe"}');
SELECT optout.attach_outbound('msgs', 'contact', on_blocked => 'explode');
SELECT optout.attach_outbound('msgs', 'contact', on_blocked => 'mark');
SELECT optout.attach_outbound('msgs', 'contact', on_blocked => 'mark', mark => '{"nosuch": 1}');
SELECT optout.attach_outbound('msgs', 'contact', on_blocked => 'mark', mark => '{"sent": "perhaps"}');
SELECT optout.attach_outbound('msgs', 'contact', on_blocked => 'mark', mark => '"F"');
SELECT optout.attach_outbound('msgs', 'contact', queued => '{"nosuch": "Q"}');
SELECT optout.attach_contacts('people', 'id', 'status', 'S', 'S');
SELECT optout.attach_contacts('people', 'id', 'status', NULL, 'A');
SELECT optout.attach_contacts('people', 'id', 'kind', 'stopped', 'active');
SELECT optout.attach_contacts('people', 'id', 'status', 'S', 'A', touch_column => 'modified');
SELECT optout.attach_groups('member', 'person', 'grp');
SELECT optout.attach_groups('member', 'person', 'grp', stopped_group => '1', stopped_group_query => 'SELECT 1');
SELECT optout.attach_groups('member', 'person', 'grp', stopped_group => 'one');
SELECT optout.attach_groups('member', 'person', 'grp', stopped_group_query => 'SELECT nosuch FROM public.people WHERE id = $1::bigint');
SELECT optout.attach_groups('member', 'person', 'grp', stopped_group_query => 'SELECT kind FROM people WHERE id = $1::bigint');
SELECT optout.attach_delivery_errors('msgs', 'contact');
SELECT optout.attach_delivery_errors('msgs', 'contact', code_column => 'status');
SELECT optout.attach_delivery_errors('msgs', 'contact', event_column => 'status');
-- nothing was attached by any of that
SELECT count(*) AS attachments FROM optout.attachments;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid IN ('msgs'::regclass, 'people'::regclass) AND NOT tgisinternal;

-- attaching twice is an error; the first attachment stays
SELECT optout.attach_inbound('msgs', 'body', 'contact') > 0 AS attached;
SELECT optout.attach_inbound('msgs', 'body', 'contact');
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'msgs'::regclass AND NOT tgisinternal;

-- a column an attachment uses cannot be renamed or dropped under it
ALTER TABLE msgs RENAME COLUMN body TO message;
ALTER TABLE msgs DROP COLUMN contact CASCADE;
SELECT attname FROM pg_attribute WHERE attrelid = 'msgs'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
-- ... a column it does not use can
ALTER TABLE msgs ADD COLUMN note text;
ALTER TABLE msgs RENAME COLUMN note TO remark;
ALTER TABLE msgs DROP COLUMN remark;
-- a table changed behind optout's back (its event trigger bypassed): a clear
-- error at its next message, and enforcement again once it is put back
SET session_replication_role = replica;
ALTER TABLE msgs RENAME COLUMN body TO message;
RESET session_replication_role;
INSERT INTO msgs (contact, message) VALUES (1, 'STOP');
SET session_replication_role = replica;
ALTER TABLE msgs RENAME COLUMN message TO body;
RESET session_replication_role;
INSERT INTO msgs (contact, body) VALUES (1, 'STOP');
SELECT optout.is_stopped('1') AS stopped;

-- a dropped table takes its attachments with it
CREATE TABLE gone (contact int, body text);
SELECT optout.attach_inbound('gone', 'body', 'contact') > 0 AS attached;
DROP TABLE gone;
SELECT count(*) AS attachments_of_dropped FROM optout.attachments WHERE kind = 'inbound' AND tbl::oid NOT IN (SELECT oid FROM pg_class);
SELECT optout.detach('msgs') AS detached;
SELECT optout.detach('people') AS not_attached;

-- a stopped_group_query may be any query with $1 the contact key, a WITH
-- query too
SELECT optout.attach_groups('member', 'person', 'grp',
                            stopped_group_query => 'WITH g AS (SELECT $1::bigint AS id) SELECT 1 FROM g') > 0 AS attached;
SELECT optout.detach('member') AS detached;

-- only the owner attaches
CREATE ROLE optout_app;
GRANT ALL ON msgs TO optout_app;
SET ROLE optout_app;
SELECT optout.attach_inbound('msgs', 'body', 'contact');
SELECT optout.detach('msgs');
RESET ROLE;
DROP OWNED BY optout_app;
DROP ROLE optout_app;

DROP TABLE msgs, people, member CASCADE;
DROP SEQUENCE seq;
DROP EXTENSION optout;
