#!/usr/bin/env bash
# Runs every test of optout and prints the totals:
#   unit tests (GoogleTest, via CTest), the pg_regress and isolation suites on
#   a throwaway server, pg_dump / pg_restore, every benchmark run small
#   (test/scripts/bench_smoke.sh), the libFuzzer target for a
#   bounded time, and the check that the test corpus matches the shared one;
#   all against one PostgreSQL version, $PG (default 15, the system's).
#   Without PG (as CI runs it), then also the
#   PGXS build, pg_regress and isolation suites against each version of
#   $OPTOUT_ALSO_PG (default "16 17 18"; got once by scripts/pg.sh, into a
#   cache where it builds one; a version it cannot get here is skipped), and
#   a pg_dump of 15 restored into the newest of them. The regress suite
#   under valgrind runs on the version built with -DUSE_VALGRIND (18, from
#   scripts/pg.sh), after its regress suite.
#
# The totals count tests (each pg_regress test, unit test, script check); a
# build, or scripts/demo.sh, that fails is counted as a failure, one that
# works is not counted.
#
#   bash scripts/test.sh            # 15 in full, then 16, 17 and 18 (CI)
#   PG=18 bash scripts/test.sh      # everything against 18 only
#
# Works on a fresh Debian machine as root (installs what is missing, builds
# the other versions, then runs PostgreSQL as an unprivileged user) or as a
# normal user (who has the packages, or is told the one apt-get line to run).
#
# Environment: PG, OPTOUT_ALSO_PG, OPTOUT_CACHE (see scripts/pg.sh),
# FUZZ_SECONDS (default 60), OPTOUT_SKIP_FUZZ=1, OPTOUT_SKIP_VALGRIND=1, OPTOUT_SKIP_CITUS=1,
# OPTOUT_SKIP_PACKAGE=1,
# OPTOUT_KEEP_WORK=1.
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
. "$OPTOUT_ROOT/scripts/common.sh"

# The versions tested besides the main one: by default 16, 17 and 18 when no
# version was chosen, none when PG was.
if [ -z "${PG:-}" ]; then OPTOUT_ALSO_PG=${OPTOUT_ALSO_PG-16 17 18}; else OPTOUT_ALSO_PG=${OPTOUT_ALSO_PG-}; fi
export OPTOUT_ALSO_PG

# Build (or find in the cache) each version once, before anything else, and
# as root where we are root (a build may need packages). Sets
# OPTOUT_PG_READY, OPTOUT_PG_SKIPPED and OPTOUT_PG_FAILED (lists of versions).
prepare_versions() {
    [ -n "${OPTOUT_PG_PREPARED:-}" ] && return 0
    local v rc t0
    OPTOUT_PG_READY="" OPTOUT_PG_SKIPPED="" OPTOUT_PG_FAILED="" OPTOUT_PG_SECONDS=""
    for v in ${PG:-} $OPTOUT_ALSO_PG; do
        [ "$v" = 15 ] && { OPTOUT_PG_READY="$OPTOUT_PG_READY $v"; continue; }
        echo "==> PostgreSQL $v (scripts/pg.sh $v)"
        t0=$SECONDS rc=0
        bash "$OPTOUT_ROOT/scripts/pg.sh" "$v" >/dev/null || rc=$?
        echo "    ($((SECONDS - t0)) s)"
        OPTOUT_PG_SECONDS="$OPTOUT_PG_SECONDS $v:$((SECONDS - t0))"
        case $rc in
            0) OPTOUT_PG_READY="$OPTOUT_PG_READY $v" ;;
            3) OPTOUT_PG_SKIPPED="$OPTOUT_PG_SKIPPED $v" ;;
            *) OPTOUT_PG_FAILED="$OPTOUT_PG_FAILED $v" ;;
        esac
    done
    export OPTOUT_PG_PREPARED=1 OPTOUT_PG_READY OPTOUT_PG_SKIPPED OPTOUT_PG_FAILED OPTOUT_PG_SECONDS
}

if [ -z "${OPTOUT_UNPRIVILEGED:-}" ]; then
    ensure_packages
    prepare_versions
    # Citus (test/citus/run.sh): built once into the cache as root; skipped
    # later where its source is absent.
    if [ -z "${OPTOUT_SKIP_CITUS:-}" ] && { [ -z "${PG:-}" ] || [ "${PG:-15}" = 15 ]; }; then
        CITUS_BUILD_ONLY=1 bash "$OPTOUT_ROOT/test/citus/run.sh" || true
    fi
    # The Debian package, built from a clean copy and installed here as root;
    # test/scripts/package.sh tests the installed package later.
    if [ "$(id -u)" = 0 ] && [ -z "${OPTOUT_SKIP_PACKAGE:-}" ] && [ "${PG:-15}" = 15 ]; then
        echo "==> the Debian package: build and install (test/scripts/package.sh --install)"
        OPTOUT_PACKAGE_STATE=$(mktemp -d /tmp/optout-package.XXXXXX); export OPTOUT_PACKAGE_STATE
        bash "$OPTOUT_ROOT/test/scripts/package.sh" --install
    fi
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
prepare_versions
JOBS=${JOBS:-2}
passed=0 failed=0 skipped=0
failures=()
record() {  # record NAME PASSED FAILED
    passed=$((passed + $2)); failed=$((failed + $3))
    [ "$3" -gt 0 ] && failures+=("$1")
    return 0
}
# Seconds each part took, printed at the end (getting each PostgreSQL first).
timings=()
for t in ${OPTOUT_PG_SECONDS:-}; do timings+=("PostgreSQL ${t%%:*}: scripts/pg.sh ${t#*:}"); done
part_start=$SECONDS part_name=""
part() {  # part NAME: a new part begins (the previous one ends)
    [ -n "$part_name" ] && timings+=("$part_name $((SECONDS - part_start))")
    part_name=$1 part_start=$SECONDS
}
case " $OPTOUT_PG_FAILED " in *" $OPTOUT_PG_MAJOR "*)
    echo "FAIL: PostgreSQL $OPTOUT_PG_MAJOR could not be built (scripts/pg.sh $OPTOUT_PG_MAJOR)"
    echo "optout: 0 passed, 1 failed, 0 skipped"; exit 1 ;;
esac
case " $OPTOUT_PG_SKIPPED " in *" $OPTOUT_PG_MAJOR "*)
    echo "FAIL: PostgreSQL $OPTOUT_PG_MAJOR cannot be had on this machine (scripts/pg.sh $OPTOUT_PG_MAJOR)"
    echo "optout: 0 passed, 1 failed, 0 skipped"; exit 1 ;;
esac
PG_CONFIG=$(optout_pg_config)
export PG_CONFIG
pg_version=$("$PG_CONFIG" --version)
echo "==> against $pg_version ($PG_CONFIG)"

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

# script_suite NAME SCRIPT [LABEL]: run a test script that prints ok / not ok
# lines and closes with "NAME: N passed, N failed"; count them (as LABEL).
script_suite() {
    local name=$1 script=$2 label=${3:-$1} out line
    out=$(mktemp)
    case $script in *.py) python3 "$script" ;; *) bash "$script" ;; esac >"$out" 2>&1 || true
    grep -E '^(ok|not ok|#)' "$out" || true
    line=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed" "$out" || true)
    if [ -n "$line" ]; then
        record "$label" "$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')" \
                       "$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')"
        grep -q '^not ok' "$out" && tail -n 60 "$out"
    else
        tail -n 40 "$out"; record "$label" 0 1
    fi
    rm -f "$out"
}

case "${OPTOUT_CORPUS_SYNC:-skipped}" in
    passed) record corpus-sync 1 0 ;;
    failed) record corpus-sync 0 1 ;;
    *) skipped=$((skipped + 1)); echo "==> corpus sync: ../shared not present, skipped" ;;
esac

part meta
echo "==> META.json (PGXN Meta Spec 1.0.0) and versions"
script_suite meta test/scripts/check_meta.py

part unit
echo "==> unit tests (CMake + GoogleTest)"
log=$(mktemp)
if cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOPTOUT_WERROR=ON >"$log" 2>&1 \
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

# valgrind_parts SUFFIX: the regress suite under valgrind (after pg_parts),
# where $PG_CONFIG's server is built with -DUSE_VALGRIND (scripts/pg.sh
# builds 18 so; Debian's 15 is not, and valgrind could not see misuse of
# palloc'd memory there). Sets valgrind_ran.
valgrind_ran=""
valgrind_parts() {
    [ -n "${OPTOUT_SKIP_VALGRIND:-}" ] && return 0
    "$PG_CONFIG" --cppflags | grep -q -- '-DUSE_VALGRIND' || return 0
    part "PostgreSQL $("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/'): valgrind"
    echo "==> pg_regress suite with the server under valgrind memcheck (-DUSE_VALGRIND)"
    script_suite valgrind test/scripts/valgrind.sh "valgrind$1"
    valgrind_ran=1
}

# pg_parts SUFFIX: in the current directory, against $PG_CONFIG: the PGXS
# build, the pg_regress and isolation suites, and scripts/demo.sh. Returns
# non-zero when the build failed. A build, and scripts/demo.sh (whose output
# the regress test "demo" checks), are not tests: a failure of either is
# counted as a failure, a success is not counted.
pg_parts() {
    local sfx=$1
    echo "==> extension build (PGXS, -Werror)"
    if ! make -j"$JOBS" WERROR=1 >"$log" 2>&1; then
        cat "$log"; record "pgxs-build$sfx" 0 1; return 1
    fi
    echo "==> pg_regress suite (throwaway server)"
    pg_suite "regress$sfx" regresscheck regression.diffs
    echo "==> isolation suite (concurrent sessions, throwaway server)"
    pg_suite "isolation$sfx" isolationcheck output_iso/regression.diffs
    echo "==> the demo (scripts/demo.sh)"
    if ! OPTOUT_UNPRIVILEGED=1 bash scripts/demo.sh >"$log" 2>&1; then
        tail -n 30 "$log"; record "demo-script$sfx" 0 1
    fi
}

part "PostgreSQL $OPTOUT_PG_MAJOR: build, regress, isolation, demo"
if pg_parts ""; then
    if [ -x test/scripts/dump_restore.sh ]; then
        part "PostgreSQL $OPTOUT_PG_MAJOR: dump_restore"
        echo "==> pg_dump / pg_restore"
        script_suite dump_restore test/scripts/dump_restore.sh
    fi
    part "PostgreSQL $OPTOUT_PG_MAJOR: pgbouncer"
    script_suite pgbouncer test/scripts/pgbouncer.sh
    part "PostgreSQL $OPTOUT_PG_MAJOR: standby"
    script_suite standby test/scripts/standby.sh
    part "PostgreSQL $OPTOUT_PG_MAJOR: logical replication"
    script_suite logical test/scripts/logical.sh
    part "PostgreSQL $OPTOUT_PG_MAJOR: installcheck"
    script_suite installcheck test/scripts/installcheck.sh
    if [ -x test/scripts/concurrency.sh ]; then
        part "PostgreSQL $OPTOUT_PG_MAJOR: concurrency"
        echo "==> concurrent mixed load, cancels, terminations and kill -9 (pgbench)"
        script_suite concurrency test/scripts/concurrency.sh
    fi
    part "PostgreSQL $OPTOUT_PG_MAJOR: upgrade from each release"
    script_suite upgrade test/scripts/upgrade.sh
    part "PostgreSQL $OPTOUT_PG_MAJOR: the installed Debian package"
    script_suite package test/scripts/package.sh
    part "PostgreSQL $OPTOUT_PG_MAJOR: README outputs"
    script_suite readme test/scripts/readme.sh
    part "PostgreSQL $OPTOUT_PG_MAJOR: the benchmarks, run small"
    script_suite bench_smoke test/scripts/bench_smoke.sh
    part "format (clang-format, line ends)"
    script_suite format test/scripts/format.sh
    valgrind_parts ""
fi

# optout on Citus: a coordinator and two workers (test/citus/run.sh); exit 3
# means skipped (no Citus source on this machine, as in CI).
if [ -z "${OPTOUT_SKIP_CITUS:-}" ] && [ "$OPTOUT_PG_MAJOR" = 15 ]; then
    part "Citus: coordinator + 2 workers"
    echo "==> optout on Citus (test/citus/run.sh)"
    out=$(mktemp); rc=0
    bash test/citus/run.sh >"$out" 2>&1 || rc=$?
    grep -E '^(ok|not ok|#)' "$out" || true
    if [ "$rc" = 3 ]; then
        skipped=$((skipped + 1))
    else
        line=$(grep -E '^citus: [0-9]+ passed, [0-9]+ failed' "$out" || true)
        if [ -n "$line" ]; then
            record citus "$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')" \
                         "$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')"
        else
            tail -n 40 "$out"; record citus 0 1
        fi
    fi
    rm -f "$out"
else
    skipped=$((skipped + 1))
fi

if [ -z "${OPTOUT_SKIP_FUZZ:-}" ]; then
    part fuzz
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

# The other versions: each in its own copy of the tree (build-pgN/), since
# PGXS builds in place.
newest=""
for v in $OPTOUT_ALSO_PG; do
    [ "$v" = "$OPTOUT_PG_MAJOR" ] && continue
    part "PostgreSQL $v: build, regress, isolation, demo"
    case " $OPTOUT_PG_SKIPPED " in *" $v "*)
        echo "==> PostgreSQL $v: skipped, it cannot be had here (scripts/pg.sh $v says why, above)"
        skipped=$((skipped + 1)); continue ;;
    esac
    case " $OPTOUT_PG_FAILED " in *" $v "*)
        echo "==> PostgreSQL $v: FAILED to build (scripts/pg.sh $v; its log is in the cache)"
        record "pg-build@$v" 0 1; continue ;;
    esac
    dir=$OPTOUT_ROOT/build-pg$v
    rm -rf "$dir"; mkdir -p "$dir"
    tar -C "$OPTOUT_ROOT" --exclude='./build' --exclude='./build-*' --exclude='./tmp_*' --exclude='./results' \
        --exclude='./output_iso' --exclude='./valgrind_logs' --exclude='./regression.*' \
        --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - . | tar -C "$dir" -xf -
    cd "$dir"
    PG_CONFIG=$(bash scripts/pg.sh "$v"); export PG=$v
    echo "==> against $("$PG_CONFIG" --version) ($PG_CONFIG)"
    pg_parts "@$v" && newest=$v && valgrind_parts "@$v"
    cd "$OPTOUT_ROOT"
done
export PG=$OPTOUT_PG_MAJOR
PG_CONFIG=$(optout_pg_config)
# No version built with -DUSE_VALGRIND was tested: valgrind is skipped.
[ -z "$valgrind_ran" ] && [ -z "${OPTOUT_SKIP_VALGRIND:-}" ] && { skipped=$((skipped + 1)); echo "==> valgrind: no PostgreSQL built with -DUSE_VALGRIND was tested, skipped"; }

# The upgrade path by dump and restore: a database of the main version (15)
# dumped and restored into the newest version tested (see the script for
# whose pg_dump).
if [ -n "$newest" ] && [ "$newest" -gt "$OPTOUT_PG_MAJOR" ] && [ -x test/scripts/dump_restore.sh ]; then
    part "dump_restore $OPTOUT_PG_MAJOR -> $newest"
    echo "==> pg_dump of PostgreSQL $OPTOUT_PG_MAJOR restored into $newest"
    restore_config=$(bash scripts/pg.sh "$newest")
    OPTOUT_RESTORE_BINDIR="$OPTOUT_ROOT/build-pg$newest/tmp_install$("$restore_config" --bindir)" \
        script_suite dump_restore test/scripts/dump_restore.sh "dump_restore@$OPTOUT_PG_MAJOR->$newest"
fi
part ""
rm -f "$log" "$log.ctest"

echo
echo "seconds per part:"
for t in "${timings[@]}"; do printf '  %5s  %s\n' "${t##* }" "${t% *}"; done
if [ ${#failures[@]} -gt 0 ]; then echo "failed parts: ${failures[*]}"; fi
echo "optout: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
