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
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
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

REVOKE ALL ON optout.stopped_now, optout.requests_daily, optout.blocked_daily, optout.provider_errors_daily,
    optout.errors_after_stop FROM PUBLIC;
REVOKE ALL ON FUNCTION optout.explain_contact(text), optout.prune_events(interval) FROM PUBLIC;
