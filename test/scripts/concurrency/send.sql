-- A single outbound message.
\set c random_zipfian(1, :contacts, 1.1)
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1 + :c % 2, 7, :c, 'news', 'O', 'Q');
