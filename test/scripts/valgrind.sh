#!/usr/bin/env bash
# The whole pg_regress suite against a server running under valgrind
# memcheck, with the extension loaded: zero reports that concern optout.
#
# The server must be built with -DUSE_VALGRIND (scripts/pg.sh builds 18 so):
# only then does its allocator tell valgrind which bytes of a memory context
# are a live palloc'd chunk, so that reading past a chunk (inside the slack
# palloc rounds up to) or a pfree'd chunk is reported. Against a server built
# without it (Debian's packages) the script fails at once.
#
# (AddressSanitizer needs libasan preloaded into the server, and on Debian 12
# an ASan-preloaded postgres hangs at start-up in glibc's bindtextdomain; so
# the server-side memory check is valgrind's. The C++ core also runs under
# ASan and UBSan in the fuzzer.)
#
# A report fails the run when it is an invalid read, write or free anywhere,
# or any report whose stack or origin names optout's code. Other reports are
# PostgreSQL's own known ones (uninitialised padding written to disk) and are
# counted but do not fail.
#
# First, a self-check (skip it with OPTOUT_VALGRIND_NO_SELFTEST=1): optout is
# rebuilt with OPTOUT_VALGRIND_SELFTEST=1, whose src/pg/selftest.cpp reads
# past a palloc'd chunk and a pfree'd one; one call of it under valgrind must
# be reported by the same filter. The normal build is restored afterwards;
# the self-check's valgrind logs stay in valgrind_logs_selftest/.
# OPTOUT_VALGRIND_SELFTEST_ONLY=1 runs the self-check alone (about a minute);
# OPTOUT_VALGRIND_TESTS="a b" runs only those regress tests.
#
# Prints "valgrind: N passed, N failed". Run by scripts/test.sh as an
# unprivileged user, after `make regresscheck` (which makes ./tmp_install).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
pkglibdir=$("$PG_CONFIG" --pkglibdir)
pgxs=$(dirname "$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")")   # .../lib/pgxs
vg_install=$PWD/tmp_install_vg
logs=$PWD/valgrind_logs
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }
finish() { echo "valgrind: $passed passed, $failed failed"; [ "$failed" = 0 ]; exit $?; }

if ! "$PG_CONFIG" --cppflags | grep -q -- '-DUSE_VALGRIND'; then
    not_ok "the server is built with -DUSE_VALGRIND ($PG_CONFIG: $("$PG_CONFIG" --cppflags); use scripts/pg.sh 18)"
    finish
fi
[ -d tmp_install ] || { not_ok "./tmp_install exists (run make regresscheck first)"; finish; }

# A copy of tmp_install whose postgres runs under valgrind.
make_vg_install() {
    rm -rf "$vg_install" "$logs"
    mkdir -p "$logs"
    cp -a tmp_install "$vg_install"
    local real=$vg_install$bindir/postgres.real
    mv "$vg_install$bindir/postgres" "$real"
    cat > "$vg_install$bindir/postgres" <<SH
#!/bin/sh
# The server under valgrind; initdb's own runs (--boot, --single, -V) as they are.
for a in "\$@"; do case "\$a" in -V|--version|--boot|--single|--describe-config|-C) exec "$real" "\$@";; esac; done
exec valgrind --quiet --trace-children=yes --error-limit=no --num-callers=40 --track-origins=yes \\
    --log-file="$logs/vg.%p.log" "$real" "\$@"
SH
    chmod +x "$vg_install$bindir/postgres"
}

# run_regress INPUTDIR TESTS...: pg_regress on a throwaway server under valgrind.
run_regress() {
    local inputdir=$1; shift
    rm -rf tmp_check_vg tmp_check_vg_out
    OPTOUT_PSQL="$vg_install$bindir/psql" \
    "$pgxs/src/test/regress/pg_regress" --temp-instance=./tmp_check_vg --inputdir="$inputdir" \
        --outputdir=./tmp_check_vg_out --bindir="$vg_install$bindir" --encoding=UTF8 --no-locale "$@" \
        >"$work/regress.out" 2>&1 || true
}

# The reports that fail the run: one report is the block of lines from
# "==PID== <kind>" to the next blank "==PID== " line.
reports_of_concern() {
    awk '
        /^==[0-9]+== [A-Z][a-z]/ { if (block != "") flush(); block = $0; next }
        /^==[0-9]+== *$/ { flush(); next }
        { if (block != "") block = block "\n" $0 }
        function flush() {
            if (block ~ /Invalid (read|write|free)|Mismatched free|optout\.so|src\/(pg|core)\//) { print block; print "--"; n++ }
            block = ""
        }
        END { flush() }' "$logs"/vg.*.log 2>/dev/null || true
}

# ---------------------------------------------------------------- self-check
if [ -z "${OPTOUT_VALGRIND_NO_SELFTEST:-}" ]; then
    # -W: remake as if selftest.cpp had changed, so only it is recompiled (and
    # optout.so relinked); the same again without the flag restores the build.
    rebuild() { make -s -W src/pg/selftest.cpp "$@" >"$work/build.log" 2>&1 || { cat "$work/build.log"; return 1; }; }
    if rebuild OPTOUT_VALGRIND_SELFTEST=1; then
        make_vg_install
        cp optout.so "$vg_install$pkglibdir/optout.so"
        rebuild || not_ok "the normal build is restored after the self-check"
        mkdir -p "$work/selftest/sql" "$work/selftest/expected"
        cat > "$work/selftest/sql/selftest.sql" <<'SQL'
CREATE FUNCTION optout_valgrind_selftest() RETURNS bool LANGUAGE c AS '$libdir/optout', 'optout_valgrind_selftest';
SELECT optout_valgrind_selftest();
SQL
        { cat "$work/selftest/sql/selftest.sql"
          printf '%s\n' ' optout_valgrind_selftest ' '--------------------------' ' t' '(1 row)' ''
        } > "$work/selftest/expected/selftest.out"
        run_regress "$work/selftest" selftest
        bad=$(reports_of_concern)
        rm -rf "${logs}_selftest"; cp -a "$logs" "${logs}_selftest"
        if echo "$bad" | grep -q 'Invalid read' && echo "$bad" | grep -q 'selftest.cpp'; then
            ok "self-check: a read past a palloc'd chunk and of a pfree'd one in optout are reported ($(echo "$bad" | grep -c 'Invalid read') invalid reads)"
        else
            not_ok "self-check: a read past a palloc'd chunk and of a pfree'd one in optout are reported"
            tail -n 20 "$work/regress.out"; cat "$logs"/vg.*.log 2>/dev/null | head -n 40
        fi
    else
        not_ok "self-check: optout builds with OPTOUT_VALGRIND_SELFTEST=1"
        rebuild || true
    fi
fi

[ -n "${OPTOUT_VALGRIND_SELFTEST_ONLY:-}" ] && finish

# ---------------------------------------------------------------- the suite
make_vg_install
tests=${OPTOUT_VALGRIND_TESTS:-$(printf '%s\n' sql/*.sql | sed -n 's#^sql/\(.*\)\.sql$#\1#p' | sort | tr '\n' ' ')}
# shellcheck disable=SC2086
run_regress ./ $tests
grep -E '^(ok|not ok|test )' "$work/regress.out" || true
if grep -qE 'All [0-9]+ tests passed' "$work/regress.out"; then
    ok "the suite passes under valgrind"
else
    not_ok "the suite passes under valgrind"; tail -n 20 "$work/regress.out"
    # What differed, so that a failure seen only in CI can be read there.
    sed 's/^/#   /' tmp_check_vg_out/regression.diffs 2>/dev/null | head -n 120 || true
fi
bad=$(reports_of_concern)
total=$(cat "$logs"/vg.*.log 2>/dev/null | grep -cE '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|Source and)' || true)
nlogs=$(find "$logs" -mindepth 1 -maxdepth 1 | wc -l)
if [ "$nlogs" = 0 ]; then
    not_ok "valgrind ran (no log was written)"
elif [ -z "$bad" ]; then
    ok "no valgrind report concerns optout ($nlogs processes checked; $total reports in PostgreSQL itself)"
else
    not_ok "valgrind reports in optout:"; echo "$bad" | head -n 80
fi
finish
