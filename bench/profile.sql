-- bench/profile.sh: one database of the profile, built by a normal server
-- before the measured statements run in single-user mode. Psql variables:
--   :rows, :contacts   messages per file, contacts
--   :kind              out: a message table with attach_outbound (mark),
--                      10% of the contacts stopped, as "outbound" of run.sh;
--                      in: the table with attach_inbound and attach_outbound,
--                      contacts and groups attached, an empty ledger, as
--                      "inbound" of run.sh
--   :attached          0: the same schema without optout
--   :datadir           where the COPY files go
-- Only calls the API has had since 0.2.0, so that an older build can be
-- profiled with the same script.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE TABLE msgs (id bigint PRIMARY KEY, contact_id integer NOT NULL, channel_id integer,
                   direction char(1) NOT NULL, status char(1) NOT NULL, failed_reason char(1),
                   sent_on timestamptz, text text, created_on timestamptz NOT NULL);
CREATE INDEX ON msgs (contact_id);
CREATE TABLE contacts (id integer PRIMARY KEY, status char(1) NOT NULL, modified_on timestamptz);
CREATE TABLE members (contact_id integer NOT NULL, group_id integer NOT NULL, PRIMARY KEY (contact_id, group_id));
CREATE INDEX ON members (group_id);
INSERT INTO contacts SELECT i, 'A', '2025-06-01' FROM generate_series(1, :contacts) AS i;
INSERT INTO members SELECT c, g + 10 * (c % 5) FROM generate_series(1, :contacts) AS c, generate_series(1, 10) AS g;
-- History: per contact one sent message and one still queued (a stop fails it).
INSERT INTO msgs
SELECT -2 * c + k, c, 1 + c % 3, 'O', CASE k WHEN 0 THEN 'S' ELSE 'Q' END, NULL,
       CASE k WHEN 0 THEN timestamptz '2025-12-01' END,
       'Your appointment is confirmed. Reply STOP to opt out.', timestamptz '2025-12-01'
  FROM generate_series(1, :contacts) AS c, generate_series(0, 1) AS k;

-- The bodies of bench/run.sh (conversation, keyword_message, contact_of).
\ir bodies.sql

-- The files: outbound sends (every contact), inbound traffic (5% keyword
-- messages), the same traffic with no keyword message.
SELECT format('COPY (SELECT i, contact_of(i, %s), 1 + i %% 3, ''O'', ''Q'', NULL, NULL, '
              '''Hi! Your appointment is on Tuesday at 10:00. Reply STOP to opt out.'', '
              'timestamptz ''2026-01-01'' + i * interval ''1 second'' FROM generate_series(1, %s) AS i) TO %L',
              :contacts, :rows, :'datadir' || '/outbound.copy') AS q \gset
:q;
SELECT format('COPY (SELECT i, contact_of(i, %s), 1 + i %% 3, ''I'', ''H'', NULL, NULL, '
              'CASE WHEN i %% 20 = 0 THEN keyword_message(i / 20) ELSE conversation(i) END, '
              'timestamptz ''2026-01-01'' + i * interval ''1 second'' FROM generate_series(1, %s) AS i) TO %L',
              :contacts, :rows, :'datadir' || '/inbound.copy') AS q \gset
:q;
SELECT format('COPY (SELECT i, contact_of(i, %s), 1 + i %% 3, ''I'', ''H'', NULL, NULL, conversation(i), '
              'timestamptz ''2026-01-01'' + i * interval ''1 second'' FROM generate_series(1, %s) AS i) TO %L',
              :contacts, :rows, :'datadir' || '/plain.copy') AS q \gset
:q;

-- "out": the history messages of the stopped contacts (every tenth) failed,
-- with or without optout, so that both databases start from the same rows
-- and the same free space in the table (optout.stop() below, which would
-- fail them, finds them failed already): a COPY or a broadcast then fills
-- the same pages, and the UPDATE changes the same rows.
SELECT :'kind' = 'in' AS inbound \gset
\if :inbound
\else
UPDATE msgs SET status = 'F', failed_reason = 'C', sent_on = NULL WHERE status = 'Q' AND contact_id % 10 = 0;
\endif

\if :attached
CREATE EXTENSION optout;
\if :inbound
SELECT optout.attach_contacts('contacts', 'id', 'status', 'S', 'A', touch_column => 'modified_on') IS NOT NULL AS attached;
SELECT optout.attach_groups('members', 'contact_id', 'group_id', stopped_group => '0') IS NOT NULL AS attached;
SELECT optout.attach_inbound('msgs', 'text', 'contact_id', 'channel_id', row_filter => '{"direction": "I"}') IS NOT NULL AS attached;
\endif
SELECT optout.attach_outbound('msgs', 'contact_id', 'channel_id', on_blocked => 'mark',
                              mark => '{"status": "F", "failed_reason": "C", "sent_on": null}',
                              queued => '{"status": ["I", "Q", "E"]}', row_filter => '{"direction": "O"}') IS NOT NULL AS attached;
\if :inbound
\else
SELECT count(*) FILTER (WHERE optout.stop(c::text)) AS stopped FROM generate_series(10, :contacts, 10) AS c;
TRUNCATE optout.events;
\endif
\endif
VACUUM ANALYZE;
CHECKPOINT;
