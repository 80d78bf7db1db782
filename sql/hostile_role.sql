-- An application role that owns its schema, and is hostile: it plants
-- operators, functions, aggregates and a cast in that schema, puts the schema
-- first on search_path, and drives every path of optout; a DBA then runs
-- optout's functions, reports and backfill with that schema first on the path
-- too. Whatever optout runs as its owner, or as the DBA, never calls them: the
-- role gains nothing (not superuser, no object of another role created or
-- changed), and enforcement is what it should be.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE ROLE regress_optout_app NOLOGIN;
CREATE SCHEMA app AUTHORIZATION regress_optout_app;

-- Everything the app plants records that it ran, as whom, and, run as a
-- superuser, makes the app a superuser.
SET ROLE regress_optout_app;
CREATE TABLE app.hijacks (what text NOT NULL, by_user name NOT NULL, by_session name NOT NULL);
GRANT USAGE ON SCHEMA app TO PUBLIC;
GRANT INSERT ON app.hijacks TO PUBLIC;
CREATE FUNCTION app.note(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO app.hijacks (what, by_user, by_session) VALUES (what, current_user, session_user);
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
        BEGIN
            EXECUTE 'ALTER ROLE regress_optout_app SUPERUSER';
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END IF;
END
$$;
GRANT EXECUTE ON FUNCTION app.note(text) TO PUBLIC;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 1. The exploit of issue #13, as reported: an operator = for (text, text) in
--    the app's schema, the schema before pg_catalog on the path, a STOP then
--    a START on one channel of a channel-scoped table.
SET ROLE regress_optout_app;
CREATE TABLE app.sms (id serial PRIMARY KEY, contact_id int, channel text, body text);
CREATE FUNCTION app.text_eq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM app.note('= (text, text)');
    RETURN a OPERATOR(pg_catalog.=) b;
END
$$;
CREATE OPERATOR app.= (LEFTARG = text, RIGHTARG = text, FUNCTION = app.text_eq);
RESET ROLE;
SELECT optout.attach_inbound('app.sms', 'body', 'contact_id', 'channel', scope => 'channel') > 0 AS attached;
SET ROLE regress_optout_app;
SET search_path = app, pg_catalog;
INSERT INTO app.sms (contact_id, channel, body) VALUES (1, '+1', 'STOP');
INSERT INTO app.sms (contact_id, channel, body) VALUES (1, '+1', 'START');
RESET search_path;
RESET ROLE;
-- Nothing ran as another role; the app is no superuser.
SELECT h.what, r.rolsuper AS ran_as_superuser, count(*) AS calls
  FROM app.hijacks h JOIN pg_roles r ON r.rolname = h.by_user
 WHERE h.by_user <> 'regress_optout_app' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_optout_app';
-- The STOP and the START were applied.
SELECT kind, contact, channel, detail FROM optout.events ORDER BY id;
SELECT count(*) AS stops FROM optout.stops;
-- (undo an escalation, should there be one, so what follows starts clean)
ALTER ROLE regress_optout_app NOSUPERUSER;
SELECT optout.detach('app.sms') AS detached;
DROP TABLE app.sms;
DROP OPERATOR app.= (text, text);
DROP FUNCTION app.text_eq(text, text);
TRUNCATE app.hijacks;
TRUNCATE optout.events, optout.stops;

-- ---------------------------------------------------------------------------
-- 1b. A review_unless query (issue #24) is the DBA's, run by the inbound
--     trigger the app's inserts fire: with optout's pinned path, as the
--     table's owner. The app plants = for (integer, integer) and puts its
--     schema first; the query, written with its operators unqualified,
--     never calls it, and decides as it should. (The event ids of what
--     follows stay as they were without this section.)
SELECT last_value AS events_seq FROM optout.events_id_seq \gset
SET ROLE regress_optout_app;
CREATE TABLE app.sms (id serial PRIMARY KEY, contact_id int, channel text, body text);
CREATE TABLE app.asking (contact_id int);
INSERT INTO app.asking VALUES (2);
CREATE FUNCTION app.int_eq(a int, b int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM app.note('= (int, int)');
    RETURN a OPERATOR(pg_catalog.=) b;
END
$$;
CREATE OPERATOR app.= (LEFTARG = int, RIGHTARG = int, FUNCTION = app.int_eq);
RESET ROLE;
SELECT optout.attach_inbound('app.sms', 'body', 'contact_id', 'channel',
           review_unless => 'SELECT 1 FROM app.asking a WHERE a.contact_id = $1::int') > 0 AS attached;
SET ROLE regress_optout_app;
SET search_path = app, pg_catalog;
INSERT INTO app.sms (contact_id, channel, body) VALUES (1, '+1', 'no'), (2, '+1', 'no'), (2, '+1', 'STOP');
RESET search_path;
RESET ROLE;
SELECT h.what, h.by_user, count(*) AS calls FROM app.hijacks h GROUP BY 1, 2 ORDER BY 1, 2;
SELECT kind, contact, body FROM optout.events ORDER BY id;
SELECT optout.detach('app.sms') AS detached;
DROP TABLE app.sms, app.asking;
DROP OPERATOR app.= (int, int);
DROP FUNCTION app.int_eq(int, int);
TRUNCATE app.hijacks;
TRUNCATE optout.events, optout.stops;
SELECT setval('optout.events_id_seq', :events_seq) > 0 AS events_seq_restored;

-- ---------------------------------------------------------------------------
-- 2. The platform, created by the app in its schema (with the schema's
--    defaults, before anything is planted).
SET ROLE regress_optout_app;
CREATE TYPE app.tag AS ENUM ('vip', 'news', 'stopped');
CREATE TABLE app.contacts (id int PRIMARY KEY, org_id int NOT NULL, status text NOT NULL DEFAULT 'A',
                           modified_on timestamptz);
CREATE TABLE app.groups (id int PRIMARY KEY, org_id int NOT NULL, kind text NOT NULL);
CREATE TABLE app.memberships (contact_id int NOT NULL, group_id int NOT NULL);
CREATE TABLE app.tags (contact_id int NOT NULL, tag app.tag NOT NULL);
CREATE TABLE app.inbox (id serial PRIMARY KEY, contact_id int, channel text, body text,
                        created_on timestamptz NOT NULL DEFAULT '2026-11-01 10:00:00+00');
CREATE TABLE app.chan_inbox (id serial PRIMARY KEY, contact_id int, channel text, body text);
CREATE TABLE app.out_error (id serial PRIMARY KEY, contact_id int, channel text, body text, status text NOT NULL DEFAULT 'Q');
CREATE TABLE app.out_skip (id serial PRIMARY KEY, contact_id int, channel text, body text, status text NOT NULL DEFAULT 'Q');
CREATE TABLE app.out_mark (id serial PRIMARY KEY, contact_id int, channel text, body text, status text NOT NULL DEFAULT 'Q',
                           failed_reason text, created_on timestamptz NOT NULL DEFAULT '2026-11-01 11:00:00+00');
CREATE TABLE app.receipts (id serial PRIMARY KEY, contact_id int, channel text, error_code text);
-- Contacts 1-7 in org 1, 8-14 in org 2; each org has its Stopped group (kind
-- S) and a manual one; every contact is in its manual group, tagged vip and news.
INSERT INTO app.groups VALUES (10, 1, 'S'), (11, 1, 'M'), (20, 2, 'S'), (21, 2, 'M');
INSERT INTO app.contacts (id, org_id) SELECT c, CASE WHEN c <= 7 THEN 1 ELSE 2 END FROM generate_series(1, 14) c;
INSERT INTO app.memberships SELECT id, CASE WHEN org_id = 1 THEN 11 ELSE 21 END FROM app.contacts;
INSERT INTO app.tags SELECT id, t FROM app.contacts, unnest('{vip,news}'::app.tag[]) t;
-- History from before optout: contact 13 sent STOP and was never stopped;
-- contact 14 sent an opt-out and then START.
INSERT INTO app.inbox (contact_id, channel, body, created_on) VALUES
    (13, '+1', 'STOP', '2026-10-01 09:00:00+00'), (14, '+1', 'unsubscribe', '2026-10-02 09:00:00+00'),
    (14, '+1', 'START', '2026-10-03 09:00:00+00'), (13, '+1', 'what is this?', '2026-10-04 09:00:00+00');
INSERT INTO app.out_mark (contact_id, channel, body, status, created_on) VALUES
    (13, '+1', 'sent after the unhonoured STOP', 'S', '2026-10-05 09:00:00+00');
-- (an outbox whose rows say what they are: see the confirmation in section 5)
CREATE TABLE app.out_reply (id serial PRIMARY KEY, contact_id integer, channel text, kind text NOT NULL DEFAULT 'promo',
                            body text, status text NOT NULL DEFAULT 'Q');
RESET ROLE;

-- The DBA attaches it, with a clean search_path. The stopped_group_query is
-- written as docs/reference.md shows it (its operators unqualified): optout runs it
-- with its own path, whatever the session's.
SELECT optout.attach_contacts('app.contacts', 'id', 'status', 'S', 'A', touch_column => 'modified_on') > 0 AS contacts,
       optout.attach_groups('app.memberships', 'contact_id', 'group_id',
                            stopped_group_query => 'SELECT g.id FROM app.groups g JOIN app.contacts c ON c.org_id = g.org_id
                                                    WHERE c.id = $1::int AND g.kind = ''S''') > 0 AS memberships,
       optout.attach_groups('app.tags', 'contact_id', 'tag', stopped_group => 'stopped') > 0 AS tags,
       optout.attach_inbound('app.inbox', 'body', 'contact_id', 'channel') > 0 AS inbound_contact,
       optout.attach_inbound('app.chan_inbox', 'body', 'contact_id', 'channel', scope => 'channel') > 0 AS inbound_channel,
       optout.attach_outbound('app.out_error', 'contact_id', 'channel', on_blocked => 'error',
                              queued => '{"status": "Q"}') > 0 AS out_error,
       optout.attach_outbound('app.out_skip', 'contact_id', 'channel', on_blocked => 'skip',
                              queued => '{"status": "Q"}') > 0 AS out_skip,
       optout.attach_outbound('app.out_mark', 'contact_id', 'channel', on_blocked => 'mark',
                              mark => '{"status": "F", "failed_reason": "C"}', queued => '{"status": ["Q", "I"]}') > 0 AS out_mark,
       optout.attach_delivery_errors('app.receipts', 'contact_id', code_column => 'error_code', provider => 'twilio',
                                     channel_column => 'channel') > 0 AS receipts;
-- The app is granted nothing on optout: it may use what PUBLIC may.
SELECT c.relname AS app_may_write
  FROM pg_class c WHERE c.relnamespace = 'optout'::regnamespace AND c.relkind IN ('r', 'v', 'S')
   AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege('regress_optout_app', c.oid, 'USAGE, UPDATE')
            ELSE has_table_privilege('regress_optout_app', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') END
 ORDER BY 1;
-- (trigger functions aside: they run only as the triggers optout creates)
SELECT p.oid::regprocedure AS app_may_execute
  FROM pg_proc p WHERE p.pronamespace = 'optout'::regnamespace AND has_function_privilege('regress_optout_app', p.oid, 'EXECUTE')
   AND p.prorettype <> 'trigger'::regtype
 ORDER BY p.oid::regprocedure::text;

-- ---------------------------------------------------------------------------
-- 3. The app plants its look-alikes: comparison operators for every type
--    optout compares, a (regclass, regclass) one that pg_catalog lacks (an
--    exact match wins wherever app is on the path), other operators optout
--    uses, functions, aggregates, and an implicit cast from text to its tag
--    type (the type of an attached group column).
SET ROLE regress_optout_app;
DO $plant$
DECLARE
    t text;
    op text;
    o record;
    n integer := 0;
BEGIN
    FOREACH t IN ARRAY ARRAY['text', 'integer', 'bigint', 'smallint', 'numeric', 'name', 'oid', '"char"', 'boolean',
                             'timestamptz', 'date', 'jsonb', 'uuid', 'regclass', 'app.tag'] LOOP
        FOREACH op IN ARRAY ARRAY['=', '<>', '<', '>', '<=', '>='] LOOP
            n := n + 1;
            EXECUTE format($f$CREATE FUNCTION app.%I(a %s, b %s) RETURNS boolean LANGUAGE plpgsql AS $b$
                               BEGIN PERFORM app.note(%L); RETURN a OPERATOR(pg_catalog.%s) b; END $b$$f$,
                           'op' || n, t, t, format('%s (%s, %s)', op, t, t), op);
            EXECUTE format('CREATE OPERATOR app.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = app.%I)', op, t, t, 'op' || n);
        END LOOP;
    END LOOP;
    FOR o IN SELECT * FROM (VALUES ('||', 'text', 'text', 'text', 'a OPERATOR(pg_catalog.||) b'),
                                   ('||', 'text[]', 'text', 'text[]', 'a OPERATOR(pg_catalog.||) b'),
                                   ('=', 'text', 'text[]', 'boolean', 'a OPERATOR(pg_catalog.=) ANY (b)'),
                                   ('=', 'name', 'text', 'boolean', 'a OPERATOR(pg_catalog.=) b'),
                                   ('=', 'regclass', 'oid', 'boolean', 'a OPERATOR(pg_catalog.=) b'),
                                   ('->>', 'jsonb', 'text', 'text', 'a OPERATOR(pg_catalog.->>) b'),
                                   ('->', 'jsonb', 'text', 'jsonb', 'a OPERATOR(pg_catalog.->) b'),
                                   ('?', 'jsonb', 'text', 'boolean', 'a OPERATOR(pg_catalog.?) b'),
                                   ('#>>', 'jsonb', 'text[]', 'text', 'a OPERATOR(pg_catalog.#>>) b'),
                                   ('@>', 'jsonb', 'jsonb', 'boolean', 'a OPERATOR(pg_catalog.@>) b'),
                                   ('-', 'timestamptz', 'interval', 'timestamptz', 'a OPERATOR(pg_catalog.-) b'),
                                   ('+', 'integer', 'integer', 'integer', 'a OPERATOR(pg_catalog.+) b'),
                                   ('+', 'bigint', 'bigint', 'bigint', 'a OPERATOR(pg_catalog.+) b'),
                                   ('~~', 'text', 'text', 'boolean', 'a OPERATOR(pg_catalog.~~) b')) v(op, l, r, ret, body) LOOP
        n := n + 1;
        EXECUTE format($f$CREATE FUNCTION app.%I(a %s, b %s) RETURNS %s LANGUAGE plpgsql AS $b$
                           BEGIN PERFORM app.note(%L); RETURN %s; END $b$$f$,
                       'op' || n, o.l, o.r, o.ret, format('%s (%s, %s)', o.op, o.l, o.r), o.body);
        EXECUTE format('CREATE OPERATOR app.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = app.%I)', o.op, o.l, o.r, 'op' || n);
    END LOOP;
    -- Functions: name, arguments, result, the real one's call.
    FOR o IN SELECT * FROM (VALUES
            ('lower', 'a text', 'text', 'pg_catalog.lower(a)'),
            ('upper', 'a text', 'text', 'pg_catalog.upper(a)'),
            ('btrim', 'a text', 'text', 'pg_catalog.btrim(a)'),
            ('btrim', 'a text, b text', 'text', 'pg_catalog.btrim(a, b)'),
            ('length', 'a text', 'integer', 'pg_catalog.length(a)'),
            ('replace', 'a text, b text, c text', 'text', 'pg_catalog.replace(a, b, c)'),
            ('now', '', 'timestamptz', 'pg_catalog.now()'),
            ('clock_timestamp', '', 'timestamptz', 'pg_catalog.clock_timestamp()'),
            ('date_trunc', 'a text, b timestamptz', 'timestamptz', 'pg_catalog.date_trunc(a, b)'),
            ('format', 'a text', 'text', 'pg_catalog.format(a)'),
            ('format', 'a text, b text', 'text', 'pg_catalog.format(a, b)'),
            ('format', 'a text, b text, c text', 'text', 'pg_catalog.format(a, b, c)'),
            ('format', 'a text, b name, c name', 'text', 'pg_catalog.format(a, b, c)'),
            ('concat_ws', 'a text, b text, c text', 'text', 'pg_catalog.concat_ws(a, b, c)'),
            ('quote_ident', 'a text', 'text', 'pg_catalog.quote_ident(a)'),
            ('quote_literal', 'a text', 'text', 'pg_catalog.quote_literal(a)'),
            ('array_to_string', 'a anyarray, b text', 'text', 'pg_catalog.array_to_string(a, b)'),
            ('jsonb_typeof', 'a jsonb', 'text', 'pg_catalog.jsonb_typeof(a)'),
            ('to_jsonb', 'a anyelement', 'jsonb', 'pg_catalog.to_jsonb(a)'),
            ('to_regclass', 'a text', 'regclass', 'pg_catalog.to_regclass(a)'),
            ('current_setting', 'a text, b boolean', 'text', 'pg_catalog.current_setting(a, b)'),
            ('set_config', 'a text, b text, c boolean', 'text', 'pg_catalog.set_config(a, b, c)'),
            ('nextval', 'a regclass', 'bigint', 'pg_catalog.nextval(a)')) v(name, args, ret, body) LOOP
        EXECUTE format($f$CREATE FUNCTION app.%I(%s) RETURNS %s LANGUAGE plpgsql AS $b$
                           BEGIN PERFORM app.note(%L); RETURN %s; END $b$$f$,
                       o.name, o.args, o.ret, format('%s(%s)', o.name, o.args), o.body);
    END LOOP;
END
$plant$;
CREATE FUNCTION app.pg_notify(a text, b text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM app.note('pg_notify(a text, b text)');
    PERFORM pg_catalog.pg_notify(a, b);
END
$$;
-- Set-returning functions.
CREATE FUNCTION app.unnest(a anyarray) RETURNS SETOF anyelement LANGUAGE plpgsql AS $$
BEGIN
    PERFORM app.note('unnest(anyarray)');
    RETURN QUERY SELECT pg_catalog.unnest(a);
END
$$;
CREATE FUNCTION app.jsonb_each(a jsonb) RETURNS TABLE (key text, value jsonb) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM app.note('jsonb_each(jsonb)');
    RETURN QUERY SELECT * FROM pg_catalog.jsonb_each(a);
END
$$;
CREATE FUNCTION app.jsonb_each_text(a jsonb) RETURNS TABLE (key text, value text) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM app.note('jsonb_each_text(jsonb)');
    RETURN QUERY SELECT * FROM pg_catalog.jsonb_each_text(a);
END
$$;
CREATE FUNCTION app.jsonb_array_elements_text(a jsonb) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM app.note('jsonb_array_elements_text(jsonb)');
    RETURN QUERY SELECT pg_catalog.jsonb_array_elements_text(a);
END
$$;
CREATE FUNCTION app.pg_partition_tree(a regclass)
    RETURNS TABLE (relid regclass, parentrelid regclass, isleaf boolean, level integer) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM app.note('pg_partition_tree(regclass)');
    RETURN QUERY SELECT * FROM pg_catalog.pg_partition_tree(a);
END
$$;
-- Aggregates: each transition records the call.
CREATE FUNCTION app.count_star(s bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM app.note('count(*)'); RETURN s OPERATOR(pg_catalog.+) 1; END $$;
CREATE AGGREGATE app.count(*) (SFUNC = app.count_star, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION app.count_any(s bigint, v anyelement) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM app.note('count(anyelement)'); RETURN s OPERATOR(pg_catalog.+) 1; END $$;
CREATE AGGREGATE app.count(anyelement) (SFUNC = app.count_any, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION app.array_agg_step(s anycompatiblearray, v anycompatible) RETURNS anycompatiblearray LANGUAGE plpgsql AS $$
BEGIN PERFORM app.note('array_agg(anycompatible)'); RETURN pg_catalog.array_append(s, v); END $$;
CREATE AGGREGATE app.array_agg(anycompatible) (SFUNC = app.array_agg_step, STYPE = anycompatiblearray);
CREATE FUNCTION app.string_agg_step(s text, v text, d text) RETURNS text LANGUAGE plpgsql STRICT AS $$
BEGIN PERFORM app.note('string_agg(text, text)'); RETURN pg_catalog.concat_ws(d, s, v); END $$;
CREATE AGGREGATE app.string_agg(text, text) (SFUNC = app.string_agg_step, STYPE = text);
CREATE FUNCTION app.sum_step(s bigint, v bigint) RETURNS bigint LANGUAGE plpgsql STRICT AS $$
BEGIN PERFORM app.note('sum(bigint)'); RETURN pg_catalog.int8pl(s, v); END $$;
CREATE AGGREGATE app.sum(bigint) (SFUNC = app.sum_step, STYPE = bigint);
CREATE FUNCTION app.max_step(s text, v text) RETURNS text LANGUAGE plpgsql STRICT AS $$
BEGIN PERFORM app.note('max(text)'); RETURN pg_catalog.text_larger(s, v); END $$;
CREATE AGGREGATE app.max(text) (SFUNC = app.max_step, STYPE = text);
CREATE FUNCTION app.min_step(s timestamptz, v timestamptz) RETURNS timestamptz LANGUAGE plpgsql STRICT AS $$
BEGIN PERFORM app.note('min(timestamptz)'); RETURN pg_catalog.timestamptz_smaller(s, v); END $$;
CREATE AGGREGATE app.min(timestamptz) (SFUNC = app.min_step, STYPE = timestamptz);
CREATE FUNCTION app.bool_and_step(s boolean, v boolean) RETURNS boolean LANGUAGE plpgsql STRICT AS $$
BEGIN PERFORM app.note('bool_and(boolean)'); RETURN pg_catalog.booland_statefunc(s, v); END $$;
CREATE AGGREGATE app.bool_and(boolean) (SFUNC = app.bool_and_step, STYPE = boolean);
-- The cast: text to the app's own type, implicit.
CREATE FUNCTION app.tag_from_text(a text) RETURNS app.tag LANGUAGE plpgsql AS $$
DECLARE
    r app.tag;
BEGIN
    PERFORM app.note('cast text -> app.tag');
    EXECUTE pg_catalog.format('SELECT %L::app.tag', a) INTO r;
    RETURN r;
END
$$;
CREATE CAST (text AS app.tag) WITH FUNCTION app.tag_from_text(text) AS IMPLICIT;
RESET ROLE;
SELECT (SELECT count(*) FROM pg_operator WHERE oprnamespace = 'app'::regnamespace) AS operators,
       (SELECT count(*) FROM pg_proc WHERE pronamespace = 'app'::regnamespace AND prokind = 'a') AS aggregates,
       (SELECT count(*) FROM pg_cast WHERE castsource = 'text'::regtype AND casttarget = 'app.tag'::regtype) AS casts;

-- What a DBA checks afterwards: every object outside the app's schema (and
-- outside temporary schemas), with its owner, rights and definition; every
-- role and its attributes and memberships.
CREATE TEMP VIEW outside_app AS
SELECT 'relation' AS catalog, n.nspname || '.' || c.relname AS object, c.relowner::regrole::text AS owner,
       c.relacl::text AS acl, c.relkind::text || coalesce(c.reloptions::text, '') AS def
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname <> 'app' AND n.nspname !~ '^pg_(toast_)?temp_'
UNION ALL
SELECT 'function', p.oid::regprocedure::text, p.proowner::regrole::text, p.proacl::text,
       md5(p.prosrc || p.prosecdef::text || p.provolatile::text || coalesce(p.proconfig::text, ''))
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname <> 'app' AND n.nspname !~ '^pg_(toast_)?temp_'
UNION ALL
SELECT 'operator', o.oid::regoperator::text, o.oprowner::regrole::text, NULL, o.oprcode::text
  FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE n.nspname <> 'app'
UNION ALL
SELECT 'type', n.nspname || '.' || t.typname, t.typowner::regrole::text, t.typacl::text, NULL
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname <> 'app' AND n.nspname !~ '^pg_(toast_)?temp_'
UNION ALL
SELECT 'cast', c.castsource::regtype::text || ' -> ' || c.casttarget::regtype::text, NULL, NULL,
       c.castfunc::regprocedure::text || ' ' || c.castcontext::text
  FROM pg_cast c WHERE c.castfunc = 0 OR c.castfunc NOT IN (SELECT oid FROM pg_proc WHERE pronamespace = 'app'::regnamespace)
UNION ALL
SELECT 'schema', n.nspname, n.nspowner::regrole::text, n.nspacl::text, NULL
  FROM pg_namespace n WHERE n.nspname !~ '^pg_(toast_)?temp_'
UNION ALL
SELECT 'trigger', t.tgrelid::regclass::text || ' ' || t.tgname, NULL, NULL, t.tgfoid::regprocedure::text || t.tgenabled::text
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname <> 'app' AND n.nspname !~ '^pg_(toast_)?temp_'
UNION ALL
SELECT 'event trigger', e.evtname, e.evtowner::regrole::text, NULL, e.evtfoid::regprocedure::text || e.evtenabled::text
  FROM pg_event_trigger e
UNION ALL
SELECT 'role', r.rolname, NULL, NULL,
       concat_ws(' ', r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, r.rolreplication,
                 r.rolbypassrls, r.rolconfig::text)
  FROM pg_roles r
UNION ALL
SELECT 'membership', m.member::regrole::text || ' in ' || m.roleid::regrole::text, NULL, NULL, NULL
  FROM pg_auth_members m
UNION ALL
SELECT 'setting', coalesce(s.setrole::regrole::text, '-') || ' ' || s.setdatabase::text, NULL, NULL, s.setconfig::text
  FROM pg_db_role_setting s
UNION ALL
SELECT 'default acl', d.defaclrole::regrole::text, NULL, d.defaclacl::text, d.defaclobjtype::text
  FROM pg_default_acl d
UNION ALL
SELECT 'extension', x.extname, x.extowner::regrole::text, NULL, x.extversion FROM pg_extension x;
CREATE TEMP TABLE outside_app_before AS SELECT * FROM outside_app;
-- What the DBA's calls return, kept to be read with a clean path.
CREATE TEMP TABLE seen (n serial, what text, result jsonb);

-- ---------------------------------------------------------------------------
-- 4. The app's planted objects work: called by the app itself (in its own
--    statements), they run, as the app.
SET ROLE regress_optout_app;
SET search_path = app, pg_catalog, public;
SELECT lower('A') AS lower, 'a' = 'b' AS eq, 1 < 2 AS lt, count(*) AS count FROM (VALUES (1)) v(x);
RESET search_path;
RESET ROLE;
SELECT what, by_user AS ran_as, count(*) AS calls FROM app.hijacks GROUP BY 1, 2 ORDER BY 1, 2;

-- ---------------------------------------------------------------------------
-- 5. The app drives every path, its schema first on the path. (Statements
--    this test writes spell out the operators they use, or they would call
--    the planted ones themselves.)
SET ROLE regress_optout_app;
SET search_path = app, pg_catalog, public;
-- Messages queued for contacts 1, 3 and 4 (on channels +1 and +2) and 2.
INSERT INTO app.out_error (contact_id, channel, body) VALUES (1, '+1', 'queued'), (3, '+1', 'queued'), (3, '+2', 'queued'),
                                                             (4, '+2', 'queued'), (2, '+1', 'queued');
INSERT INTO app.out_skip (contact_id, channel, body) VALUES (1, '+1', 'queued'), (3, '+1', 'queued'), (3, '+2', 'queued'),
                                                            (4, '+2', 'queued'), (2, '+1', 'queued');
INSERT INTO app.out_mark (contact_id, channel, body) VALUES (1, '+1', 'queued'), (3, '+1', 'queued'), (3, '+2', 'queued'),
                                                            (4, '+2', 'queued'), (2, '+1', 'queued');
INSERT INTO app.out_mark (contact_id, channel, body, status) VALUES (1, '+1', 'in flight', 'I'), (1, '+2', 'sent', 'S');
-- Inbound, contact scope: STOP (1), HELP (2), STOP then START (5), and one
-- statement of many rows: STOP then START for 6, an opt-out with courtesy
-- (7), not a keyword (8), HELP (9).
INSERT INTO app.inbox (contact_id, channel, body) VALUES (1, '+1', 'STOP');
INSERT INTO app.inbox (contact_id, channel, body) VALUES (2, '+1', 'HELP');
INSERT INTO app.inbox (contact_id, channel, body) VALUES (5, '+1', 'Stop');
INSERT INTO app.inbox (contact_id, channel, body) VALUES (5, '+1', 'START');
INSERT INTO app.inbox (contact_id, channel, body) VALUES
    (6, '+1', 'STOP'), (7, '+2', 'Stop please'), (8, '+1', 'thanks'), (6, '+1', 'START'), (9, '+2', 'help');
-- A reply too unclear to act on (14): recorded for review, nothing stopped.
INSERT INTO app.inbox (contact_id, channel, body) VALUES (14, '+1', 'no');
-- Inbound, channel scope: STOP on +1 (3), then a send on each channel, then
-- START on +1; STOPALL (4) stops every channel; HELP (4); one statement of
-- STOPs on two channels (10) and a STOPALL (11).
INSERT INTO app.chan_inbox (contact_id, channel, body) VALUES (3, '+1', 'STOP');
INSERT INTO app.out_mark (contact_id, channel, body) VALUES (3, '+1', 'to 3 on +1 while stopped there'),
                                                            (3, '+2', 'to 3 on +2');
INSERT INTO app.chan_inbox (contact_id, channel, body) VALUES (3, '+1', 'START');
INSERT INTO app.out_mark (contact_id, channel, body) VALUES (3, '+1', 'to 3 on +1 after START');
INSERT INTO app.chan_inbox (contact_id, channel, body) VALUES (4, '+1', 'STOPALL');
INSERT INTO app.chan_inbox (contact_id, channel, body) VALUES (4, '+2', 'HELP');
INSERT INTO app.chan_inbox (contact_id, channel, body) VALUES (10, '+1', 'STOP'), (10, '+2', 'stop'), (11, '+1', 'stop all');
-- Outbound to stopped contact 1, in each mode: INSERT, INSERT ... SELECT,
-- COPY, an UPDATE that re-targets a row (error: refused; skip: not stored;
-- mark: stored as failed).
\set VERBOSITY terse
INSERT INTO app.out_error (contact_id, channel, body) VALUES (1, '+1', 'insert');
INSERT INTO app.out_error (contact_id, channel, body) SELECT c, '+1', 'insert select' FROM (VALUES (2), (1)) v(c);
COPY app.out_error (contact_id, channel, body) FROM stdin;
2	+1	copy
1	+1	copy
\.
INSERT INTO app.out_error (contact_id, channel, body) VALUES (2, '+1', 'to be re-targeted');
UPDATE app.out_error SET contact_id = 1 WHERE body OPERATOR(pg_catalog.=) 'to be re-targeted';
\set VERBOSITY default
INSERT INTO app.out_skip (contact_id, channel, body) VALUES (1, '+1', 'insert');
INSERT INTO app.out_skip (contact_id, channel, body) SELECT c, '+1', 'insert select' FROM (VALUES (2), (1)) v(c);
COPY app.out_skip (contact_id, channel, body) FROM stdin;
2	+1	copy
1	+1	copy
\.
INSERT INTO app.out_skip (contact_id, channel, body) VALUES (8, '+1', 'to be re-targeted');
UPDATE app.out_skip SET contact_id = 1 WHERE body OPERATOR(pg_catalog.=) 'to be re-targeted';
INSERT INTO app.out_mark (contact_id, channel, body) VALUES (1, '+1', 'insert');
INSERT INTO app.out_mark (contact_id, channel, body) SELECT c, '+1', 'insert select' FROM (VALUES (8), (1)) v(c);
COPY app.out_mark (contact_id, channel, body) FROM stdin;
8	+1	copy
1	+1	copy
\.
INSERT INTO app.out_mark (contact_id, channel, body) VALUES (8, '+1', 'to be re-targeted');
UPDATE app.out_mark SET contact_id = 1 WHERE body OPERATOR(pg_catalog.=) 'to be re-targeted';
-- The contacts trigger: stopped contact 1 set back to active stays stopped.
UPDATE app.contacts SET status = 'A' WHERE id OPERATOR(pg_catalog.=) 1;
-- Delivery errors: 21610 stops contact 12; 30006 is recorded only.
INSERT INTO app.receipts (contact_id, channel, error_code) VALUES (12, '+1', '21610'), (8, '+1', '30006');
RESET search_path;
RESET ROLE;

-- The confirmation and the help reply (issue #17): the DBA attaches the
-- app's outbox whose rows say what they are, naming both, and the
-- app, its schema first on the path, sends through INSERT, COPY, UPDATE and
-- optout.confirm_next(). Stopped contact 1 (STOP on the inbox) gets one
-- confirmation; contact 4 (STOPALL, then HELP on +2) one reply; contact 10
-- (STOP on +1) the send the app arms.
SELECT optout.attach_outbound('app.out_reply', 'contact_id', 'channel', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}', confirmation => '{"kind": "confirmation"}',
                              help_reply => '{"kind": "help"}') > 0 AS out_reply;
SET ROLE regress_optout_app;
SET search_path = app, pg_catalog, public;
INSERT INTO app.out_reply (contact_id, channel, kind, body) VALUES (1, '+1', 'promo', 'promo in the window');
INSERT INTO app.out_reply (contact_id, channel, kind, body) VALUES (1, '+1', 'confirmation', 'unsubscribed');
COPY app.out_reply (contact_id, channel, kind, body) FROM stdin;
1	+1	confirmation	unsubscribed again
4	+2	help	help reply
4	+2	help	help reply again
\.
UPDATE app.out_reply SET status = 'Q' WHERE body OPERATOR(pg_catalog.=) 'unsubscribed again';
UPDATE app.out_reply SET status = 'Q' WHERE body OPERATOR(pg_catalog.=) 'help reply again';
BEGIN;
SELECT optout.confirm_next('10', '+1') AS armed_10;
INSERT INTO app.out_reply (contact_id, channel, body) VALUES (10, '+1', 'armed confirmation');
INSERT INTO app.out_reply (contact_id, channel, body) VALUES (10, '+1', 'armed twice');
COMMIT;
RESET search_path;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 6. The DBA runs optout's functions, backfill and reports with the app's
--    schema first on the path (as after SET ROLE, or a path the app set).
SET search_path = app, pg_catalog;
SELECT optout.stop('2', reason => 'asked by phone') AS stop_2,
       optout.stop('8', '+1', 'asked on +1') AS stop_8_on_1;
SELECT optout.is_stopped('2') AS stopped_2, optout.is_stopped('8', '+1') AS stopped_8_on_1,
       optout.is_stopped('8') AS stopped_8, optout.is_stopped('8', '+2') AS stopped_8_on_2;
SELECT optout.start('8', '+1', reason => 'consent form 17') AS start_8_on_1;
SELECT optout.record_delivery_error('9', '+2', 'twilio', '21610') AS error_9,
       optout.record_delivery_error('3', '+2', 'twilio', '30006') AS error_3,
       optout.record_delivery_error('12', '+1', 'twilio', '21610') AS error_12_again;
-- Backfill of the contact-scoped inbox: a report, then applied.
CALL optout.backfill('app.inbox', time_column => 'created_on');
INSERT INTO pg_temp.seen (what, result) SELECT 'backfill_report', pg_catalog.to_jsonb(r) FROM optout.backfill_report() r;
CALL optout.backfill('app.inbox', time_column => 'created_on', apply => true);
-- Every report.
INSERT INTO pg_temp.seen (what, result) SELECT 'stopped_now', pg_catalog.to_jsonb(r) FROM optout.stopped_now r;
INSERT INTO pg_temp.seen (what, result) SELECT 'requests_daily', pg_catalog.to_jsonb(r) FROM optout.requests_daily r;
INSERT INTO pg_temp.seen (what, result) SELECT 'blocked_daily', pg_catalog.to_jsonb(r) FROM optout.blocked_daily r;
INSERT INTO pg_temp.seen (what, result) SELECT 'provider_errors_daily', pg_catalog.to_jsonb(r) FROM optout.provider_errors_daily r;
INSERT INTO pg_temp.seen (what, result) SELECT 'errors_after_stop', pg_catalog.to_jsonb(r) FROM optout.errors_after_stop r;
INSERT INTO pg_temp.seen (what, result) SELECT 'attached', pg_catalog.to_jsonb(r) FROM optout.attached r;
INSERT INTO pg_temp.seen (what, result) SELECT 'backfill_progress', pg_catalog.to_jsonb(r) FROM optout.backfill_progress r;
INSERT INTO pg_temp.seen (what, result) SELECT 'backfill_report', pg_catalog.to_jsonb(r) FROM optout.backfill_report() r;
INSERT INTO pg_temp.seen (what, result) SELECT 'explain_contact', optout.explain_contact('1');
INSERT INTO pg_temp.seen (what, result) SELECT 'history', pg_catalog.to_jsonb(r) FROM optout.history('1') r;
INSERT INTO pg_temp.seen (what, result) SELECT 'evidence', optout.evidence('1');
INSERT INTO pg_temp.seen (what, result) SELECT 'honour_times', pg_catalog.to_jsonb(r) FROM optout.honour_times r;
-- The review queue: the open review of 14, dismissed with a reason.
INSERT INTO pg_temp.seen (what, result) SELECT 'open_reviews', pg_catalog.to_jsonb(r) FROM optout.open_reviews r;
SELECT optout.dismiss_review((SELECT r.review_id FROM optout.open_reviews r WHERE r.contact OPERATOR(pg_catalog.=) '14'),
                             reason => 'answered a question') AS dismissed_14;
SELECT optout.prune_events(interval '100 years') AS pruned;
-- Detach and attach again, then a stop and a start through what was re-attached.
SELECT optout.detach('app.chan_inbox') AS detached;
SELECT optout.attach_inbound('app.chan_inbox', 'body', 'contact_id', 'channel', scope => 'channel') IS NOT NULL AS attached;
INSERT INTO app.chan_inbox (contact_id, channel, body) VALUES (14, '+2', 'STOP');
INSERT INTO app.chan_inbox (contact_id, channel, body) VALUES (14, '+2', 'START');
RESET search_path;

-- ---------------------------------------------------------------------------
-- 7. What the app gained: nothing. (Its own calls of its own objects, in
--    section 4, ran as the app itself.)
SELECT CASE WHEN h.by_user = 'regress_optout_app' THEN 'the app itself' ELSE 'ANOTHER ROLE' END AS ran_as,
       count(*) > 0 AS any
  FROM app.hijacks h GROUP BY 1 ORDER BY 1;
-- Nothing of the app's ran as another role, or with another role's rights.
SELECT h.what, r.rolsuper AS ran_as_superuser, count(*) AS calls
  FROM app.hijacks h JOIN pg_roles r ON r.rolname = h.by_user
 WHERE h.by_user <> 'regress_optout_app' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = 'regress_optout_app';
-- Nothing outside its schema was created or changed (by anyone) ...
(SELECT 'now' AS state, * FROM outside_app EXCEPT SELECT 'now', * FROM outside_app_before)
UNION ALL
(SELECT 'before', * FROM outside_app_before EXCEPT SELECT 'before', * FROM outside_app)
ORDER BY 2, 3, 1;
-- ... and it owns nothing outside it.
SELECT 'relation' AS catalog, c.oid::regclass::text AS object FROM pg_class c
 WHERE c.relowner = 'regress_optout_app'::regrole AND c.relnamespace NOT IN ('app'::regnamespace, 'pg_toast'::regnamespace)
UNION ALL SELECT 'function', p.oid::regprocedure::text FROM pg_proc p
 WHERE p.proowner = 'regress_optout_app'::regrole AND p.pronamespace <> 'app'::regnamespace
UNION ALL SELECT 'operator', o.oid::regoperator::text FROM pg_operator o
 WHERE o.oprowner = 'regress_optout_app'::regrole AND o.oprnamespace <> 'app'::regnamespace
UNION ALL SELECT 'type', t.oid::regtype::text FROM pg_type t
 WHERE t.typowner = 'regress_optout_app'::regrole AND t.typnamespace <> 'app'::regnamespace
UNION ALL SELECT 'schema', n.nspname::text FROM pg_namespace n
 WHERE n.nspowner = 'regress_optout_app'::regrole AND n.nspname <> 'app'
ORDER BY 1, 2;

-- ---------------------------------------------------------------------------
-- 8. And enforcement is what it should be.
-- The ledger.
SELECT contact, channel, source, keyword FROM optout.stops ORDER BY contact::int, channel NULLS FIRST;
-- The record, per contact (app: written by the app's statements; dba: by the DBA's calls).
SELECT contact, kind, channel, source, keyword, rule, table_name, code,
       CASE WHEN actor = 'regress_optout_app' THEN 'app' ELSE 'dba' END AS actor,
       detail - '{seconds_after_stop,seconds_after_help}'::text[] AS detail
  FROM optout.events ORDER BY contact::int, id;
-- Contacts: stopped ones S (1 kept S against the app's UPDATE), the lifted ones A.
SELECT id, status, modified_on IS NOT NULL AS touched FROM app.contacts ORDER BY id;
-- Groups: a stopped contact is in its own org's Stopped group (10 or 20) and
-- no other; tags: only 'stopped'. Lifted ones have left the Stopped group.
SELECT c.id, (SELECT string_agg(m.group_id::text, ',' ORDER BY m.group_id) FROM app.memberships m WHERE m.contact_id = c.id) AS groups,
       (SELECT string_agg(t.tag::text, ',' ORDER BY t.tag) FROM app.tags t WHERE t.contact_id = c.id) AS tags
  FROM app.contacts c ORDER BY c.id;
-- Outbound: queued rows of stopped scopes failed at stop time (error and
-- skip: deleted; mark: marked), later sends refused, dropped or marked.
SELECT 'error' AS mode, contact_id, channel, body, status, NULL AS failed_reason FROM app.out_error
UNION ALL SELECT 'skip', contact_id, channel, body, status, NULL FROM app.out_skip
UNION ALL SELECT 'mark', contact_id, channel, body, status, failed_reason FROM app.out_mark
ORDER BY 1, 2, 3, 4;
SELECT id, contact_id, error_code FROM app.receipts ORDER BY id;
-- The confirmation and the help reply: one each, the rest marked.
SELECT contact_id, channel, kind, body, status FROM app.out_reply ORDER BY id;
-- What the DBA's calls returned.
-- (the daily views: whether they returned rows; their number depends on the date)
SELECT what, CASE WHEN what LIKE '%\_daily' THEN (count(*) > 0)::text ELSE count(*)::text END AS rows
  FROM seen GROUP BY what ORDER BY what;
SELECT result ->> 'contact' AS contact, result ->> 'message' AS message, result ->> 'keyword' AS keyword,
       result ->> 'opt_outs' AS opt_outs, result ->> 'lifted_by_opt_in' AS lifted, result ->> 'sent_after' AS sent_after,
       result ->> 'stopped_now' AS stopped_now
  FROM seen WHERE what = 'backfill_report' ORDER BY n;
SELECT result ->> 'contact' AS contact, result ->> 'scope' AS scope, result ->> 'channel' AS channel,
       result ->> 'source' AS source, result ->> 'message' AS message
  FROM seen WHERE what = 'stopped_now' ORDER BY (result ->> 'contact')::int, result ->> 'channel' NULLS FIRST;
SELECT result ->> 'contact' AS contact, result ->> 'channel' AS channel, result ->> 'code' AS code,
       result ->> 'errors' AS errors
  FROM seen WHERE what = 'errors_after_stop' ORDER BY n;
SELECT result ->> 'stopped' AS stopped, jsonb_array_length(result -> 'stops') AS stops,
       result #>> '{last_opt_out,message}' AS last_opt_out, result ->> 'status_changes_refused' AS status_changes_refused
  FROM seen WHERE what = 'explain_contact';
SELECT result ->> 'kind' AS kind, result ->> 'source' AS source FROM seen WHERE what = 'history' ORDER BY n;
-- The evidence pack of contact 1, as the DBA got it with the app's schema first.
SELECT r ->> 'source' AS source, r ->> 'message' AS message, r -> 'classified_by' ->> 'optout_version' AS version,
       r -> 'classified_by' ->> 'keyword_set' IS NOT NULL AS keyword_set, r ->> 'within_10_business_days' AS in_time,
       r -> 'sends_after' ->> 'blocked' AS blocked_after, r -> 'confirmation' IS NOT NULL AS confirmed
  FROM seen, jsonb_array_elements(result -> 'revocations') r WHERE what = 'evidence';
SELECT result ->> 'source' AS source, result ->> 'honour_time' AS honour_time, result ->> 'within_10_business_days' AS in_time
  FROM seen WHERE what = 'honour_times' AND result ->> 'contact' = '1';
SELECT result ->> 'status' AS status, result ->> 'rows_scanned' AS rows_scanned, result ->> 'opt_outs_found' AS opt_outs_found,
       result ->> 'contacts_stopped' AS contacts_stopped
  FROM seen WHERE what = 'backfill_progress' ORDER BY (result ->> 'run_id')::int;

-- Attach-time checks run nothing of the app's with the DBA's rights (issue
-- #26): a value is checked against the column's type as the table's owner,
-- so a domain whose CHECK calls the app's function runs as the app.
SET ROLE regress_optout_app;
CREATE FUNCTION app.noted(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM app.note(what);
    RETURN true;
END
$$;
CREATE DOMAIN app.flag AS text CHECK (app.noted('domain_check'));
CREATE TABLE app.flagged (contact_id integer, channel text, status app.flag);
RESET ROLE;
TRUNCATE app.hijacks;
SET search_path = app, pg_catalog, public;
SELECT optout.attach_outbound('app.flagged', 'contact_id', 'channel', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}') IS NOT NULL AS flagged;
RESET search_path;
SELECT what, by_user AS ran_as, count(*) > 0 AS ran FROM app.hijacks GROUP BY 1, 2 ORDER BY 1, 2;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_optout_app';
SELECT optout.detach('app.flagged') AS detached;

-- Clean up (as the DBA).
SELECT count(*) AS detached FROM (SELECT optout.detach(tbl) FROM (SELECT DISTINCT tbl FROM optout.attached) t) d;
DROP SCHEMA app CASCADE;
DROP EXTENSION optout;
DROP ROLE regress_optout_app;
