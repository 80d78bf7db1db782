-- Enforcement on a platform with uuid keys, separate inbound and outbound
-- tables, per-channel scope, and names that need quoting.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = notice;

CREATE SCHEMA "Tricky; Schema";
CREATE TABLE "Tricky; Schema"."In ""Box""" ("Contact Id" uuid, "Sender;Number" text, "Body Text" text);
CREATE TABLE "Tricky; Schema"."Out Box" (id serial, "Contact Id" uuid, "Sender;Number" text, body text,
                                         state text DEFAULT 'pending');
CREATE TABLE "Tricky; Schema".skipped ("Contact Id" uuid, "Sender;Number" text, body text);

SELECT optout.attach_inbound('"Tricky; Schema"."In ""Box"""', body_column => 'Body Text', contact_column => 'Contact Id',
                             channel_column => 'Sender;Number', mode => 'reasonable', scope => 'channel') > 0 AS inbound;
SELECT optout.attach_outbound('"Tricky; Schema"."Out Box"', contact_column => 'Contact Id',
                              channel_column => 'Sender;Number', on_blocked => 'error',
                              queued => '{"state": "pending"}', mark => '{"state": "failed"}') > 0 AS outbound;
SELECT optout.attach_outbound('"Tricky; Schema".skipped', contact_column => 'Contact Id',
                              channel_column => 'Sender;Number', on_blocked => 'skip') > 0 AS skipped;

\set alice '''a0000000-0000-0000-0000-000000000001'''
\set bob '''b0000000-0000-0000-0000-000000000002'''
INSERT INTO "Tricky; Schema"."Out Box" ("Contact Id", "Sender;Number", body)
VALUES (:alice, '+1555000', 'queued on 000'), (:alice, '+1555111', 'queued on 111');

-- A natural-language opt-out (reasonable mode) on channel +1555000 stops
-- that channel only.
INSERT INTO "Tricky; Schema"."In ""Box""" VALUES (:alice, '+1555000', 'please stop texting me');
SELECT optout.is_stopped(:alice, '+1555000') AS on_000, optout.is_stopped(:alice, '+1555111') AS on_111,
       optout.is_stopped(:alice) AS contact_wide;
SELECT "Sender;Number", body, state FROM "Tricky; Schema"."Out Box" ORDER BY id;

-- error: the statement fails (class 23), naming contact and channel, with a
-- HINT; the DETAIL says since when and why (its time is left out here).
DO $$
DECLARE st text; msg text; hint text; detail text; tbl text; sch text;
BEGIN
    INSERT INTO "Tricky; Schema"."Out Box" ("Contact Id", "Sender;Number", body)
    VALUES ('a0000000-0000-0000-0000-000000000001', '+1555000', 'blocked');
EXCEPTION WHEN integrity_constraint_violation THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT,
                            detail = PG_EXCEPTION_DETAIL, tbl = TABLE_NAME, sch = SCHEMA_NAME;
    RAISE NOTICE 'SQLSTATE %: %', st, msg;
    RAISE NOTICE 'HINT: %', hint;
    RAISE NOTICE 'DETAIL: %', regexp_replace(detail, 'since .* \(', 'since <time> (');
    RAISE NOTICE 'table: %.%', sch, tbl;
END $$;
\set VERBOSITY terse
INSERT INTO "Tricky; Schema"."Out Box" ("Contact Id", "Sender;Number", body) VALUES (:alice, '+1555111', 'other channel: fine');
-- A whole COPY or INSERT ... SELECT fails when one row is for a stopped contact.
INSERT INTO "Tricky; Schema"."Out Box" ("Contact Id", "Sender;Number", body)
SELECT c, '+1555000', 'bulk' FROM (VALUES (:bob::uuid), (:alice::uuid)) v(c);
COPY "Tricky; Schema"."Out Box" ("Contact Id", "Sender;Number", body) FROM stdin;
b0000000-0000-0000-0000-000000000002	+1555000	copy ok
a0000000-0000-0000-0000-000000000001	+1555000	copy blocked
\.
-- Re-targeting a row to the stopped channel fails too.
UPDATE "Tricky; Schema"."Out Box" SET "Sender;Number" = '+1555000' WHERE body = 'other channel: fine';
SELECT "Sender;Number", body, state FROM "Tricky; Schema"."Out Box" ORDER BY id;
\set VERBOSITY default

-- skip: the row is silently not stored.
INSERT INTO "Tricky; Schema".skipped VALUES (:alice, '+1555000', 'dropped'), (:alice, '+1555111', 'kept'), (:bob, '+1555000', 'kept');
SELECT "Contact Id" = :alice AS alice, "Sender;Number", body FROM "Tricky; Schema".skipped ORDER BY 2, 1;

-- A table with no channel column cannot tell which channel a message goes
-- out on: a stop on any channel blocks it (and its queued messages were
-- failed by the same stop), in each rule, for one row and for a bulk send.
CREATE TABLE "Tricky; Schema".no_channel (contact uuid, body text, status text DEFAULT 'Q');
CREATE TABLE "Tricky; Schema".no_channel_err (contact uuid, body text);
SELECT optout.attach_outbound('"Tricky; Schema".no_channel', 'contact', on_blocked => 'mark', mark => '{"status": "F"}') > 0 AS mark,
       optout.attach_outbound('"Tricky; Schema".no_channel_err', 'contact') > 0 AS error;
INSERT INTO "Tricky; Schema".no_channel (contact, body) VALUES (:alice, 'alice, one row'), (:bob, 'bob, one row');
INSERT INTO "Tricky; Schema".no_channel (contact, body)
SELECT (CASE WHEN i = 1 THEN :alice ELSE md5(i::text)::uuid::text END)::uuid, 'bulk' FROM generate_series(1, 300) i;
SELECT contact = :alice AS alice, body, status, count(*) FROM "Tricky; Schema".no_channel GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
\set VERBOSITY terse
INSERT INTO "Tricky; Schema".no_channel_err VALUES (:alice, 'refused');
\set VERBOSITY default
SELECT count(*) AS stored FROM "Tricky; Schema".no_channel_err;
SELECT optout.detach('"Tricky; Schema".no_channel') + optout.detach('"Tricky; Schema".no_channel_err') AS detached;

-- STOPALL covers every channel, even in channel scope.
INSERT INTO "Tricky; Schema"."In ""Box""" VALUES (:bob, '+1555111', 'STOPALL');
SELECT optout.is_stopped(:bob) AS bob_contact_wide, optout.is_stopped(:bob, '+1555000') AS bob_on_000;

-- START on a channel lifts that channel's stop (and a contact-wide one).
INSERT INTO "Tricky; Schema"."In ""Box""" VALUES (:alice, '+1555000', 'START');
SELECT optout.is_stopped(:alice, '+1555000') AS alice_on_000;
INSERT INTO "Tricky; Schema"."In ""Box""" VALUES (:bob, '+1555000', 'unstop');
SELECT optout.is_stopped(:bob) AS bob_contact_wide;

SELECT kind, channel, body, keyword, language, rule, detail FROM optout.history(:alice) ORDER BY id;
SELECT kind, channel, body, keyword, rule, detail FROM optout.history(:bob) ORDER BY id;

-- A contact key of the wrong form for the platform is a clear error.
SELECT optout.stop('not-a-uuid');

SELECT optout.detach('"Tricky; Schema"."In ""Box"""') + optout.detach('"Tricky; Schema"."Out Box"')
       + optout.detach('"Tricky; Schema".skipped') AS detached;
DROP SCHEMA "Tricky; Schema" CASCADE;
DROP EXTENSION optout;
