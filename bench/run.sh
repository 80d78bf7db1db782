#!/usr/bin/env bash
# Every benchmark of optout in one run: builds the data, runs each workload
# against its baselines in the same run (variants alternated, RUNS
# repetitions; a ratio is the median of the per-run ratios), prints the
# ratios and whether each target is met, and writes the table, the machine
# and the command to docs/benchmarks.md.
#
#   bash bench/run.sh                        the full scale (docs/benchmarks.md gives its wall time)
#   SCALE=0.1 RUNS=2 bash bench/run.sh       a smoke test (under a minute)
#   WORKLOADS="outbound latency" bash bench/run.sh
#
# Environment:
#   SCALE      multiplies every row count (default 1: 1,000,000 messages,
#              100,000 contacts; 1,000,000 contacts and 10,000,000
#              memberships for the stop latency)
#   RUNS       repetitions of each variant (default 5; the broadcast, ten
#              times smaller, runs 3 times as many)
#   STOPS      STOPs timed per data size in "latency" (default 1000)
#   WORKLOADS  a subset of: classify inbound (with the COPY of ordinary
#              messages only, inbound_plain) outbound (with the INSERT ...
#              SELECT broadcast, the status UPDATE and the large-ledger
#              sends) rapidpro (the outbound COPY and the status UPDATE on
#              RapidPro's msgs_msg and its indexes) partitioned
#              latency backfill concurrent (default: all),
#              and breakdown (not in the default: where the time of the
#              attached COPYs goes, a piece at a time; bench/run-breakdown.sql)
#   CONC_CLIENTS, CONC_SECONDS, CONC_WAITS  the "concurrent" workload's
#              client counts (default "1 4 8"), seconds a run (10), and
#              wait-event sampling (bench/run-concurrent.sh)
#   BENCH_DOC  where to write the report (default docs/benchmarks.md, written
#              only by a full run: default SCALE, RUNS, STOPS and WORKLOADS)
#
# As root it re-runs itself as the postgres user on a copy of the tree (see
# scripts/common.sh) and copies the report back. Timing is server-side:
# clock_timestamp() around EXECUTE and COMMIT in a procedure (bench.timed).
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
. "$OPTOUT_ROOT/scripts/common.sh"

ALL_WORKLOADS="classify inbound outbound rapidpro partitioned latency backfill concurrent"
# docs/benchmarks.md may end with sections that other scripts write, after
# this line; a report written over it keeps them (the line and everything
# after it), whatever this run measured.
KEEP_MARKER='<!-- sections below are written by other scripts -->'
write_report() {  # write_report <new report> <destination>
    local new=$1 dest=$2 tmp
    tmp=$(mktemp)
    cp "$new" "$tmp"
    if [ -f "$dest" ] && grep -qxF -- "$KEEP_MARKER" "$dest" && ! grep -qxF -- "$KEEP_MARKER" "$tmp"; then
        { echo; awk -v m="$KEEP_MARKER" 'kept || $0 == m { kept = 1; print }' "$dest"; } >> "$tmp"
    fi
    cp "$tmp" "$dest"
    rm -f "$tmp"
}
if [ -z "${OPTOUT_UNPRIVILEGED:-}" ]; then
    # The command as typed, with the settings given in the environment.
    cmd=""
    for v in SCALE RUNS STOPS WORKLOADS CONC_CLIENTS CONC_SECONDS CONC_WAITS BENCH_DOC; do
        val=$(printenv "$v" || true)
        [ -n "$val" ] || continue
        case $val in *[[:space:]]*) cmd+="$v=\"$val\" " ;; *) cmd+="$v=$val " ;; esac
    done
    export BENCH_COMMAND="${cmd}bash bench/run.sh"
fi
SCALE=${SCALE:-1} RUNS=${RUNS:-5} STOPS=${STOPS:-1000} WORKLOADS=${WORKLOADS:-$ALL_WORKLOADS}
export SCALE RUNS STOPS WORKLOADS
for w in $WORKLOADS; do
    case $w in
        classify|inbound|outbound|rapidpro|partitioned|latency|backfill|concurrent|breakdown) ;;
        *) echo "unknown workload '$w' (known: $ALL_WORKLOADS breakdown)" >&2; exit 2 ;;
    esac
done
full_run=0
if [ "$SCALE" = 1 ] && [ "$RUNS" = 5 ] && [ "$STOPS" = 1000 ] && [ "$WORKLOADS" = "$ALL_WORKLOADS" ]; then full_run=1; fi

if [ -z "${OPTOUT_UNPRIVILEGED:-}" ]; then
    # The revision of the tree (the copy made for an unprivileged run has no .git).
    if git -C "$OPTOUT_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
        rev=$(git -C "$OPTOUT_ROOT" rev-parse --short HEAD)
        dirty=$(git -C "$OPTOUT_ROOT" status --porcelain -- src sql Makefile optout.control |
                awk '{ print $2 }' | paste -sd' ' -)
        [ -n "$dirty" ] && rev="$rev + uncommitted changes to $dirty"
        export BENCH_REVISION=$rev
    fi
    # Where the report goes: BENCH_DOC, or docs/benchmarks.md for a full run.
    dest=${BENCH_DOC:-}
    if [ -z "$dest" ] && [ "$full_run" = 1 ]; then dest="$OPTOUT_ROOT/docs/benchmarks.md"; fi
    if [ -n "$dest" ]; then case $dest in /*) ;; *) dest="$PWD/$dest" ;; esac; fi
    ensure_packages
    if [ "$(id -u)" = 0 ]; then
        out=$(mktemp -d /tmp/optout-bench.XXXXXX)
        chmod 777 "$out"
        if [ -n "$dest" ]; then export BENCH_DOC_OUT="$out/benchmarks.md"; fi
        rc=0
        reexec_unprivileged ../bench/run.sh "$@" || rc=$?
        if [ -n "$dest" ] && [ -s "$out/benchmarks.md" ]; then
            mkdir -p "$(dirname "$dest")"
            write_report "$out/benchmarks.md" "$dest"
            echo "==> wrote $dest"
        fi
        rm -rf "$out"
        exit "$rc"
    fi
    if [ -n "$dest" ]; then export BENCH_DOC_OUT="$dest"; fi
fi

# ---------------------------------------------------------------------------
# As an unprivileged user, from here on.
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
num() { awk -v s="$SCALE" -v n="$1" 'BEGIN { v = int(s * n + 0.5); print (v < 1 ? 1 : v) }'; }
ROWS=$(num 1000000)           # messages per COPY, bodies, history rows
CONTACTS=$(num 100000)        # contacts of inbound and outbound
BROADCAST=$(num 100000)       # rows of the INSERT ... SELECT broadcast
LAT_CONTACTS=$(num 1000000)   # stop latency: contacts (10 memberships each)

# The data fits in shared_buffers; no parallelism, no JIT, no autovacuum (each
# run VACUUMs what it reset) and no checkpoint during a timed run (each run is
# preceded by a CHECKPOINT). The lock table keeps its default size: a
# transaction that stops many contacts escalates to one database-wide lock
# after 256 (before that fix, the inbound COPY failed with "out of shared
# memory" unless max_locks_per_transaction was raised).
OPTOUT_SERVER_OPTS="-c shared_buffers=${BENCH_SHARED_BUFFERS:-4GB} -c max_parallel_workers_per_gather=0 -c jit=off \
 -c max_parallel_maintenance_workers=0 -c maintenance_work_mem=1GB -c work_mem=64MB -c autovacuum=off \
 -c max_wal_size=20GB -c checkpoint_timeout=1h${BENCH_MAX_LOCKS:+ -c max_locks_per_transaction=$BENCH_MAX_LOCKS}"
# The breakdown lists the statements optout runs, with pg_stat_statements.
case " $WORKLOADS " in *" breakdown "*) OPTOUT_SERVER_OPTS+=" -c shared_preload_libraries=pg_stat_statements" ;; esac
export OPTOUT_SERVER_OPTS
start_throwaway_server
psql() { "$OPTOUT_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
# NOTICEs are the progress lines; strip psql's "file:line" prefix.
run_sql() {
    local file=$1; shift
    psql -v rows="$ROWS" -v contacts="$CONTACTS" -v broadcast="$BROADCAST" -v lat_contacts="$LAT_CONTACTS" \
         -v runs="$RUNS" -v stops="$STOPS" -v datadir="$OPTOUT_SERVER_DIR" "$@" -f "$OPTOUT_ROOT/bench/$file" 2>&1 |
        sed -u -E 's/^psql:[^ ]*: (NOTICE|WARNING): +/    /'
}

echo "==> SCALE=$SCALE RUNS=$RUNS STOPS=$STOPS: $ROWS messages, $CONTACTS contacts; latency at $LAT_CONTACTS contacts"
run_sql run-common.sql
# Before each workload: a checkpoint and the kernel's dirty pages written out
# (sync), so that no workload is timed while the data of the one before (or
# its own build, 3.5 GB before the first) is still being written back.
settle() {
    local t0
    t0=$(date +%s.%N)
    psql -d postgres -c CHECKPOINT
    sync
    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "    settled in %.1f s\n", b - a }'
}
for w in $WORKLOADS; do
    echo "==> $w"
    settle
    if [ "$w" = concurrent ]; then
        # shellcheck source=bench/run-concurrent.sh
        . "$OPTOUT_ROOT/bench/run-concurrent.sh"
    else
        run_sql "run-$w.sql"
    fi
done

# The machine and the run, for the report.
secs=$(( $(date +%s) - started ))
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
psql -At -v cpu="$cpu" -v mem="$mem" -v nproc="$(nproc)" -v secs="$secs" \
     -v command="${BENCH_COMMAND:-bash bench/run.sh}" -v revision="${BENCH_REVISION:-unknown}" \
     -v scale="$SCALE" -v runs="$RUNS" -v stops="$STOPS" -v workloads="$WORKLOADS" \
     -v rows="$ROWS" -v contacts="$CONTACTS" -v lat_contacts="$LAT_CONTACTS" -v broadcast="$BROADCAST" \
     -v opts="$OPTOUT_SERVER_OPTS" -v load="$load_before / $(cut -d' ' -f1-3 /proc/loadavg)" \
     -f "$OPTOUT_ROOT/bench/run-report.sql" > "$OPTOUT_SERVER_DIR/report.md"
echo
sed -n '/^## Targets/,/^## /p' "$OPTOUT_SERVER_DIR/report.md" | sed '$d'
if [ -n "${BENCH_DOC_OUT:-}" ]; then
    write_report "$OPTOUT_SERVER_DIR/report.md" "$BENCH_DOC_OUT"
    [ "$(id -u)" = 0 ] || [ -n "${OPTOUT_UNPRIVILEGED:-}" ] || echo "==> wrote $BENCH_DOC_OUT"
else
    echo "(not a full run: docs/benchmarks.md left as it is; BENCH_DOC=path writes this report)"
fi
echo "==> done in $((secs / 60)) min $((secs % 60)) s"
