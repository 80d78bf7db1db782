-- 0.1.0 -> 0.2.0 through ALTER EXTENSION UPDATE: the 0.1.0 configuration
-- survives, and the new version works in the same session.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION optout VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'optout';
INSERT INTO optout.keywords (keyword, intent, language) VALUES ('basta', 'opt_out', 'it');
UPDATE optout.keywords SET enabled = false WHERE keyword = 'yes';
SELECT optout.classify('Basta!') AS basta, optout.classify('yes') AS yes;
SELECT to_regclass('optout.stops') AS stops_before;

ALTER EXTENSION optout UPDATE TO '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'optout';
SELECT keyword, intent, language, enabled FROM optout.keywords WHERE keyword IN ('basta', 'yes') ORDER BY keyword;
SELECT optout.classify('Basta!') AS basta, optout.classify('yes') AS yes;

-- What 0.2.0 adds is there and works.
CREATE TABLE up_in (contact int, body text);
CREATE TABLE up_out (contact int, body text, status text DEFAULT 'Q');
SELECT optout.attach_inbound('up_in', 'body', 'contact') > 0 AS inbound,
       optout.attach_outbound('up_out', 'contact', on_blocked => 'skip') > 0 AS outbound;
INSERT INTO up_in VALUES (1, 'basta');
INSERT INTO up_out VALUES (1, 'dropped'), (2, 'kept');
SELECT contact, body FROM up_out;
SELECT kind, contact, keyword, language FROM optout.events ORDER BY id;

-- The extension's members after the update: every object in schema optout
-- belongs to it.
SELECT count(*) AS not_members
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'optout'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                   AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e')
   AND c.relkind IN ('r', 'v', 'S');

SELECT optout.detach('up_in') + optout.detach('up_out') AS detached;
DROP TABLE up_in, up_out;
DROP EXTENSION optout;
