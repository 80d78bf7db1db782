#!/usr/bin/env bash
# The whole pg_regress suite against a server running under valgrind
# memcheck, with the extension loaded: zero reports that concern optout.
#
# (AddressSanitizer needs libasan preloaded into the server, and on Debian 12
# an ASan-preloaded postgres hangs at start-up in glibc's bindtextdomain; so
# the server-side memory check is valgrind's, as the suite's issue allows.
# The C++ core also runs under ASan and UBSan in the fuzzer.)
#
# A report fails the run when it is an invalid read, write or free anywhere,
# or any report whose stack or origin names optout's code. Other reports are
# PostgreSQL's own known ones (uninitialised padding written to disk) and are
# counted but do not fail. Prints "valgrind: N passed, N failed".
# Run by scripts/test.sh as an unprivileged user, after `make temp-install`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
pgxs=$(dirname "$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")")   # .../lib/pgxs
vg_install=$PWD/tmp_install_vg
logs=$PWD/valgrind_logs
rm -rf "$vg_install" "$logs" tmp_check_vg
mkdir -p "$logs"
cp -a tmp_install "$vg_install"
real=$vg_install$bindir/postgres.real
mv "$vg_install$bindir/postgres" "$real"
cat > "$vg_install$bindir/postgres" <<SH
#!/bin/sh
# The server under valgrind; initdb's own runs (--boot, --single, -V) as they are.
for a in "\$@"; do case "\$a" in -V|--version|--boot|--single|--describe-config|-C) exec "$real" "\$@";; esac; done
exec valgrind --quiet --trace-children=yes --error-limit=no --num-callers=40 --track-origins=yes \\
    --log-file="$logs/vg.%p.log" "$real" "\$@"
SH
chmod +x "$vg_install$bindir/postgres"

tests=$(ls sql/*.sql | sed -n 's#^sql/\(.*\)\.sql$#\1#p' | grep -v '^optout--' | sort | tr '\n' ' ')
out=$(mktemp)
"$pgxs/src/test/regress/pg_regress" --temp-instance=./tmp_check_vg --inputdir=./ --outputdir=./tmp_check_vg_out \
    --bindir="$vg_install$bindir" --encoding=UTF8 --no-locale $tests >"$out" 2>&1 || true
grep -E '^(ok|not ok|test )' "$out" || true

passed=0 failed=0
if grep -qE 'All [0-9]+ tests passed' "$out"; then
    passed=$((passed + 1)); echo "ok - the suite passes under valgrind"
else
    failed=$((failed + 1)); echo "not ok - the suite passes under valgrind"; tail -n 20 "$out"
fi
# One report is the block of lines from "==PID== <kind>" to the next blank "==PID== " line.
bad=$(awk '
    /^==[0-9]+== [A-Z][a-z]/ { if (block != "") flush(); block = $0; next }
    /^==[0-9]+== *$/ { flush(); next }
    { if (block != "") block = block "\n" $0 }
    function flush() {
        if (block ~ /Invalid (read|write|free)|Mismatched free|optout\.so|src\/(pg|core)\//) { print block; print "--"; n++ }
        block = ""
    }
    END { flush() }' "$logs"/vg.*.log 2>/dev/null || true)
total=$(cat "$logs"/vg.*.log 2>/dev/null | grep -cE '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|Source and)' || true)
nlogs=$(ls "$logs" | wc -l)
if [ "$nlogs" = 0 ]; then
    failed=$((failed + 1)); echo "not ok - valgrind ran (no log was written)"
elif [ -z "$bad" ]; then
    passed=$((passed + 1)); echo "ok - no valgrind report concerns optout ($nlogs processes checked; $total reports in PostgreSQL itself)"
else
    failed=$((failed + 1)); echo "not ok - valgrind reports in optout:"; echo "$bad" | head -n 80
fi
rm -f "$out"
echo "valgrind: $passed passed, $failed failed"
[ "$failed" = 0 ]
