-- A partitioned message table (by month, as large platforms do): enforcement
-- holds on every partition, including partitions created after the attach,
-- whose column numbers differ from the parent's.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE TABLE pmsgs (id bigserial, contact int, direction text, body text, status text DEFAULT 'Q',
                    created_on date NOT NULL) PARTITION BY RANGE (created_on);
CREATE TABLE pmsgs_2026_10 PARTITION OF pmsgs FOR VALUES FROM ('2026-10-01') TO ('2026-11-01');
SELECT optout.attach_inbound('pmsgs', 'body', 'contact', row_filter => '{"direction": "I"}') > 0 AS inbound,
       optout.attach_outbound('pmsgs', 'contact', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}', row_filter => '{"direction": "O"}') > 0 AS outbound;
-- After the attach: a partition made with PARTITION OF, and one built apart
-- with its columns in another order and a dropped column, then attached.
CREATE TABLE pmsgs_2026_11 PARTITION OF pmsgs FOR VALUES FROM ('2026-11-01') TO ('2026-12-01');
CREATE TABLE pmsgs_2026_12 (junk int, created_on date NOT NULL, status text DEFAULT 'Q', body text, direction text,
                            contact int, id bigint NOT NULL DEFAULT nextval('pmsgs_id_seq'));
ALTER TABLE pmsgs_2026_12 DROP COLUMN junk;
ALTER TABLE pmsgs ATTACH PARTITION pmsgs_2026_12 FOR VALUES FROM ('2026-12-01') TO ('2027-01-01');
SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE t.tgname LIKE 'optout_%' ORDER BY c.relname, t.tgname;

-- Messages queued in every month, then a STOP arrives in October's partition.
INSERT INTO pmsgs (contact, direction, body, created_on) VALUES
    (1, 'O', 'oct', '2026-10-15'), (1, 'O', 'nov', '2026-11-15'), (1, 'O', 'dec', '2026-12-15'), (2, 'O', 'dec', '2026-12-15');
INSERT INTO pmsgs (contact, direction, body, created_on) VALUES (1, 'I', 'STOP', '2026-10-20');
SELECT tableoid::regclass AS partition, contact, body, status FROM pmsgs WHERE direction = 'O' ORDER BY id;

-- Later sends are marked in every partition, through the parent or directly.
INSERT INTO pmsgs (contact, direction, body, created_on) VALUES (1, 'O', 'via parent', '2026-12-20');
INSERT INTO pmsgs_2026_12 (contact, direction, body, created_on) VALUES (1, 'O', 'direct', '2026-12-21');
INSERT INTO pmsgs_2026_11 (contact, direction, body, created_on) VALUES (1, 'O', 'direct', '2026-11-21');
COPY pmsgs (contact, direction, body, created_on) FROM stdin;
1	O	copied	2026-12-22
2	O	copied	2026-12-22
\.
SELECT tableoid::regclass AS partition, contact, body, status FROM pmsgs
 WHERE direction = 'O' AND body IN ('via parent', 'direct', 'copied') ORDER BY id;
-- A STOP inserted directly into the late partition works too, and START lifts.
INSERT INTO pmsgs_2026_12 (contact, direction, body, created_on) VALUES (2, 'I', 'Stop please', '2026-12-23');
INSERT INTO pmsgs_2026_12 (contact, direction, body, created_on) VALUES (1, 'I', 'START', '2026-12-24');
SELECT contact, optout.is_stopped(contact::text) AS stopped FROM generate_series(1, 2) contact;

-- 1 MB bodies through the trigger: a long run of STOPs is an opt-out, long
-- prose is not; neither errors.
INSERT INTO pmsgs (contact, direction, body, created_on) VALUES
    (3, 'I', repeat('stop ', 210000), '2026-11-02'), (4, 'I', repeat('see you at the office tomorrow ', 35000), '2026-11-02');
SELECT contact, optout.is_stopped(contact::text) AS stopped FROM generate_series(3, 4) contact;

-- Detaching the parent removes the triggers of every partition.
SELECT optout.detach('pmsgs') AS detached;
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE 'optout_%';
DROP TABLE pmsgs;
DROP EXTENSION optout;
