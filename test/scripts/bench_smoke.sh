#!/usr/bin/env bash
# The benchmarks, run small: every workload of bench/run.sh (and the
# breakdown) at SCALE=0.01, RUNS=1, so that a workload broken by a change
# shows here and not only in a full run (23 minutes, never run in CI). No
# timing is asserted: the checks are that each workload runs to the end and
# reports, and that what it times is what it says:
#   - each run of bench/run.sh exits 0 (its SQL runs with ON_ERROR_STOP);
#   - the report has a section and at least one target row per workload,
#     every target row a number, every variant timed at least RUNS times;
#   - every record kept for a "floor + record" variant holds events (and the
#     inbound one ledger rows): a floor that writes nothing would look cheap;
#   - the attached variants enforced: rows marked, contacts stopped.
# Prints "ok"/"not ok" per check and "bench_smoke: N passed, N failed".
# Run by scripts/test.sh (as an unprivileged user, after the build).
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
workloads=$(sed -n 's/^ALL_WORKLOADS="\(.*\)"$/\1/p' "$OPTOUT_ROOT/bench/run.sh")

# bench/run.sh in this process's user (scripts/test.sh runs this script
# unprivileged already); the report goes to $work, never docs/benchmarks.md.
bench() {  # bench NAME WORKLOADS
    local rc=0
    OPTOUT_UNPRIVILEGED=1 SCALE=0.01 RUNS=1 STOPS=10 CONC_SECONDS=1 CONC_CLIENTS="1 2" \
        WORKLOADS="$2" BENCH_DOC_OUT="$work/$1.md" BENCH_DOC='' \
        bash "$OPTOUT_ROOT/bench/run.sh" >"$work/$1.log" 2>&1 || rc=$?
    echo "$rc" >"$work/$1.rc"
}
bench all "$workloads"
bench breakdown breakdown

python3 - "$work" "$workloads" <<'PY'
import re, sys
work, workloads = sys.argv[1], sys.argv[2].split()
passed = failed = 0
def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok - {what}")
    else:
        failed += 1
        print(f"not ok - {what}" + (f": {detail}" if detail else ""))
def read(name):
    try:
        return open(f"{work}/{name}", encoding="utf-8").read()
    except FileNotFoundError:
        return ""

for run in ("all", "breakdown"):
    rc = read(f"{run}.rc").strip()
    log = read(f"{run}.log")
    errors = [l for l in log.splitlines() if re.search(r"\b(ERROR|FATAL|PANIC):", l)]
    check(rc == "0" and not errors, f"bench/run.sh ({run}) ran to the end",
          f"exit {rc}; " + "; ".join(errors[:3]) + "\n" + "\n".join(log.splitlines()[-15:]))

report, log = read("all.md"), read("all.log")
targets = re.search(r"^## Targets\n(.*?)^## ", report, re.S | re.M)
rows = [l.split("|")[1:-1] for l in (targets.group(1) if targets else "").splitlines()
        if l.startswith("| ") and not l.startswith("| workload ")]
rows = [[c.strip() for c in r] for r in rows]
sections = re.findall(r"^### (.+)$", report, re.M)
for w in workloads:
    mine = [r for r in rows if r[0] == w or r[0].startswith(w + "_")]
    check(w in sections and mine, f"{w}: a section and {len(mine)} target rows in the report")
bad = [r for r in rows if not re.match(r"^-?[0-9][0-9,.]* ?(x|ms|µs|rows/s)$", r[2])]
check(rows and not bad, f"every target row ({len(rows)}) has a measured number", str(bad[:3]))

# Every section of a workload has its timings: variants with their runs (at
# least RUNS each), or the latency's percentiles.
body = report.split("\n## Workloads", 1)[-1].split("\n## Method", 1)[0]
for sec in re.split(r"^### ", body, flags=re.M)[1:]:
    title = sec.splitlines()[0]
    if title == "Building the data":
        continue
    runs = [int(n) for n in re.findall(r"^\| [^|]+ \| ([0-9]+) \| [0-9.]+ (?:ms|s) \|", sec, re.M)]
    pct = re.findall(r"^\| [^|]+ \| [^|]+ \| ([0-9]+) \| [0-9.]+ ms \|", sec, re.M)
    check((runs and min(runs) >= 1) or pct, f"section {title}: {len(runs) or len(pct)} rows of timings")

kept = re.findall(r"(\w+): (\d+) events, (\d+) ledger rows kept", log)
names = {k[0] for k in kept}
check({"inbound", "outbound", "broadcast", "rapidpro", "partitioned"} <= names,
      "a record kept for each floor + record variant", str(sorted(names)))
for name, ev, led in kept:
    ok = int(ev) > 0 and (name != "inbound" or int(led) > 0)
    check(ok, f"{name}: the record kept holds events ({ev}) and, for inbound, ledger rows ({led})")

# The enforcement the attached variants time: the counts the workloads print
# after their runs (psql's aligned tables: a header, a rule, the values).
def table_after(header):
    lines = log.splitlines()
    for i, l in enumerate(lines):
        cols = [c.strip() for c in l.split("|")]
        if header in cols and i + 2 < len(lines):
            vals = [c.strip() for c in lines[i + 2].split("|")]
            yield dict(zip(cols, vals))
marked = [int(t["attached_marked"]) for t in table_after("attached_marked")]
check(len(marked) >= 3 and all(m > 0 for m in marked),
      f"outbound, broadcast, rapidpro: the attached runs marked rows ({marked})")
stopped = [int(t["contacts_stopped_now"]) for t in table_after("contacts_stopped_now") if "helps" in t]
check(stopped and stopped[0] > 0, f"inbound: the attached run stopped contacts ({stopped})")
parts = [int(t["marked"]) for t in table_after("marked") if "partition" in t]
check(parts and parts[0] > 0, f"partitioned: the attached run marked rows ({parts})")

print(f"bench_smoke: {passed} passed, {failed} failed")
PY
