-- The keyword table: defaults, user edits, conflicts, invalidation, privileges.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never

SELECT intent, language, count(*), string_agg(keyword, ', ' ORDER BY keyword) AS keywords
  FROM optout.keywords WHERE is_default GROUP BY intent, language ORDER BY intent, language;

-- A custom keyword is matched at once, by every rule.
SELECT optout.classify('HALT') AS before;
INSERT INTO optout.keywords (keyword, intent, note) VALUES ('halt', 'opt_out', 'our own');
SELECT optout.classify('HALT') AS exact, optout.classify('h-a-l-t') AS separator,
       optout.classify('halt please') AS courtesy, optout.classify('halt halt stop') AS repeat;
SELECT * FROM optout.explain('Halt!');

-- A new language.
INSERT INTO optout.keywords (keyword, intent, language) VALUES ('hilfe', 'help', 'de'), ('anhalten', 'opt_out', 'de');
SELECT keyword, language, rule FROM optout.explain('HILFE');
SELECT keyword, language, rule FROM optout.explain('Anhalten!');
-- Keywords are trimmed as stored.
INSERT INTO optout.keywords (keyword, intent, language) VALUES (E'  basta \n', 'opt_out', 'it');
SELECT to_json(keyword)::text FROM optout.keywords WHERE language = 'it';

-- Disabling a default stops it matching; enabling brings it back.
UPDATE optout.keywords SET enabled = false WHERE keyword = 'remove';
SELECT optout.classify('REMOVE') AS disabled;
UPDATE optout.keywords SET enabled = true WHERE keyword = 'remove';
SELECT optout.classify('REMOVE') AS enabled;

-- The same key with the same intent is another spelling, and allowed.
INSERT INTO optout.keywords (keyword, intent) VALUES ('Stop-All', 'opt_out');
DELETE FROM optout.keywords WHERE keyword = 'Stop-All';

-- A key belongs to one intent.
INSERT INTO optout.keywords (keyword, intent) VALUES ('STOP', 'opt_in');
INSERT INTO optout.keywords (keyword, intent) VALUES ('s.t.a.r.t', 'help');
INSERT INTO optout.keywords (keyword, intent) VALUES ('halt', 'opt_in');
UPDATE optout.keywords SET intent = 'help' WHERE keyword = 'hilfe';  -- no conflict: allowed
UPDATE optout.keywords SET keyword = 'h.i.l.f.e' WHERE keyword = 'hilfe';
UPDATE optout.keywords SET keyword = 'info!' WHERE keyword = 'anhalten';  -- 'info' is help
SELECT keyword, intent FROM optout.keywords WHERE language = 'de' ORDER BY keyword;

-- Unusable keywords and values.
INSERT INTO optout.keywords (keyword, intent) VALUES ('!!!', 'opt_out');
INSERT INTO optout.keywords (keyword, intent) VALUES ('🛑', 'opt_out');
\set VERBOSITY terse
INSERT INTO optout.keywords (keyword, intent) VALUES (NULL, 'opt_out');
INSERT INTO optout.keywords (keyword, intent) VALUES ('fin', NULL);
INSERT INTO optout.keywords (keyword, intent) VALUES ('fin', 'maybe');
INSERT INTO optout.keywords (keyword, intent, language) VALUES ('fin', 'opt_out', 'French');
\set VERBOSITY default

-- Defaults are disabled, not deleted or renamed.
DELETE FROM optout.keywords WHERE keyword = 'stop';
UPDATE optout.keywords SET keyword = 'stahp' WHERE keyword = 'stop';
UPDATE optout.keywords SET intent = 'help' WHERE keyword = 'info';
SELECT count(*) AS defaults FROM optout.keywords WHERE is_default;

-- A rolled-back change leaves no trace, in the table or the cache.
BEGIN;
INSERT INTO optout.keywords (keyword, intent) VALUES ('enough', 'opt_out');
SELECT optout.classify('enough') AS inside;
ROLLBACK;
SELECT optout.classify('enough') AS after_rollback;
BEGIN;
UPDATE optout.keywords SET enabled = false WHERE intent = 'opt_out';
SELECT optout.classify('STOP') AS all_disabled;
ROLLBACK;
SELECT optout.classify('STOP') AS restored;

-- What pg_dump keeps: every row; a restored default merges into the one
-- CREATE EXTENSION made (as pg_restore does it).
SELECT c.relname, u.extcondition AS dump_filter
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(oid, extcondition)
  JOIN pg_class c ON c.oid = u.oid WHERE e.extname = 'optout' AND c.relname = 'keywords';
INSERT INTO optout.keywords (keyword, intent, language, enabled, is_default, note, updated_at)
VALUES ('remove', 'opt_out', 'en', false, true, 'restored', now());
SELECT keyword, enabled, note FROM optout.keywords WHERE keyword = 'remove';
SELECT optout.classify('remove') AS restored_disabled;

-- Privileges: anyone may read keywords and classify; only the owner edits.
CREATE ROLE optout_reader;
SET ROLE optout_reader;
SELECT optout.classify('STOP'), count(*) > 30 AS can_read FROM optout.keywords;
INSERT INTO optout.keywords (keyword, intent) VALUES ('sneaky', 'opt_in');
UPDATE optout.keywords SET enabled = false WHERE keyword = 'stop';
DELETE FROM optout.keywords WHERE keyword = 'halt';
SELECT optout._config_changed();
RESET ROLE;
DROP ROLE optout_reader;

-- The trigger function refuses to run outside a trigger.
SELECT optout._config_changed();

-- A keyword longer than the classifier takes (100 letters and digits) is
-- refused; one that got past the trigger anyway (triggers bypassed) is left
-- out with a warning, and every other keyword is still matched.
INSERT INTO optout.keywords (keyword, intent) VALUES (repeat('x', 101), 'opt_out');
INSERT INTO optout.keywords (keyword, intent) VALUES (repeat('𠀀', 51), 'opt_out');  -- 51 characters, 102 UTF-16 units
INSERT INTO optout.keywords (keyword, intent) VALUES (repeat('x', 100), 'opt_out');
SET session_replication_role = replica;
INSERT INTO optout.keywords (keyword, intent) VALUES (repeat('y', 101), 'opt_out');
RESET session_replication_role;
SELECT optout.classify('STOP') AS stop, optout.classify(repeat('x', 100)) AS hundred;
DELETE FROM optout.keywords WHERE keyword IN (repeat('x', 100), repeat('y', 101));
SELECT optout.classify('STOP') AS stop;

-- Writers of optout.keywords are serialised by a lock in optout's own key
-- space (field 4 = 0x4F72), never by a key an application could also use.
BEGIN;
INSERT INTO optout.keywords (keyword, intent, language) VALUES ('genug', 'opt_out', 'de');
SELECT classid, objid = x'6F70746F'::int AS optout_space, objsubid = x'4F72'::int AS keywords_key, mode
  FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
ROLLBACK;

DROP EXTENSION optout;
