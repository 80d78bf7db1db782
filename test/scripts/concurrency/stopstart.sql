-- A stop or a start by an agent, and a provider's stop_contact event.
\set c random_zipfian(1, :contacts, 1.1)
\set k random(1, 3)
SELECT CASE WHEN :k = 1 THEN app_stop(:c) WHEN :k = 2 THEN app_start(:c) END;
INSERT INTO channels_channelevent (org_id, channel_id, contact_id, event_type)
SELECT org_id, 7, id, CASE WHEN :k = 3 THEN 'stop_contact' ELSE 'new_conversation' END FROM contacts_contact WHERE id = :c;
