#!/usr/bin/env bash
# optout on a hot standby made with pg_basebackup (issue #26): the functions
# that write the ledger (stop, start, record_delivery_error) fail with a
# clear error (SQLSTATE 25006) naming optout and the standby; reads
# (is_stopped, classify, the reports, health) work, and see the primary's
# stops once replayed. Its own primary and standby, on unix sockets in
# private directories, both stopped on exit. Prints "ok"/"not ok" lines and a
# closing "standby: N passed, N failed" line.
#
# Run by scripts/test.sh (as an unprivileged user, after the build).
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/common.sh
. "$OPTOUT_ROOT/scripts/common.sh"
start_throwaway_server >/dev/null
standby_dir=$OPTOUT_SERVER_DIR/standby
standby_port=54349
stop_all() {
    "$OPTOUT_BINDIR/pg_ctl" -D "$standby_dir/data" -m immediate stop >/dev/null 2>&1 || true
    stop_throwaway_server
}
trap stop_all EXIT

primary() { timeout 60 "$OPTOUT_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -d app "$@"; }
# On the standby: errors with their SQLSTATE ("ERROR:  25006: ...").
standby() { timeout 60 "$OPTOUT_BINDIR/psql" -X -q -At -v VERBOSITY=verbose -h "$standby_dir" -p "$standby_port" -d app "$@" 2>&1; }

passed=0 failed=0
check() {  # check NAME EXPECTED GOT
    if [ "$3" = "$2" ]; then
        echo "ok - $1"; passed=$((passed + 1))
    else
        echo "not ok - $1"; echo "#   expected: $2"; echo "#   got:      $3"; failed=$((failed + 1))
    fi
}
check_error() {  # check_error NAME SQL: fails on the standby with 25006, naming optout and the standby
    local got
    got=$(standby -c "$2" | grep -E '^ERROR' | head -n 1 || true)
    case "$got" in
        "ERROR:  25006: optout: cannot "*" on a hot standby") check "$1" yes yes ;;
        *) check "$1" "ERROR:  25006: optout: cannot ... on a hot standby" "$got" ;;
    esac
}

"$OPTOUT_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d postgres -c 'CREATE DATABASE app'
primary >/dev/null <<'SQL'
CREATE EXTENSION optout;
CREATE TABLE contacts (id int PRIMARY KEY, status text NOT NULL DEFAULT 'A');
CREATE TABLE msgs (id serial, contact int, direction text, body text, status text DEFAULT 'Q');
INSERT INTO contacts SELECT generate_series(1, 9);
SELECT optout.attach_inbound('msgs', 'body', 'contact', row_filter => '{"direction": "in"}');
SELECT optout.attach_outbound('msgs', 'contact', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}', row_filter => '{"direction": "out"}');
SELECT optout.attach_contacts('contacts', 'id', 'status', 'S', 'A');
INSERT INTO msgs (contact, direction, body) VALUES (1, 'in', 'STOP');
SQL

mkdir -p "$standby_dir"
if timeout 120 "$OPTOUT_BINDIR/pg_basebackup" -h "$PGHOST" -p "$PGPORT" -U postgres -D "$standby_dir/data" -R -X stream \
        >"$standby_dir/basebackup.log" 2>&1; then
    check "pg_basebackup made a standby" yes yes
else
    sed 's/^/#   /' "$standby_dir/basebackup.log"; check "pg_basebackup made a standby" yes no
    echo "standby: $passed passed, $failed failed"; exit 1
fi
timeout 120 "$OPTOUT_BINDIR/pg_ctl" -D "$standby_dir/data" -l "$standby_dir/server.log" -w \
    -o "-c listen_addresses='' -c unix_socket_directories='$standby_dir' -c port=$standby_port -c hot_standby=on" \
    start >/dev/null
check "the standby is in recovery" "t" "$(standby -c 'SELECT pg_is_in_recovery()')"

# Writes: a clear error.
check_error "optout.stop on the standby: 25006, naming optout and the standby" "SELECT optout.stop('2')"
check_error "optout.start on the standby: 25006" "SELECT optout.start('1', reason => 'consent form')"
check_error "optout.record_delivery_error on the standby: 25006" \
            "SELECT optout.record_delivery_error('3', NULL, 'twilio', '21610')"
check "the error's hint says to call it on the primary" "HINT:  Call optout.stop() on the primary." \
      "$(standby -c "SELECT optout.stop('2')" | grep '^HINT' || true)"

# Reads: work, and see the primary's data.
check "is_stopped reads the replicated ledger" "t|f" "$(standby -c "SELECT optout.is_stopped('1'), optout.is_stopped('2')")"
check "classify works" "opt_out" "$(standby -c "SELECT optout.classify('Stop please')")"
check "the reports work (stopped_now)" "1" "$(standby -c 'SELECT count(*) FROM optout.stopped_now')"
check "explain_contact works" "true" "$(standby -c "SELECT optout.explain_contact('1') ->> 'stopped'")"
check "health() works" "3|t" "$(standby -c 'SELECT count(*), bool_and(triggers_ok) FROM optout.health()')"
# A stop on the primary reaches the standby.
primary -c "SELECT optout.stop('4', reason => 'asked by phone')" >/dev/null
lsn=$(primary -c 'SELECT pg_current_wal_lsn()')
for _ in $(seq 100); do
    [ "$(standby -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")" = t ] && break
    sleep 0.2
done
check "a stop made on the primary is seen on the standby" "t" "$(standby -c "SELECT optout.is_stopped('4')")"

echo "standby: $passed passed, $failed failed"
[ "$failed" = 0 ]
