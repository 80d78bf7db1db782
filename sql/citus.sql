-- Without Citus (the single-node case): optout.distribute() refuses and
-- changes nothing; attaching runs the Citus check, which does nothing.
-- (On a Citus cluster: test/citus/run.sh.)
CREATE EXTENSION optout;
\set VERBOSITY default
SELECT * FROM optout.distribute();
\set VERBOSITY terse
-- nothing changed: the events keep their key, no table moved
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'optout.events'::regclass AND contype = 'p';
-- the check is a no-op here, and only the extension's owner may call either
SELECT optout._citus_check('optout.stops', 'inbound');
CREATE TABLE citus_msgs (id int, contact int, body text);
SELECT optout.attach_inbound('citus_msgs', 'body', 'contact') > 0 AS attached;
SELECT has_function_privilege('public', 'optout.distribute()', 'EXECUTE') AS public_distribute,
       has_function_privilege('public', 'optout._citus_check(regclass, text)', 'EXECUTE') AS public_check;
-- an application role can call neither, whatever it plants on its path
CREATE ROLE regress_citus_app NOLOGIN;
CREATE SCHEMA regress_citus_app AUTHORIZATION regress_citus_app;
SET ROLE regress_citus_app;
SET search_path = regress_citus_app, public;
CREATE TABLE regress_citus_app.pg_dist_partition (logicalrelid regclass, partmethod "char", colocationid int);
SELECT * FROM optout.distribute();
SELECT optout._citus_check('citus_msgs', 'inbound');
RESET ROLE;
RESET search_path;
-- and the table it planted is not Citus's: the check still does nothing
SELECT optout._citus_check('citus_msgs', 'outbound');
DROP SCHEMA regress_citus_app CASCADE;
DROP ROLE regress_citus_app;
DROP TABLE citus_msgs;
DROP EXTENSION optout CASCADE;
