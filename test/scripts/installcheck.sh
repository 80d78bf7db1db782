#!/usr/bin/env bash
# `make installcheck` (PGXS: the suites against a running server) runs the
# regress tests and the isolation specs from their folders, and exits 0 when
# they pass. Runs a few of each against a throwaway server. Prints TAP-like
# "ok"/"not ok" lines and a closing "installcheck: N passed, N failed" line.
#
# Run by scripts/test.sh (as an unprivileged user, after the build).
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/common.sh
. "$OPTOUT_ROOT/scripts/common.sh"
start_throwaway_server >/dev/null
passed=0 failed=0
result() {  # result NAME OK(0/1) [DETAIL]
    if [ "$2" = 1 ]; then echo "ok - $1"; passed=$((passed + 1))
    else echo "not ok - $1${3:+: $3}"; failed=$((failed + 1)); fi
}
log=$OPTOUT_SERVER_DIR/installcheck.log
rm -rf output_iso/results results/classify.out results/keywords.out
rc=0
timeout 600 make installcheck REGRESS="classify keywords" ISOLATION="stop_vs_start keyword_cache" >"$log" 2>&1 || rc=$?
result "make installcheck exits 0 (both suites passed)" "$([ "$rc" = 0 ] && echo 1 || echo 0)" "exit $rc; $(tail -n 5 "$log" | tr '\n' ' ')"
result "the regress tests ran" "$([ -s results/classify.out ] && [ -s results/keywords.out ] && echo 1 || echo 0)"
result "the isolation specs ran from test/isolation" \
    "$([ -s output_iso/results/stop_vs_start.out ] && [ -s output_iso/results/keyword_cache.out ] && echo 1 || echo 0)"
echo "installcheck: $passed passed, $failed failed"
[ "$failed" = 0 ]
