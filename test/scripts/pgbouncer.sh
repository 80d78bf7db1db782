#!/usr/bin/env bash
# Through a real pgbouncer in transaction pooling, a setting one client leaves
# behind on a pooled server connection does not weaken enforcement for the
# next client of that connection: an inbound attachment's match mode is fixed
# at attach (issue #26), and the other optout.* settings enforcement reads are
# superuser-only. Its own server and pgbouncer, on unix sockets in a private
# directory, with a private configuration; both stopped on exit. Prints
# "ok"/"not ok" lines and a closing "pgbouncer: N passed, N failed" line.
#
# Run by scripts/test.sh (as an unprivileged user, after the build); needs
# Debian's pgbouncer package (scripts/common.sh, optout_packages).
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/common.sh
. "$OPTOUT_ROOT/scripts/common.sh"
PGBOUNCER=${PGBOUNCER:-$(command -v pgbouncer || echo /usr/sbin/pgbouncer)}
if [ ! -x "$PGBOUNCER" ]; then
    echo "not ok - pgbouncer is installed (apt-get install pgbouncer)"
    echo "pgbouncer: 0 passed, 1 failed"; exit 1
fi
start_throwaway_server >/dev/null
bouncer_dir=$OPTOUT_SERVER_DIR/pgbouncer
bouncer_port=54339
mkdir -p "$bouncer_dir"
stop_all() {
    if [ -f "$bouncer_dir/pgbouncer.pid" ]; then
        kill "$(cat "$bouncer_dir/pgbouncer.pid")" 2>/dev/null || true
        for _ in $(seq 50); do [ -f "$bouncer_dir/pgbouncer.pid" ] || break; sleep 0.1; done
    fi
    stop_throwaway_server
}
trap stop_all EXIT

psql_db() { timeout 60 "$OPTOUT_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
# Each call is a new client of pgbouncer, as the application role.
client() { timeout 60 "$OPTOUT_BINDIR/psql" -X -q -At -h "$bouncer_dir" -p "$bouncer_port" -U app -d app "$@"; }

psql_db -d postgres -c 'CREATE DATABASE app' -c 'CREATE ROLE app LOGIN'
psql_db -d app >/dev/null <<'SQL'
CREATE EXTENSION optout;
CREATE SCHEMA app AUTHORIZATION app;
ALTER ROLE app SET search_path = app;
SET ROLE app;
CREATE TABLE app.contacts (id int PRIMARY KEY, status text NOT NULL DEFAULT 'A');
CREATE TABLE app.msgs (id serial, contact int, direction text, body text, status text DEFAULT 'Q');
INSERT INTO app.contacts SELECT generate_series(1, 9);
RESET ROLE;
-- Attached without a mode, as most platforms are: standard is fixed.
SELECT optout.attach_inbound('app.msgs', 'body', 'contact', row_filter => '{"direction": "in"}');
SELECT optout.attach_outbound('app.msgs', 'contact', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}', row_filter => '{"direction": "out"}');
SELECT optout.attach_contacts('app.contacts', 'id', 'status', 'S', 'A');
SQL

cat >"$bouncer_dir/userlist.txt" <<'EOF2'
"app" ""
EOF2
cat >"$bouncer_dir/pgbouncer.ini" <<EOF2
[databases]
app = host=$OPTOUT_SERVER_DIR port=$PGPORT dbname=app

[pgbouncer]
listen_addr =
listen_port = $bouncer_port
unix_socket_dir = $bouncer_dir
auth_type = trust
auth_file = $bouncer_dir/userlist.txt
pool_mode = transaction
; one server connection: every client of the pool gets the one the last left
default_pool_size = 1
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 20
logfile = $bouncer_dir/pgbouncer.log
pidfile = $bouncer_dir/pgbouncer.pid
admin_users =
EOF2
"$PGBOUNCER" -d -q "$bouncer_dir/pgbouncer.ini"
for _ in $(seq 100); do [ -S "$bouncer_dir/.s.PGSQL.$bouncer_port" ] && break; sleep 0.1; done

passed=0 failed=0
check() {  # check NAME EXPECTED GOT
    if [ "$3" = "$2" ]; then
        echo "ok - $1"; passed=$((passed + 1))
    else
        echo "not ok - $1"; echo "#   expected: $2"; echo "#   got:      $3"; failed=$((failed + 1))
    fi
}

check "pgbouncer answers in transaction pooling" "app" "$(client -c 'SELECT current_user' 2>&1)"
check "attached without a mode: standard is stored" "standard" \
      "$(psql_db -d app -At -c "SELECT mode FROM optout.attachments WHERE kind = 'inbound'")"
# Client 1 lowers the setting for its session, and leaves.
client -c "SET optout.match_mode = 'exact'" >/dev/null 2>&1
# Client 2 gets the same server connection, with the setting left behind ...
check "client 2 inherits client 1's SET (the pool shares one connection)" "exact" \
      "$(client -c 'SHOW optout.match_mode' 2>&1)"
check "ad-hoc classify() follows the leftover session setting" "" \
      "$(client -c "SELECT optout.classify('Stop please')" 2>&1)"
# ... and its STOP still stops, in standard mode.
client -c "INSERT INTO app.msgs (contact, direction, body) VALUES (1, 'in', 'Stop please')" >/dev/null 2>&1
check "'Stop please' stops the contact despite the leftover exact" "S" \
      "$(psql_db -d app -At -c 'SELECT status FROM app.contacts WHERE id = 1')"
check "the stop is on record, read in standard mode" "stop|stop|courtesy" \
      "$(psql_db -d app -At -c "SELECT kind, keyword, rule FROM optout.events WHERE contact = '1'")"
check "a later send to the contact is marked failed" "F" \
      "$(client -c "INSERT INTO app.msgs (contact, direction, body) VALUES (1, 'out', 'sale!') RETURNING status" 2>&1)"
# A transaction's SET LOCAL, through the pool.
client -c "BEGIN" -c "SET LOCAL optout.match_mode = 'exact'" \
       -c "INSERT INTO app.msgs (contact, direction, body) VALUES (2, 'in', 'STOP!!')" -c "COMMIT" >/dev/null 2>&1
check "a STOP in a transaction with SET LOCAL exact stops" "S" \
      "$(psql_db -d app -At -c 'SELECT status FROM app.contacts WHERE id = 2')"
# The other settings enforcement reads cannot be set by the app at all.
for s in "confirmation_window = 3600" "help_reply_window = 3600" "confirm_manual_stops = on" \
         "revoke_all_from = ''"; do
    got=$(client -c "SET optout.$s" 2>&1 || true)
    case "$got" in
        *"permission denied to set parameter"*) check "the app cannot SET optout.${s%% =*}" yes yes ;;
        *) check "the app cannot SET optout.${s%% =*}" "permission denied" "$got" ;;
    esac
done
check "the pooled connection keeps optout.confirmation_window at its default" "5min" \
      "$(client -c 'SHOW optout.confirmation_window' 2>&1)"

echo "pgbouncer: $passed passed, $failed failed"
[ "$failed" = 0 ]
