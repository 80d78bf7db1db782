-- A schema or function planted by another role cannot hijack optout.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE ROLE optout_attacker;

-- 1. A schema "optout" planted before CREATE EXTENSION: the install refuses
--    to use it.
CREATE SCHEMA optout AUTHORIZATION optout_attacker;
CREATE EXTENSION optout;
DROP SCHEMA optout;
CREATE EXTENSION optout;

-- 2. Functions and operators planted in public, which a careless session
--    puts before pg_catalog on its search_path. Each records that it ran,
--    and as whom.
CREATE TABLE public.hijacks (what text, by_user name);
GRANT INSERT ON public.hijacks TO PUBLIC;
GRANT CREATE ON SCHEMA public TO optout_attacker;
SET ROLE optout_attacker;
CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO public.hijacks VALUES ('lower', current_user) RETURNING $1 $$;
CREATE FUNCTION public.btrim(text) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO public.hijacks VALUES ('btrim', current_user) RETURNING $1 $$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql
    AS $$ INSERT INTO public.hijacks VALUES ('now', current_user) RETURNING pg_catalog.now() $$;
CREATE FUNCTION public.text_eq(text, text) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO public.hijacks VALUES ('= text', current_user) RETURNING $1 OPERATOR(pg_catalog.=) $2 $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.text_eq);
CREATE FUNCTION public.int_eq(integer, integer) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO public.hijacks VALUES ('= int', current_user) RETURNING $1 OPERATOR(pg_catalog.=) $2 $$;
CREATE OPERATOR public.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.int_eq);
RESET ROLE;

-- The platform, attached by the DBA.
CREATE TABLE sec_contacts (id integer PRIMARY KEY, status varchar(1) NOT NULL DEFAULT 'A');
CREATE TABLE sec_members (contact_id integer, group_id integer);
CREATE TABLE sec_msgs (id serial PRIMARY KEY, contact_id integer, channel text, direction text, body text, status text DEFAULT 'Q');
CREATE TABLE sec_events (contact_id integer, code text);
INSERT INTO sec_contacts SELECT generate_series(1, 3);
INSERT INTO sec_members SELECT c, g FROM generate_series(1, 3) c, generate_series(1, 3) g;

SET search_path = public, pg_catalog;
SELECT optout.attach_contacts('sec_contacts', 'id', 'status', 'S', 'A') > 0 AS contacts,
       optout.attach_groups('sec_members', 'contact_id', 'group_id', stopped_group => '1') > 0 AS groups,
       optout.attach_inbound('sec_msgs', 'body', 'contact_id', 'channel', row_filter => '{"direction": "in"}') > 0 AS inbound,
       optout.attach_outbound('sec_msgs', 'contact_id', 'channel', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": ["Q", "I"]}', row_filter => '{"direction": "out"}') > 0 AS outbound,
       optout.attach_delivery_errors('sec_events', 'contact_id', code_column => 'code', provider => 'twilio') > 0 AS errors;
-- Everything optout does, with the attacker's objects first on the path.
SELECT optout.classify('Stop please'), optout.normalize(' STOP '), (optout.explain('STOP')).rule;
INSERT INTO optout.keywords (keyword, intent, language) VALUES ('basta', 'opt_out', 'it');
-- (this test's own statements spell the operator out, or they would call the attacker's)
UPDATE optout.keywords SET enabled = false WHERE keyword OPERATOR(pg_catalog.=) 'yes';
INSERT INTO optout.delivery_error_codes (provider, code) VALUES (' ACME', '9');
INSERT INTO sec_msgs (contact_id, channel, direction, body) VALUES (1, '+1', 'out', 'queued');
INSERT INTO sec_msgs (contact_id, channel, direction, body) VALUES (1, '+1', 'in', 'STOP');
INSERT INTO sec_msgs (contact_id, channel, direction, body) VALUES (1, '+1', 'out', 'after');
UPDATE sec_contacts SET status = 'A';
INSERT INTO sec_events VALUES (2, '21610');
SELECT optout.stop('3'), optout.is_stopped('3'), optout.start('3', reason => 'test'),
       optout.record_delivery_error('3', NULL, 'twilio', '30006');
INSERT INTO sec_msgs (contact_id, channel, direction, body) VALUES (1, '+1', 'in', 'START');
SELECT count(*) AS events FROM optout.history('1');
SELECT count(*) AS stopped FROM optout.stopped_now;
SELECT optout.explain_contact('2') ->> 'stopped' AS contact_2_stopped;
CALL optout.backfill('sec_msgs');
SELECT optout.prune_events(interval '100 years');
SELECT optout.detach('sec_msgs');
RESET search_path;

-- Nothing of the attacker's ran.
SELECT what, by_user FROM public.hijacks;
-- And the work was done.
SELECT id, status FROM sec_contacts ORDER BY id;
SELECT contact_id, body, status FROM sec_msgs WHERE direction = 'out' ORDER BY body;

-- 3. SECURITY DEFINER functions pin their search_path; PUBLIC may execute
--    only the harmless ones.
SELECT p.proname, p.prosecdef AS definer, p.proconfig
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'optout' AND p.prosecdef ORDER BY p.proname;
-- Every function in SQL or PL/pgSQL pins its search_path too (the backfill
-- procedure, which must COMMIT, pins it in each transaction instead).
SELECT p.oid::regprocedure AS not_pinned
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
 WHERE n.nspname = 'optout' AND l.lanname IN ('sql', 'plpgsql')
   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
 ORDER BY 1;
SELECT p.oid::regprocedure AS public_may_execute
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'optout' AND has_function_privilege('public', p.oid, 'EXECUTE') ORDER BY p.oid::regprocedure::text;
SELECT c.relname AS public_may_read
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'optout' AND c.relkind IN ('r', 'v') AND has_table_privilege('public', c.oid, 'SELECT')
 ORDER BY 1;
SELECT c.relname AS public_may_write
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'optout' AND c.relkind IN ('r', 'v')
   AND (has_table_privilege('public', c.oid, 'INSERT') OR has_table_privilege('public', c.oid, 'UPDATE')
        OR has_table_privilege('public', c.oid, 'DELETE'))
 ORDER BY 1;

-- 4. Anyone may execute optout's row trigger functions (creating a partition
--    of an attached table needs it), but one acts only for its attachment's
--    table and partitions: a trigger the attacker puts on its own table,
--    naming an attachment, cannot stop or start anyone.
SELECT id AS errors_attachment FROM optout.attached WHERE tbl = 'sec_events'::regclass \gset
SET ROLE optout_attacker;
CREATE TABLE public.forged (contact_id integer, code text);
CREATE TRIGGER forged AFTER INSERT ON public.forged FOR EACH ROW
    EXECUTE FUNCTION optout._delivery_trigger(:'errors_attachment');
INSERT INTO public.forged VALUES (1, '21610');
DROP TABLE public.forged;
RESET ROLE;

SELECT optout.detach('sec_contacts') + optout.detach('sec_members') + optout.detach('sec_events') AS detached;
DROP TABLE sec_contacts, sec_members, sec_msgs, sec_events, public.hijacks;
DROP EXTENSION optout;
REVOKE CREATE ON SCHEMA public FROM optout_attacker;
DROP OWNED BY optout_attacker;
DROP ROLE optout_attacker;
