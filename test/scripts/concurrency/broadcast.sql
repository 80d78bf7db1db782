-- A broadcast: INSERT ... SELECT to 20 to 300 contacts (past 256, a send
-- takes optout's database-wide lock).
\set a random(1, :contacts - 300)
\set n random(20, 300)
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status)
SELECT org_id, 7, id, 'broadcast', 'O', 'Q' FROM contacts_contact WHERE id BETWEEN :a AND :a + :n;
