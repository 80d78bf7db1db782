-- Settings the application cannot weaken (issue #26, section 2). An inbound
-- attachment's match mode is fixed at attach; the session's optout.match_mode
-- (any role may set it, and a transaction-pooled connection may carry one
-- left behind) changes ad-hoc classify() and explain() calls only.
-- test/scripts/pgbouncer.sh drives the same through a real pgbouncer.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE ROLE regress_settings_app NOLOGIN;
CREATE SCHEMA app AUTHORIZATION regress_settings_app;
SET ROLE regress_settings_app;
CREATE TABLE app.contacts (id int PRIMARY KEY, status text NOT NULL DEFAULT 'A');
CREATE TABLE app.msgs (id serial, contact int, direction text, body text, status text DEFAULT 'Q');
INSERT INTO app.contacts SELECT generate_series(1, 9);
RESET ROLE;

-- Attached without a mode: the mode in effect at attach is stored.
SELECT optout.attach_inbound('app.msgs', 'body', 'contact', row_filter => '{"direction": "in"}') AS inbound;
SELECT optout.attach_contacts('app.contacts', 'id', 'status', 'S', 'A') AS contacts;
SELECT kind, mode FROM optout.attached WHERE tbl = 'app.msgs'::regclass;

-- The app lowers the setting in its session: Stop please still stops.
SET ROLE regress_settings_app;
SET optout.match_mode = 'exact';
SHOW optout.match_mode;
SELECT optout.classify('Stop please') AS adhoc_exact;   -- ad-hoc calls follow the session
INSERT INTO app.msgs (contact, direction, body) VALUES (1, 'in', 'Stop please');
SELECT status FROM app.contacts WHERE id = 1;
-- ... and for a whole transaction (SET LOCAL), and as a function's SET clause.
BEGIN;
SET LOCAL optout.match_mode = 'exact';
INSERT INTO app.msgs (contact, direction, body) VALUES (2, 'in', 'STOP!!');
COMMIT;
SELECT status FROM app.contacts WHERE id = 2;
CREATE FUNCTION app.receive(c int, b text) RETURNS void LANGUAGE sql SET optout.match_mode = 'exact'
    AS $$ INSERT INTO app.msgs (contact, direction, body) VALUES (c, 'in', b) $$;
SELECT app.receive(3, 'stop.');
SELECT status FROM app.contacts WHERE id = 3;
RESET optout.match_mode;
RESET ROLE;
SELECT contact, kind, body, keyword, rule FROM optout.events ORDER BY id;

-- Nor does a database-level setting (ALTER DATABASE ... SET), which a
-- pg_dump without --create would lose anyway.
SELECT current_database() AS db \gset
ALTER DATABASE :"db" SET optout.match_mode = 'exact';
\c
SET client_min_messages = warning;
SHOW optout.match_mode;
INSERT INTO app.msgs (contact, direction, body) VALUES (5, 'in', 'Stop please');
SELECT status FROM app.contacts WHERE id = 5;
ALTER DATABASE :"db" RESET optout.match_mode;
\c
SET client_min_messages = warning;
\set SHOW_CONTEXT never

-- An attach in a session with another mode stores that one; an explicit
-- mode wins over the session's.
SET optout.match_mode = 'reasonable';
SELECT optout.detach('app.msgs');
SELECT optout.attach_inbound('app.msgs', 'body', 'contact', row_filter => '{"direction": "in"}') > 0 AS reattached;
SELECT mode FROM optout.attachments WHERE tbl = 'app.msgs'::regclass;
SELECT optout.detach('app.msgs');
SELECT optout.attach_inbound('app.msgs', 'body', 'contact', mode => 'exact', row_filter => '{"direction": "in"}') > 0 AS reattached;
SELECT mode FROM optout.attachments WHERE tbl = 'app.msgs'::regclass;
RESET optout.match_mode;
-- With mode exact fixed, the session's reasonable does not widen it either.
SET ROLE regress_settings_app;
SET optout.match_mode = 'reasonable';
INSERT INTO app.msgs (contact, direction, body) VALUES (4, 'in', 'Stop please');
SELECT status FROM app.contacts WHERE id = 4;
RESET optout.match_mode;
RESET ROLE;

-- The evidence pack states the mode the attachment classifies with, not
-- the session's.
SET optout.match_mode = 'reasonable';
SELECT optout.evidence('1') #> '{settings,match_mode}' AS evidence_mode;
RESET optout.match_mode;

-- An inbound attachment cannot be left without a mode.
\set VERBOSITY terse
UPDATE optout.attachments SET mode = NULL WHERE tbl = 'app.msgs'::regclass AND kind = 'inbound';

-- The other optout.* settings that enforcement reads: superuser only.
SET ROLE regress_settings_app;
SET optout.confirmation_window = 0;
SET optout.help_reply_window = 0;
SET optout.confirm_manual_stops = on;
SET optout.revoke_all_from = '2027-01-31';
SET optout.fault_injection = 'apply_events';
RESET ROLE;
\set VERBOSITY default
SELECT name, context FROM pg_settings WHERE name LIKE 'optout.%' ORDER BY name;

SELECT optout.detach(tbl) FROM (SELECT DISTINCT tbl FROM optout.attached ORDER BY tbl) t;
DROP SCHEMA app CASCADE;
DROP EXTENSION optout;
DROP ROLE regress_settings_app;
