-- RapidPro's conversations (issue #24; issue #26 section 5): review per
-- attachment (no review for a reply to a waiting flow session), a stop and a
-- start in one statement equal to one at a time (the touch column included),
-- and stops on record applied by attach_contacts and attach_groups. On a
-- RapidPro-shaped database (as sql/rapidpro.sql builds it, with
-- flows_flowsession), and on a generic schema.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE SCHEMA rp;
SET search_path = rp, public;
CREATE TABLE contacts_contact (
    id serial PRIMARY KEY, uuid varchar(36) NOT NULL DEFAULT gen_random_uuid()::text, org_id integer NOT NULL,
    name varchar(128), is_active boolean NOT NULL DEFAULT true,
    created_on timestamptz NOT NULL DEFAULT now(), modified_on timestamptz NOT NULL DEFAULT '2020-01-01',
    last_seen_on timestamptz, status varchar(1) NOT NULL DEFAULT 'A' CHECK (status IN ('A', 'B', 'S', 'V')));
CREATE TABLE contacts_contactgroup (
    id serial PRIMARY KEY, uuid varchar(36) NOT NULL DEFAULT gen_random_uuid()::text, org_id integer NOT NULL,
    name varchar(64) NOT NULL, is_active boolean NOT NULL DEFAULT true, is_system boolean NOT NULL DEFAULT false,
    group_type varchar(1) NOT NULL CHECK (group_type IN ('A', 'B', 'S', 'V', 'M', 'Q')),
    status varchar(1) NOT NULL DEFAULT 'R', query text);
CREATE TABLE contacts_contactgroup_contacts (
    id bigserial PRIMARY KEY, contactgroup_id integer NOT NULL REFERENCES contacts_contactgroup,
    contact_id integer NOT NULL REFERENCES contacts_contact, UNIQUE (contactgroup_id, contact_id));
CREATE TABLE msgs_msg (
    id bigserial PRIMARY KEY, uuid uuid NOT NULL DEFAULT gen_random_uuid(), org_id integer NOT NULL,
    channel_id integer, contact_id integer NOT NULL REFERENCES contacts_contact, contact_urn_id integer,
    text text NOT NULL, direction varchar(1) NOT NULL CHECK (direction IN ('I', 'O')),
    msg_type varchar(1) NOT NULL DEFAULT 'T', status varchar(1) NOT NULL,
    visibility varchar(1) NOT NULL DEFAULT 'V', created_on timestamptz NOT NULL DEFAULT now(),
    modified_on timestamptz NOT NULL DEFAULT now(), sent_on timestamptz, error_count integer NOT NULL DEFAULT 0,
    failed_reason varchar(1), external_identifier varchar(255), flow_id integer,
    CONSTRAINT sent_on_for_sent CHECK (status NOT IN ('W', 'S', 'D', 'R') OR sent_on IS NOT NULL));
CREATE TABLE channels_channelevent (
    id bigserial PRIMARY KEY, org_id integer NOT NULL, channel_id integer NOT NULL,
    contact_id integer NOT NULL REFERENCES contacts_contact, contact_urn_id integer,
    event_type varchar(16) NOT NULL, status varchar(1) NOT NULL DEFAULT 'P', extra text,
    occurred_on timestamptz NOT NULL DEFAULT now(), created_on timestamptz NOT NULL DEFAULT now());
-- A contact's flow sessions: status W waiting (for the contact's reply),
-- C completed, I interrupted, X expired, F failed; at most one waiting.
CREATE TABLE flows_flowsession (
    id serial PRIMARY KEY, uuid uuid NOT NULL DEFAULT gen_random_uuid(), org_id integer NOT NULL,
    contact_id integer NOT NULL REFERENCES contacts_contact,
    status varchar(1) NOT NULL CHECK (status IN ('W', 'C', 'I', 'X', 'F')),
    session_type varchar(1) NOT NULL DEFAULT 'M', output text, created_on timestamptz NOT NULL DEFAULT now(),
    ended_on timestamptz, current_flow_id integer,
    CONSTRAINT flows_session_waiting_has_no_end CHECK ((status = 'W') = (ended_on IS NULL)));
CREATE UNIQUE INDEX flows_session_contact_waiting ON flows_flowsession (contact_id) WHERE status = 'W';

-- Stand-in for RapidPro's status-group trigger.
CREATE FUNCTION contact_status_groups() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.status = OLD.status THEN RETURN NULL; END IF;
        DELETE FROM rp.contacts_contactgroup_contacts
         WHERE contact_id = NEW.id
           AND contactgroup_id = (SELECT id FROM rp.contacts_contactgroup WHERE org_id = NEW.org_id AND group_type = OLD.status);
    END IF;
    INSERT INTO rp.contacts_contactgroup_contacts (contactgroup_id, contact_id)
    SELECT id, NEW.id FROM rp.contacts_contactgroup WHERE org_id = NEW.org_id AND group_type = NEW.status;
    RETURN NULL;
END $$;
CREATE TRIGGER temba_contact_status AFTER INSERT OR UPDATE ON contacts_contact
    FOR EACH ROW EXECUTE FUNCTION contact_status_groups();

INSERT INTO contacts_contactgroup (org_id, name, is_system, group_type)
VALUES (1, '\Active', true, 'A'), (1, '\Blocked', true, 'B'), (1, '\Stopped', true, 'S'), (1, '\Archived', true, 'V'),
       (1, 'Farmers', false, 'M'), (1, 'Volunteers', false, 'M');
INSERT INTO contacts_contact (org_id, name) SELECT 1, 'contact ' || i FROM generate_series(1, 12) i;
INSERT INTO contacts_contactgroup_contacts (contactgroup_id, contact_id)
SELECT g.id, c.id FROM contacts_contact c JOIN contacts_contactgroup g ON g.group_type = 'M';
CREATE VIEW groups_of AS
SELECT c.id AS contact_id, c.status, c.modified_on > '2020-01-01' AS touched,
       (SELECT string_agg(g.name, ', ' ORDER BY g.name) FROM contacts_contactgroup_contacts m
          JOIN contacts_contactgroup g ON g.id = m.contactgroup_id WHERE m.contact_id = c.id) AS groups
  FROM contacts_contact c;

-- ---------------------------------------------------------------------------
-- 1. Stops on record before the tables are attached (optout was in use on
-- another table, or the tables were detached and attached again): attaching
-- applies them, as a stop does. Contacts 1 and 2 stopped contact-wide,
-- contact 3 on one channel only (a channel stop changes no status or group).
SELECT optout.stop('1', reason => 'stopped by phone'), optout.stop('2', reason => 'stopped by phone'),
       optout.stop('3', channel => '7', reason => 'stopped on channel 7');
SELECT contact_id, status, touched, groups FROM groups_of WHERE contact_id <= 4 ORDER BY contact_id;
SET client_min_messages = notice;
SELECT tbl, kind FROM optout.attach_rapidpro('rp');
SET client_min_messages = warning;
SELECT contact_id, status, touched, groups FROM groups_of WHERE contact_id <= 4 ORDER BY contact_id;
-- Nothing new is on record: the stops were there already.
SELECT kind, contact, count(*) FROM optout.events GROUP BY 1, 2 ORDER BY 1, 2;
-- Attached again, nothing left to apply: no notice, nothing changes.
SELECT sum(optout.detach(tbl)) AS detached FROM (SELECT DISTINCT tbl FROM optout.attached) t;
SET client_min_messages = notice;
SELECT count(*) AS attached FROM optout.attach_rapidpro('rp');
SET client_min_messages = warning;
-- The stop is sticky from the first moment: mailroom's reset is kept.
UPDATE contacts_contact SET status = 'A' WHERE id = 1;
SELECT status FROM contacts_contact WHERE id = 1;
-- The option is on record: the inbound attachment has RapidPro's review_unless.
SELECT kind, review, review_unless IS NOT NULL AS has_review_unless
  FROM optout.attachments WHERE kind = 'inbound';

-- ---------------------------------------------------------------------------
-- 2. RapidPro's conversations: a flow asked contact 5 a question and waits
-- for its reply (session W); contact 6's flow has ended (C); contact 7 has
-- none. A lone "No" and a multiple-choice "A" go to review (classifier) ...
SELECT b AS body, optout.classify(b) AS intent FROM unnest(ARRAY['No', 'A', 'STOP']) b;
INSERT INTO flows_flowsession (org_id, contact_id, status, ended_on) VALUES
    (1, 5, 'W', NULL), (1, 6, 'C', now()), (1, 8, 'X', now()), (1, 8, 'W', NULL);
-- ... but only the contacts not answering a question get a review.
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES
    (1, 7, 5, 'No', 'I', 'P'), (1, 7, 5, 'A', 'I', 'P'),
    (1, 7, 6, 'No', 'I', 'P'), (1, 7, 6, 'A', 'I', 'P'),
    (1, 7, 7, 'no', 'I', 'P');
SELECT contact, message, rule FROM optout.open_reviews ORDER BY review_id;
-- A real STOP from a contact with a waiting session still stops.
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 8, 'STOP', 'I', 'P');
SELECT contact_id, status, groups FROM groups_of WHERE contact_id IN (5, 6, 7, 8) ORDER BY contact_id;
SELECT kind, contact, body FROM optout.events WHERE contact IN ('5', '6', '7', '8') ORDER BY id;
-- The session ends: the next "No" from contact 5 is a review again.
UPDATE flows_flowsession SET status = 'C', ended_on = now() WHERE contact_id = 5;
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 5, 'No', 'I', 'P');
SELECT contact, message FROM optout.open_reviews WHERE contact = '5';

-- ---------------------------------------------------------------------------
-- 3. A STOP and a START for one contact in one statement end as they would
-- one at a time: status, groups, and the touch column (modified_on).
-- Contact 9 one at a time, contact 10 in one statement.
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 9, 'STOP', 'I', 'P');
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 9, 'START', 'I', 'P');
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES
    (1, 7, 10, 'STOP', 'I', 'P'), (1, 7, 10, 'START', 'I', 'P');
SELECT contact_id, status, touched, groups FROM groups_of WHERE contact_id IN (9, 10) ORDER BY contact_id;
-- The other order, from stopped: START then STOP. Contact 11 one at a time,
-- contact 12 in one statement (their touch column reset after the STOP).
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES
    (1, 7, 11, 'STOP', 'I', 'P'), (1, 7, 12, 'STOP', 'I', 'P');
UPDATE contacts_contact SET modified_on = '2020-01-01' WHERE id IN (11, 12);
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 11, 'START', 'I', 'P');
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 11, 'STOP', 'I', 'P');
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES
    (1, 7, 12, 'START', 'I', 'P'), (1, 7, 12, 'STOP', 'I', 'P');
SELECT contact_id, status, touched, groups FROM groups_of WHERE contact_id IN (11, 12) ORDER BY contact_id;
-- A STOP from a contact already stopped changes nothing (no touch).
UPDATE contacts_contact SET modified_on = '2020-01-01' WHERE id = 12;
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 12, 'STOP', 'I', 'P');
SELECT contact_id, status, touched FROM groups_of WHERE contact_id = 12;
-- The record says the same for both.
SELECT contact, kind, detail ->> 'lifted' AS lifted FROM optout.events
 WHERE contact IN ('9', '10', '11', '12') AND kind IN ('stop', 'start') ORDER BY contact, id;

RESET search_path;

-- ---------------------------------------------------------------------------
-- 4. A generic schema: review => false records no reviews (a stop still
-- stops); attach_contacts and attach_groups apply the stops on record.
CREATE SCHEMA app;
CREATE TABLE app.people (id integer PRIMARY KEY, state text NOT NULL DEFAULT 'ok', touched_at timestamptz);
CREATE TABLE app.memberships (person integer NOT NULL, list text NOT NULL, PRIMARY KEY (person, list));
CREATE TABLE app.inbox (id bigserial PRIMARY KEY, person integer, body text);
INSERT INTO app.people (id) SELECT generate_series(101, 104);
INSERT INTO app.memberships SELECT p, l FROM generate_series(101, 104) p, unnest(ARRAY['news', 'offers']) l;
SELECT optout.stop('101', reason => 'letter'), optout.stop('102', channel => 'sms', reason => 'sms only');
SET client_min_messages = notice;
SELECT optout.attach_contacts('app.people', 'id', 'state', 'out', 'ok', touch_column => 'touched_at') > 0 AS contacts;
SELECT optout.attach_groups('app.memberships', 'person', 'list', stopped_group => 'opted-out') > 0 AS groups;
SET client_min_messages = warning;
SELECT p.id, p.state, p.touched_at IS NOT NULL AS touched,
       (SELECT string_agg(m.list, ', ' ORDER BY m.list) FROM app.memberships m WHERE m.person = p.id) AS lists
  FROM app.people p ORDER BY p.id;
SELECT optout.attach_inbound('app.inbox', 'body', 'person', review => false) > 0 AS inbound;
INSERT INTO app.inbox (person, body) VALUES (103, 'no'), (103, 'B'), (104, 'STOP');
SELECT count(*) AS reviews FROM optout.events WHERE kind = 'review' AND contact IN ('103', '104');
SELECT p.id, p.state FROM app.people p WHERE p.id IN (103, 104) ORDER BY p.id;
-- review_unless on a generic table: a contact with an open question.
CREATE TABLE app.questions (person integer, open boolean);
INSERT INTO app.questions VALUES (103, true);
SELECT optout.detach('app.inbox') AS detached;
SELECT optout.attach_inbound('app.inbox', 'body', 'person',
           review_unless => 'SELECT 1 FROM app.questions q WHERE q.person = $1::int AND q.open') > 0 AS inbound;
INSERT INTO app.inbox (person, body) VALUES (103, 'no'), (104, 'no');
SELECT contact, message FROM optout.open_reviews WHERE contact IN ('103', '104') ORDER BY review_id;

-- Bad input: clear errors, nothing attached.
SELECT optout.detach('app.inbox') AS detached;
SELECT optout.attach_inbound('app.inbox', 'body', 'person', review => false, review_unless => 'SELECT 1');
SELECT optout.attach_inbound('app.inbox', 'body', 'person', review_unless => '  ');
SELECT optout.attach_inbound('app.inbox', 'body', 'person', review_unless => 'SELECT 1 FROM no_such_table WHERE $1 = ''x''');
SELECT optout.attach_inbound('app.inbox', 'body', 'person', review_unless => 'SELECT 1 FROM questions q WHERE q.person = $1::int');
SELECT count(*) AS inbound_attachments FROM optout.attachments WHERE tbl = 'app.inbox'::regclass;
-- review => NULL is the default: reviews recorded.
SELECT optout.attach_inbound('app.inbox', 'body', 'person', review => NULL) > 0 AS inbound;
SELECT review FROM optout.attachments WHERE tbl = 'app.inbox'::regclass;

-- The helper is not for PUBLIC.
SELECT has_function_privilege('public', 'optout._apply_existing_stops(integer)', 'EXECUTE') AS public_apply,
       has_function_privilege('public', 'optout.attach_inbound(regclass, name, name, name, optout.match_mode, text, jsonb, boolean, text, text, name, text)', 'EXECUTE') AS public_attach;

DROP SCHEMA app CASCADE;
DROP SCHEMA rp CASCADE;
DROP EXTENSION optout;
