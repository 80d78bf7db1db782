-- A RapidPro-shaped schema (see sql/rapidpro.sql) attached with one call, for
-- the upgrade test (test/scripts/upgrade.sh). Run in a database where optout
-- is installed, at whatever version: it uses only the API of 0.3.0, the first
-- release. Deterministic, so that two databases set up with it compare equal.
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
-- RapidPro's status-group trigger (a stand-in).
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
INSERT INTO contacts_contactgroup (org_id, name, is_system, group_type)
SELECT 1, g.name, g.sys, g.t FROM (VALUES ('\Active', true, 'A'), ('\Blocked', true, 'B'), ('\Stopped', true, 'S'),
          ('\Archived', true, 'V'), ('Farmers', false, 'M')) AS g(name, sys, t);
INSERT INTO contacts_contact (org_id, name) SELECT 1, 'contact ' || i FROM generate_series(1, 20) i;
INSERT INTO contacts_contactgroup_contacts (contactgroup_id, contact_id)
SELECT g.id, c.id FROM contacts_contact c JOIN contacts_contactgroup g ON g.group_type = 'M';

SELECT count(*) AS attached FROM optout.attach_rapidpro();
-- A custom keyword and a changed setting (config rows the upgrade must keep).
INSERT INTO optout.keywords (keyword, intent, language) VALUES ('basta', 'opt_out', 'it');
UPDATE optout.delivery_error_codes SET stops = false WHERE provider = 'twilio' AND code = '30004';
