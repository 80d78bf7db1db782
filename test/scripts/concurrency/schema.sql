-- A RapidPro-shaped schema (as sql/rapidpro.sql and docs/reference.md
-- describe it) of 20,000 contacts, for test/scripts/concurrency.sh and the
-- "concurrent" benchmark. psql variables: contacts (default 20000).
-- RapidPro's group counts are kept by inserting count rows (squashed later),
-- so its own statements never contend on a count row; the stand-in does the same.
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
CREATE INDEX ON contacts_contactgroup_contacts (contact_id);
CREATE TABLE contacts_contactgroupcount (id bigserial PRIMARY KEY, group_id integer NOT NULL,
                                         count integer NOT NULL, is_squashed boolean NOT NULL DEFAULT false);
CREATE TABLE msgs_msg (
    id bigserial PRIMARY KEY, uuid uuid NOT NULL DEFAULT gen_random_uuid(), org_id integer NOT NULL,
    channel_id integer, contact_id integer NOT NULL REFERENCES contacts_contact, contact_urn_id integer,
    text text NOT NULL, direction varchar(1) NOT NULL CHECK (direction IN ('I', 'O')),
    msg_type varchar(1) NOT NULL DEFAULT 'T', status varchar(1) NOT NULL,
    visibility varchar(1) NOT NULL DEFAULT 'V', created_on timestamptz NOT NULL DEFAULT now(),
    modified_on timestamptz NOT NULL DEFAULT now(), sent_on timestamptz, error_count integer NOT NULL DEFAULT 0,
    failed_reason varchar(1), external_identifier varchar(255), flow_id integer,
    CONSTRAINT sent_on_for_sent CHECK (status NOT IN ('W', 'S', 'D', 'R') OR sent_on IS NOT NULL));
CREATE INDEX ON msgs_msg (contact_id);
CREATE INDEX ON msgs_msg (status) WHERE direction = 'O';
CREATE TABLE channels_channelevent (
    id bigserial PRIMARY KEY, org_id integer NOT NULL, channel_id integer NOT NULL,
    contact_id integer NOT NULL REFERENCES contacts_contact, contact_urn_id integer,
    event_type varchar(16) NOT NULL, status varchar(1) NOT NULL DEFAULT 'P', extra text,
    occurred_on timestamptz NOT NULL DEFAULT now(), created_on timestamptz NOT NULL DEFAULT now());

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
CREATE FUNCTION group_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO contacts_contactgroupcount (group_id, count) SELECT contactgroup_id, count(*) FROM newtab GROUP BY 1;
    RETURN NULL;
END $$;
CREATE FUNCTION group_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO contacts_contactgroupcount (group_id, count) SELECT contactgroup_id, -count(*) FROM oldtab GROUP BY 1;
    RETURN NULL;
END $$;
CREATE TRIGGER temba_group_count_insert AFTER INSERT ON contacts_contactgroup_contacts
    REFERENCING NEW TABLE AS newtab FOR EACH STATEMENT EXECUTE FUNCTION group_count_insert();
CREATE TRIGGER temba_group_count_delete AFTER DELETE ON contacts_contactgroup_contacts
    REFERENCING OLD TABLE AS oldtab FOR EACH STATEMENT EXECUTE FUNCTION group_count_delete();

INSERT INTO contacts_contactgroup (org_id, name, is_system, group_type, query)
SELECT o, g.name, g.sys, g.t, g.q FROM generate_series(1, 2) o,
  (VALUES ('\Active', true, 'A', NULL), ('\Blocked', true, 'B', NULL), ('\Stopped', true, 'S', NULL),
          ('\Archived', true, 'V', NULL), ('Farmers', false, 'M', NULL), ('Volunteers', false, 'M', NULL),
          ('Kigali', false, 'Q', 'city = "Kigali"')) AS g(name, sys, t, q)
ORDER BY o, g.t, g.name;
INSERT INTO contacts_contact (org_id, name)
SELECT 1 + (i % 2), 'contact ' || i FROM generate_series(1, :contacts) i;
INSERT INTO contacts_contactgroup_contacts (contactgroup_id, contact_id)
SELECT g.id, c.id FROM contacts_contact c JOIN contacts_contactgroup g ON g.org_id = c.org_id AND g.group_type IN ('M', 'Q')
 WHERE g.group_type = 'Q' OR c.id % 3 = 0;
-- Some history: sent and failed messages.
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status, sent_on, failed_reason)
SELECT 1 + (c % 2), 7, c, 'history', 'O', CASE WHEN i = 1 THEN 'F' ELSE 'S' END,
       CASE WHEN i = 1 THEN NULL ELSE now() END, CASE WHEN i = 1 THEN 'E' END
  FROM generate_series(1, :contacts, 4) c, generate_series(1, 2) i;
-- The writes a committed-writes journal makes (the fault phase).
CREATE TABLE journal (n integer PRIMARY KEY, contact integer NOT NULL);
ANALYZE;
