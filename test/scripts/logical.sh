#!/usr/bin/env bash
# A logical replica of a database using optout (issue #26, docs/replication.md):
# a subscription FOR ALL TABLES breaks (the initial copy of optout.keywords
# hits the subscriber's own default keywords: duplicate key, retried
# forever); the setup docs/replication.md gives works: the platform's tables
# and optout's ledger, events, keywords and codes replicate, the subscriber
# reads them, its keyword cache follows the publisher's edits, and once cut
# over it enforces what the publisher did (the stops, the keywords) and
# records events without colliding with the replicated ones. Its own
# publisher (wal_level=logical) and subscriber, on unix sockets in private
# directories, stopped on exit. Prints "ok"/"not ok" lines and a closing
# "logical: N passed, N failed" line.
#
# Run by scripts/test.sh (as an unprivileged user, after the build).
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/common.sh
. "$OPTOUT_ROOT/scripts/common.sh"
OPTOUT_SERVER_OPTS="-c wal_level=logical" start_throwaway_server >/dev/null
sub_dir=$OPTOUT_SERVER_DIR/subscriber
sub_port=54359
stop_all() {
    "$OPTOUT_BINDIR/pg_ctl" -D "$sub_dir/data" -m immediate stop >/dev/null 2>&1 || true
    stop_throwaway_server
}
trap stop_all EXIT
mkdir -p "$sub_dir"
"$OPTOUT_BINDIR/initdb" -D "$sub_dir/data" -U postgres --encoding=UTF8 --no-locale --auth=trust >/dev/null
timeout 60 "$OPTOUT_BINDIR/pg_ctl" -D "$sub_dir/data" -l "$sub_dir/server.log" -w \
    -o "-c listen_addresses='' -c unix_socket_directories='$sub_dir' -c port=$sub_port -c wal_retrieve_retry_interval=500ms" \
    start >/dev/null

pub() { timeout 60 "$OPTOUT_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
sub() { timeout 60 "$OPTOUT_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$sub_dir" -p "$sub_port" "$@"; }
conninfo="host=$PGHOST port=$PGPORT user=postgres dbname=app"

passed=0 failed=0
check() {  # check NAME EXPECTED GOT
    if [ "$3" = "$2" ]; then
        echo "ok - $1"; passed=$((passed + 1))
    else
        echo "not ok - $1"; echo "#   expected: $2"; echo "#   got:      $3"; failed=$((failed + 1))
    fi
}
# wait_for DB SQL: until SQL on the subscriber's DB returns t (at most 30 s).
wait_for() {
    for _ in $(seq 150); do
        [ "$(sub -d "$1" -c "$2" 2>/dev/null)" = t ] && return 0
        sleep 0.2
    done
    return 1
}

schema="
CREATE TABLE contacts (id int PRIMARY KEY, status text NOT NULL DEFAULT 'A');
CREATE TABLE msgs (id serial PRIMARY KEY, contact int, direction text, body text, status text DEFAULT 'Q');"
attach="
SELECT optout.attach_inbound('msgs', 'body', 'contact', row_filter => '{\"direction\": \"in\"}');
SELECT optout.attach_outbound('msgs', 'contact', on_blocked => 'mark', mark => '{\"status\": \"F\"}',
                              queued => '{\"status\": \"Q\"}', row_filter => '{\"direction\": \"out\"}');
SELECT optout.attach_contacts('contacts', 'id', 'status', 'S', 'A');"

pub -d postgres -c 'CREATE DATABASE app'
pub -d app >/dev/null <<SQL
CREATE EXTENSION optout;
$schema
INSERT INTO contacts SELECT generate_series(1, 9);
$attach
INSERT INTO optout.keywords (keyword, intent, language) VALUES ('basta', 'opt_out', 'it');
UPDATE optout.keywords SET enabled = false WHERE keyword = 'yes';
INSERT INTO msgs (contact, direction, body) VALUES (1, 'in', 'STOP'), (2, 'in', 'basta');
-- What docs/replication.md says to publish: the platform's tables and
-- optout's ledger, events, keywords and codes; not optout.attachments nor
-- the backfill runs.
CREATE PUBLICATION platform FOR TABLE contacts, msgs;
CREATE PUBLICATION optout_ledger FOR TABLE optout.stops, optout.events, optout.keywords, optout.delivery_error_codes;
-- What it says not to do.
CREATE PUBLICATION everything FOR ALL TABLES;
SQL

# 1. FOR ALL TABLES into a database with optout installed: the initial copy
#    of the keywords fails on the subscriber's own defaults, again and again.
sub -d postgres -c 'CREATE DATABASE naive'
sub -d naive >/dev/null <<SQL
CREATE EXTENSION optout;
$schema
CREATE SUBSCRIPTION naive CONNECTION '$conninfo' PUBLICATION everything;
SQL
found=no
for _ in $(seq 150); do
    if grep -q 'duplicate key value violates unique constraint "keywords_pkey"' "$sub_dir/server.log"; then found=yes; break; fi
    sleep 0.2
done
check "FOR ALL TABLES: the initial copy of optout.keywords fails on a duplicate key" yes "$found"
check "FOR ALL TABLES: optout.keywords never finishes its initial copy" "f" \
      "$(sub -d naive -c "SELECT srsubstate = 'r' FROM pg_subscription_rel WHERE srrelid = 'optout.keywords'::regclass")"
sub -d naive -c 'DROP SUBSCRIPTION naive' >/dev/null

# 2. The setup of docs/replication.md.
sub -d postgres -c 'CREATE DATABASE app'
sub -d app >/dev/null <<SQL
CREATE EXTENSION optout;
$schema
-- The publisher's keywords and codes replace the install's defaults (a
-- superuser; replica mode skips the trigger that keeps defaults).
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM optout.keywords;
DELETE FROM optout.delivery_error_codes;
COMMIT;
-- Replicated keyword edits reach the keyword cache of every session (the
-- apply worker fires row triggers set to ALWAYS, never statement triggers).
CREATE TRIGGER keywords_replicated AFTER INSERT OR UPDATE OR DELETE ON optout.keywords
    FOR EACH ROW EXECUTE FUNCTION optout._config_changed();
ALTER TABLE optout.keywords ENABLE ALWAYS TRIGGER keywords_replicated;
-- The subscriber's own events, if it ever writes one, never take an id the
-- publisher's may have.
SELECT pg_catalog.setval('optout.events_id_seq', 1::bigint << 62, false);
CREATE SUBSCRIPTION platform CONNECTION '$conninfo' PUBLICATION platform;
CREATE SUBSCRIPTION optout_ledger CONNECTION '$conninfo' PUBLICATION optout_ledger;
SQL
if wait_for app "SELECT count(*) = 6 AND bool_and(srsubstate = 'r') FROM pg_subscription_rel"; then
    check "the initial copy of every published table completes" yes yes
else
    check "the initial copy of every published table completes" yes \
          "$(sub -d app -c "SELECT string_agg(srrelid::regclass || ':' || srsubstate, ' ') FROM pg_subscription_rel")"
fi
check "no error in either subscription (pg_stat_subscription_stats)" "0" \
      "$(sub -d app -c "SELECT sum(apply_error_count + sync_error_count) FROM pg_stat_subscription_stats WHERE subname IN ('platform', 'optout_ledger')")"
check "the ledger is replicated" "1,2" "$(sub -d app -c 'SELECT string_agg(contact, $$,$$ ORDER BY contact) FROM optout.stops')"
check "the keywords are the publisher's (an addition, a disabled default)" "t|f" \
      "$(sub -d app -c "SELECT (SELECT enabled FROM optout.keywords WHERE keyword = 'basta'), (SELECT enabled FROM optout.keywords WHERE keyword = 'yes')")"
check "same keyword table as the publisher" \
      "$(pub -d app -c "SELECT md5(string_agg(keyword || intent || enabled || is_default, ',' ORDER BY keyword)) FROM optout.keywords")" \
      "$(sub -d app -c "SELECT md5(string_agg(keyword || intent || enabled || is_default, ',' ORDER BY keyword)) FROM optout.keywords")"

# Later changes arrive; a session open on the subscriber sees a keyword edit.
coproc SUBSESSION { timeout 60 "$OPTOUT_BINDIR/psql" -X -q -At -h "$sub_dir" -p "$sub_port" -d app 2>&1; }
echo "SELECT 'before:' || coalesce(optout.classify('ferma')::text, '');" >&"${SUBSESSION[1]}"
read -r -t 20 before <&"${SUBSESSION[0]}" || before=timeout
pub -d app >/dev/null <<'SQL'
INSERT INTO optout.keywords (keyword, intent, language) VALUES ('ferma', 'opt_out', 'it');
INSERT INTO msgs (contact, direction, body) VALUES (3, 'in', 'Stop please'), (1, 'out', 'sale');
SELECT optout.stop('4', reason => 'asked by phone');
SQL
wait_for app "SELECT count(*) = 4 FROM optout.stops" || true
check "later stops arrive" "1,2,3,4" "$(sub -d app -c 'SELECT string_agg(contact, $$,$$ ORDER BY contact) FROM optout.stops')"
check "the events arrive, with the publisher's ids" \
      "$(pub -d app -c 'SELECT string_agg(id || kind, $$,$$ ORDER BY id) FROM optout.events')" \
      "$(sub -d app -c 'SELECT string_agg(id || kind, $$,$$ ORDER BY id) FROM optout.events')"
wait_for app "SELECT EXISTS (SELECT 1 FROM optout.keywords WHERE keyword = 'ferma')" || true
echo "SELECT 'after:' || coalesce(optout.classify('ferma')::text, '');" >&"${SUBSESSION[1]}"
read -r -t 20 after <&"${SUBSESSION[0]}" || after=timeout
check "an open session on the subscriber follows a replicated keyword edit" "before:|after:opt_out" "$before|$after"
subsession_in=${SUBSESSION[1]}
exec {subsession_in}>&-
check "the publisher's outbound marks replicate, not re-enforced on the subscriber" "F" \
      "$(sub -d app -c "SELECT status FROM msgs WHERE body = 'sale'")"

# 3. Cut over: the subscriber becomes the primary: attach, and it enforces
#    what the publisher did, and records its own events.
sub -d app >/dev/null <<SQL
ALTER SUBSCRIPTION platform DISABLE;
ALTER SUBSCRIPTION optout_ledger DISABLE;
SELECT pg_catalog.setval('msgs_id_seq', (SELECT max(id) FROM msgs));
$attach
SQL
check "after cut-over: a send to a contact the publisher stopped is marked" "F" \
      "$(sub -d app -c "INSERT INTO msgs (contact, direction, body) VALUES (2, 'out', 'hi') RETURNING status")"
sub -d app -c "INSERT INTO msgs (contact, direction, body) VALUES (5, 'in', 'ferma')" >/dev/null
check "after cut-over: a keyword added on the publisher stops" "S" "$(sub -d app -c 'SELECT status FROM contacts WHERE id = 5')"
check "after cut-over: new event ids do not collide" "t" \
      "$(sub -d app -c 'SELECT count(*) = count(DISTINCT id) AND max(id) > 1::bigint << 62 FROM optout.events')"

echo "logical: $passed passed, $failed failed"
[ "$failed" = 0 ]
