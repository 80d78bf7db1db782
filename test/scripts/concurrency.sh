#!/usr/bin/env bash
# Concurrent mixed load (issue #27): pgbench clients on a RapidPro-shaped
# schema of 20,000 contacts, mixing inbound messages (STOP, START, HELP,
# ordinary text), single sends, INSERT ... SELECT broadcasts, re-queue
# UPDATEs, stops and starts by hand and provider stop events
# (test/scripts/concurrency/*.sql). The same script and seed run against the
# bare schema and the attached one:
#   - no deadlock (40P01) with optout attached where the bare schema has none
#     (counted from the server log, each cycle's DETAIL printed);
#   - the invariants: no sendable row for a stopped contact, ledger and
#     platform agreeing (status, groups, group counts, events), nothing
#     committed lost;
#   - a fault phase: cancels and terminations of backends mid-statement and a
#     kill -9 of the postmaster mid-load, a restart, the invariants again,
#     and every stop acknowledged to a client before the crash kept.
# Bounded: DURATION seconds of load per schema (default 10), FAULT_DURATION
# for each half of the fault phase (default 6). Prints ok / not ok lines and
# "concurrency: N passed, N failed". Run by scripts/test.sh.
set -euo pipefail
dl_bare=0 dl_attached=0
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/common.sh
. "$OPTOUT_ROOT/scripts/common.sh"
HERE="$OPTOUT_ROOT/test/scripts/concurrency"
DURATION=${DURATION:-10} FAULT_DURATION=${FAULT_DURATION:-6} CLIENTS=${CLIENTS:-8} SEED=${SEED:-27}
CONTACTS=20000 LOAD_CONTACTS=19000  # contacts above LOAD_CONTACTS: the journal's (fault phase)
export OPTOUT_SERVER_OPTS="-c log_lock_waits=on -c deadlock_timeout=20ms -c max_connections=40 -c jit=off -c log_line_prefix='%m [%p] %d '"
start_throwaway_server >/dev/null
LOG=$OPTOUT_SERVER_DIR/server.log
psql() { "$OPTOUT_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
passed=0 failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1"; failed=$((failed + 1)); }
check() {  # check NAME EXPECTED DB SQL
    local got
    got=$(psql -d "$3" -At -c "$4" 2>&1) || true
    if [ "$got" = "$2" ]; then ok "$1"; else not_ok "$1"; echo "#   expected: $2"; echo "#   got:      $got"; fi
}
deadlocks() {  # deadlocks DB: 40P01 errors the server logged for DB so far
    grep -c "\] $1 ERROR:  deadlock detected" "$LOG" || true
}
show_cycles() {  # the DETAIL lines of DB's deadlocks since line $2 of the log
    tail -n +"$2" "$LOG" | grep -A12 "\] $1 ERROR:  deadlock detected" | grep -E "deadlock detected|Process [0-9]+ waits|Process [0-9]+: " |
        sed 's/^/#   /' | head -60 || true
}
for db in bare attached; do
    psql -d postgres -c "CREATE DATABASE $db"
    psql -d $db -v contacts=$CONTACTS -f "$HERE/schema.sql" >/dev/null
    psql -d $db -f "$HERE/app_$db.sql" >/dev/null
done
scripts=(-f "$HERE/inbound.sql@40" -f "$HERE/send.sql@30" -f "$HERE/broadcast.sql@4"
         -f "$HERE/requeue.sql@10" -f "$HERE/stopstart.sql@16")
load() {  # load DB SECONDS [pgbench options]: the mixed load; prints tps
    local db=$1 secs=$2; shift 2
    "$OPTOUT_BINDIR/pgbench" -n -c "$CLIENTS" -j 2 -T "$secs" --random-seed="$SEED" -D contacts=$LOAD_CONTACTS \
        --max-tries=1 --failures-detailed "${scripts[@]}" "$@" "$db" > "$OPTOUT_SERVER_DIR/pgbench-$db.out" 2>&1 || true
    sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$OPTOUT_SERVER_DIR/pgbench-$db.out" | head -1
}

# The invariants, on the attached schema.
invariants() {  # invariants LABEL
    check "$1: no sendable row for a stopped contact" 0 attached "
        SELECT count(*) FROM msgs_msg m JOIN optout.stops s ON s.contact = m.contact_id::text
                                                           AND (s.channel IS NULL OR s.channel = m.channel_id::text)
         WHERE m.direction = 'O' AND m.status IN ('I', 'Q', 'E')"
    check "$1: a contact is stopped in the ledger exactly when its status is S" 0 attached "
        SELECT count(*) FROM contacts_contact c
         WHERE (c.status = 'S') <> EXISTS (SELECT 1 FROM optout.stops s WHERE s.contact = c.id::text AND s.channel IS NULL)"
    check "$1: a stopped contact is in its org's \\Stopped group and no other" 0 attached "
        SELECT count(*) FROM contacts_contact c JOIN optout.stops s ON s.contact = c.id::text AND s.channel IS NULL
         WHERE (SELECT array_agg(g.group_type || g.org_id) FROM contacts_contactgroup_contacts m
                  JOIN contacts_contactgroup g ON g.id = m.contactgroup_id WHERE m.contact_id = c.id)
               IS DISTINCT FROM ARRAY['S' || c.org_id]"
    check "$1: RapidPro's group counts equal the memberships" 0 attached "
        SELECT count(*) FROM contacts_contactgroup g
         WHERE (SELECT coalesce(sum(count), 0) FROM contacts_contactgroupcount n WHERE n.group_id = g.id)
               <> (SELECT count(*) FROM contacts_contactgroup_contacts m WHERE m.contactgroup_id = g.id)"
    check "$1: every ledger row points at its stop event" 0 attached "
        SELECT count(*) FROM optout.stops s LEFT JOIN optout.events e ON e.id = s.event_id
         WHERE e.id IS NULL OR e.kind <> 'stop' OR e.contact <> s.contact"
}

# 1. The mixed load, bare then attached, the same seed.
for db in bare attached; do
    from=$(($(wc -l < "$LOG") + 1))
    before=$(deadlocks $db)
    tps=$(load $db "$DURATION")
    n=$(( $(deadlocks $db) - before ))
    if [ "$db" = bare ]; then dl_bare=$n; else dl_attached=$n; fi
    echo "# $db: $CLIENTS clients, ${DURATION}s: ${tps:-?} tps, $n deadlocks"
    [ "$n" = 0 ] || show_cycles $db "$from"
    grep -E "^(number of (failed|deadlock)|.*aborted)" "$OPTOUT_SERVER_DIR/pgbench-$db.out" | sed 's/^/#   /' || true
done
if [ "$dl_bare" = 0 ]; then
    if [ "$dl_attached" = 0 ]; then ok "no deadlock attached (bare schema: none)"
    else not_ok "no deadlock attached (bare schema: none): $dl_attached"; fi
else
    echo "# the bare schema itself deadlocked ($dl_bare): the workload is not a valid baseline"
    not_ok "the bare schema runs the workload without deadlock"
fi
check "the attached load committed messages" t attached "SELECT count(*) > 1000 FROM msgs_msg WHERE text <> 'history'"
check "the attached load stopped contacts" t attached "SELECT count(*) > 10 FROM optout.stops"
invariants "after the load"

# 2. Faults: cancels and terminations mid-statement, kill -9 of the
# postmaster mid-load, a restart. Meanwhile a journal writer stops contacts
# above LOAD_CONTACTS, one a transaction, and notes each acknowledged commit.
acked=$OPTOUT_SERVER_DIR/acked
: > "$acked"
journal() {  # journal FIRST: until the stop file exists
    local n=$1
    while [ ! -e "$OPTOUT_SERVER_DIR/stop-journal" ] && [ "$n" -le "$CONTACTS" ]; do
        if psql -d attached -c "BEGIN; INSERT INTO journal VALUES ($n, $n);
                INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1 + $n % 2, 7, $n, 'queued first', 'O', 'Q');
                INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1 + $n % 2, 7, $n, 'STOP', 'I', 'P');
                COMMIT;" >/dev/null 2>&1; then echo "$n" >> "$acked"; else sleep 0.1; fi
        n=$((n + 1))
    done
}
interrupt() {  # interrupt FUNCTION COUNT: cancel or terminate COUNT busy backends of the load
    psql -d postgres -At -c "SELECT count($1(pid)) FROM (SELECT pid FROM pg_stat_activity
        WHERE datname = 'attached' AND application_name = 'pgbench' AND state = 'active' AND pid <> pg_backend_pid()
        ORDER BY random() LIMIT $2) p" 2>/dev/null || echo 0
}
cancels=0 terms=0
alive() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
fault_round() {  # fault_round CRASH(0/1)
    rm -f "$OPTOUT_SERVER_DIR/stop-journal"
    local last
    last=$(tail -n1 "$acked")
    journal "$(( ${last:-$LOAD_CONTACTS} + 1 ))" &
    local jpid=$!
    load attached "$FAULT_DURATION" >/dev/null &
    local lpid=$!
    for _ in 1 2 3 4 5 6; do
        sleep 0.4
        cancels=$((cancels + $(interrupt pg_cancel_backend 2)))
    done
    terms=$((terms + $(interrupt pg_terminate_backend 1)))
    if [ "$1" = 1 ]; then
        sleep 0.5
        local pm kids=()
        pm=$(head -1 "$OPTOUT_SERVER_DIR/data/postmaster.pid")
        mapfile -t kids < <(pgrep -P "$pm")
        kill -9 "$pm"
        # Its processes go when they see it gone; the rest with it.
        for _ in $(seq 1 50); do alive "${kids[@]}" || break; sleep 0.2; done
        [ ${#kids[@]} = 0 ] || kill -9 "${kids[@]}" 2>/dev/null || true
    fi
    wait "$lpid" || true
    touch "$OPTOUT_SERVER_DIR/stop-journal"
    wait "$jpid" || true
    if [ "$1" = 1 ]; then
        for _ in $(seq 1 50); do alive "${kids[@]}" || break; sleep 0.2; done
        "$OPTOUT_BINDIR/pg_ctl" -D "$OPTOUT_SERVER_DIR/data" -l "$LOG" -w \
            -o "-c listen_addresses='' -c unix_socket_directories='$OPTOUT_SERVER_DIR' -c port=54329 $OPTOUT_SERVER_OPTS" \
            start >/dev/null 2>&1
    fi
}
before=$(deadlocks attached)
from=$(($(wc -l < "$LOG") + 1))
fault_round 0
fault_round 1
fault_round 0
n=$(( $(deadlocks attached) - before ))
LOST="SELECT a.n, EXISTS (SELECT 1 FROM journal j WHERE j.n = a.n) AS journal,
       EXISTS (SELECT 1 FROM optout.stops s WHERE s.contact = a.n::text AND s.channel IS NULL) AS ledger,
       (SELECT status FROM contacts_contact c WHERE c.id = a.n) AS status,
       (SELECT string_agg(m.text || ':' || m.status, ',') FROM msgs_msg m WHERE m.contact_id = a.n) AS msgs
  FROM unnest('{$(paste -sd, "$acked")}'::int[]) a(n)
 WHERE NOT EXISTS (SELECT 1 FROM journal j WHERE j.n = a.n)
    OR NOT EXISTS (SELECT 1 FROM optout.stops s WHERE s.contact = a.n::text AND s.channel IS NULL)
    OR NOT EXISTS (SELECT 1 FROM contacts_contact c WHERE c.id = a.n AND c.status = 'S')
    OR EXISTS (SELECT 1 FROM msgs_msg m WHERE m.contact_id = a.n AND m.direction = 'O' AND m.status IN ('I', 'Q', 'E'))"
echo "# fault phase: $cancels cancels, $terms terminations, 1 kill -9 of the postmaster; $(wc -l < "$acked") journal stops acknowledged"
check "the server recovered from kill -9" 1 attached "SELECT 1"
if [ "$n" = 0 ]; then ok "no deadlock in the fault phase"; else not_ok "no deadlock in the fault phase: $n"; show_cycles attached "$from"; fi
if [ "$cancels" -gt 0 ]; then ok "backends were cancelled mid-load ($cancels)"; else not_ok "backends were cancelled mid-load"; fi
invariants "after the faults"
missing=$(psql -d attached -At -c "SELECT count(*) FROM ($LOST) l")
[ "$missing" = 0 ] || psql -d attached -c "SELECT * FROM ($LOST) l LIMIT 5" | sed 's/^/#   /'
if [ "$(wc -l < "$acked")" -gt 0 ] && [ "$missing" = 0 ]; then
    ok "every acknowledged stop kept through the crash, its queued message failed"
else
    not_ok "every acknowledged stop kept through the crash, its queued message failed ($missing missing)"
fi
echo "concurrency: $passed passed, $failed failed"
[ "$failed" = 0 ]
