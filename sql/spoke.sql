-- Spoke drop-in: Spoke's real schema, from its knex migrations
-- (github.com/StateVoicesNational/Spoke, commit 715ab464c575560816039b54a4831f714b27a493,
-- migrations/ 20190207220000_init_db.js through 20240503180901, as PostgreSQL
-- runs them: knex's increments is serial, timestamp is timestamptz, enu is
-- text with a CHECK, string is varchar(255), float is real), the tables optout
-- touches and the ones they reference, written here as our own DDL; driven by
-- the statements Spoke itself runs (knex's SQL for them, named where they come
-- from), as the application role that owns the tables.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE ROLE regress_spoke_app NOLOGIN;
CREATE SCHEMA spoke AUTHORIZATION regress_spoke_app;
SET ROLE regress_spoke_app;
SET search_path = spoke;

CREATE TABLE "user" (
    id serial PRIMARY KEY, auth0_id text NOT NULL, first_name text NOT NULL, last_name text NOT NULL,
    cell text NOT NULL, email text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), assigned_cell text,
    is_superadmin boolean, terms boolean DEFAULT false,
    alias varchar(255) DEFAULT NULL,                                   -- 20190916145342_add_user_alias
    extra jsonb DEFAULT NULL);                                         -- 20200623101608_profile_fields
CREATE TABLE organization (
    id serial PRIMARY KEY, uuid text, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
    features text DEFAULT '', texting_hours_enforced boolean DEFAULT false, texting_hours_start integer DEFAULT 9,
    texting_hours_end integer DEFAULT 21);
CREATE TABLE campaign (
    id serial PRIMARY KEY, organization_id integer NOT NULL REFERENCES organization (id),
    title text NOT NULL DEFAULT '', description text NOT NULL DEFAULT '', is_started boolean,
    due_by timestamptz DEFAULT NULL, created_at timestamptz NOT NULL DEFAULT now(), is_archived boolean,
    use_dynamic_assignment boolean, logo_image_url text, intro_html text, primary_color text,
    override_organization_texting_hours boolean DEFAULT false, texting_hours_enforced boolean DEFAULT true,
    texting_hours_start integer DEFAULT 9, texting_hours_end integer DEFAULT 21, timezone text DEFAULT 'US/Eastern',
    creator_id integer DEFAULT NULL REFERENCES "user" (id),
    messageservice_sid varchar(255) DEFAULT NULL, use_own_messaging_service boolean DEFAULT false,  -- 20200422002041
    join_token text DEFAULT NULL, batch_size integer DEFAULT NULL, features json DEFAULT NULL,      -- 20200505220742
    response_window real DEFAULT NULL);                                                              -- 20200810202726
CREATE INDEX campaign_organization_id_index ON campaign (organization_id);
CREATE INDEX campaign_creator_id_index ON campaign (creator_id);
CREATE TABLE assignment (
    id serial PRIMARY KEY, user_id integer NOT NULL REFERENCES "user" (id),
    campaign_id integer NOT NULL REFERENCES campaign (id), created_at timestamptz NOT NULL DEFAULT now(),
    max_contacts integer);
CREATE INDEX assignment_user_id_index ON assignment (user_id);
CREATE INDEX assignment_campaign_id_index ON assignment (campaign_id);
CREATE TABLE campaign_contact (
    id serial PRIMARY KEY, campaign_id integer NOT NULL REFERENCES campaign (id),
    assignment_id integer REFERENCES assignment (id), external_id text NOT NULL DEFAULT '',
    first_name text NOT NULL DEFAULT '', last_name text NOT NULL DEFAULT '', cell text NOT NULL,
    zip text NOT NULL DEFAULT '', custom_fields text NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    message_status text NOT NULL DEFAULT 'needsMessage'
        CHECK (message_status IN ('needsMessage', 'needsResponse', 'convo', 'messaged', 'closed', 'UPDATING')),
    is_opted_out boolean DEFAULT false, timezone_offset text DEFAULT '',
    error_code integer DEFAULT NULL);                                  -- 20191108164924_message_errors
CREATE INDEX campaign_contact_cell_index ON campaign_contact (cell);
CREATE INDEX campaign_contact_campaign_id_assignment_id_index ON campaign_contact (campaign_id, assignment_id);
CREATE INDEX campaign_contact_assignment_id_timezone_offset_index ON campaign_contact (assignment_id, timezone_offset);
-- 20240503180901_campaigncontactsupdatedat
CREATE FUNCTION on_update_timestamp() RETURNS trigger AS $$
  BEGIN
    NEW.updated_at = now();
    RETURN NEW;
  END;
$$ language 'plpgsql';
CREATE TRIGGER campaign_contact_updated_at BEFORE UPDATE ON campaign_contact
    FOR EACH ROW EXECUTE PROCEDURE on_update_timestamp();
CREATE TABLE opt_out (
    id serial PRIMARY KEY, cell text NOT NULL,
    assignment_id integer REFERENCES assignment (id),                  -- nullable: 20200826173603
    organization_id integer NOT NULL REFERENCES organization (id), reason_code text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX opt_out_cell_index ON opt_out (cell);
CREATE INDEX opt_out_assignment_id_index ON opt_out (assignment_id);
CREATE INDEX opt_out_organization_id_index ON opt_out (organization_id);
CREATE TABLE message (
    id serial PRIMARY KEY, user_number text NOT NULL DEFAULT '', user_id integer REFERENCES "user" (id),
    contact_number text NOT NULL, is_from_contact boolean NOT NULL, text text NOT NULL DEFAULT '',
    assignment_id integer REFERENCES assignment (id),                  -- nullable: 20191217125726
    service text NOT NULL DEFAULT '', service_id text NOT NULL DEFAULT '',
    send_status text NOT NULL
        CHECK (send_status IN ('QUEUED', 'SENDING', 'SENT', 'DELIVERED', 'ERROR', 'PAUSED', 'NOT_ATTEMPTED')),
    created_at timestamptz NOT NULL DEFAULT now(), queued_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz NOT NULL DEFAULT now(), service_response_at timestamptz NOT NULL DEFAULT now(),
    send_before timestamptz,
    error_code integer DEFAULT NULL,                                   -- 20191108164924 (service_response dropped)
    campaign_contact_id integer REFERENCES campaign_contact (id), messageservice_sid text,  -- 20191217125726
    media jsonb DEFAULT NULL);                                         -- 20201001164842_message_media
CREATE INDEX message_send_status_index ON message (send_status);
CREATE INDEX message_service_id_index ON message (service_id);
CREATE INDEX cell_messageservice_sid_idx ON message (contact_number, messageservice_sid);
CREATE INDEX message_campaign_contact_id_index ON message (campaign_contact_id);
CREATE INDEX cell_msgsvc_user_number_idx ON message (contact_number, messageservice_sid, user_number);

-- Two organizations; campaigns 1 and 2 in the first, 3 in the second; one
-- number in all three, as three campaign contacts.
INSERT INTO "user" (auth0_id, first_name, last_name, cell, email) VALUES ('a0', 'Tex', 'Ter', '+15550109000', 't@x');
INSERT INTO organization (name) VALUES ('Org A'), ('Org B');
INSERT INTO campaign (organization_id, title, is_archived) VALUES (1, 'one', false), (1, 'two', false), (2, 'three', false);
INSERT INTO assignment (user_id, campaign_id) VALUES (1, 1), (1, 2), (1, 3);
INSERT INTO campaign_contact (campaign_id, assignment_id, cell, first_name) VALUES
    (1, 1, '+15550100000', 'Ann'), (2, 2, '+15550100000', 'Ann'), (3, 3, '+15550100000', 'Ann'),
    (1, 1, '+15550100001', 'Bob'), (1, 1, '+15550100003', 'Cy');
RESET search_path;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 1. Wired in one call.
SELECT id, tbl, kind, contact_column, contact_format, organization_column, row_filter, trigger_name
  FROM optout.attach_spoke('spoke');

-- ---------------------------------------------------------------------------
-- 2. A message queued to the number in campaign 2 (org A) and in campaign 3
--    (org B), then the contact texts STOP in campaign 1.
SET ROLE regress_spoke_app;
-- sendRawMessage (src/server/api/mutations/sendMessage.js) through Message.save:
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "messageservice_sid", "queued_at", "send_before", "send_status", "service", "text", "user_id", "user_number") values (2, '+15550100000', false, NULL, now(), NULL, 'QUEUED', 'twilio', 'Hi from two', 1, '') returning "id";
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "messageservice_sid", "queued_at", "send_before", "send_status", "service", "text", "user_id", "user_number") values (3, '+15550100000', false, NULL, now(), NULL, 'QUEUED', 'twilio', 'Hi from three', 1, '') returning "id";
-- The inbound message (twilio's convertMessagePartsToMessage, saved by
-- cacheableData.message.save with the campaign contact it matched):
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "created_at", "error_code", "is_from_contact", "media", "messageservice_sid", "send_status", "service", "service_id", "text", "user_id", "user_number") values (1, '+15550100000', now(), NULL, true, NULL, 'MG1', 'DELIVERED', 'twilio', 'SM1', 'STOP', NULL, '+15550109999') returning "id";
-- Spoke's auto-optout reply (sendRawMessage with user {}: no user_id) is
-- the stop's one confirmation; a second is refused.
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "messageservice_sid", "queued_at", "send_before", "send_status", "service", "text", "user_number") values (1, '+15550100000', false, NULL, now(), NULL, 'QUEUED', 'twilio', 'I''m opting you out of texts immediately. Have a great day.', '') returning "id";
\set VERBOSITY terse
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "messageservice_sid", "queued_at", "send_before", "send_status", "service", "text", "user_number") values (1, '+15550100000', false, NULL, now(), NULL, 'QUEUED', 'twilio', 'I''m opting you out of texts immediately. Have a great day.', '') returning "id";
\set VERBOSITY default
RESET ROLE;
-- One stop for the number in org A, from the keyword.
SELECT contact, channel, source, keyword FROM optout.stops ORDER BY contact;
-- Spoke's own opt-out row, written by optout.
SELECT cell, assignment_id, organization_id, reason_code FROM spoke.opt_out ORDER BY id;
-- Every campaign contact with the number in org A is opted out; org B's is not.
SELECT id, campaign_id, cell, is_opted_out FROM spoke.campaign_contact ORDER BY id;
-- The message queued in org A is failed; org B's is still queued.
SELECT id, campaign_contact_id, send_status, error_code, text FROM spoke.message WHERE NOT is_from_contact ORDER BY id;
SELECT kind, contact, source, keyword, table_name, detail - 'seconds_after_stop' AS detail FROM optout.events ORDER BY id;

-- ---------------------------------------------------------------------------
-- 3. Sends after the stop: to the number in another campaign of org A,
--    refused; in org B, accepted. (Terse errors from here: a refusal's
--    DETAIL has the time of the stop.)
\set VERBOSITY terse
SET ROLE regress_spoke_app;
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "messageservice_sid", "queued_at", "send_before", "send_status", "service", "text", "user_id", "user_number") values (2, '+15550100000', false, NULL, now(), NULL, 'QUEUED', 'twilio', 'Hi again', 1, '') returning "id";
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "messageservice_sid", "queued_at", "send_before", "send_status", "service", "text", "user_id", "user_number") values (3, '+15550100000', false, NULL, now(), NULL, 'SENDING', 'twilio', 'Hi from org B', 1, '') returning "id";
-- Requeueing the failed message (an UPDATE that makes it sendable) is refused too.
update "spoke"."message" set "send_status" = 'QUEUED', "error_code" = NULL where "id" = 1;
-- Spoke's twilio send of org B's message (service-vendors/twilio: the row's status):
update "spoke"."message" set "send_status" = 'SENT', "service" = 'twilio', "sent_at" = now() where "id" = 7;
-- A texter's UI cannot clear is_opted_out behind the stop.
update "spoke"."campaign_contact" set "is_opted_out" = false where "id" = 2;
select "id", "is_opted_out" from "spoke"."campaign_contact" where "id" = 2;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 4. Spoke's own opt-out (cacheableData.optOut.save: the row, then
--    updateIsOptedOuts): honoured as a stop, on record with source 'platform'.
SET ROLE regress_spoke_app;
insert into "spoke"."opt_out" ("assignment_id", "cell", "organization_id", "reason_code") values (1, '+15550100001', 1, 'texter');
update "spoke"."campaign_contact" set "is_opted_out" = true where "id" in (select "campaign_contact"."id" from "spoke"."campaign_contact" inner join "spoke"."campaign" on "campaign_contact"."campaign_id" = "campaign"."id" where "campaign"."is_archived" = false and "campaign"."organization_id" = 1 and "campaign_contact"."cell" = '+15550100001') and "is_opted_out" = false;
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "messageservice_sid", "queued_at", "send_before", "send_status", "service", "text", "user_id", "user_number") values (4, '+15550100001', false, NULL, now(), NULL, 'QUEUED', 'twilio', 'Hi Bob', 1, '') returning "id";
-- A platform stop allows its one confirmation too.
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "messageservice_sid", "queued_at", "send_before", "send_status", "service", "text", "user_number") values (4, '+15550100001', false, NULL, now(), NULL, 'QUEUED', 'twilio', 'You are opted out.', '') returning "id";
RESET ROLE;
SELECT contact, source, keyword FROM optout.stops ORDER BY contact;
SELECT kind, contact, source, table_name, detail->>'stop_source' AS stop_source FROM optout.events WHERE contact = '1:+15550100001' ORDER BY id;
-- Spoke's row only: optout wrote no second one.
SELECT cell, assignment_id, organization_id, reason_code FROM spoke.opt_out ORDER BY id;
SELECT id, is_opted_out FROM spoke.campaign_contact WHERE cell = '+15550100001';
-- Spoke's auto-optout after a keyword STOP writes its own row too: the stop
-- is there already, so nothing new is recorded.
SET ROLE regress_spoke_app;
insert into "spoke"."opt_out" ("assignment_id", "cell", "organization_id", "reason_code") values (1, '+15550100000', 1, 'autoOptOut');
RESET ROLE;
SELECT count(*) AS events_for_it FROM optout.events WHERE contact = '1:+15550100000' AND source = 'platform';

-- ---------------------------------------------------------------------------
-- 5. A campaign's contact upload and bulk assignment (workers/jobs.js) with
--    an opted-out number: the new row starts opted out; Spoke's own
--    completeContactLoad then drops it (it reads opt_out, which optout keeps);
--    a send to a contact assigned in bulk anyway is refused.
SET ROLE regress_spoke_app;
INSERT INTO spoke.campaign (organization_id, title, is_archived) VALUES (1, 'four', false);
INSERT INTO spoke.assignment (user_id, campaign_id) VALUES (1, 4);
insert into "spoke"."campaign_contact" ("campaign_id", "cell", "custom_fields", "external_id", "first_name", "last_name", "zip") values (4, '+15550100000', '{}', '', 'Ann', '', ''), (4, '+15550100002', '{}', '', 'Dee', '', '');
select "id", "cell", "is_opted_out" from "spoke"."campaign_contact" where "campaign_id" = 4 order by "id";
-- (bulk assignment first, as a campaign already loaded would have it)
update "spoke"."campaign_contact" set "assignment_id" = 4 where "id" in (select "id" from "spoke"."campaign_contact" where "assignment_id" is null and "campaign_id" = 4 limit 100);
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "messageservice_sid", "queued_at", "send_before", "send_status", "service", "text", "user_id", "user_number") values (6, '+15550100000', false, NULL, now(), NULL, 'QUEUED', 'twilio', 'Hi Ann, campaign four', 1, '') returning "id";
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "messageservice_sid", "queued_at", "send_before", "send_status", "service", "text", "user_id", "user_number") values (7, '+15550100002', false, NULL, now(), NULL, 'QUEUED', 'twilio', 'Hi Dee', 1, '') returning "id";
-- completeContactLoad:
delete from "spoke"."campaign_contact" where "cell" in (select "cell" from "spoke"."opt_out" where "organization_id" = 1) and "campaign_id" = 4;
select "id", "cell", "is_opted_out" from "spoke"."campaign_contact" where "campaign_id" = 4 order by "id";
RESET ROLE;
SELECT kind, contact, source, table_name, detail FROM optout.events WHERE kind = 'status_kept' ORDER BY id;

-- ---------------------------------------------------------------------------
-- 6. START lifts the stop in org A: the opt_out rows go (Spoke's own
--    included), is_opted_out is false again, sends go out.
SET ROLE regress_spoke_app;
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "created_at", "error_code", "is_from_contact", "media", "messageservice_sid", "send_status", "service", "service_id", "text", "user_id", "user_number") values (2, '+15550100000', now(), NULL, true, NULL, 'MG1', 'DELIVERED', 'twilio', 'SM2', 'START', NULL, '+15550109999') returning "id";
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "messageservice_sid", "queued_at", "send_before", "send_status", "service", "text", "user_id", "user_number") values (1, '+15550100000', false, NULL, now(), NULL, 'QUEUED', 'twilio', 'Welcome back', 1, '') returning "id";
RESET ROLE;
SELECT contact, source FROM optout.stops ORDER BY contact;
SELECT cell, organization_id, reason_code FROM spoke.opt_out ORDER BY id;
SELECT id, campaign_id, cell, is_opted_out FROM spoke.campaign_contact ORDER BY id;
SELECT kind, contact, source, keyword, detail FROM optout.events WHERE kind = 'start' ORDER BY id;
-- A stop and a start by hand, with the key optout.contact_key() gives.
SELECT optout.contact_key('+1 (555) 010-0000', '2') AS key;
SELECT optout.stop(optout.contact_key('+1 (555) 010-0000', '2'), reason => 'support ticket 12') AS stopped;
SELECT cell, organization_id, reason_code FROM spoke.opt_out ORDER BY id;
SELECT id, is_opted_out FROM spoke.campaign_contact WHERE campaign_id = 3;
SELECT optout.start('2:+15550100000', reason => 'support ticket 13') AS started;
SELECT count(*) AS org_b_rows FROM spoke.opt_out WHERE organization_id = 2;

-- ---------------------------------------------------------------------------
-- 7. Bad input. Phone numbers in other formats are normalised (documented);
--    anything else is an error.
\set VERBOSITY default
SELECT p, optout.phone_key(p) FROM (VALUES ('+1 (555) 010-0000'), ('15550100000'), ('555.010.0000'),
                                           ('+44 20 7946 0958'), (NULL)) v(p);
SELECT optout.phone_key('555-0100');
SELECT optout.phone_key('call me');
SELECT optout.phone_key('+1234567890123456');
SELECT optout.contact_key(NULL, '1');
SELECT optout.contact_key('+15550100000', NULL);
SELECT optout.contact_key('+15550100000', 'a:b');
SET ROLE regress_spoke_app;
-- A STOP from a number written another way is the same contact's.
\set VERBOSITY terse
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "created_at", "error_code", "is_from_contact", "media", "messageservice_sid", "send_status", "service", "service_id", "text", "user_id", "user_number") values (5, '15550100003', now(), NULL, true, NULL, 'MG1', 'DELIVERED', 'twilio', 'SM3', 'stop', NULL, '+15550109999') returning "id";
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "send_status", "text", "user_id") values (5, '+1 (555) 010-0003', false, 'QUEUED', 'Hi Cy', 1);
\set VERBOSITY default
-- A send with no number, a number optout cannot read, no campaign contact,
-- an unknown campaign contact (so no organization): errors, nothing written.
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "send_status", "text", "user_id") values (5, NULL, false, 'QUEUED', 'Hi', 1);
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "send_status", "text", "user_id") values (5, 'not a number', false, 'QUEUED', 'Hi', 1);
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "send_status", "text", "user_id") values (NULL, '+15550100003', false, 'QUEUED', 'Hi', 1);
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "send_status", "text", "user_id") values (999, '+15550100003', false, 'QUEUED', 'Hi', 1);
-- An inbound STOP that matched no campaign contact (Spoke saves it with no
-- campaign_contact_id): it cannot be placed in an organization, so it goes
-- to the review queue; so does an opt_out row with a number optout cannot read.
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "created_at", "error_code", "is_from_contact", "media", "messageservice_sid", "send_status", "service", "service_id", "text", "user_id", "user_number") values (NULL, '+15550100009', now(), NULL, true, NULL, 'MG1', 'DELIVERED', 'twilio', 'SM4', 'STOP', NULL, '+15550109999') returning "id";
insert into "spoke"."opt_out" ("assignment_id", "cell", "organization_id", "reason_code") values (NULL, 'garbage', 1, 'import');
RESET ROLE;
SELECT contact, source, keyword FROM optout.stops ORDER BY contact;
SELECT count(*) AS messages FROM spoke.message WHERE text = 'Hi';
SELECT kind, contact, source, keyword, table_name, reason FROM optout.events WHERE kind = 'review' ORDER BY id;
SELECT contact, message, table_name FROM optout.open_reviews ORDER BY review_id;
-- Their SQLSTATEs.
\set VERBOSITY sqlstate
SELECT optout.phone_key('call me');
SELECT optout.contact_key(NULL, '1');
SET ROLE regress_spoke_app;
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "send_status", "text", "user_id") values (5, NULL, false, 'QUEUED', 'Hi', 1);
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "send_status", "text", "user_id") values (999, '+15550100003', false, 'QUEUED', 'Hi', 1);
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "send_status", "text", "user_id") values (5, '+15550100003', false, 'QUEUED', 'Hi', 1);
RESET ROLE;
\set VERBOSITY default

-- The same options outside Spoke: a table with the organization in a
-- column of its own. An inbound STOP with no number, or one optout cannot
-- read, goes to the review queue; a number written another way is the
-- same contact's.
CREATE TABLE public.inbox (phone text, org int, body text);
SELECT optout.attach_inbound('public.inbox', 'body', 'phone', contact_format => 'phone', organization_column => 'org') > 0 AS attached;
INSERT INTO public.inbox VALUES (NULL, 7, 'STOP'), ('555 0100', 7, 'STOP'), ('(555) 010-0042', 7, 'STOP'), ('+15550100042', NULL, 'STOP');
SELECT contact, source FROM optout.stops WHERE contact LIKE '7:%';
SELECT contact, message, table_name FROM optout.open_reviews WHERE table_name = 'public.inbox' ORDER BY review_id;
SELECT reason FROM optout.events WHERE kind = 'review' AND table_name = 'public.inbox' ORDER BY id;
SELECT optout.detach('public.inbox') AS detached;
DROP TABLE public.inbox;
-- Org 7 is not one of Spoke's: its stop wrote no opt_out row (the column
-- references organization). Nor do keys of another form: another
-- attachment's contact id, a number that is not E.164.
SELECT optout.stop('42', reason => 'another attachment''s contact') AS s1,
       optout.stop('1:42', reason => 'not a number') AS s2;
SELECT cell, organization_id, reason_code FROM spoke.opt_out ORDER BY id;
SELECT optout.start('42', reason => 'test') AS s1, optout.start('1:42', reason => 'test') AS s2;

-- The backfill does not build these keys yet: refused, not run under the wrong key.
CALL optout.backfill('spoke.message');

-- Attach errors.
CREATE TABLE public.t (id int, phone text, org int, ch int, body text);
SELECT optout.attach_outbound('public.t', 'phone', contact_format => 'email');
SELECT optout.attach_outbound('public.t', 'phone', organization_query => 'SELECT 1');
SELECT optout.attach_outbound('public.t', 'phone', 'ch', contact_format => 'phone');
SELECT optout.attach_outbound('public.t', 'id', contact_format => 'phone');
SELECT optout.attach_outbound('public.t', 'phone', contact_format => 'phone', organization_column => 'nope');
SELECT optout.attach_outbound('public.t', 'phone', contact_format => 'phone', organization_column => 'org',
                              organization_query => 'SELECT organization_id FROM campaign WHERE id = $1::int');
SELECT optout.attach_optouts('public.t', 'phone', contact_format => 'phone', organization_column => 'org',
                             row_values => '{"body": ["x"]}');
SELECT optout.attach_optouts('public.t', 'phone', contact_format => 'phone', organization_column => 'org',
                             row_values => '{"org": 1}');
SELECT count(*) AS attachments_on_t FROM optout.attachments WHERE tbl = 'public.t'::regclass;
SELECT optout.attach_spoke('nope');
SELECT optout.attach_spoke('public');
DROP TABLE public.t;

-- ---------------------------------------------------------------------------
-- 8. A hostile application role: it plants an operator = (text, text) and a
--    phone_key in its own schema, first on the path, and a DBA stops and
--    starts a number by hand with that path; the app drives a STOP, a send
--    and an opt-out of its own. Nothing planted runs.
SET ROLE regress_spoke_app;
CREATE TABLE spoke.hijacks (what text, by_user name);
CREATE FUNCTION spoke.note(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO spoke.hijacks VALUES (what, current_user);
    RETURN true;
END
$$;
CREATE FUNCTION spoke.text_eq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM spoke.note('= (text, text)');
    RETURN a OPERATOR(pg_catalog.=) b;
END
$$;
CREATE OPERATOR spoke.= (LEFTARG = text, RIGHTARG = text, FUNCTION = spoke.text_eq);
CREATE FUNCTION spoke.phone_key(p text) RETURNS text LANGUAGE sql AS $$ SELECT spoke.note('phone_key')::text $$;
CREATE FUNCTION spoke.split_part(a text, b text, c int) RETURNS text LANGUAGE sql AS $$ SELECT spoke.note('split_part')::text $$;
GRANT ALL ON spoke.hijacks TO PUBLIC;
\set VERBOSITY terse
SET search_path = spoke, pg_catalog;
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "created_at", "error_code", "is_from_contact", "media", "messageservice_sid", "send_status", "service", "service_id", "text", "user_id", "user_number") values (4, '+15550100001', now(), NULL, true, NULL, 'MG1', 'DELIVERED', 'twilio', 'SM5', 'START', NULL, '+15550109999');
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "created_at", "error_code", "is_from_contact", "media", "messageservice_sid", "send_status", "service", "service_id", "text", "user_id", "user_number") values (4, '+15550100001', now(), NULL, true, NULL, 'MG1', 'DELIVERED', 'twilio', 'SM6', 'STOP', NULL, '+15550109999');
insert into "spoke"."message" ("campaign_contact_id", "contact_number", "is_from_contact", "send_status", "text", "user_id") values (4, '+15550100001', false, 'QUEUED', 'Hi Bob', 1);
insert into "spoke"."opt_out" ("assignment_id", "cell", "organization_id", "reason_code") values (NULL, '+15550100002', 1, 'texter');
RESET search_path;
RESET ROLE;
SET search_path = spoke, pg_catalog;
SELECT optout.stop('2:+15550100000', reason => 'DBA') AS stopped;
SELECT optout.start('2:+15550100000', reason => 'DBA') AS started;
RESET search_path;
SELECT count(*) AS planted_calls FROM spoke.hijacks;
-- optout's trigger function for a platform opt-out table acts only for the
-- table it was attached to: the app cannot plant stops through its own.
SET ROLE regress_spoke_app;
CREATE TABLE spoke.fake_opt_out (cell text, organization_id int);
SELECT format('CREATE TRIGGER t AFTER INSERT ON spoke.fake_opt_out FOR EACH ROW EXECUTE FUNCTION optout._optouts_trigger(%L)', id)
  FROM optout.attached WHERE kind = 'optouts' \gexec
INSERT INTO spoke.fake_opt_out VALUES ('+15550100005', 1);
DROP TABLE spoke.fake_opt_out;
RESET ROLE;
SELECT contact, source FROM optout.stops ORDER BY contact;

-- A column an attachment uses cannot be renamed under it (the organization
-- column included).
SET ROLE regress_spoke_app;
ALTER TABLE spoke.message RENAME COLUMN campaign_contact_id TO contact_id;
ALTER TABLE spoke.opt_out RENAME COLUMN organization_id TO org_id;
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 9. Detach: Spoke's tables are as before, its statements run unchecked.
SELECT optout.detach('spoke.message') + optout.detach('spoke.opt_out') + optout.detach('spoke.campaign_contact') AS detached;
SELECT tgname FROM pg_trigger WHERE tgrelid::regclass::text LIKE 'spoke.%' AND NOT tgisinternal ORDER BY 1;
DROP SCHEMA spoke CASCADE;
DROP EXTENSION optout;
DROP ROLE regress_spoke_app;
