-- An inbound message (a keyword or ordinary text) handled as mailroom does:
-- stored, the contact seen, a reply queued; one transaction.
\set c random_zipfian(1, :contacts, 1.1)
\set k random(1, 10)
BEGIN;
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status)
SELECT org_id, 7, id, (ARRAY['STOP', 'START', 'HELP', 'please stop texting me', 'Stop', 'hello', 'thanks', 'what time?', 'ok', 'yes'])[:k],
       'I', 'P' FROM contacts_contact WHERE id = :c;
UPDATE contacts_contact SET last_seen_on = now(), modified_on = now() WHERE id = :c;
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1 + :c % 2, 7, :c, 'reply', 'O', 'Q');
COMMIT;
