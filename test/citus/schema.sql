-- A RapidPro-shaped schema (the columns optout uses, as in sql/rapidpro.sql),
-- distributed as a Citus cluster would shard it: by contact. Messages,
-- contacts, group memberships and channel events are co-located by contact
-- (a primary key on a distributed table must include the distribution column,
-- hence (id, contact_id)); groups are a reference table.
CREATE TABLE contacts_contact (
    id integer PRIMARY KEY, uuid varchar(36) NOT NULL DEFAULT gen_random_uuid()::text, org_id integer NOT NULL,
    name varchar(128), is_active boolean NOT NULL DEFAULT true,
    created_on timestamptz NOT NULL DEFAULT now(), modified_on timestamptz NOT NULL DEFAULT '2020-01-01',
    status varchar(1) NOT NULL DEFAULT 'A' CHECK (status IN ('A', 'B', 'S', 'V')));
CREATE TABLE contacts_contactgroup (
    id integer PRIMARY KEY, org_id integer NOT NULL, name varchar(64) NOT NULL,
    group_type varchar(1) NOT NULL CHECK (group_type IN ('A', 'B', 'S', 'V', 'M', 'Q')));
CREATE TABLE contacts_contactgroup_contacts (
    id bigserial, contactgroup_id integer NOT NULL, contact_id integer NOT NULL,
    PRIMARY KEY (id, contact_id), UNIQUE (contactgroup_id, contact_id));
CREATE TABLE msgs_msg (
    id bigserial, org_id integer NOT NULL, channel_id integer, contact_id integer NOT NULL,
    text text NOT NULL, direction varchar(1) NOT NULL CHECK (direction IN ('I', 'O')),
    status varchar(1) NOT NULL, created_on timestamptz NOT NULL DEFAULT now(),
    sent_on timestamptz, failed_reason varchar(1), PRIMARY KEY (id, contact_id));
CREATE TABLE channels_channelevent (
    id bigserial, org_id integer NOT NULL, channel_id integer NOT NULL, contact_id integer NOT NULL,
    event_type varchar(16) NOT NULL, occurred_on timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (id, contact_id));

SELECT create_reference_table('contacts_contactgroup');
SELECT create_distributed_table('contacts_contact', 'id', shard_count => 4);
SELECT create_distributed_table('contacts_contactgroup_contacts', 'contact_id', colocate_with => 'contacts_contact');
SELECT create_distributed_table('msgs_msg', 'contact_id', colocate_with => 'contacts_contact');
SELECT create_distributed_table('channels_channelevent', 'contact_id', colocate_with => 'contacts_contact');
ALTER TABLE contacts_contactgroup_contacts ADD FOREIGN KEY (contact_id) REFERENCES contacts_contact (id);
ALTER TABLE contacts_contactgroup_contacts ADD FOREIGN KEY (contactgroup_id) REFERENCES contacts_contactgroup (id);
ALTER TABLE msgs_msg ADD FOREIGN KEY (contact_id) REFERENCES contacts_contact (id);

-- Two orgs, each with its four status groups and a manual group; 1,000 contacts.
INSERT INTO contacts_contactgroup (id, org_id, name, group_type)
SELECT (o - 1) * 10 + g.n, o, g.name, g.t FROM generate_series(1, 2) o,
  (VALUES (1, '\Active', 'A'), (2, '\Blocked', 'B'), (3, '\Stopped', 'S'), (4, '\Archived', 'V'),
          (5, 'Farmers', 'M')) AS g(n, name, t);
INSERT INTO contacts_contact (id, org_id, name) SELECT i, 1 + (i > 500)::int, 'contact ' || i FROM generate_series(1, 1000) i;
INSERT INTO contacts_contactgroup_contacts (contactgroup_id, contact_id)
SELECT (c.org_id - 1) * 10 + g, c.id FROM contacts_contact c, unnest(ARRAY[1, 5]) g;
