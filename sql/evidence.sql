-- optout.evidence(contact): one JSON document a lawyer can file; and
-- optout.honour_times, each stop's delay against the FCC's 10 business days.
CREATE EXTENSION optout;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- Times change from run to run: shown as "<time>" (when set).
CREATE FUNCTION pg_temp.fixed(j jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT CASE jsonb_typeof(j)
        WHEN 'object' THEN (SELECT coalesce(jsonb_object_agg(k, CASE
                WHEN k IN ('at', 'generated_at', 'received_at', 'honoured_at', 'since', 'first_at', 'last_at')
                     AND jsonb_typeof(v) = 'string' THEN '"<time>"'::jsonb
                WHEN k IN ('seconds_after_stop', 'seconds_after_help', 'honour_time_seconds')
                     AND jsonb_typeof(v) = 'number' THEN to_jsonb(CASE WHEN v::text::numeric < 60 THEN 'under a minute' ELSE 'longer' END)
                WHEN k = 'keyword_set' AND jsonb_typeof(v) = 'string' THEN '"<keyword set>"'::jsonb
                ELSE pg_temp.fixed(v) END), '{}'::jsonb) FROM jsonb_each(j) e(k, v))
        WHEN 'array' THEN (SELECT coalesce(jsonb_agg(pg_temp.fixed(v) ORDER BY n), '[]'::jsonb)
                             FROM jsonb_array_elements(j) WITH ORDINALITY a(v, n))
        ELSE j END
$$;

-- A platform with history from before optout: contact 2 sent STOP twenty
-- days ago and was never stopped (a backfill stops it now).
CREATE TABLE ev_msgs (id serial PRIMARY KEY, contact_id integer, channel text, direction text NOT NULL,
                      kind text NOT NULL DEFAULT 'promo', body text, status text NOT NULL DEFAULT 'Q',
                      created_on timestamptz NOT NULL DEFAULT now());
INSERT INTO ev_msgs (contact_id, channel, direction, body, created_on)
VALUES (2, '+1', 'in', 'STOP', now() - interval '20 days'), (3, '+1', 'in', 'stop', now() - interval '1 day');
SELECT optout.attach_inbound('ev_msgs', 'body', 'contact_id', 'channel', row_filter => '{"direction": "in"}') > 0 AS inbound,
       optout.attach_outbound('ev_msgs', 'contact_id', 'channel', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}', row_filter => '{"direction": "out"}',
                              confirmation => '{"kind": "confirmation"}', help_reply => '{"kind": "help"}') > 0 AS outbound;
CALL optout.backfill('ev_msgs', time_column => 'created_on', apply => true);

-- Contact 1: queued promos, STOP, a broadcast in the window, the
-- confirmation, HELP and its reply, more sends, START; later a manual stop
-- and a manual start with the operator's reason.
INSERT INTO ev_msgs (contact_id, channel, direction, body) VALUES (1, '+1', 'out', 'queued promo 1'), (1, '+1', 'out', 'queued promo 2');
INSERT INTO ev_msgs (contact_id, channel, direction, body) VALUES (1, '+1', 'in', 'Stop please');
INSERT INTO ev_msgs (contact_id, channel, direction, body) VALUES (1, '+1', 'out', 'broadcast in the window');
INSERT INTO ev_msgs (contact_id, channel, direction, kind, body)
VALUES (1, '+1', 'out', 'confirmation', 'Acme: you are unsubscribed and will receive no more messages.');
INSERT INTO ev_msgs (contact_id, channel, direction, body) VALUES (1, '+1', 'in', 'HELP');
INSERT INTO ev_msgs (contact_id, channel, direction, kind, body)
VALUES (1, '+1', 'out', 'help', 'Acme: help at acme.example/help. Reply START to resubscribe.');
INSERT INTO ev_msgs (contact_id, channel, direction, body)
SELECT 1, '+1', 'out', 'campaign ' || g FROM generate_series(1, 3) g;
INSERT INTO ev_msgs (contact_id, channel, direction, body) VALUES (1, '+1', 'in', 'START');
INSERT INTO ev_msgs (contact_id, channel, direction, body) VALUES (1, '+1', 'out', 'welcome back');
SELECT optout.stop('1', reason => 'asked on the phone, ticket 4411') AS manual_stop;
SELECT optout.start('1', reason => 'signed consent form 2026-11-30') AS manual_start;

SELECT jsonb_pretty(pg_temp.fixed(optout.evidence('1')));
-- The keyword set is identified by a hash of optout.keywords' enabled rows:
-- changing a keyword changes it, for the stops classified after.
SELECT (optout.evidence('1') #>> '{revocations,0,classified_by,keyword_set}') ~ '^[0-9a-f]{16}$' AS is_a_hash;
UPDATE optout.keywords SET enabled = false WHERE keyword = 'cancel';
INSERT INTO ev_msgs (contact_id, channel, direction, body) VALUES (4, '+1', 'in', 'STOP');
SELECT count(DISTINCT keyword_set) AS keyword_sets, count(DISTINCT optout_version) AS versions
  FROM optout.events WHERE kind = 'stop' AND source = 'keyword';
UPDATE optout.keywords SET enabled = true WHERE keyword = 'cancel';

-- Backfill: the delay from the message to the stop, and the 10 business days.
SELECT r ->> 'source' AS source, r ->> 'message' AS message, (r ->> 'honour_time_seconds')::numeric > 19 * 86400 AS over_19_days,
       (r ->> 'business_days')::int >= 13 AS business_days_13_or_more, r ->> 'within_10_business_days' AS in_time
  FROM jsonb_array_elements(optout.evidence('2') -> 'revocations') r;
SELECT r ->> 'within_10_business_days' AS in_time, (r ->> 'business_days')::int <= 1 AS one_day_or_less
  FROM jsonb_array_elements(optout.evidence('3') -> 'revocations') r;

-- The view, for a monthly report.
SELECT contact, message_channel, current_scope, source, keyword, message, honour_time = interval '0' AS immediate,
       within_10_business_days
  FROM optout.honour_times ORDER BY stop_event;
SELECT date_trunc('month', honoured_at) = date_trunc('month', now()) AS this_month, count(*) AS stops,
       count(*) FILTER (WHERE NOT within_10_business_days) AS late
  FROM optout.honour_times GROUP BY 1;

-- A contact with no history: an empty pack, not an error; bad input.
SELECT pg_temp.fixed(optout.evidence('99')) - 'settings' AS nothing;
SELECT optout.evidence(NULL) IS NULL AS null_for_null;

SELECT optout.detach('ev_msgs') AS detached;
DROP TABLE ev_msgs;
DROP EXTENSION optout;
