-- bench/run-concurrent.sh, the "by hand" variant: the unattached schema of
-- test/scripts/concurrency/schema.sql made compliant in the plainest way a
-- platform could, without optout: PL/pgSQL triggers that do the work the
-- rules require and nothing more. An inbound STOP, START or HELP (exact
-- words, any case, trimmed: no classifier) is recorded and acted on in the
-- transaction that stores it; a send to a stopped contact is stored failed
-- and recorded; a provider's stop_contact event stops the contact; an
-- agent's stop and start are recorded. No contact locks (a STOP racing a
-- send can let the send through), no ledger, no evidence beyond one row an
-- event: a floor for what optout's enforcement costs, not a design to copy.
CREATE TABLE compliance_log (
    id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), contact_id integer NOT NULL,
    kind text NOT NULL, source text NOT NULL, body text);
CREATE INDEX ON compliance_log (contact_id, id);

-- The platform's own stop and start (as app_bare.sql), recorded.
CREATE FUNCTION byhand_stop(c integer, src text, body text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO compliance_log (contact_id, kind, source, body) VALUES (c, 'stop', src, body);
    UPDATE contacts_contact SET status = 'S', modified_on = now() WHERE id = c AND status <> 'S';
    DELETE FROM contacts_contactgroup_contacts
     WHERE contact_id = c AND contactgroup_id IN (SELECT id FROM contacts_contactgroup WHERE group_type IN ('M', 'Q'));
    UPDATE msgs_msg SET status = 'F', failed_reason = 'C' WHERE contact_id = c AND direction = 'O' AND status IN ('I', 'Q', 'E');
    RETURN true;
END $$;
CREATE FUNCTION byhand_start(c integer, src text, body text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    UPDATE contacts_contact SET status = 'A', modified_on = now() WHERE id = c AND status = 'S';
    IF FOUND THEN
        INSERT INTO compliance_log (contact_id, kind, source, body) VALUES (c, 'start', src, body);
    END IF;
    RETURN true;
END $$;
CREATE FUNCTION app_stop(c integer) RETURNS boolean LANGUAGE sql AS $$ SELECT byhand_stop(c, 'agent', NULL) $$;
CREATE FUNCTION app_start(c integer) RETURNS boolean LANGUAGE sql AS $$ SELECT byhand_start(c, 'agent', NULL) $$;

-- Inbound keywords.
CREATE FUNCTION byhand_inbound() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    k text := upper(btrim(NEW.text));
BEGIN
    IF k IN ('STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT') THEN
        PERFORM byhand_stop(NEW.contact_id, 'keyword', NEW.text);
    ELSIF k IN ('START', 'UNSTOP') THEN
        PERFORM byhand_start(NEW.contact_id, 'keyword', NEW.text);
    ELSE
        INSERT INTO compliance_log (contact_id, kind, source, body) VALUES (NEW.contact_id, 'help', 'keyword', NEW.text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER byhand_inbound AFTER INSERT ON msgs_msg FOR EACH ROW
    WHEN (NEW.direction = 'I' AND upper(btrim(NEW.text)) IN ('STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT',
                                                           'START', 'UNSTOP', 'HELP', 'INFO'))
    EXECUTE FUNCTION byhand_inbound();

-- Sends: a row queued for a stopped contact is stored failed.
CREATE FUNCTION byhand_outbound() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM contacts_contact WHERE id = NEW.contact_id AND status = 'S') THEN
        NEW.status := 'F';
        NEW.failed_reason := 'C';
        INSERT INTO compliance_log (contact_id, kind, source) VALUES (NEW.contact_id, 'blocked', 'send');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER byhand_outbound BEFORE INSERT OR UPDATE OF contact_id, status ON msgs_msg FOR EACH ROW
    WHEN (NEW.direction = 'O' AND NEW.status IN ('I', 'Q', 'E'))
    EXECUTE FUNCTION byhand_outbound();

-- A provider's stop.
CREATE FUNCTION byhand_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM byhand_stop(NEW.contact_id, 'provider', NULL);
    RETURN NULL;
END $$;
CREATE TRIGGER byhand_event AFTER INSERT ON channels_channelevent FOR EACH ROW
    WHEN (NEW.event_type = 'stop_contact') EXECUTE FUNCTION byhand_event();
