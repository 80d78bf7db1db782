-- The platform's own stop and start (mailroom's): status, manual and smart
-- groups, queued messages failed. The unattached schema's app_stop/app_start.
CREATE FUNCTION app_stop(c integer) RETURNS boolean LANGUAGE sql AS $$
    UPDATE contacts_contact SET status = 'S', modified_on = now() WHERE id = c;
    DELETE FROM contacts_contactgroup_contacts
     WHERE contact_id = c AND contactgroup_id IN (SELECT id FROM contacts_contactgroup WHERE group_type IN ('M', 'Q'));
    UPDATE msgs_msg SET status = 'F', failed_reason = 'C' WHERE contact_id = c AND direction = 'O' AND status IN ('I', 'Q', 'E');
    SELECT true;
$$;
CREATE FUNCTION app_start(c integer) RETURNS boolean LANGUAGE sql AS $$
    UPDATE contacts_contact SET status = 'A', modified_on = now() WHERE id = c AND status = 'S';
    SELECT true;
$$;
