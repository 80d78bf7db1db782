#!/usr/bin/env bash
# The README's walkthrough outputs come from this test, so they cannot drift:
# every ```sql block of README.md that follows a line
#     <!-- check: NAME -->
# is run by psql, and when a plain ``` block follows it directly, that block
# must be what psql prints for the block's LAST statement (the statements
# before it run with their output discarded; trailing blanks are ignored).
# Blocks with the same NAME run in order in one fresh database; a block
# without an output block must only run without error.
# Prints "ok"/"not ok" per block and "readme: N passed, N failed".
# Run by scripts/test.sh (as an unprivileged user, after the build).
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/common.sh
. "$OPTOUT_ROOT/scripts/common.sh"
work=$(mktemp -d)
start_throwaway_server >/dev/null
trap 'stop_throwaway_server; rm -rf "$work"' EXIT

# Split README.md into work/NNN.NAME.LINE.sql (+ .expected when shown).
python3 - "$OPTOUT_ROOT/README.md" "$work" <<'PY'
import re, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
out, i, n = sys.argv[2], 0, 0
def fence(j, lang):
    return j < len(lines) and lines[j].strip() == "```" + lang
while i < len(lines):
    m = re.match(r"^<!-- check: ([A-Za-z0-9_]+) -->$", lines[i].strip())
    i += 1
    if not m:
        continue
    if not fence(i, "sql"):
        sys.exit(f"README.md:{i}: a check marker must be followed by a ```sql block")
    start = i + 1
    j = start
    while not fence(j, ""):
        j += 1
    sql = lines[start:j]
    expected = None
    if fence(j + 1, ""):
        k = j + 2
        while not fence(k, ""):
            k += 1
        expected = lines[j + 2:k]
    # The last statement begins after the last line that ends one (";",
    # before any "--" comment) other than the block's final statement.
    ends = [x for x, l in enumerate(sql) if re.sub(r"\s*--.*$", "", l).rstrip().endswith(";")]
    cut = ends[-2] + 1 if len(ends) >= 2 else 0
    n += 1
    base = f"{out}/{n:03d}.{m.group(1)}.{start}"
    with open(base + ".sql", "w", encoding="utf-8") as f:
        f.write("\\set ON_ERROR_STOP 1\n")
        if expected is not None:
            f.write("\\o /dev/null\n" + "\n".join(sql[:cut]) + "\n\\o\n" + "\n".join(sql[cut:]) + "\n")
        else:
            f.write("\\o /dev/null\n" + "\n".join(sql) + "\n")
    if expected is not None:
        with open(base + ".expected", "w", encoding="utf-8") as f:
            f.write("\n".join(l.rstrip() for l in expected).rstrip("\n") + "\n")
PY

passed=0 failed=0
declare -A created=()
for sql in "$work"/*.sql; do
    [ -e "$sql" ] || break
    base=${sql%.sql}; rest=${base##*/}; rest=${rest#*.}; name=${rest%%.*}; line=${rest#*.}
    what="README.md line $line ($name)"
    if [ -z "${created[$name]:-}" ]; then
        "$OPTOUT_BINDIR/createdb" "readme_$name"; created[$name]=1
    fi
    if ! "$OPTOUT_BINDIR/psql" -X -q -P footer=off -d "readme_$name" -f "$sql" >"$base.got" 2>&1; then
        failed=$((failed + 1)); echo "not ok - $what runs"; sed 's/^/#   /' "$base.got" | tail -n 20
        continue
    fi
    if [ -f "$base.expected" ]; then
        sed -e 's/[[:space:]]*$//' "$base.got" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' >"$base.got.trim"
        if diff -u "$base.expected" "$base.got.trim" >"$base.diff"; then
            passed=$((passed + 1)); echo "ok - $what: psql prints what the README shows"
        else
            failed=$((failed + 1)); echo "not ok - $what: psql prints what the README shows"
            sed 's/^/#   /' "$base.diff" | head -n 40
        fi
    else
        passed=$((passed + 1)); echo "ok - $what runs"
    fi
done
if [ $((passed + failed)) = 0 ]; then
    failed=1; echo "not ok - README.md has checked blocks (<!-- check: NAME --> before a \`\`\`sql block)"
fi
echo "readme: $passed passed, $failed failed"
[ "$failed" = 0 ]
