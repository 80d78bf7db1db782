#!/usr/bin/env bash
# Runs every test of optout and prints the totals:
#   unit tests (GoogleTest, via CTest), the pg_regress suite on a throwaway
#   server, the libFuzzer target for a bounded time, and the check that the
#   test corpus matches the shared one.
#
# Works on a fresh Debian machine as root (installs what is missing, then runs
# PostgreSQL as an unprivileged user) or as a normal user (who has the
# packages, or is told the one apt-get line to run).
#
# Environment: FUZZ_SECONDS (default 60), OPTOUT_SKIP_FUZZ=1, OPTOUT_SKIP_VALGRIND=1,
# OPTOUT_KEEP_WORK=1.
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
. "$OPTOUT_ROOT/scripts/common.sh"

if [ -z "${OPTOUT_UNPRIVILEGED:-}" ]; then
    ensure_packages
    # The corpus under test/data must be the shared one, where that is beside us.
    shared="$OPTOUT_ROOT/../shared/corpus/inbound.jsonl"
    if [ -f "$shared" ]; then
        if cmp -s "$shared" "$OPTOUT_ROOT/test/data/inbound.jsonl"; then
            export OPTOUT_CORPUS_SYNC=passed
        else
            echo "FAIL: test/data/inbound.jsonl differs from ../shared/corpus/inbound.jsonl; copy it over" >&2
            export OPTOUT_CORPUS_SYNC=failed
        fi
    else
        export OPTOUT_CORPUS_SYNC=skipped
    fi
    if [ "$(id -u)" = 0 ]; then
        reexec_unprivileged test.sh "$@"
        exit $?
    fi
fi

cd "$OPTOUT_ROOT"
PG_CONFIG=$(optout_pg_config)
export PG_CONFIG
JOBS=${JOBS:-2}
passed=0 failed=0 skipped=0
failures=()
record() {  # record NAME PASSED FAILED
    passed=$((passed + $2)); failed=$((failed + $3))
    [ "$3" -gt 0 ] && failures+=("$1")
    return 0
}

# pg_suite NAME MAKE-TARGET DIFFS: run a pg_regress-style suite, count its tests.
pg_suite() {
    local name=$1 target=$2 diffs=$3 out
    out=$(mktemp)
    make "$target" >"$out" 2>&1 || true
    grep -E '^(ok|not ok|test |     |All|.*tests (passed|failed))' "$out" || true
    if grep -qE 'All [0-9]+ tests passed' "$out"; then
        record "$name" "$(grep -oE 'All [0-9]+ tests passed' "$out" | grep -oE '[0-9]+')" 0
    elif grep -qE '[0-9]+ of [0-9]+ tests failed' "$out"; then
        local f nf nt
        f=$(grep -oE '[0-9]+ of [0-9]+ tests failed' "$out" | head -1)
        nf=${f%% of*}; nt=$(echo "$f" | sed -E 's/[0-9]+ of ([0-9]+).*/\1/')
        record "$name" $((nt - nf)) "$nf"
        [ -f "$diffs" ] && head -c 20000 "$diffs"
    else
        tail -n 60 "$out"; record "$name" 0 1
    fi
    rm -f "$out"
}

# script_suite NAME SCRIPT: run a test script that prints ok / not ok lines
# and closes with "NAME: N passed, N failed"; count them.
script_suite() {
    local name=$1 script=$2 out line
    out=$(mktemp)
    bash "$script" >"$out" 2>&1 || true
    grep -E '^(ok|not ok|#)' "$out" || true
    line=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed" "$out" || true)
    if [ -n "$line" ]; then
        record "$name" "$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')" \
                       "$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')"
        grep -q '^not ok' "$out" && tail -n 60 "$out"
    else
        tail -n 40 "$out"; record "$name" 0 1
    fi
    rm -f "$out"
}

case "${OPTOUT_CORPUS_SYNC:-skipped}" in
    passed) record corpus-sync 1 0 ;;
    failed) record corpus-sync 0 1 ;;
    *) skipped=$((skipped + 1)); echo "==> corpus sync: ../shared not present, skipped" ;;
esac

echo "==> META.json (PGXN Meta Spec 1.0.0) and versions"
if python3 test/check_meta.py >"${TMPDIR:-/tmp}/optout-meta.$$" 2>&1; then record meta 1 0
else cat "${TMPDIR:-/tmp}/optout-meta.$$"; record meta 0 1; fi
rm -f "${TMPDIR:-/tmp}/optout-meta.$$"

echo "==> unit tests (CMake + GoogleTest)"
log=$(mktemp)
if cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOPTOUT_WERROR=ON -DOPTOUT_BUILD_EXTENSION=ON \
         -DPG_CONFIG="$PG_CONFIG" >"$log" 2>&1 \
   && cmake --build build -j"$JOBS" >>"$log" 2>&1; then
    ctest --test-dir build --output-on-failure 2>&1 | tee "$log.ctest" | tail -n 3 || true
    line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log.ctest" || true)
    if [ -n "$line" ]; then
        total=$(echo "$line" | sed -E 's/.*out of ([0-9]+).*/\1/')
        nfail=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed.*/\1/')
        record unit $((total - nfail)) "$nfail"
    else
        record unit 0 1
    fi
else
    cat "$log"; record unit-build 0 1
fi

echo "==> extension build (PGXS, -Werror)"
if make -j"$JOBS" WERROR=1 >"$log" 2>&1; then
    record pgxs-build 1 0
    echo "==> pg_regress suite (throwaway server)"
    pg_suite regress regresscheck regression.diffs
    echo "==> isolation suite (concurrent sessions, throwaway server)"
    pg_suite isolation isolationcheck output_iso/regression.diffs
    if [ -x test/dump_restore.sh ]; then
        echo "==> pg_dump / pg_restore"
        script_suite dump_restore test/dump_restore.sh
    fi
    if [ -x test/valgrind.sh ] && [ -z "${OPTOUT_SKIP_VALGRIND:-}" ]; then
        echo "==> pg_regress suite with the server under valgrind memcheck"
        script_suite valgrind test/valgrind.sh
    fi
else
    cat "$log"; record pgxs-build 0 1
fi

if [ -z "${OPTOUT_SKIP_FUZZ:-}" ]; then
    secs=${FUZZ_SECONDS:-60}
    echo "==> fuzzing the classifier for ${secs}s (libFuzzer, ASan, UBSan)"
    if CXX=clang++ cmake -S . -B build-fuzz -DOPTOUT_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ >"$log" 2>&1 \
       && cmake --build build-fuzz -j"$JOBS" --target fuzz_classify >>"$log" 2>&1; then
        mkdir -p build-fuzz/corpus
        if build-fuzz/fuzz_classify -max_total_time="$secs" -print_final_stats=1 \
              -artifact_prefix=build-fuzz/ build-fuzz/corpus test/fuzz/corpus >"$log" 2>&1; then
            grep -E 'stat::number_of_executed_units|Done' "$log" | head -2
            record fuzz 1 0
        else
            tail -n 40 "$log"; record fuzz 0 1
        fi
    else
        tail -n 40 "$log"; record fuzz-build 0 1
    fi
else
    skipped=$((skipped + 1))
fi
rm -f "$log" "$log.ctest"

echo
if [ ${#failures[@]} -gt 0 ]; then echo "failed parts: ${failures[*]}"; fi
echo "optout: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
