-- optout: what is attached: the attachments table, the trigger and WHEN
-- functions the attachments' triggers call, the attached view and health().

-- ---------------------------------------------------------------------------
-- What is attached: one row per table and role.
CREATE TABLE optout.attachments (
    id              serial PRIMARY KEY,
    tbl             regclass NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('inbound', 'outbound', 'contacts', 'groups', 'delivery_errors', 'optouts')),
    contact_column  name NOT NULL,
    channel_column  name,
    body_column     name,
    row_filter      jsonb,              -- {"column": value | [values] | null}: the rows that matter
    mode            optout.match_mode,  -- inbound: fixed at attach (never the session's setting)
    scope           text CHECK (scope IN ('contact', 'channel')),
    on_blocked      text CHECK (on_blocked IN ('error', 'skip', 'mark')),
    mark            jsonb,              -- outbound: {"column": value} given to blocked and failed rows
    queued          jsonb,              -- outbound: {"column": value | [values]}: rows still to be sent
    confirmation    jsonb,              -- outbound: a row filter: the one confirmation after a stop
    help_reply      jsonb,              -- outbound: a row filter: the one reply to a help request
    status_column   name,               -- contacts
    stopped_value   text,
    active_value    text,
    touch_column    name,               -- contacts: set to now() when optout changes the status
    group_column    name,               -- groups
    stopped_group   text,               -- groups: a fixed group key, or
    stopped_group_query text,           -- a query with $1 = contact key (text) returning the group key
    code_column     name,               -- delivery errors
    provider        text,
    provider_column name,
    event_column    name,
    stop_events     text[],
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    review          boolean,            -- inbound: false records no reviews (NULL: true)
    review_unless   text,               -- inbound: a query with $1 = contact key (text): a row means no review
    -- A contact identified by a phone number within an organization
    -- (docs/spoke.md): the ledger's key is '<organization>:<E.164 number>'.
    contact_format  text CHECK (contact_format IN ('phone')),  -- the contact column holds a phone number
    organization_column name,           -- the row's organization, or the value organization_query maps to it
    organization_query  text,           -- $1 = organization_column as text; returns the organization
    CONSTRAINT attachments_tbl_kind_key UNIQUE (tbl, kind),
    CONSTRAINT attachments_inbound_mode_check CHECK (kind <> 'inbound' OR mode IS NOT NULL)
);
COMMENT ON TABLE optout.attachments IS 'The platform tables optout enforces on; written by the optout.attach_* functions';

-- Changes to attachments reach every backend's cache of them.
CREATE TRIGGER attachments_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON optout.attachments
    FOR EACH STATEMENT EXECUTE FUNCTION optout._config_changed();

SELECT pg_catalog.pg_extension_config_dump('optout.attachments', '');
SELECT pg_catalog.pg_extension_config_dump('optout.attachments_id_seq', '');
REVOKE ALL ON optout.attachments FROM PUBLIC;
GRANT SELECT ON optout.attachments TO PUBLIC;

CREATE FUNCTION optout._inbound_trigger() RETURNS trigger AS 'MODULE_PATHNAME', 'optout_inbound_trigger' LANGUAGE C;
CREATE FUNCTION optout._outbound_trigger() RETURNS trigger AS 'MODULE_PATHNAME', 'optout_outbound_trigger' LANGUAGE C;
CREATE FUNCTION optout._contacts_trigger() RETURNS trigger AS 'MODULE_PATHNAME', 'optout_contacts_trigger' LANGUAGE C;
CREATE FUNCTION optout._delivery_trigger() RETURNS trigger AS 'MODULE_PATHNAME', 'optout_delivery_trigger' LANGUAGE C;
CREATE FUNCTION optout._flush() RETURNS trigger AS 'MODULE_PATHNAME', 'optout_flush' LANGUAGE C;
-- Called in the WHEN of optout's row triggers, as the role that inserts: does
-- this message classify as a keyword; is this send blocked (it takes the
-- contact's send lock, like the trigger did).
CREATE FUNCTION optout._inbound_when(attachment integer, body text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'optout_inbound_when' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION optout._outbound_when(attachment integer, contact "any", channel "any") RETURNS boolean
    AS 'MODULE_PATHNAME', 'optout_outbound_when' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
-- ... for a table with no channel column: a stop on any channel blocks.
CREATE FUNCTION optout._outbound_when(attachment integer, contact "any") RETURNS boolean
    AS 'MODULE_PATHNAME', 'optout_outbound_when' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
-- ... for a row that matches the confirmation ('c') or help_reply ('h')
-- filter: blocked unless it is the one such message the stop (the help
-- request) allows, which it records.
CREATE FUNCTION optout._reply_when(attachment integer, reply "char", contact "any", channel "any") RETURNS boolean
    AS 'MODULE_PATHNAME', 'optout_reply_when' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
CREATE FUNCTION optout._reply_when(attachment integer, reply "char", contact "any") RETURNS boolean
    AS 'MODULE_PATHNAME', 'optout_reply_when' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
-- The contact-wide stops already on record, applied to a contacts or groups
-- attachment as a stop applies them; returns the table's rows changed.
CREATE FUNCTION optout._apply_existing_stops(attachment integer) RETURNS bigint
    AS 'MODULE_PATHNAME', 'optout_apply_existing_stops' LANGUAGE C VOLATILE STRICT;
-- The platform's way to say "the next send is the confirmation" (no filter).
CREATE FUNCTION optout.confirm_next(contact text, channel text DEFAULT NULL) RETURNS boolean
    AS 'MODULE_PATHNAME', 'optout_confirm_next' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION optout.confirm_next(text, text) IS
    'The next blocked send to the contact (on the channel; NULL: any) in this transaction is its stop''s one confirmation; true when one would be accepted now';

-- `triggers`: each trigger an attachment needs, on its table and on each
-- partition of it (the row triggers are cloned there, the statement trigger
-- is made there), and its state: enabled (tgenabled O) or always (A): it
-- fires; replica (R), disabled (D) or missing: it does not, and enforcement
-- is off there. trigger_enabled: all of them fire (NULL for groups: none).
CREATE VIEW optout.attached AS
SELECT a.id, a.tbl, a.kind, a.contact_column, a.channel_column, a.body_column, a.row_filter,
       a.mode, a.scope, a.on_blocked, a.mark, a.queued, a.confirmation, a.help_reply, a.status_column, a.stopped_value, a.active_value,
       a.group_column, a.stopped_group, a.stopped_group_query, a.code_column, a.provider, a.event_column,
       a.stop_events, a.created_at,
       t.tgname AS trigger_name,
       CASE WHEN a.kind = 'groups' THEN NULL ELSE coalesce(h.ok, false) END AS trigger_enabled,
       h.triggers,
       a.contact_format, a.organization_column, a.organization_query
  FROM optout.attachments a
  LEFT JOIN pg_catalog.pg_trigger t
    ON t.tgrelid = a.tbl AND t.tgname = 'optout_' || a.kind AND NOT t.tgisinternal
  LEFT JOIN LATERAL (
        SELECT pg_catalog.bool_and(s.state IN ('enabled', 'always')) AS ok,
               coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                            'table', s.relation::pg_catalog.regclass::pg_catalog.text, 'trigger', s.tgname,
                            'state', s.state) ORDER BY s.relation <> a.tbl::pg_catalog.oid,
                                                    s.relation::pg_catalog.regclass::pg_catalog.text, s.tgname),
                        '[]') AS triggers
          FROM (SELECT r.relid AS relation, n.tgname,
                       CASE g.tgenabled WHEN 'O' THEN 'enabled' WHEN 'A' THEN 'always' WHEN 'R' THEN 'replica'
                                        WHEN 'D' THEN 'disabled' ELSE 'missing' END AS state
                  FROM (SELECT a.tbl::pg_catalog.oid AS relid
                        UNION SELECT pt.relid FROM pg_catalog.pg_partition_tree(a.tbl) pt) r
                 CROSS JOIN pg_catalog.unnest(CASE a.kind
                            WHEN 'inbound' THEN ARRAY['optout_inbound', 'optout_flush']
                            WHEN 'outbound' THEN CASE WHEN coalesce(a.row_filter, '{}') <> '{}'
                                                        OR coalesce(a.queued, '{}') <> '{}'
                                                      THEN ARRAY['optout_outbound', 'optout_outbound_requeue']
                                                      ELSE ARRAY['optout_outbound'] END
                            WHEN 'contacts' THEN CASE WHEN a.contact_format IS NOT NULL OR a.organization_column IS NOT NULL
                                                      THEN ARRAY['optout_contacts', 'optout_contacts_insert']
                                                      ELSE ARRAY['optout_contacts'] END
                            WHEN 'delivery_errors' THEN ARRAY['optout_delivery_errors', 'optout_flush']
                            WHEN 'optouts' THEN ARRAY['optout_optouts', 'optout_flush']
                            ELSE ARRAY[]::pg_catalog.text[] END::pg_catalog.name[]) n(tgname)
                  LEFT JOIN pg_catalog.pg_trigger g ON g.tgrelid = r.relid AND g.tgname = n.tgname AND NOT g.tgisinternal
               ) s) h ON true;
COMMENT ON VIEW optout.attached IS 'What optout is attached to, and whether every trigger it needs is in place and fires';

GRANT SELECT ON optout.attached TO PUBLIC;

-- For a monitoring job: per attachment, whether every trigger it needs is
-- there and fires, what is wrong if not, and what was recorded on its table
-- since it was attached (or since the time given, whichever is later).
CREATE FUNCTION optout.health(since timestamptz DEFAULT NULL)
    RETURNS TABLE (attachment integer, tbl regclass, kind text, triggers_ok boolean, problems text[],
                   counted_from timestamptz, stops bigint, starts bigint, blocked bigint, provider_errors bigint,
                   status_kept bigint, last_event_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
SELECT a.id, a.tbl, a.kind, coalesce(a.trigger_enabled, true),
       ARRAY(SELECT format('trigger %s of %s: %s', t ->> 'trigger', t ->> 'table', t ->> 'state')
               FROM jsonb_array_elements(a.triggers) t
              WHERE t ->> 'state' NOT IN ('enabled', 'always')),
       f.from_at, e.stops, e.starts, e.blocked, e.provider_errors, e.status_kept, e.last_at
  FROM optout.attached a
 CROSS JOIN LATERAL (SELECT greatest(a.created_at, $1) AS from_at,
                            format('%I.%I', n.nspname, c.relname) AS table_name
                       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = a.tbl) f
 CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE v.kind = 'stop') AS stops,
                            count(*) FILTER (WHERE v.kind = 'start') AS starts,
                            count(*) FILTER (WHERE v.kind = 'blocked') AS blocked,
                            count(*) FILTER (WHERE v.kind = 'provider_error') AS provider_errors,
                            count(*) FILTER (WHERE v.kind = 'status_kept') AS status_kept,
                            max(v.at) AS last_at
                       FROM optout.events v WHERE v.at >= f.from_at AND v.table_name = f.table_name) e
 ORDER BY a.id
$$;
REVOKE ALL ON FUNCTION optout.health(timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION optout.health(timestamptz) IS
    'Per attachment: are all its triggers in place and firing (and what is wrong if not), and the stops, starts, blocked sends, provider opt-out errors and refused status changes recorded on its table since it was attached (or since the time given)';
