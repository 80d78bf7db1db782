-- Health sees every trigger (issue #26, section 3): optout.attached and
-- optout.health() report each trigger an attachment needs, on its table and
-- its partitions, and whether it fires; a role that is not superuser cannot
-- drop, disable, set to ENABLE REPLICA, rename or replace them (the event
-- trigger optout_trigger_guard); a superuser can, with a WARNING. Detach,
-- DROP TABLE and the application role's ordinary DDL keep working.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE ROLE regress_health_app NOLOGIN;
CREATE ROLE regress_health_monitor NOLOGIN;
CREATE SCHEMA app AUTHORIZATION regress_health_app;
SET ROLE regress_health_app;
CREATE TABLE app.contacts (id int PRIMARY KEY, status text NOT NULL DEFAULT 'A');
CREATE TABLE app.msgs (id serial, contact int, direction text, body text, status text DEFAULT 'Q');
CREATE TABLE app.events (contact int, code text);
CREATE TABLE app.parted (id int, contact int, body text) PARTITION BY RANGE (id);
CREATE TABLE app.parted_1 PARTITION OF app.parted FOR VALUES FROM (0) TO (100);
INSERT INTO app.contacts SELECT generate_series(1, 9);
RESET ROLE;
SELECT optout.attach_contacts('app.contacts', 'id', 'status', 'S', 'A') AS contacts;
SELECT optout.attach_inbound('app.msgs', 'body', 'contact', row_filter => '{"direction": "in"}') AS inbound;
SELECT optout.attach_outbound('app.msgs', 'contact', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}', row_filter => '{"direction": "out"}') AS outbound;
SELECT optout.attach_delivery_errors('app.events', 'contact', 'code', provider => 'twilio') AS delivery;
SELECT optout.attach_inbound('app.parted', 'body', 'contact') AS parted;

-- All is well: every trigger each attachment needs, on the table and its partition.
SELECT id, tbl, kind, trigger_enabled, jsonb_pretty(triggers) FROM optout.attached ORDER BY id;
SELECT attachment, tbl, kind, triggers_ok, problems FROM optout.health() ORDER BY attachment;

-- 1. The application role (the tables' owner) cannot take a trigger away.
SET ROLE regress_health_app;
DROP TRIGGER optout_outbound_requeue ON app.msgs;
DROP TRIGGER optout_flush ON app.msgs;
DROP TRIGGER IF EXISTS optout_flush ON app.parted_1;
ALTER TABLE app.msgs DISABLE TRIGGER optout_outbound;
ALTER TABLE app.msgs ENABLE REPLICA TRIGGER optout_outbound_requeue;
ALTER TABLE app.msgs DISABLE TRIGGER USER;
ALTER TABLE app.msgs DISABLE TRIGGER ALL;
ALTER TABLE app.parted DISABLE TRIGGER optout_inbound;
ALTER TABLE app.parted_1 DISABLE TRIGGER optout_inbound;
ALTER TABLE app.contacts ADD COLUMN note text, DISABLE TRIGGER optout_contacts;
ALTER TRIGGER optout_inbound ON app.msgs RENAME TO mine;
CREATE OR REPLACE TRIGGER optout_outbound BEFORE INSERT ON app.msgs FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
RESET ROLE;
SELECT count(*) FILTER (WHERE NOT trigger_enabled) AS not_enabled FROM optout.attached;
SELECT count(*) AS column_not_added FROM pg_attribute WHERE attrelid = 'app.contacts'::regclass AND attname = 'note';

-- ... while its ordinary DDL keeps working: columns, indexes, its own
-- triggers (created, disabled, dropped), ENABLE of optout's, a table's
-- "optout_"-named trigger where nothing is attached.
SET ROLE regress_health_app;
ALTER TABLE app.msgs ADD COLUMN sent_on timestamptz;
CREATE INDEX msgs_contact_idx ON app.msgs (contact);
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER app_touch BEFORE INSERT ON app.msgs FOR EACH ROW EXECUTE FUNCTION app.touch();
ALTER TABLE app.msgs DISABLE TRIGGER app_touch;
ALTER TABLE app.msgs ENABLE TRIGGER app_touch;
DROP TRIGGER app_touch ON app.msgs;
ALTER TABLE app.msgs ENABLE TRIGGER optout_outbound;
ALTER TABLE app.msgs ENABLE ALWAYS TRIGGER optout_outbound;
ALTER TABLE app.msgs ENABLE TRIGGER optout_outbound;
CREATE TABLE app.other (id int);
CREATE TRIGGER optout_mine BEFORE INSERT ON app.other FOR EACH ROW EXECUTE FUNCTION app.touch();
ALTER TABLE app.other DISABLE TRIGGER optout_mine;
DROP TRIGGER optout_mine ON app.other;
CREATE TABLE app.parted_2 PARTITION OF app.parted FOR VALUES FROM (100) TO (200);
RESET ROLE;
SELECT count(*) FILTER (WHERE NOT trigger_enabled) AS not_enabled FROM optout.attached;
SELECT triggers_ok, problems FROM optout.health() WHERE tbl = 'app.parted'::regclass;

-- 2. A superuser can, with a WARNING; the view and health() then say so.
SET client_min_messages = warning;
ALTER TABLE app.msgs ENABLE REPLICA TRIGGER optout_outbound_requeue;
DROP TRIGGER optout_flush ON app.parted_2;
ALTER TABLE app.contacts DISABLE TRIGGER optout_contacts;
SELECT id, tbl, kind, trigger_enabled FROM optout.attached ORDER BY id;
SELECT t ->> 'table' AS "table", t ->> 'trigger' AS trigger, t ->> 'state' AS state
  FROM optout.attached, jsonb_array_elements(triggers) t WHERE t ->> 'state' NOT IN ('enabled', 'always');
SELECT attachment, tbl, kind, triggers_ok, problems FROM optout.health() ORDER BY attachment;
-- ... and the resend the requeue trigger would have caught slips through.
INSERT INTO app.msgs (contact, direction, body, status) VALUES (1, 'in', 'STOP', NULL);
INSERT INTO app.msgs (contact, direction, body, status) VALUES (1, 'out', 'old', 'W');
UPDATE app.msgs SET status = 'Q' WHERE body = 'old' RETURNING status;
-- Put back: every trigger fires again.
ALTER TABLE app.msgs ENABLE TRIGGER optout_outbound_requeue;
ALTER TABLE app.contacts ENABLE TRIGGER optout_contacts;
SELECT optout._flush_triggers('app.parted');
SELECT count(*) FILTER (WHERE NOT trigger_enabled) AS not_enabled FROM optout.attached;
UPDATE app.msgs SET status = 'W' WHERE body = 'old';
UPDATE app.msgs SET status = 'Q' WHERE body = 'old' RETURNING status;

-- 3. health(): counts of what was recorded on each attachment's table.
INSERT INTO app.msgs (contact, direction, body) VALUES (2, 'in', 'STOP'), (2, 'out', 'sale'), (2, 'out', 'sale');
INSERT INTO app.events VALUES (3, '21610');
UPDATE app.contacts SET status = 'A' WHERE id = 2;
INSERT INTO app.msgs (contact, direction, body) VALUES (2, 'in', 'START');
SELECT attachment, kind, triggers_ok, stops, starts, blocked, provider_errors, status_kept,
       counted_from = (SELECT created_at FROM optout.attachments WHERE id = attachment) AS from_attach,
       last_event_at IS NOT NULL AS has_last
  FROM optout.health() ORDER BY attachment;
SELECT count(*) FILTER (WHERE stops > 0) AS with_stops FROM optout.health(now() + interval '1 day');
-- Not for PUBLIC: a monitoring role is granted it.
SET ROLE regress_health_monitor;
SELECT count(*) FROM optout.health();
RESET ROLE;
GRANT EXECUTE ON FUNCTION optout.health(timestamptz) TO regress_health_monitor;
SET ROLE regress_health_monitor;
SELECT count(*) AS attachments, bool_and(triggers_ok) AS all_ok FROM optout.health();
RESET ROLE;

-- A hostile application role plants look-alikes of what health() and the
-- view use, first on the path of the DBA who calls them: none is called.
SET ROLE regress_health_app;
CREATE TABLE app.hijacks (what text);
GRANT INSERT ON app.hijacks TO PUBLIC;
CREATE FUNCTION app.neq(a text, b text) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO app.hijacks VALUES ('<>'); SELECT a OPERATOR(pg_catalog.<>) b $$;
CREATE OPERATOR app.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = app.neq);
CREATE FUNCTION app.format(f text, VARIADIC a text[]) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO app.hijacks VALUES ('format'); SELECT f $$;
CREATE FUNCTION app.jsonb_array_elements(j jsonb) RETURNS SETOF jsonb LANGUAGE sql
    AS $$ INSERT INTO app.hijacks VALUES ('jsonb_array_elements'); SELECT j $$;
RESET ROLE;
SET search_path = app, pg_catalog, public;
SELECT count(*) AS attachments, bool_and(triggers_ok) AS all_ok, sum(stops) AS stops FROM optout.health();
SELECT count(*) AS rows, bool_and(trigger_enabled) AS all_enabled FROM optout.attached;
RESET search_path;
SELECT count(*) AS hijacked FROM app.hijacks;

-- 4. Detach and DROP TABLE keep working, without a warning: detach removes
--    the attachments before it drops the triggers.
SELECT optout.detach('app.events') AS detached;
SELECT optout.detach('app.parted') AS detached;
SET ROLE regress_health_app;
DROP TABLE app.parted;
DROP TABLE app.msgs;
RESET ROLE;
SELECT tbl, kind, trigger_enabled FROM optout.attached ORDER BY id;
SELECT count(*) AS optout_triggers_left FROM pg_trigger WHERE tgname LIKE 'optout\_%'
   AND tgrelid IN ('app.events'::regclass, 'app.other'::regclass);
-- Once detached, the table's owner may do as it likes with its triggers.
SET ROLE regress_health_app;
CREATE TRIGGER optout_flush AFTER INSERT ON app.events FOR EACH STATEMENT EXECUTE FUNCTION app.touch();
ALTER TABLE app.events DISABLE TRIGGER optout_flush;
DROP TRIGGER optout_flush ON app.events;
RESET ROLE;

SELECT optout.detach('app.contacts');
DROP SCHEMA app CASCADE;
DROP EXTENSION optout;
DROP ROLE regress_health_app;
DROP ROLE regress_health_monitor;
