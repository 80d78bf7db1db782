-- optout: reports for a compliance officer, and retention.

-- ---------------------------------------------------------------------------
-- Reports for a compliance officer. They show message bodies: PUBLIC has no
-- access; grant SELECT (and EXECUTE on optout.explain_contact) to the roles
-- that answer compliance questions.

CREATE VIEW optout.stopped_now AS
SELECT s.contact,
       CASE WHEN s.channel IS NULL THEN 'contact' ELSE 'channel' END AS scope,
       s.channel, s.stopped_at AS since, s.source, s.keyword, e.language, s.rule,
       e.body AS message, e.channel AS message_channel, e.provider, e.code, e.table_name, e.actor, e.reason
  FROM optout.stops s
  LEFT JOIN optout.events e ON e.id = s.event_id;
COMMENT ON VIEW optout.stopped_now IS
    'Who is stopped now, on which scope and channel, since when, and why (keyword, rule, source, the message itself)';

CREATE VIEW optout.requests_daily AS
SELECT (e.at AT TIME ZONE 'UTC')::date AS day, e.channel,
       CASE e.kind WHEN 'stop' THEN 'opt_out' WHEN 'start' THEN 'opt_in' WHEN 'help' THEN 'help' ELSE 'review' END AS request,
       e.source, e.keyword, e.language, count(*) AS requests, count(DISTINCT e.contact) AS contacts
  FROM optout.events e
 WHERE e.kind IN ('stop', 'start', 'help', 'review')
 GROUP BY 1, 2, 3, 4, 5, 6;
COMMENT ON VIEW optout.requests_daily IS 'Opt-outs, opt-ins, help requests and replies sent to review per day (UTC), channel, source, keyword and language';

CREATE VIEW optout.blocked_daily AS
SELECT (e.at AT TIME ZONE 'UTC')::date AS day, e.channel, e.table_name,
       sum(CASE WHEN e.detail ? 'queued_failed' THEN (e.detail ->> 'queued_failed')::bigint ELSE 0 END) AS queued_failed,
       sum(CASE WHEN e.detail ? 'queued_failed' THEN 0 ELSE coalesce((e.detail ->> 'count')::bigint, 1) END) AS sends_blocked,
       count(DISTINCT e.contact) AS contacts
  FROM optout.events e
 WHERE e.kind = 'blocked'
 GROUP BY 1, 2, 3;
COMMENT ON VIEW optout.blocked_daily IS
    'Messages blocked per day (UTC), channel and table: queued messages failed at stop time, and later sends refused, dropped or marked';

CREATE VIEW optout.provider_errors_daily AS
SELECT (e.at AT TIME ZONE 'UTC')::date AS day, e.channel, e.provider, e.code,
       c.description, coalesce((e.detail ->> 'stops')::boolean, c.stops) AS means_opted_out,
       count(*) AS errors, count(DISTINCT e.contact) AS contacts
  FROM optout.events e
  LEFT JOIN optout.delivery_error_codes c ON c.provider = lower(e.provider) AND c.code = e.code
 WHERE e.kind = 'provider_error'
 GROUP BY 1, 2, 3, 4, 5, 6;
COMMENT ON VIEW optout.provider_errors_daily IS 'Provider errors per day (UTC), channel, provider and code';

-- A provider opt-out error for a contact already stopped means a message got
-- past the block: something sends around it.
CREATE VIEW optout.errors_after_stop AS
SELECT e.contact, e.channel, e.provider, e.code, count(*) AS errors,
       min(e.at) AS first_error, max(e.at) AS last_error, min(s.stopped_at) AS stopped_since
  FROM optout.events e
  JOIN optout.stops s ON s.contact = e.contact AND (s.channel IS NULL OR s.channel = e.channel)
 WHERE e.kind = 'provider_error' AND e.id > coalesce(s.event_id, 0)
   AND (e.detail ->> 'stops')::boolean IS NOT FALSE   -- opt-out errors only
 GROUP BY e.contact, e.channel, e.provider, e.code;
COMMENT ON VIEW optout.errors_after_stop IS
    'Contacts that keep producing provider opt-out errors after their stop: a sign that something sends around the block';

-- Everything about one contact in one call.
CREATE FUNCTION optout.explain_contact(contact text) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result jsonb;
BEGIN
    IF contact IS NULL THEN
        RAISE EXCEPTION 'optout.explain_contact(contact): contact must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Give the contact''s key as text, e.g. optout.explain_contact(''42'').';
    END IF;
    -- One statement, planned for this contact (EXECUTE ... USING): on Citus
    -- it then goes to the contact's shard of the events. (An SQL function's
    -- statement is planned with its parameter unknown, which Citus cannot
    -- route.)
    EXECUTE $q$
SELECT jsonb_build_object(
    'contact', $1,
    'stopped', EXISTS (SELECT 1 FROM optout.stops s WHERE s.contact = $1),
    'stops', coalesce((SELECT jsonb_agg(jsonb_build_object(
                    'scope', CASE WHEN s.channel IS NULL THEN 'contact' ELSE 'channel' END,
                    'channel', s.channel, 'since', s.stopped_at, 'source', s.source,
                    'message', e.body, 'message_channel', e.channel, 'keyword', s.keyword,
                    'language', e.language, 'rule', s.rule,
                    'provider', e.provider, 'code', e.code, 'reason', e.reason, 'table', e.table_name,
                    'blocked_since', (SELECT coalesce(sum(coalesce((b.detail ->> 'count')::bigint, 1)), 0)
                                        FROM optout.events b
                                       WHERE b.contact = $1 AND b.kind = 'blocked' AND b.id > s.event_id
                                         AND NOT coalesce(b.detail ? 'queued_failed', false)),
                    'queued_failed', (SELECT coalesce(sum((b.detail ->> 'queued_failed')::bigint), 0) FROM optout.events b
                                       WHERE b.contact = $1 AND b.kind = 'blocked' AND b.id > s.event_id
                                         AND b.detail ? 'queued_failed'))
                  ORDER BY s.stopped_at, s.channel NULLS FIRST)
                FROM optout.stops s LEFT JOIN optout.events e ON e.id = s.event_id
               WHERE s.contact = $1), '[]'::jsonb),
    'provider_errors', coalesce((SELECT jsonb_agg(jsonb_build_object('at', e.at, 'channel', e.channel,
                                        'provider', e.provider, 'code', e.code) ORDER BY e.id)
                                   FROM optout.events e WHERE e.contact = $1 AND e.kind = 'provider_error'), '[]'::jsonb),
    'last_opt_out', (SELECT jsonb_build_object('at', e.at, 'channel', e.channel, 'source', e.source, 'message', e.body,
                                               'keyword', e.keyword, 'language', e.language, 'rule', e.rule,
                                               'provider', e.provider, 'code', e.code, 'reason', e.reason)
                       FROM optout.events e WHERE e.contact = $1 AND e.kind = 'stop' ORDER BY e.id DESC LIMIT 1),
    'last_opt_in', (SELECT jsonb_build_object('at', e.at, 'channel', e.channel, 'source', e.source, 'message', e.body,
                                              'keyword', e.keyword, 'reason', e.reason, 'lifted', e.detail ->> 'lifted')
                      FROM optout.events e WHERE e.contact = $1 AND e.kind = 'start' ORDER BY e.id DESC LIMIT 1),
    'help_requests', (SELECT count(*) FROM optout.events e WHERE e.contact = $1 AND e.kind = 'help'),
    'open_reviews', (SELECT count(*) FROM optout.open_reviews r WHERE r.contact = $1),
    'status_changes_refused', (SELECT count(*) FROM optout.events e WHERE e.contact = $1 AND e.kind = 'status_kept'))
$q$ INTO result USING contact;
    RETURN result;
END
$$;
COMMENT ON FUNCTION optout.explain_contact(text) IS
    'One contact in one call: its stops (the message, keyword, rule, source), blocked sends since, provider errors, the last opt-in';

-- Retention: drop events older than an age, but never a contact's latest
-- stop and latest start, nor the event a current stop refers to.
CREATE FUNCTION optout.prune_events(older_than interval) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must be a positive interval' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM optout.events e
     WHERE e.at < now() - older_than
       AND NOT EXISTS (SELECT 1 FROM optout.stops s WHERE s.event_id = e.id)
       AND NOT EXISTS (SELECT 1 FROM optout.open_reviews r WHERE r.review_id = e.id)  -- still to decide
       AND NOT (e.kind IN ('stop', 'start')
                AND e.id = (SELECT max(l.id) FROM optout.events l WHERE l.contact = e.contact AND l.kind = e.kind));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION optout.prune_events(interval) IS
    'Deletes events older than the given age, keeping each contact''s latest stop and start, the events current stops refer to, and open reviews';

-- ---------------------------------------------------------------------------
-- Honour times: for each stop, from the message's arrival to the stop taking
-- effect. A keyword or provider stop takes effect in the transaction that
-- stores the message (zero); a backfill stop records when the message
-- arrived (detail message_at); a manual stop counts from when it was entered.
-- The FCC's limit (47 CFR 64.1200(a)(10)) is 10 business days: counted here
-- as Monday to Friday (UTC dates), without public holidays, which only makes
-- the count stricter.
CREATE VIEW optout.honour_times AS
SELECT e.id AS stop_event, e.contact, e.channel AS message_channel,
       CASE WHEN s.channel IS NULL AND s.contact IS NOT NULL THEN 'contact'
            WHEN s.contact IS NOT NULL THEN 'channel' END AS current_scope,
       e.source, e.keyword, e.body AS message, t.received_at, e.at AS honoured_at,
       e.at - t.received_at AS honour_time, b.business_days,
       b.business_days <= 10 AS within_10_business_days
  FROM optout.events e
 CROSS JOIN LATERAL (SELECT coalesce((e.detail ->> 'message_at')::timestamptz, e.at) AS received_at) t
 CROSS JOIN LATERAL (SELECT count(*)::integer AS business_days
                       FROM generate_series((t.received_at AT TIME ZONE 'UTC')::date + 1,
                                            (e.at AT TIME ZONE 'UTC')::date, interval '1 day') d
                      WHERE extract(isodow FROM d) < 6) b
  LEFT JOIN optout.stops s ON s.event_id = e.id
 WHERE e.kind = 'stop';
COMMENT ON VIEW optout.honour_times IS
    'For each stop: when the message arrived, when the stop took effect, the delay, and whether it met 10 business days (the FCC limit)';

-- Everything a lawyer needs about one contact, in one JSON document: every
-- revocation (the message, keyword, rule, the optout version and keyword set
-- that classified it, when received and honoured), the sends blocked after
-- it until the next opt-in (counts and times), the confirmation sent, the
-- opt-ins with their message or the operator's reason, the help requests and
-- their replies.
CREATE FUNCTION optout.evidence(contact text) RETURNS jsonb
    LANGUAGE sql STABLE STRICT SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
WITH ev AS (
    SELECT e.*, (SELECT min(n.id) FROM optout.events n
                  WHERE n.contact = e.contact AND n.kind = 'start' AND n.id > e.id
                    AND (n.detail ->> 'lifted') IS NOT NULL) AS lifted_by
      FROM optout.events e WHERE e.contact = $1
), stops AS (
    SELECT e.*, h.received_at, h.honour_time, h.business_days, h.within_10_business_days
      FROM ev e JOIN optout.honour_times h ON h.stop_event = e.id
     WHERE e.kind = 'stop'
)
SELECT jsonb_build_object(
    'contact', $1,
    'generated_at', pg_catalog.now(),
    'optout_version', (SELECT x.extversion FROM pg_extension x WHERE x.extname = 'optout'),
    'settings', jsonb_build_object(
        -- the mode inbound attachments classify with (fixed at attach; one
        -- mode, or {table: mode} when they differ), not the session's setting
        'match_mode', (SELECT CASE WHEN count(DISTINCT a.mode) = 1 THEN to_jsonb(min(a.mode::text))
                                   WHEN count(*) > 0 THEN jsonb_object_agg(a.tbl::text, a.mode) END
                         FROM optout.attachments a WHERE a.kind = 'inbound'),
        'confirmation_window', pg_catalog.current_setting('optout.confirmation_window', true),
        'revoke_all_from', nullif(pg_catalog.current_setting('optout.revoke_all_from', true), '')),
    'stopped_now', coalesce((SELECT jsonb_agg(jsonb_build_object(
                        'scope', CASE WHEN s.channel IS NULL THEN 'contact' ELSE 'channel' END,
                        'channel', s.channel, 'since', s.stopped_at, 'source', s.source, 'stop_event', s.event_id)
                      ORDER BY s.stopped_at, s.channel NULLS FIRST)
                    FROM optout.stops s WHERE s.contact = $1), '[]'::jsonb),
    'revocations', coalesce((SELECT jsonb_agg(jsonb_build_object(
        'event', s.id, 'source', s.source, 'channel', s.channel,
        'message', s.body, 'keyword', s.keyword, 'language', s.language, 'rule', s.rule,
        'provider', s.provider, 'code', s.code, 'reason', s.reason, 'table', s.table_name, 'actor', s.actor,
        'classified_by', CASE WHEN s.optout_version IS NOT NULL THEN jsonb_build_object(
                'optout_version', s.optout_version, 'keyword_set', s.keyword_set) END,
        'revoke_all_from', s.detail ->> 'revoke_all_from',
        'requested_channel', s.detail ->> 'requested_channel',
        'received_at', s.received_at, 'honoured_at', s.at,
        'honour_time_seconds', extract(epoch FROM s.honour_time),
        'business_days', s.business_days, 'within_10_business_days', s.within_10_business_days,
        'lifted_by_event', s.lifted_by,
        'sends_after', (SELECT jsonb_build_object(
                'blocked', coalesce(sum(CASE WHEN b.detail ? 'queued_failed' THEN 0
                                             ELSE coalesce((b.detail ->> 'count')::bigint, 1) END), 0),
                'queued_failed', coalesce(sum((b.detail ->> 'queued_failed')::bigint), 0),
                'first_at', min(b.at), 'last_at', max(b.at),
                'records', coalesce(jsonb_agg(jsonb_build_object(
                        'at', b.at, 'channel', b.channel, 'table', b.table_name, 'rule', b.detail ->> 'rule',
                        'count', coalesce((b.detail ->> 'count')::bigint, 0),
                        'queued_failed', coalesce((b.detail ->> 'queued_failed')::bigint, 0)) ORDER BY b.id)
                    FILTER (WHERE b.id IS NOT NULL), '[]'::jsonb))
              FROM ev b WHERE b.kind = 'blocked' AND b.id > s.id AND b.id < coalesce(s.lifted_by, 9223372036854775807)),
        'provider_errors_after', (SELECT jsonb_build_object('count', count(*), 'first_at', min(p.at), 'last_at', max(p.at))
              FROM ev p WHERE p.kind = 'provider_error' AND p.id > s.id
               AND p.id < coalesce(s.lifted_by, 9223372036854775807)),
        'confirmation', (SELECT jsonb_build_object('at', c.at, 'channel', c.channel, 'table', c.table_name,
                                                   'seconds_after_stop', (c.detail ->> 'seconds_after_stop')::numeric)
                           FROM ev c WHERE c.kind = 'confirmation' AND (c.detail ->> 'for_event')::bigint = s.id))
      ORDER BY s.id) FROM stops s), '[]'::jsonb),
    'opt_ins', coalesce((SELECT jsonb_agg(jsonb_build_object(
        'event', o.id, 'at', o.at, 'source', o.source, 'channel', o.channel, 'message', o.body,
        'keyword', o.keyword, 'rule', o.rule, 'reason', o.reason, 'actor', o.actor,
        'lifted', o.detail ->> 'lifted',
        'classified_by', CASE WHEN o.optout_version IS NOT NULL THEN jsonb_build_object(
                'optout_version', o.optout_version, 'keyword_set', o.keyword_set) END)
      ORDER BY o.id) FROM ev o WHERE o.kind = 'start'), '[]'::jsonb),
    'help_requests', coalesce((SELECT jsonb_agg(jsonb_build_object(
        'event', h.id, 'at', h.at, 'channel', h.channel, 'message', h.body, 'keyword', h.keyword,
        'reply', (SELECT jsonb_build_object('at', r.at, 'channel', r.channel, 'table', r.table_name,
                                            'seconds_after_help', (r.detail ->> 'seconds_after_help')::numeric)
                    FROM ev r WHERE r.kind = 'help_reply' AND (r.detail ->> 'for_event')::bigint = h.id))
      ORDER BY h.id) FROM ev h WHERE h.kind = 'help'), '[]'::jsonb),
    'status_changes_refused', (SELECT count(*) FROM ev k WHERE k.kind = 'status_kept'))
$$;
COMMENT ON FUNCTION optout.evidence(text) IS
    'One contact''s evidence pack as JSON: revocations (message, rule, keyword, classifier version and keyword set, received and honoured), sends blocked after each, the confirmation, opt-ins, help requests and replies';

REVOKE ALL ON optout.stopped_now, optout.requests_daily, optout.blocked_daily, optout.provider_errors_daily,
    optout.errors_after_stop, optout.honour_times FROM PUBLIC;
REVOKE ALL ON FUNCTION optout.explain_contact(text), optout.prune_events(interval), optout.evidence(text) FROM PUBLIC;
