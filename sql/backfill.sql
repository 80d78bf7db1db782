-- Backfill: find and act on the opt-outs already in a platform's history.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE TABLE hist (id bigserial PRIMARY KEY, contact int, direction text, body text, created_on timestamptz);
CREATE TABLE people (id int PRIMARY KEY, status text NOT NULL DEFAULT 'A');
INSERT INTO people SELECT generate_series(1, 6);
INSERT INTO hist (contact, direction, body, created_on) VALUES
    (1, 'O', 'Welcome to our newsletter', '2026-01-01 10:00 UTC'),
    (1, 'I', 'STOP', '2026-01-02 10:00 UTC'),                        -- never honoured
    (1, 'I', 'thanks', '2026-01-02 10:05 UTC'),                      -- and then "un-stopped" by the platform
    (1, 'O', 'Sale!', '2026-01-05 10:00 UTC'), (1, 'O', 'Sale!!', '2026-01-06 10:00 UTC'),
    (1, 'O', 'Last chance', '2026-01-07 10:00 UTC'),
    (2, 'I', 'Stop please', '2026-01-03 10:00 UTC'),                 -- lifted by a later opt-in
    (2, 'I', 'START', '2026-01-04 10:00 UTC'),
    (2, 'O', 'Welcome back', '2026-01-05 10:00 UTC'),
    (3, 'I', 'ＳＴＯＰ', '2026-01-03 11:00 UTC'),                      -- already stopped: reflected in the ledger
    (4, 'I', 'Stop by the office at 5', '2026-01-03 12:00 UTC'),     -- not an opt-out
    (4, 'I', 'ok', '2026-01-03 12:01 UTC'),
    (5, 'I', 'please stop texting me', '2026-01-04 09:00 UTC'),      -- an opt-out only in reasonable mode
    (5, 'O', 'Hello?', '2026-01-04 10:00 UTC'),
    (6, 'I', 'STOP', '2025-06-01 10:00 UTC');                        -- older than the window below
SELECT optout.stop('3', reason => 'stopped by hand before optout') AS contact_3_stopped;

-- Before attaching: a report over a table named by its columns.
CALL optout.backfill('hist');
CALL optout.backfill('hist', body_column => 'body', contact_column => 'contact', row_filter => '{"direction": "I"}',
                     time_column => 'created_on', since => '2026-01-01');
SELECT contact, message, rule, lifted_by_opt_in, sent_after FROM optout.backfill_report();
DELETE FROM optout.backfill_runs;
ALTER SEQUENCE optout.backfill_runs_id_seq RESTART;
SELECT optout.attach_inbound('hist', 'body', 'contact', row_filter => '{"direction": "I"}') > 0 AS inbound,
       optout.attach_outbound('hist', 'contact', on_blocked => 'mark', mark => '{"body": "(blocked)"}',
                              row_filter => '{"direction": "O"}') > 0 AS outbound,
       optout.attach_contacts('people', 'id', 'status', 'S', 'A') > 0 AS contacts;
CALL optout.backfill('hist', since => '2026-01-01');
CALL optout.backfill('hist', batch_size => 0);

-- Report only (the default): nothing changes.
CALL optout.backfill('hist', mode => 'standard', time_column => 'created_on', since => '2026-01-01', batch_size => 4);
SELECT * FROM optout.backfill_report();
SELECT run_id, mode, apply, status, rows_scanned, opt_outs_found, contacts_stopped FROM optout.backfill_progress;
SELECT contact FROM optout.stops ORDER BY contact;

-- What a stricter reading would add: reasonable also finds contact 5.
CALL optout.backfill('hist', mode => 'reasonable', time_column => 'created_on', since => '2026-01-01');
SELECT contact, message, rule, lifted_by_opt_in, sent_after FROM optout.backfill_report();

-- Apply: contacts 1 and 5 are stopped, as if their message had just arrived,
-- with the original message and its time on record.
CALL optout.backfill('hist', mode => 'reasonable', time_column => 'created_on', since => '2026-01-01', apply => true);
SELECT run_id, status, rows_scanned, opt_outs_found, contacts_stopped FROM optout.backfill_progress ORDER BY run_id;
SELECT contact, CASE WHEN source = 'backfill' THEN stopped_at END AS stopped_at, source, keyword, rule
  FROM optout.stops ORDER BY contact;
SELECT id, status FROM people ORDER BY id;
SELECT kind, source, body, keyword, rule, detail - 'backfill_run' AS detail FROM optout.history('1') ORDER BY id;
-- The platform's "thanks" un-stop no longer works, and sends are blocked.
UPDATE people SET status = 'A' WHERE id = 1;
INSERT INTO hist (contact, direction, body, created_on) VALUES (1, 'O', 'Are you there?', '2026-02-01 10:00 UTC');
SELECT p.status, h.body FROM people p, hist h WHERE p.id = 1 AND h.created_on = '2026-02-01 10:00 UTC';

-- Running it again changes nothing.
SELECT count(*) AS events_before FROM optout.events \gset
CALL optout.backfill('hist', mode => 'reasonable', time_column => 'created_on', since => '2026-01-01', apply => true);
SELECT opt_outs_found, contacts_stopped FROM optout.backfill_progress ORDER BY run_id DESC LIMIT 1;
SELECT count(*) - :events_before AS new_events FROM optout.events;

-- Without a window, the old STOP of contact 6 is found too.
CALL optout.backfill('hist', mode => 'exact');
SELECT contact, message, message_at FROM optout.backfill_report();

-- Interrupted and resumed: a long history, cut short by an error after some
-- batches committed (a trigger stands in for a crash or a cancel), then
-- resumed by run id, ends as one run would.
-- (The history is loaded as a restore or a replica would: with triggers off.)
SET session_replication_role = replica;
INSERT INTO hist (contact, direction, body, created_on)
SELECT 1000 + i % 5000, 'I', CASE WHEN i % 25000 = 0 THEN 'UNSUBSCRIBE' ELSE 'see you soon ' || i END,
       '2026-03-01'::timestamptz + i * interval '1 second'
  FROM generate_series(1, 400000) i;
RESET session_replication_role;
CREATE FUNCTION public.backfill_crash() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'simulated crash'; END $$;
CREATE TRIGGER crash BEFORE INSERT ON optout.backfill_findings
    FOR EACH ROW WHEN (NEW.body = 'UNSUBSCRIBE' AND NEW.message_at > '2026-03-03') EXECUTE FUNCTION public.backfill_crash();
CALL optout.backfill('hist', mode => 'standard', time_column => 'created_on', since => '2026-03-01', batch_size => 2000);
DROP TRIGGER crash ON optout.backfill_findings;
DROP FUNCTION public.backfill_crash();
SELECT max(run_id) AS run FROM optout.backfill_progress \gset
SELECT status, rows_scanned > 0 AS some_committed, rows_scanned < 400000 AS not_finished FROM optout.backfill_progress WHERE run_id = :run;
CALL optout.backfill('hist', run_id => :run);
SELECT status, rows_scanned, opt_outs_found FROM optout.backfill_progress WHERE run_id = :run;
SELECT count(*) AS contacts, min(message) AS message FROM optout.backfill_report(:run);

SELECT optout.detach('hist') + optout.detach('people') AS detached;
DROP TABLE hist, people;
DROP EXTENSION optout;
