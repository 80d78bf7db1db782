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
CREATE TABLE c_msgs (id int, contact int, body text);
SELECT optout.attach_inbound('c_msgs', 'body', 'contact') > 0 AS attached;
SELECT has_function_privilege('public', 'optout.distribute()', 'EXECUTE') AS public_distribute,
       has_function_privilege('public', 'optout._citus_check(regclass, text)', 'EXECUTE') AS public_check;
DROP EXTENSION optout CASCADE;
