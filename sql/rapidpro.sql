-- RapidPro drop-in: a RapidPro-shaped schema (as docs/reference.md describes it),
-- with stand-ins for RapidPro's own status-group and count triggers, wired in
-- one call.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

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
CREATE TABLE contacts_contactgroupcount (group_id integer PRIMARY KEY, count integer NOT NULL DEFAULT 0);
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

-- A contact's flow sessions: W waiting for its reply, C completed, I
-- interrupted, X expired, F failed.
CREATE TABLE flows_flowsession (
    id serial PRIMARY KEY, uuid uuid NOT NULL DEFAULT gen_random_uuid(), org_id integer NOT NULL,
    contact_id integer NOT NULL REFERENCES contacts_contact,
    status varchar(1) NOT NULL CHECK (status IN ('W', 'C', 'I', 'X', 'F')),
    session_type varchar(1) NOT NULL DEFAULT 'M', output text, created_on timestamptz NOT NULL DEFAULT now(),
    ended_on timestamptz, current_flow_id integer);

-- Stand-in for RapidPro's status-group trigger: moves a contact between the
-- four status groups of its org when its status changes.
CREATE FUNCTION contact_status_groups() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.status = OLD.status THEN RETURN NULL; END IF;
        DELETE FROM contacts_contactgroup_contacts
         WHERE contact_id = NEW.id
           AND contactgroup_id = (SELECT id FROM contacts_contactgroup WHERE org_id = NEW.org_id AND group_type = OLD.status);
    END IF;
    INSERT INTO contacts_contactgroup_contacts (contactgroup_id, contact_id)
    SELECT id, NEW.id FROM contacts_contactgroup WHERE org_id = NEW.org_id AND group_type = NEW.status;
    RETURN NULL;
END $$;
CREATE TRIGGER temba_contact_status AFTER INSERT OR UPDATE ON contacts_contact
    FOR EACH ROW EXECUTE FUNCTION contact_status_groups();
-- Stand-ins for the statement-level count triggers.
CREATE FUNCTION group_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO contacts_contactgroupcount AS c (group_id, count)
    SELECT contactgroup_id, count(*) FROM newtab GROUP BY contactgroup_id
    ON CONFLICT (group_id) DO UPDATE SET count = c.count + EXCLUDED.count;
    RETURN NULL;
END $$;
CREATE FUNCTION group_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE contacts_contactgroupcount c SET count = c.count - d.n
      FROM (SELECT contactgroup_id, count(*) AS n FROM oldtab GROUP BY contactgroup_id) d
     WHERE c.group_id = d.contactgroup_id;
    RETURN NULL;
END $$;
CREATE TRIGGER temba_group_count_insert AFTER INSERT ON contacts_contactgroup_contacts
    REFERENCING NEW TABLE AS newtab FOR EACH STATEMENT EXECUTE FUNCTION group_count_insert();
CREATE TRIGGER temba_group_count_delete AFTER DELETE ON contacts_contactgroup_contacts
    REFERENCING OLD TABLE AS oldtab FOR EACH STATEMENT EXECUTE FUNCTION group_count_delete();

-- Two orgs, each with its four status groups, two manual groups and a smart group.
INSERT INTO contacts_contactgroup (org_id, name, is_system, group_type, query)
SELECT o, g.name, g.sys, g.t, g.q FROM generate_series(1, 2) o,
  (VALUES ('\Active', true, 'A', NULL), ('\Blocked', true, 'B', NULL), ('\Stopped', true, 'S', NULL),
          ('\Archived', true, 'V', NULL), ('Farmers', false, 'M', NULL), ('Volunteers', false, 'M', NULL),
          ('Kigali', false, 'Q', 'city = "Kigali"')) AS g(name, sys, t, q)
ORDER BY o, g.t, g.name;
INSERT INTO contacts_contact (org_id, name) SELECT 1 + (i > 50)::int, 'contact ' || i FROM generate_series(1, 100) i;
INSERT INTO contacts_contactgroup_contacts (contactgroup_id, contact_id)
SELECT g.id, c.id FROM contacts_contact c JOIN contacts_contactgroup g ON g.org_id = c.org_id AND g.group_type IN ('M', 'Q');

CREATE VIEW groups_of AS
SELECT m.contact_id, string_agg(g.name, ', ' ORDER BY g.name) AS groups
  FROM contacts_contactgroup_contacts m JOIN contacts_contactgroup g ON g.id = m.contactgroup_id GROUP BY m.contact_id;
-- The counts RapidPro's triggers keep must equal the real memberships.
CREATE VIEW counts_wrong AS
SELECT g.id, g.name, coalesce(c.count, 0) AS kept, (SELECT count(*) FROM contacts_contactgroup_contacts m
                                                   WHERE m.contactgroup_id = g.id) AS actual
  FROM contacts_contactgroup g LEFT JOIN contacts_contactgroupcount c ON c.group_id = g.id
 WHERE coalesce(c.count, 0) <> (SELECT count(*) FROM contacts_contactgroup_contacts m WHERE m.contactgroup_id = g.id);

-- One call.
SELECT tbl, kind, trigger_name FROM optout.attach_rapidpro();

-- Contact 1 (org 1) has messages in every state before it texts STOP.
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status, sent_on) VALUES
    (1, 7, 1, 'initializing', 'O', 'I', NULL), (1, 7, 1, 'queued', 'O', 'Q', NULL), (1, 7, 1, 'errored', 'O', 'E', NULL),
    (1, 7, 1, 'wired', 'O', 'W', now()), (1, 7, 1, 'sent', 'O', 'S', now()), (1, 7, 2, 'queued for 2', 'O', 'Q', NULL);
SELECT groups FROM groups_of WHERE contact_id = 1;

INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 1, 'STOP', 'I', 'P');
SELECT id, status, modified_on > '2020-01-01' AS modified FROM contacts_contact WHERE id = 1;
SELECT groups FROM groups_of WHERE contact_id = 1;
SELECT contact_id, text, status, failed_reason, sent_on IS NOT NULL AS has_sent_on FROM msgs_msg
 WHERE direction = 'O' ORDER BY id;

-- mailroom's batch insert of a broadcast: 10,000 rows to 100 contacts, 11 of
-- them stopped: no error; the stopped contacts' rows are stored failed.
SELECT count(*) FILTER (WHERE optout.stop(id::text, reason => 'imported from RapidPro')) AS stopped
  FROM contacts_contact WHERE id % 10 = 0;
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status)
SELECT c.org_id, 7, c.id, 'broadcast', 'O', 'Q' FROM contacts_contact c, generate_series(1, 100) r;
SELECT (contact_id = 1 OR contact_id % 10 = 0) AS stopped_contact, status, failed_reason, count(*) FROM msgs_msg
 WHERE text = 'broadcast' GROUP BY 1, 2, 3 ORDER BY 1, 2;

-- A stop_contact channel event (RapidPro's record of Twilio 21610) stops a
-- contact; other event types do nothing.
INSERT INTO channels_channelevent (org_id, channel_id, contact_id, event_type) VALUES
    (2, 8, 63, 'new_conversation'), (2, 8, 61, 'stop_contact');
SELECT id, status FROM contacts_contact WHERE id IN (61, 63) ORDER BY id;
SELECT contact_id, groups FROM groups_of WHERE contact_id IN (61, 63) ORDER BY contact_id;

-- mailroom sets status A when any message arrives from a stopped contact:
-- with optout that does not lift the stop.
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 1, 'thanks', 'I', 'P');
UPDATE contacts_contact SET status = 'A', modified_on = now() WHERE id = 1;
SELECT status FROM contacts_contact WHERE id = 1;
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 1, 'are you there?', 'O', 'Q');
SELECT status, failed_reason FROM msgs_msg WHERE text = 'are you there?';
-- An opt-in keyword does: status A, back in \Active, out of \Stopped.
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 1, 'Start', 'I', 'P');
SELECT status FROM contacts_contact WHERE id = 1;
SELECT groups FROM groups_of WHERE contact_id = 1;
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 1, 'welcome back', 'O', 'Q');
SELECT status, failed_reason FROM msgs_msg WHERE text = 'welcome back';

-- Contacts of another org use their own org's groups.
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (2, 8, 70, 'ＳＴＯＰ', 'I', 'P');
SELECT g.org_id, g.name FROM contacts_contactgroup_contacts m JOIN contacts_contactgroup g ON g.id = m.contactgroup_id
 WHERE m.contact_id = 70;

-- RapidPro's group counts stayed correct through all of it.
SELECT * FROM counts_wrong;

-- Why is contact 1 stopped, and why not any more?
SELECT kind, channel, source, body, keyword, rule, table_name, detail FROM optout.history('1')
 WHERE kind <> 'blocked' OR detail ? 'queued_failed' ORDER BY id;
SELECT count(*) AS blocked_events, sum((detail ->> 'count')::int) AS blocked_sends
  FROM optout.history('1') WHERE kind = 'blocked' AND NOT detail ? 'queued_failed';
SELECT kind, source, code, table_name FROM optout.history('61') WHERE kind <> 'blocked' ORDER BY id;

-- A confirmation (issue #17): RapidPro has none of its own. An org whose
-- STOP keyword trigger starts a flow that says "you are unsubscribed" names
-- that flow's messages; one of them per stop goes out, the rest are failed.
SELECT sum(optout.detach(tbl)) AS detached FROM (SELECT DISTINCT tbl FROM optout.attached) t;
SELECT count(*) AS attached FROM optout.attach_rapidpro(confirmation => '{"flow_id": 42}');
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 5, 'stop', 'I', 'P');
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status, flow_id) VALUES
    (1, 7, 5, 'You are unsubscribed. Reply START to rejoin.', 'O', 'Q', 42),
    (1, 7, 5, 'You are unsubscribed (sent twice).', 'O', 'Q', 42),
    (1, 7, 5, 'Weekly news', 'O', 'Q', 7);
SELECT text, status, failed_reason FROM msgs_msg WHERE contact_id = 5 AND direction = 'O' AND text <> 'broadcast' ORDER BY id;

-- Flows ask questions (issue #24): a lone "No" or "B" from contact 33, whose
-- flow session waits for its reply, is an answer, not a review; the same
-- from contact 34, whose session has ended, is a review. A STOP from 33 stops.
INSERT INTO flows_flowsession (org_id, contact_id, status, ended_on) VALUES (1, 33, 'W', NULL), (1, 34, 'C', now());
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES
    (1, 7, 33, 'No', 'I', 'P'), (1, 7, 33, 'B', 'I', 'P'), (1, 7, 34, 'No', 'I', 'P'), (1, 7, 34, 'B', 'I', 'P');
SELECT contact, message, rule FROM optout.open_reviews ORDER BY review_id;
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 33, 'STOP', 'I', 'P');
SELECT id, status FROM contacts_contact WHERE id IN (33, 34) ORDER BY id;

-- Undo: detach every table.
SELECT sum(optout.detach(tbl)) AS detached FROM (SELECT DISTINCT tbl FROM optout.attached) t;
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE 'optout_%';

DROP EXTENSION optout;
