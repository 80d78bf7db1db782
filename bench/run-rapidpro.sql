-- Workloads "rapidpro" and "rapidpro_update" (below) of bench/run.sh (psql
-- variables :rows, :contacts, :broadcast, :runs, :datadir).
-- rapidpro: the "outbound" COPY on RapidPro's own msgs_msg, with
-- its columns, CHECK constraints and indexes (as RapidPro's Django model
-- declares them: the primary key, the foreign-key and db_index columns, and
-- the Meta indexes, most of them partial), :rows queued outbound messages to
-- :contacts contacts, 10% of whom are stopped, into
--   attached          rapidpro.msgs_msg, wired with optout.attach_rapidpro()
--                     (so its inbound attachment is on the table too, as
--                     in a RapidPro database); the stopped contacts stopped
--                     with optout.stop()
--   unattached        bench.rp_msgs_b: the same table, no trigger
--   floor             bench.rp_msgs_f: the same table with a BEFORE INSERT
--                     row trigger that only returns NEW (PL/pgSQL): what any
--                     BEFORE ROW trigger costs a COPY (COPY inserts row by
--                     row instead of in batches for such a table) plus a
--                     trivial call per row
--   floor, no call    bench.rp_msgs_n: the same trigger with a WHEN that
--                     never holds: the batches lost, and nothing called
--   floor + record    bench.rp_msgs_n, then, in the same transaction, the
--                     blocked events an attached run records, written by a
--                     plain INSERT (bench.write_record in run-common.sql)
-- RapidPro's foreign keys are left out (on every variant): their checks
-- are AFTER row triggers that would add the same work to each variant (and
-- so make the ratio smaller), and need the referenced tables.
-- Before every run the message table and optout.events are emptied.
\set ON_ERROR_STOP 1

CREATE FUNCTION bench.create_rapidpro_msgs(tbl text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($q$
        CREATE TABLE %1$s (
            id bigint PRIMARY KEY, uuid uuid NOT NULL, org_id integer NOT NULL, channel_id integer,
            contact_id integer NOT NULL, contact_urn_id integer, broadcast_id integer, flow_id integer,
            ticket_id integer, created_by_id integer, text text NOT NULL, attachments varchar(2048)[],
            quick_replies varchar(64)[], optin_id integer, locale varchar(6), templating jsonb,
            created_on timestamptz NOT NULL, modified_on timestamptz NOT NULL, sent_on timestamptz,
            msg_type varchar(1) NOT NULL, direction varchar(1) NOT NULL, status varchar(1) NOT NULL,
            visibility varchar(1) NOT NULL, is_android boolean, msg_count integer NOT NULL,
            high_priority boolean, error_count integer NOT NULL, next_attempt timestamptz,
            failed_reason varchar(1), external_id varchar(255), log_uuids uuid[], metadata text,
            CONSTRAINT direction_is_in_or_out CHECK (direction = 'I' OR direction = 'O'),
            CONSTRAINT incoming_has_channel_and_urn
                CHECK (direction = 'O' OR (channel_id IS NOT NULL AND contact_urn_id IS NOT NULL)),
            CONSTRAINT no_sent_status_without_sent_on
                CHECK (NOT (status IN ('W', 'S', 'D', 'R') AND sent_on IS NULL)));
        -- The foreign-key and db_index columns.
        CREATE INDEX ON %1$s (channel_id);
        CREATE INDEX ON %1$s (contact_urn_id);
        CREATE INDEX ON %1$s (broadcast_id);
        CREATE INDEX ON %1$s (created_on);
        CREATE INDEX ON %1$s (status);
        -- The model's Meta indexes.
        CREATE INDEX ON %1$s (org_id, created_on DESC, id DESC);
        CREATE INDEX ON %1$s (contact_id, created_on DESC, id DESC);
        CREATE INDEX ON %1$s (next_attempt, created_on, id)
            WHERE direction = 'O' AND status IN ('I', 'E') AND next_attempt IS NOT NULL;
        CREATE INDEX ON %1$s (created_on) WHERE direction = 'O' AND is_android AND status IN ('I', 'Q', 'E');
        CREATE INDEX ON %1$s (channel_id, external_id) WHERE external_id IS NOT NULL;
        CREATE INDEX ON %1$s (org_id, created_on DESC, id DESC)
            WHERE direction = 'I' AND visibility = 'V' AND status = 'H' AND flow_id IS NULL AND msg_type = 'T';
        CREATE INDEX ON %1$s (org_id, created_on DESC, id DESC)
            WHERE direction = 'I' AND visibility = 'V' AND status = 'H' AND flow_id IS NOT NULL AND msg_type = 'T';
        CREATE INDEX ON %1$s (org_id, created_on DESC, id DESC)
            WHERE direction = 'I' AND visibility = 'A' AND status = 'H' AND msg_type = 'T';
        CREATE INDEX ON %1$s (org_id, status, created_on DESC, id DESC)
            WHERE direction = 'O' AND visibility = 'V' AND status IN ('I', 'Q', 'E', 'F');
        CREATE INDEX ON %1$s (org_id, sent_on DESC, id DESC)
            WHERE direction = 'O' AND visibility = 'V' AND status IN ('W', 'S', 'D', 'R');
        CREATE INDEX ON %1$s (org_id, modified_on DESC, id DESC) WHERE direction = 'I' AND status = 'H';
        $q$, tbl);
END
$$;

-- The other tables attach_rapidpro() wires, in their RapidPro shape (the
-- columns it uses): :contacts contacts of one org and its four status groups.
CREATE SCHEMA rapidpro;
CALL bench.build('rapidpro: ' || :contacts || ' contacts', format($q$
    CREATE TABLE rapidpro.contacts_contact (
        id integer PRIMARY KEY, uuid varchar(36) NOT NULL, org_id integer NOT NULL, name varchar(128),
        is_active boolean NOT NULL, created_on timestamptz NOT NULL, modified_on timestamptz NOT NULL,
        last_seen_on timestamptz, status varchar(1) NOT NULL CHECK (status IN ('A', 'B', 'S', 'V')));
    INSERT INTO rapidpro.contacts_contact
    SELECT c, md5(c::text)::uuid::text, 1, 'contact ' || c, true, timestamptz '2025-06-01', timestamptz '2025-06-01',
           NULL, 'A'
      FROM generate_series(1, %1$s) AS c;
    CREATE TABLE rapidpro.contacts_contactgroup (
        id integer PRIMARY KEY, uuid varchar(36) NOT NULL, org_id integer NOT NULL, name varchar(64) NOT NULL,
        is_active boolean NOT NULL, is_system boolean NOT NULL, group_type varchar(1) NOT NULL,
        status varchar(1) NOT NULL, query text);
    INSERT INTO rapidpro.contacts_contactgroup
    VALUES (1, md5('g1')::uuid::text, 1, '\Active', true, true, 'A', 'R', NULL),
           (2, md5('g2')::uuid::text, 1, '\Blocked', true, true, 'B', 'R', NULL),
           (3, md5('g3')::uuid::text, 1, '\Stopped', true, true, 'S', 'R', NULL),
           (4, md5('g4')::uuid::text, 1, '\Archived', true, true, 'V', 'R', NULL);
    CREATE TABLE rapidpro.contacts_contactgroup_contacts (
        id bigserial PRIMARY KEY, contactgroup_id integer NOT NULL, contact_id integer NOT NULL,
        UNIQUE (contactgroup_id, contact_id));
    CREATE INDEX ON rapidpro.contacts_contactgroup_contacts (contact_id);
    CREATE TABLE rapidpro.channels_channelevent (
        id bigserial PRIMARY KEY, org_id integer NOT NULL, channel_id integer NOT NULL, contact_id integer NOT NULL,
        contact_urn_id integer, event_type varchar(16) NOT NULL, status varchar(1) NOT NULL, extra text,
        occurred_on timestamptz NOT NULL, created_on timestamptz NOT NULL);
    $q$, :contacts));
\o /dev/null
SELECT bench.create_rapidpro_msgs('rapidpro.msgs_msg'), bench.create_rapidpro_msgs('bench.rp_msgs_b'),
       bench.create_rapidpro_msgs('bench.rp_msgs_f'), bench.create_rapidpro_msgs('bench.rp_msgs_n');
\o
CREATE FUNCTION bench.return_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN NEW;
END
$$;
CREATE TRIGGER floor BEFORE INSERT ON bench.rp_msgs_f FOR EACH ROW EXECUTE FUNCTION bench.return_new();
CREATE TRIGGER floor BEFORE INSERT ON bench.rp_msgs_n FOR EACH ROW WHEN (NEW.direction = 'X')
    EXECUTE FUNCTION bench.never_called();

-- The messages, as mailroom writes a broadcast's: every column given (no
-- default evaluated), one org, three channels, ten broadcasts, over 90 days.
CALL bench.build('rapidpro: ' || :rows || ' messages to COPY', format($q$
    COPY (SELECT i, md5(i::text)::uuid, 1, 1 + i %% 3, c, c, 1 + (i - 1) * 10 / %2$s, NULL, NULL, NULL,
                 'Hi! Your appointment is on Tuesday at 10:00. Reply STOP to opt out.', NULL, NULL, NULL,
                 'eng', NULL, t, t, NULL, 'T', 'O', 'Q', 'V', false, 1, false, 0, NULL, NULL, NULL, NULL, NULL
            FROM generate_series(1, %2$s) AS i,
                 LATERAL (SELECT bench.contact_of(i, %1$s) AS c,
                                 timestamptz '2026-01-01' + (i - 1) * (interval '90 days' / %2$s) AS t) AS x) TO %3$L;
    $q$, :contacts, :rows, :'datadir' || '/rapidpro.copy'));

-- Attached RapidPro's way; then 10% of the contacts stopped.
TRUNCATE optout.stops, optout.events;
\o /dev/null
SELECT count(*) AS attached FROM optout.attach_rapidpro('rapidpro');
\o
SELECT count(*) FILTER (WHERE optout.stop(c::text)) AS contacts_stopped FROM generate_series(10, :contacts, 10) AS c;
SELECT count(*) AS contacts_status_stopped FROM rapidpro.contacts_contact WHERE status = 'S';
TRUNCATE optout.events;
VACUUM ANALYZE optout.stops, optout.events, rapidpro.contacts_contact, rapidpro.contacts_contactgroup,
               rapidpro.contacts_contactgroup_contacts;

INSERT INTO bench.variants (workload, variant, ord, reset, query)
SELECT 'rapidpro', v, o, ARRAY[format('TRUNCATE %s, optout.events', t)],
       format('COPY %s FROM %L', t, :'datadir' || '/rapidpro.copy')
  FROM (VALUES ('attached', 1, 'rapidpro.msgs_msg'), ('unattached', 2, 'bench.rp_msgs_b'),
               ('floor', 3, 'bench.rp_msgs_f'), ('floor, no call', 4, 'bench.rp_msgs_n')) AS x (v, o, t);
SELECT bench.add_floor_record('rapidpro', 'floor, no call', 5, 'rapidpro');
-- What an attached run records, kept for "floor + record": one untimed run.
SELECT bench.untimed('rapidpro') \gexec
SELECT bench.keep_record('rapidpro');
TRUNCATE rapidpro.msgs_msg, optout.events;
VACUUM ANALYZE rapidpro.msgs_msg, optout.events;

SELECT s FROM bench.schedule('rapidpro', :runs) s \gexec
SELECT (SELECT count(*) FROM rapidpro.msgs_msg WHERE status = 'F' AND failed_reason = 'C') AS attached_marked,
       (SELECT count(*) FROM bench.rp_msgs_b WHERE status = 'F') AS unattached_marked,
       (SELECT count(*) FROM optout.events WHERE kind = 'blocked') AS blocked_events;
SELECT * FROM bench.medians('rapidpro');
SELECT * FROM bench.target('rapidpro', 'COPY outbound (mark) on RapidPro''s msgs_msg and its indexes, attached (attach_rapidpro) vs unattached',
                           'attached', 'unattached', '<=', 1.05)
UNION ALL SELECT * FROM bench.target('rapidpro', 'the floor: a BEFORE INSERT row trigger that returns NEW vs unattached (reference)',
                                     'floor', 'unattached')
UNION ALL SELECT * FROM bench.target('rapidpro', 'the floor without the call: a BEFORE INSERT row trigger never called vs unattached (reference)',
                                     'floor, no call', 'unattached')
UNION ALL SELECT * FROM bench.target('rapidpro', 'attached vs the floor (reference)', 'attached', 'floor')
UNION ALL SELECT * FROM bench.target('rapidpro', 'the floor with the record: the trigger never called plus the blocked events by a plain INSERT vs unattached (reference)',
                                     'floor + record', 'unattached')
UNION ALL SELECT * FROM bench.target('rapidpro', 'attached vs the floor with the record (reference)', 'attached', 'floor + record');

-- rapidpro_update: the status UPDATE courier makes as it hands messages to
-- the provider (queued -> wired, sent_on and modified_on set) over :broadcast
-- messages of the same shape, attached vs unattached, and vs the table with
-- a BEFORE UPDATE row trigger that never fires (the floor of any BEFORE
-- UPDATE row trigger: PostgreSQL fetches each old row for it). It makes
-- nothing sendable. Every table starts each run with the same rows: the
-- stopped contacts' (every tenth) already failed, as the attached table
-- marks them, so that the UPDATE changes the same 90% of the rows in each.
CREATE TRIGGER never BEFORE UPDATE ON bench.rp_msgs_n FOR EACH ROW WHEN (NEW.direction = 'X')
    EXECUTE FUNCTION bench.never_called();
INSERT INTO bench.variants (workload, variant, ord, reset, query)
SELECT 'rapidpro_update', v, o,
       ARRAY[format('TRUNCATE %s, optout.events', t),
             format($q$INSERT INTO %s
                       SELECT i, md5(i::text)::uuid, 1, 1, c, c, 1, NULL, NULL, NULL,
                              'Flash sale: 20%% off today only. Reply STOP to opt out.', NULL, NULL, NULL, 'eng',
                              NULL, t, t, NULL, 'T', 'O', CASE WHEN c %% 10 = 0 THEN 'F' ELSE 'Q' END, 'V', false,
                              1, false, 0, NULL, CASE WHEN c %% 10 = 0 THEN 'C' END, NULL, NULL, NULL
                         FROM generate_series(1, %s) AS i,
                              LATERAL (SELECT 1 + (i - 1) %% %s AS c, timestamptz '2026-03-01' AS t) AS x$q$,
                    t, :broadcast, :contacts),
             format('VACUUM ANALYZE %s', t)],
       format($q$UPDATE %s SET status = 'W', sent_on = now(), modified_on = now() WHERE status = 'Q'$q$, t)
  FROM (VALUES ('attached', 1, 'rapidpro.msgs_msg'), ('unattached', 2, 'bench.rp_msgs_b'),
               ('trigger floor', 3, 'bench.rp_msgs_n')) AS x (v, o, t);
SELECT s FROM bench.schedule('rapidpro_update', :runs) s \gexec
SELECT (SELECT count(*) FROM rapidpro.msgs_msg WHERE status = 'W') AS attached_wired,
       (SELECT count(*) FROM bench.rp_msgs_b WHERE status = 'W') AS unattached_wired,
       (SELECT count(*) FROM bench.rp_msgs_n WHERE status = 'W') AS floor_wired;
SELECT * FROM bench.medians('rapidpro_update');
SELECT * FROM bench.target('rapidpro_update', 'UPDATE queued -> wired on RapidPro''s msgs_msg, nothing made sendable, attached vs unattached',
                           'attached', 'unattached', '<=', 1.05)
UNION ALL SELECT * FROM bench.target('rapidpro_update', 'the floor: a BEFORE UPDATE trigger that never fires vs unattached (reference)',
                                     'trigger floor', 'unattached')
UNION ALL SELECT * FROM bench.target('rapidpro_update', 'the same, attached vs a BEFORE UPDATE trigger that never fires (reference)',
                                     'attached', 'trigger floor');

\o /dev/null
-- Every table attach_rapidpro() attached, so that the later workloads do not
-- fail queued rows in msgs_msg or move these contacts.
SELECT optout.detach(tbl) FROM (SELECT DISTINCT tbl FROM optout.attached
                                 WHERE tbl::oid IN (SELECT c.oid FROM pg_class c
                                                     WHERE c.relnamespace = 'rapidpro'::regnamespace)) AS a;
\o
TRUNCATE optout.stops, optout.events;
