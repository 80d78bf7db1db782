#!/usr/bin/env bash
# Where a backend's CPU goes, counted rather than timed: each measured
# statement runs alone in a single-user backend under callgrind (bare, on
# the floor of a BEFORE ROW trigger that calls nothing, and attached), and
# the report gives the instructions of the statement (with its commit) and
# of the functions named below, plus the WAL it writes. The
# counts are the same from run to run whatever else the machine is doing, so
# two builds (two commits) compare on a busy machine, where the timings of
# bench/run.sh cannot. They leave out what is not CPU in the backend: waits,
# I/O, the WAL flush (the WAL bytes stand in for that).
#
#   bash bench/profile.sh [OUTDIR]              the installed build of PG_CONFIG
#   ROWS=20000 CONTACTS=2000 CASES="out_copy stop" bash bench/profile.sh
#   WARM_STOPS=1   stops and starts before the measured statement of the
#                  inbound cases, which build the caches and prepare the
#                  statements (optout plans them at every execution, so more
#                  warm-ups count the same: checked with 8)
#   bash bench/profile.sh --compare OLDDIR NEWDIR   two reports side by side
#
# PG_CONFIG names the PostgreSQL whose installed optout is measured (default:
# pg_config on the PATH); nothing is built or installed here. To profile
# another commit, build and install it into a copy of the PostgreSQL tree
# (docs/benchmarks-analysis.md shows how). As root, the servers run as the
# postgres user.
#
# Cases (each in a fresh copy of the data; the warm-up statements first, in
# the same backend, so the caches and plans are built as in a long-lived
# connection; only the last statement is counted):
#   out_copy     COPY of ROWS outbound messages, 10% of contacts stopped (mark)
#   broadcast    INSERT ... SELECT of one message per contact, the same table
#   update       the platform's status UPDATE of every queued message
#                (queued -> wired): nothing is made sendable
#   in_copy      COPY of ROWS inbound messages, 5% keyword messages, onto the
#                table with attach_inbound + attach_outbound, contacts and
#                groups attached (as run.sh's "inbound")
#   plain_copy   the same without a keyword message
#   stop         one inbound STOP (the contact in 10 groups, with a queued message)
#   rp_stop      one inbound STOP on the RapidPro-shaped schema of bench/run.sh's
#                "concurrent" workload (test/scripts/concurrency/schema.sql,
#                CONTACTS contacts, its triggers; attach_rapidpro(): the
#                Stopped group found by its query), the contact with a
#                queued message
#   rp_send      one outbound message (a single send, as the concurrent
#                workload's send.sql), the same schema and warm-ups
#   rp_restop    a second STOP from the contact of rp_stop (already stopped)
#   rp_help      an inbound HELP, the same schema and warm-ups
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ "${1:-}" = --compare ]; then
    old=$2 new=$3
    python3 - "$old" "$new" <<'EOF'
import json, sys
old, new = (json.load(open(d + "/profile.json")) for d in sys.argv[1:3])
print("| case | variant | Ir old | Ir new | new/old | WAL bytes old | WAL bytes new |")
print("|---|---|---|---|---|---|---|")
for case in new["cases"]:
    for v in ("bare", "floor", "attached"):
        if v not in new["cases"][case]:
            continue
        o = old["cases"].get(case, {}).get(v)
        n = new["cases"][case][v]
        r = f'{n["ir"] / o["ir"]:.2f}' if o else ""
        print(f'| {case} | {v} | {o["ir"] if o else ""} | {n["ir"]} | {r} | {o["wal"] if o else ""} | {n["wal"]} |')
print()
print("Functions, attached, inclusive instructions per case (old -> new):")
for case in new["cases"]:
    fo = old["cases"].get(case, {}).get("attached", {}).get("functions", {})
    fn = new["cases"][case]["attached"]["functions"]
    print(f"\n{case}:")
    for f in sorted(set(fo) | set(fn), key=lambda f: -max(fo.get(f, 0), fn.get(f, 0))):
        print(f"  {fo.get(f, 0):>14,} -> {fn.get(f, 0):>14,}  {f}")
EOF
    exit 0
fi

PG_CONFIG=${PG_CONFIG:-pg_config}
ROWS=${ROWS:-20000} CONTACTS=${CONTACTS:-2000} WARM_STOPS=${WARM_STOPS:-1}
CASES=${CASES:-out_copy broadcast update in_copy plain_copy stop}
out=${1:-/tmp/optout-profile}
command -v valgrind >/dev/null || { echo "profile.sh: valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses root: the same script as an unprivileged user, on a
    # copy of the tree (scripts/common.sh), writing into $out.
    OPTOUT_ROOT=$(cd "$here/.." && pwd)
    # shellcheck source=scripts/common.sh
    . "$OPTOUT_ROOT/scripts/common.sh"
    chmod 777 "$out"
    export PG_CONFIG ROWS CONTACTS CASES WARM_STOPS
    rc=0
    reexec_unprivileged ../bench/profile.sh "$out" || rc=$?
    exit "$rc"
fi

bin=$("$PG_CONFIG" --bindir)
work=$(mktemp -d /tmp/optout-profile.XXXXXX)
trap '"$bin/pg_ctl" -D "$work/base" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
port=$((55000 + RANDOM % 1000))
opts=(-c shared_buffers=512MB -c autovacuum=off -c max_wal_size=4GB -c jit=off -c max_parallel_workers_per_gather=0)

echo "==> building the data: $ROWS messages a file, $CONTACTS contacts (PG_CONFIG=$PG_CONFIG)"
"$bin/initdb" -D "$work/base" -E UTF8 --locale=C --no-sync >/dev/null
"$bin/pg_ctl" -D "$work/base" -l "$work/server.log" -w \
    -o "-p $port -k $work -c listen_addresses= ${opts[*]}" start >/dev/null
for db in out_bare out_att in_bare in_att rp_bare rp_att; do
    "$bin/psql" -X -q -h "$work" -p "$port" -d postgres -c "CREATE DATABASE $db" >/dev/null
    if [ "${db%_*}" = rp ]; then
        # The concurrency test's schema and its app_bare.sql / app_attached.sql.
        app=$([ "${db#*_}" = att ] && echo attached || echo bare)
        "$bin/psql" -X -q -h "$work" -p "$port" -d "$db" -v ON_ERROR_STOP=1 -v contacts="$CONTACTS" \
            -f "$here/../test/scripts/concurrency/schema.sql" \
            -f "$here/../test/scripts/concurrency/app_$app.sql" >/dev/null
        "$bin/psql" -X -q -h "$work" -p "$port" -d "$db" -c "VACUUM ANALYZE" -c CHECKPOINT >/dev/null
        continue
    fi
    "$bin/psql" -X -q -h "$work" -p "$port" -d "$db" -v rows="$ROWS" -v contacts="$CONTACTS" \
        -v kind="${db%_*}" -v attached="$([ "${db#*_}" = att ] && echo 1 || echo 0)" -v datadir="$work" \
        -f "$here/profile.sql" >/dev/null
done
version=$("$bin/psql" -X -At -h "$work" -p "$port" -d in_att -c "SELECT extversion FROM pg_extension WHERE extname = 'optout'")
"$bin/pg_ctl" -D "$work/base" -w stop >/dev/null

# The statements of a case: its database kind, warm-ups and the measured one.
statements() {  # statements CASE
    local c=$CONTACTS
    case $1 in
        out_copy|broadcast|update)
            echo "INSERT INTO msgs VALUES (-10000001, 10, 1, 'O', 'Q', NULL, NULL, 'warm-up', now())"
            echo "INSERT INTO msgs VALUES (-10000002, 11, 1, 'O', 'Q', NULL, NULL, 'warm-up', now())"
            echo "INSERT INTO msgs SELECT -10000010 - i, i, 1, 'O', 'Q', NULL, NULL, 'warm-up', now() FROM generate_series(1, 20) AS i"
            if [ "$1" = out_copy ]; then
                echo "COPY msgs FROM '$work/outbound.copy'"
            elif [ "$1" = update ]; then
                echo "UPDATE msgs SET status = 'W', sent_on = now() WHERE status = 'Q' AND id > -10000000"
            else
                echo "INSERT INTO msgs SELECT 20000000 + c, c, 1 + c % 3, 'O', 'Q', NULL, NULL, 'Our offices are closed on Monday. Reply STOP to opt out.', now() FROM generate_series(1, $c) AS c"
            fi ;;
        rp_stop|rp_send|rp_restop|rp_help)
            # A queued message of the contact; six stops and starts of
            # others (the plan cache makes custom plans for a statement's
            # first five executions, the platform's foreign-key checks
            # among them); then the STOP, as mailroom stores it.
            local ins="INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES"
            echo "$ins (1, 7, 2, 'queued', 'O', 'Q')"
            for ((i = 0; i < 6; i++)); do
                echo "$ins ($((1 + (i + 3) % 2)), 7, $((i + 3)), 'STOP', 'I', 'P')"
                echo "$ins ($((1 + (i + 3) % 2)), 7, $((i + 3)), 'START', 'I', 'P')"
            done
            case $1 in
                rp_send) echo "$ins (1, 7, 2, 'news', 'O', 'Q')" ;;
                rp_help) echo "$ins (1, 7, 2, 'HELP', 'I', 'P')" ;;
                rp_restop) echo "$ins (1, 7, 2, 'STOP', 'I', 'P')"
                           echo "$ins (1, 7, 2, 'STOP', 'I', 'P')" ;;
                *) echo "$ins (1, 7, 2, 'STOP', 'I', 'P')" ;;
            esac ;;
        in_copy|plain_copy|stop)
            # Stops and starts of a contact outside the data prepare the
            # stop's statements (WARM_STOPS of each).
            echo "INSERT INTO msgs VALUES (-10000001, 1, 1, 'I', 'H', NULL, NULL, 'ok thanks', now())"
            for ((i = 0; i < WARM_STOPS; i++)); do
                echo "INSERT INTO msgs VALUES ($((-10000100 - 2 * i)), $((c + 1)), 1, 'I', 'H', NULL, NULL, 'STOP', now())"
                echo "INSERT INTO msgs VALUES ($((-10000101 - 2 * i)), $((c + 1)), 1, 'I', 'H', NULL, NULL, 'START', now())"
            done
            case $1 in
                in_copy) echo "COPY msgs FROM '$work/inbound.copy'" ;;
                plain_copy) echo "COPY msgs FROM '$work/plain.copy'" ;;
                stop) echo "INSERT INTO msgs VALUES (30000000, 7, 2, 'I', 'H', NULL, NULL, 'STOP', now())" ;;
            esac ;;
        *) echo "profile.sh: unknown case '$1'" >&2; return 2 ;;
    esac
}
# The floor: the bare table with a BEFORE INSERT OR UPDATE row trigger whose
# WHEN never holds (no function is called), which makes COPY insert row by
# row as any BEFORE ROW trigger does (optout_outbound is one), and makes an
# UPDATE fetch each old row for it.
floor_trigger() {  # floor_trigger VARIANT
    [ "$1" = floor ] || return 0
    echo "CREATE FUNCTION floor_noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'"
    echo "CREATE TRIGGER floor_never BEFORE INSERT OR UPDATE ON msgs FOR EACH ROW WHEN (NEW.direction = 'X') EXECUTE FUNCTION floor_noop()"
}
kind_of() { case $1 in out_copy|broadcast|update) echo out ;; rp_*) echo rp ;; *) echo in ;; esac; }

# Functions reported (inclusive), by name as callgrind_annotate prints them.
functions='^(CopyFrom|ExecInsert|ExecUpdate|ExecBRInsertTriggers|ExecBRUpdateTriggers|heap_update|ExecARInsertTriggers|TriggerEnabled|AfterTriggerEndQuery|CommitTransaction|PreCommit_Notify|AtCommit_Notify|heap_insert|heap_multi_insert|ExecInsertIndexTuples|XLogInsert|SPI_execute_plan|SPI_execute_plan_extended|SPI_execute_with_args|set_config_option|NewGUCNestLevel|AtEOXact_GUC|SetUserIdAndSecContext|LockAcquire|LockAcquireExtended|.*optout.*)$'

json="$out/profile.json"
echo "{\"version\": \"$version\", \"rows\": $ROWS, \"contacts\": $CONTACTS, \"cases\": {" > "$json"
first=1
for c in $CASES; do
    kind=$(kind_of "$c")
    [ $first = 1 ] || echo "," >> "$json"
    first=0
    echo "\"$c\": {" >> "$json"
    variants="bare attached"
    case $c in stop|rp_*) ;; *) variants="bare floor attached" ;; esac
    for v in $variants; do
        db=${kind}_$([ "$v" = attached ] && echo att || echo bare)
        rm -rf "$work/run"
        cp -a "$work/base" "$work/run"
        # The WAL it writes, from a run without valgrind.
        wal=$({ floor_trigger "$v"; statements "$c" | sed '$d'
                echo "SELECT 'lsn0=' || pg_current_wal_insert_lsn()"
                statements "$c" | tail -1
                echo "SELECT 'lsn1=' || pg_current_wal_insert_lsn()"; } |
              "$bin/postgres" --single -D "$work/run" -F "${opts[@]}" "$db" 2>&1 |
              sed -n 's/.*"lsn\([01]\)=\([0-9A-F/]*\)".*/\2/p' | paste -sd' ')
        read -r lsn0 lsn1 <<< "$wal"
        wal_bytes=$(python3 -c "import sys
a, b = ((int(h, 16) << 32) + int(l, 16) for h, l in (x.split('/') for x in sys.argv[1:3]))
print(b - a)" "$lsn0" "$lsn1")
        rm -rf "$work/run"
        cp -a "$work/base" "$work/run"
        # Every statement zeroes the counts as it is parsed (pg_parse_query:
        # exported, where exec_simple_query is static); the dump before
        # proc_exit holds the last one (with its commit).
        { floor_trigger "$v"; statements "$c"; } |
            valgrind --tool=callgrind --zero-before=pg_parse_query --dump-before=proc_exit \
                     --callgrind-out-file="$out/$c.$v.cg" \
                     "$bin/postgres" --single -D "$work/run" -F "${opts[@]}" "$db" > "$out/$c.$v.log" 2>&1
        cg="$out/$c.$v.cg.1"
        [ -f "$cg" ] || { echo "profile.sh: no dump for $c $v (see $out/$c.$v.log)" >&2; exit 1; }
        ir=$(sed -n 's/^summary: //p' "$cg")
        echo "    $c $v: $ir instructions, $wal_bytes WAL bytes"
        {
        echo "\"$v\": {\"ir\": $ir, \"wal\": $wal_bytes, \"functions\": {"
        callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$cg" 2>/dev/null |
            awk -v re="$functions" '
                /^ *[0-9,]+ / {
                    ir = $1; gsub(",", "", ir)
                    name = $0; sub(/^ *[0-9,]+ +(\([ 0-9.%]+\) +)?/, "", name)
                    sub(/^[^:]*:/, "", name); sub(/ \[[^]]*\]$/, "", name)
                    short = name; sub(/\(.*$/, "", short)
                    gsub(/["\\]/, "", name)
                    if (short ~ re && !(name in seen)) { seen[name] = 1; printf "%s\"%s\": %s", sep, name, ir; sep = ", " }
                }'
        echo "}}$([ "$v" = attached ] || echo ,)"
        } >> "$json"
    done
    echo "}" >> "$json"
done
echo "}}" >> "$json"
python3 - "$json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print(f'==> optout {d["version"]}, {d["rows"]} messages, {d["contacts"]} contacts')
print("| case | bare Ir | floor Ir | attached Ir | attached/bare | floor/bare | attached/floor | bare WAL | floor WAL | attached WAL |")
print("|---|---|---|---|---|---|---|---|---|---|")
for c, v in d["cases"].items():
    b, f, a = v["bare"], v.get("floor"), v["attached"]
    def n(x, k):
        return f"{x[k]:,}" if x else ""
    def r(x, y):
        return f"{x['ir'] / y['ir']:.2f}x" if x and y else ""
    print(f"| {c} | {n(b, 'ir')} | {n(f, 'ir')} | {n(a, 'ir')} | {r(a, b)} | {r(f, b)} | {r(a, f)} "
          f"| {n(b, 'wal')} | {n(f, 'wal')} | {n(a, 'wal')} |")
EOF
echo "==> $json (bash bench/profile.sh --compare OLD NEW compares two)"
