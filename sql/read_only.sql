-- The functions that write optout's ledger, in a read-only transaction (as on
-- a hot standby, which test/scripts/standby.sh drives): a clear error with
-- SQLSTATE 25006 naming optout, not a bare "cannot execute nextval()";
-- reads keep working.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
\set VERBOSITY default
SELECT optout.stop('1', reason => 'asked by phone');
BEGIN READ ONLY;
SELECT optout.stop('2');
ROLLBACK;
SET default_transaction_read_only = on;
\set VERBOSITY sqlstate
SELECT optout.stop('2');
\set VERBOSITY default
SELECT optout.start('1', reason => 'consent form');
SELECT optout.record_delivery_error('1', NULL, 'twilio', '21610');
SELECT optout.dismiss_review(1, 'not an opt-out');
-- Reads work.
SELECT optout.is_stopped('1') AS stopped, optout.is_stopped('2') AS not_stopped, optout.classify('STOP') AS intent;
SELECT count(*) AS stops FROM optout.stopped_now;
SELECT optout.explain_contact('1') ->> 'stopped' AS explained;
RESET default_transaction_read_only;
SELECT count(*) AS events FROM optout.events;
DROP EXTENSION optout;
