-- A migration (RapidPro's, Django's) run as the application role, on a
-- database where optout is attached: the role's own DDL keeps working, it
-- needs no right on optout for it, and what stays attached stays enforced.
-- A column an attachment uses cannot be dropped or renamed from under it
-- (optout.detach() first).
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE ROLE regress_optout_mig NOLOGIN;
CREATE ROLE regress_optout_mig2 NOLOGIN;
-- The migration role may act for the second role (DROP OWNED BY needs it).
GRANT regress_optout_mig2 TO regress_optout_mig;
CREATE SCHEMA mig AUTHORIZATION regress_optout_mig;
CREATE SCHEMA mig2 AUTHORIZATION regress_optout_mig;
CREATE SCHEMA mig3 AUTHORIZATION regress_optout_mig2;

SET ROLE regress_optout_mig;
CREATE TABLE mig.contacts (id int PRIMARY KEY, status text NOT NULL DEFAULT 'A', name text,
                           modified_on timestamptz);
CREATE TABLE mig.msgs (id serial PRIMARY KEY, contact_id int, channel_id int, direction text NOT NULL, text text,
                       status text NOT NULL DEFAULT 'Q', failed_reason text, created_on date NOT NULL DEFAULT '2026-10-15');
CREATE TABLE mig.pmsgs (id bigserial, contact_id int, direction text NOT NULL, text text,
                        status text NOT NULL DEFAULT 'Q', created_on date NOT NULL) PARTITION BY RANGE (created_on);
CREATE TABLE mig.pmsgs_2026_10 PARTITION OF mig.pmsgs FOR VALUES FROM ('2026-10-01') TO ('2026-11-01');
CREATE TABLE mig2.msgs (id serial PRIMARY KEY, contact_id int, text text);
SET ROLE regress_optout_mig2;
CREATE TABLE mig3.receipts (contact_id int, code text);
RESET ROLE;
SET ROLE regress_optout_mig;
INSERT INTO mig.contacts (id) SELECT generate_series(1, 9);
RESET ROLE;

-- The DBA attaches the platform; the migration role is granted nothing on optout.
SELECT optout.attach_contacts('mig.contacts', 'id', 'status', 'S', 'A', touch_column => 'modified_on') > 0 AS contacts,
       optout.attach_inbound('mig.msgs', 'text', 'contact_id', 'channel_id', row_filter => '{"direction": "I"}') > 0 AS inbound,
       optout.attach_outbound('mig.msgs', 'contact_id', 'channel_id', on_blocked => 'mark',
                              mark => '{"status": "F", "failed_reason": "C"}', queued => '{"status": "Q"}',
                              row_filter => '{"direction": "O"}') > 0 AS outbound,
       optout.attach_inbound('mig.pmsgs', 'text', 'contact_id', row_filter => '{"direction": "I"}') > 0 AS p_inbound,
       optout.attach_outbound('mig.pmsgs', 'contact_id', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}', row_filter => '{"direction": "O"}') > 0 AS p_outbound,
       optout.attach_inbound('mig2.msgs', 'text', 'contact_id') > 0 AS mig2_inbound,
       optout.attach_delivery_errors('mig3.receipts', 'contact_id', code_column => 'code', provider => 'twilio') > 0 AS mig3_errors;
SELECT tbl, kind, trigger_enabled FROM optout.attached ORDER BY tbl::text, kind;
SELECT count(*) AS app_rights_on_optout
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'optout'
   AND (has_table_privilege('regress_optout_mig', c.oid, 'INSERT') OR has_table_privilege('regress_optout_mig', c.oid, 'UPDATE')
        OR has_table_privilege('regress_optout_mig', c.oid, 'DELETE') OR has_table_privilege('regress_optout_mig', c.oid, 'TRUNCATE'));
-- (trigger functions aside: they run only as the triggers optout creates)
SELECT p.oid::regprocedure AS app_may_execute
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'optout' AND has_function_privilege('regress_optout_mig', p.oid, 'EXECUTE')
   AND p.prorettype <> 'trigger'::regtype
 ORDER BY p.oid::regprocedure::text;

SET ROLE regress_optout_mig;

-- 1. Tables that were never attached: create, alter, rename, drop.
CREATE TABLE mig.flows (id serial PRIMARY KEY, name text);
ALTER TABLE mig.flows ADD COLUMN is_active boolean;
ALTER TABLE mig.flows ALTER COLUMN is_active SET DEFAULT true;
ALTER TABLE mig.flows ADD COLUMN org_id int REFERENCES mig.contacts (id);
CREATE INDEX flows_name_idx ON mig.flows (name);
ALTER TABLE mig.flows RENAME TO flows_flow;
ALTER TABLE mig.flows_flow RENAME COLUMN name TO label;
ALTER TABLE mig.flows_flow DROP COLUMN label;
CREATE TABLE mig.scratch (id int);
DROP TABLE mig.scratch;
DROP TABLE mig.flows_flow;
SELECT to_regclass('mig.flows_flow') IS NULL AS flows_gone, to_regclass('mig.scratch') IS NULL AS scratch_gone;
SELECT tbl, kind FROM optout.attached ORDER BY tbl::text, kind;

-- 2. An attached table renamed (as Django renames a model's table): still
--    attached under its new name, still enforced.
ALTER TABLE mig.msgs RENAME TO msgs_msg;
ALTER INDEX mig.msgs_pkey RENAME TO msgs_msg_pkey;
ALTER SEQUENCE mig.msgs_id_seq RENAME TO msgs_msg_id_seq;
SELECT tbl, kind FROM optout.attached ORDER BY tbl::text, kind;
INSERT INTO mig.msgs_msg (contact_id, channel_id, direction, text) VALUES (1, 10, 'O', 'queued for 1');
INSERT INTO mig.msgs_msg (contact_id, channel_id, direction, text) VALUES (1, 10, 'I', 'STOP');
INSERT INTO mig.msgs_msg (contact_id, channel_id, direction, text) VALUES (1, 10, 'O', 'after the stop'), (2, 10, 'O', 'to 2');
SELECT contact_id, text, status, failed_reason FROM mig.msgs_msg WHERE direction = 'O' ORDER BY id;
SELECT id, status, modified_on IS NOT NULL AS touched FROM mig.contacts WHERE id IN (1, 2) ORDER BY id;

-- 3. Columns added, defaults set, an index made on an attached table.
ALTER TABLE mig.msgs_msg ADD COLUMN visibility text NOT NULL DEFAULT 'V';
ALTER TABLE mig.msgs_msg ALTER COLUMN visibility SET DEFAULT 'A';
ALTER TABLE mig.msgs_msg ALTER COLUMN direction SET DEFAULT 'O';
ALTER TABLE mig.msgs_msg ADD COLUMN external_id varchar(255);
CREATE INDEX msgs_msg_contact_idx ON mig.msgs_msg (contact_id, created_on);
ALTER TABLE mig.contacts ADD COLUMN language varchar(3);
ALTER TABLE mig.contacts ALTER COLUMN status SET DEFAULT 'A';
INSERT INTO mig.msgs_msg (contact_id, channel_id, text) VALUES (1, 10, 'default direction, after the stop');
INSERT INTO mig.msgs_msg (contact_id, channel_id, direction, text) VALUES (3, 10, 'I', 'stop please');
SELECT contact_id, text, status, failed_reason, visibility FROM mig.msgs_msg WHERE direction = 'O' ORDER BY id;
SELECT id, status FROM mig.contacts WHERE id IN (1, 2, 3) ORDER BY id;

-- 4. Columns an attachment uses are not dropped or renamed from under it:
--    refused with SQLSTATE 2BP01, the table left as it was. PostgreSQL
--    itself refuses to drop a column that optout's trigger names (in its
--    WHEN or UPDATE OF) ...
ALTER TABLE mig.msgs_msg DROP COLUMN text;
-- ... but with CASCADE it would drop the trigger with the column: optout
-- refuses, as it does for every other column an attachment uses (its
-- contact, channel, body, status, group, code, provider or event column, a
-- touch column, a key of its row_filter, mark or queued).
ALTER TABLE mig.msgs_msg DROP COLUMN text CASCADE;
ALTER TABLE mig.msgs_msg RENAME COLUMN text TO body;
ALTER TABLE mig.msgs_msg DROP COLUMN failed_reason;
ALTER TABLE mig.contacts RENAME COLUMN modified_on TO updated_on;
-- The same as a table of outcomes, with the SQLSTATE and the HINT.
CREATE FUNCTION mig.try(ddl text) RETURNS TABLE (outcome text, hint text) LANGUAGE plpgsql AS $$
DECLARE
    h text;
BEGIN
    EXECUTE ddl;
    RETURN QUERY SELECT 'done'::text, NULL::text;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
    RETURN QUERY SELECT SQLSTATE || ': ' || SQLERRM, nullif(h, '');
END
$$;
SELECT v.ddl, t.outcome, t.hint
  FROM (VALUES (1, 'ALTER TABLE mig.msgs_msg RENAME COLUMN contact_id TO contact'),
               (2, 'ALTER TABLE mig.msgs_msg RENAME COLUMN channel_id TO channel'),
               (3, 'ALTER TABLE mig.msgs_msg DROP COLUMN direction CASCADE'),
               (4, 'ALTER TABLE mig.msgs_msg RENAME COLUMN direction TO dir'),
               (5, 'ALTER TABLE mig.msgs_msg RENAME COLUMN failed_reason TO failure'),
               (6, 'ALTER TABLE mig.msgs_msg DROP COLUMN visibility, DROP COLUMN status CASCADE'),
               (7, 'ALTER TABLE mig.contacts DROP COLUMN status CASCADE'),
               (8, 'ALTER TABLE mig.contacts RENAME COLUMN id TO contact_id'),
               (9, 'ALTER TABLE mig.contacts DROP COLUMN modified_on'),
               (10, 'ALTER TABLE mig.pmsgs DROP COLUMN status CASCADE'),
               (11, 'ALTER TABLE mig.pmsgs RENAME COLUMN text TO body'),
               (12, 'ALTER TABLE mig3.receipts RENAME COLUMN code TO error_code'),
               (13, 'ALTER TABLE mig3.receipts DROP COLUMN contact_id CASCADE')) v(n, ddl),
       LATERAL mig.try(v.ddl) t
 ORDER BY v.n;
DROP FUNCTION mig.try(text);
SELECT attrelid::regclass AS tbl, string_agg(attname, ', ' ORDER BY attnum) AS columns
  FROM pg_attribute
 WHERE attrelid IN ('mig.msgs_msg'::regclass, 'mig.contacts'::regclass, 'mig.pmsgs'::regclass,
                    'mig.pmsgs_2026_10'::regclass, 'mig3.receipts'::regclass)
   AND attnum > 0 AND NOT attisdropped
 GROUP BY attrelid ORDER BY attrelid::regclass::text;
SELECT tbl, kind, trigger_enabled FROM optout.attached ORDER BY tbl::text, kind;
-- Columns no attachment uses come and go freely.
ALTER TABLE mig.msgs_msg RENAME COLUMN external_id TO external_identifier;
ALTER TABLE mig.msgs_msg DROP COLUMN external_identifier;
ALTER TABLE mig.msgs_msg DROP COLUMN visibility;
ALTER TABLE mig.contacts RENAME COLUMN name TO full_name;
ALTER TABLE mig.contacts DROP COLUMN language;
ALTER TABLE mig.pmsgs ADD COLUMN junk int;
ALTER TABLE mig.pmsgs DROP COLUMN junk;
-- and enforcement is as before.
INSERT INTO mig.msgs_msg (contact_id, channel_id, direction, text) VALUES (3, 10, 'O', 'to 3 after the refused DDL');
UPDATE mig.contacts SET status = 'A' WHERE id = 3;
SELECT contact_id, text, status, failed_reason FROM mig.msgs_msg WHERE contact_id = 3 AND direction = 'O';
SELECT id, status FROM mig.contacts WHERE id = 3;

-- 5. Partitions of an attached table: created with PARTITION OF, built
--    apart (columns in another order, a dropped column) and attached,
--    detached, dropped.
CREATE TABLE mig.pmsgs_2026_11 PARTITION OF mig.pmsgs FOR VALUES FROM ('2026-11-01') TO ('2026-12-01');
CREATE TABLE mig.pmsgs_2026_12 (junk int, created_on date NOT NULL, status text NOT NULL DEFAULT 'Q', text text,
                                direction text NOT NULL, contact_id int,
                                id bigint NOT NULL DEFAULT nextval('mig.pmsgs_id_seq'));
ALTER TABLE mig.pmsgs_2026_12 DROP COLUMN junk;
ALTER TABLE mig.pmsgs ATTACH PARTITION mig.pmsgs_2026_12 FOR VALUES FROM ('2026-12-01') TO ('2027-01-01');
CREATE TABLE mig.pmsgs_2027_01 PARTITION OF mig.pmsgs FOR VALUES FROM ('2027-01-01') TO ('2027-02-01');
INSERT INTO mig.pmsgs (contact_id, direction, text, created_on) VALUES (4, 'O', 'october', '2026-10-05');
ALTER TABLE mig.pmsgs DETACH PARTITION mig.pmsgs_2026_10;
DROP TABLE mig.pmsgs_2026_10;
ALTER TABLE mig.pmsgs DETACH PARTITION mig.pmsgs_2027_01;
DROP TABLE mig.pmsgs_2027_01;
SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE t.tgname LIKE 'optout_%' AND c.relnamespace = 'mig'::regnamespace AND c.relname LIKE 'pmsgs%'
 ORDER BY c.relname, t.tgname;
SELECT tbl, kind FROM optout.attached ORDER BY tbl::text, kind;
-- Messages queued in both months; a STOP arrives in the new November
-- partition, through the parent and then straight into December's.
INSERT INTO mig.pmsgs (contact_id, direction, text, created_on) VALUES
    (4, 'O', 'nov', '2026-11-10'), (4, 'O', 'dec', '2026-12-10'), (5, 'O', 'dec', '2026-12-10'), (6, 'O', 'nov', '2026-11-10');
INSERT INTO mig.pmsgs (contact_id, direction, text, created_on) VALUES (4, 'I', 'STOP', '2026-11-11');
INSERT INTO mig.pmsgs_2026_12 (contact_id, direction, text, created_on) VALUES (5, 'I', 'Stop', '2026-12-11');
-- Sends after the stops, through the parent and into each new partition.
INSERT INTO mig.pmsgs (contact_id, direction, text, created_on) VALUES (4, 'O', 'via parent', '2026-12-12');
INSERT INTO mig.pmsgs_2026_11 (contact_id, direction, text, created_on) VALUES (5, 'O', 'direct', '2026-11-12');
INSERT INTO mig.pmsgs_2026_12 (contact_id, direction, text, created_on) VALUES (4, 'O', 'direct', '2026-12-12');
SELECT tableoid::regclass AS partition, contact_id, text, status FROM mig.pmsgs WHERE direction = 'O' ORDER BY id;
SELECT id, status FROM mig.contacts WHERE id IN (4, 5, 6) ORDER BY id;
-- START through the new partition lifts the stop.
INSERT INTO mig.pmsgs_2026_11 (contact_id, direction, text, created_on) VALUES (4, 'I', 'START', '2026-11-20');
SELECT id, status FROM mig.contacts WHERE id = 4;
SELECT optout.is_stopped('4') AS stopped_4, optout.is_stopped('5') AS stopped_5;

-- 6. TRUNCATE of attached tables: the tables empty, the attachments and
--    the ledger stay, enforcement goes on.
TRUNCATE mig.pmsgs;
TRUNCATE mig.msgs_msg RESTART IDENTITY;
SELECT tbl, kind FROM optout.attached ORDER BY tbl::text, kind;
INSERT INTO mig.pmsgs (contact_id, direction, text, created_on) VALUES (5, 'O', 'after truncate', '2026-12-20');
INSERT INTO mig.msgs_msg (contact_id, channel_id, direction, text) VALUES (1, 10, 'O', 'after truncate'), (2, 10, 'O', 'after truncate');
SELECT contact_id, text, status FROM mig.pmsgs ORDER BY id;
SELECT contact_id, text, status, failed_reason FROM mig.msgs_msg ORDER BY id;

-- 7. An attached table dropped: its attachments go with it; the others stay
--    enforced.
DROP TABLE mig.msgs_msg;
SELECT tbl, kind FROM optout.attached ORDER BY tbl::text, kind;
INSERT INTO mig.pmsgs (contact_id, direction, text, created_on) VALUES (7, 'I', 'unsubscribe', '2026-12-21');
SELECT id, status FROM mig.contacts WHERE id = 7;

-- 8. A schema with an attached table dropped with CASCADE.
CREATE TABLE mig2.unattached (id int);
DROP SCHEMA mig2 CASCADE;
SELECT tbl, kind FROM optout.attached ORDER BY tbl::text, kind;

-- 9. DROP OWNED BY a role that owns an attached table (and its schema).
DROP OWNED BY regress_optout_mig2;
SELECT to_regnamespace('mig3') IS NULL AS mig3_gone;
SELECT tbl, kind FROM optout.attached ORDER BY tbl::text, kind;

-- What is left still holds.
INSERT INTO mig.pmsgs (contact_id, direction, text, created_on) VALUES (7, 'O', 'to 7', '2026-12-22'), (8, 'O', 'to 8', '2026-12-22');
UPDATE mig.contacts SET status = 'A' WHERE id = 7;
SELECT contact_id, text, status FROM mig.pmsgs WHERE contact_id IN (7, 8) AND direction = 'O' ORDER BY id;
SELECT id, status FROM mig.contacts ORDER BY id;
RESET ROLE;

-- The record, as the DBA sees it.
SELECT kind, contact, channel, source, keyword, table_name, actor, detail FROM optout.events ORDER BY id;
SELECT contact, channel, source, keyword FROM optout.stops ORDER BY contact;

-- The migration role created, and needed, nothing in optout.
SELECT count(*) AS owned_by_app_in_optout
  FROM pg_class c WHERE c.relnamespace = 'optout'::regnamespace AND c.relowner = 'regress_optout_mig'::regrole;

SELECT optout.detach('mig.contacts') + optout.detach('mig.pmsgs') AS detached;
SELECT count(*) AS attachments_left FROM optout.attached;
-- (as the DBA, whatever happened above)
DROP SCHEMA IF EXISTS mig, mig2, mig3 CASCADE;
DROP EXTENSION optout;
DROP OWNED BY regress_optout_mig, regress_optout_mig2;
DROP ROLE regress_optout_mig, regress_optout_mig2;
