#!/usr/bin/env bash
# Benchmark: classify 1,000,000 realistic inbound bodies in one query and
# compare with the floor, lower(btrim(body)) = ANY(<keyword array>), over the
# same rows in the same run. Runs are alternated (floor, standard, reasonable,
# floor, ...) and the median of each is reported, as a ratio to the floor.
#
#   bash bench/classify.sh            (ROWS=1000000 RUNS=5 by default)
#
# Not a test: it prints figures and asserts nothing.
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
. "$OPTOUT_ROOT/scripts/common.sh"
if [ -z "${OPTOUT_UNPRIVILEGED:-}" ]; then
    ensure_packages
    if [ "$(id -u)" = 0 ]; then reexec_unprivileged ../bench/classify.sh "$@"; exit $?; fi
fi
ROWS=${ROWS:-1000000} RUNS=${RUNS:-5}
OPTOUT_SERVER_OPTS="-c shared_buffers=512MB -c max_parallel_workers_per_gather=0 -c jit=off"
start_throwaway_server
psql() { "$OPTOUT_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

psql -v rows="$ROWS" -v runs="$RUNS" -f "$OPTOUT_ROOT/bench/classify.sql"
