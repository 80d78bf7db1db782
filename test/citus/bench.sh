#!/usr/bin/env bash
# test/citus/bench.sh: the cost of optout on a Citus broadcast. On the
# cluster of test/citus/cluster.sh (Citus built by test/citus/run.sh first:
# CITUS_BUILD_ONLY=1 bash test/citus/run.sh), a broadcast INSERT ... SELECT of
# ROWS messages (default 100,000) from the coordinator into a distributed
# message table attached to optout, against the same statement into an
# identical table, co-located, not attached; 1% of the contacts stopped.
# Variants alternate, RUNS times each (default 5); prints the medians and
# their ratio. Run it as an unprivileged user (PostgreSQL refuses root):
#   runuser -u postgres -- bash test/citus/bench.sh CITUS_PREFIX   (on a copy of the tree it can write)
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/common.sh
. "$OPTOUT_ROOT/scripts/common.sh"
# shellcheck source=test/citus/cluster.sh
. "$OPTOUT_ROOT/test/citus/cluster.sh"
ROWS=${ROWS:-100000} RUNS=${RUNS:-5}
citus_cluster_start "$1"
for n in 0 1 2; do cq $n -c 'CREATE EXTENSION citus' >/dev/null; done
cq 0 >/dev/null <<SQL
SELECT citus_set_coordinator_host('127.0.0.1', $CITUS_PORT);
SELECT citus_add_node('127.0.0.1', $((CITUS_PORT + 1)));
SELECT citus_add_node('127.0.0.1', $((CITUS_PORT + 2)));
CREATE EXTENSION optout;
SELECT * FROM optout.distribute();
CREATE TABLE contacts (id integer PRIMARY KEY, status text NOT NULL DEFAULT 'A');
CREATE TABLE msgs (id bigserial, contact_id integer NOT NULL, text text NOT NULL, direction text NOT NULL,
                   status text NOT NULL, failed_reason text, PRIMARY KEY (id, contact_id));
CREATE TABLE msgs_plain (LIKE msgs INCLUDING ALL);
SELECT create_distributed_table('contacts', 'id', shard_count => 8);
SELECT create_distributed_table('msgs', 'contact_id', colocate_with => 'contacts');
SELECT create_distributed_table('msgs_plain', 'contact_id', colocate_with => 'contacts');
INSERT INTO contacts (id) SELECT generate_series(1, $ROWS);
SELECT optout.attach_contacts('contacts', 'id', 'status', 'S', 'A');
SELECT optout.attach_outbound('msgs', 'contact_id', on_blocked => 'mark', mark => '{"status": "F", "failed_reason": "C"}',
                              queued => '{"status": "Q"}', row_filter => '{"direction": "O"}');
SELECT count(optout.stop(id::text, reason => 'bench')) FROM contacts WHERE id % 100 = 0;
VACUUM ANALYZE contacts;
CREATE FUNCTION bench_ms(q text) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN EXECUTE q; RETURN extract(epoch FROM clock_timestamp() - t0) * 1000; END \$\$;
SQL
q="INSERT INTO %s (contact_id, text, direction, status) SELECT id, 'Spring sale', 'O', 'Q' FROM contacts"
att=() plain=()
for r in $(seq 1 "$RUNS"); do
    for v in $( [ $((r % 2)) = 1 ] && echo "msgs msgs_plain" || echo "msgs_plain msgs"); do
        cq 0 -c "TRUNCATE $v" >/dev/null; cq 0 -c "CHECKPOINT" >/dev/null
        ms=$(cq 0 -c "SELECT round(bench_ms(format(\$\$$q\$\$, '$v'))::numeric, 1)")
        if [ "$v" = msgs ]; then att+=("$ms"); else plain+=("$ms"); fi
    done
done
marked=$(cq 0 -c "SELECT count(*) FILTER (WHERE status = 'F') || '/' || count(*) FROM msgs")
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ma=$(median "${att[@]}"); mp=$(median "${plain[@]}")
echo "rows=$ROWS runs=$RUNS stopped=1% marked=$marked"
echo "attached_ms=${att[*]}"
echo "unattached_ms=${plain[*]}"
echo "median_attached_ms=$ma median_unattached_ms=$mp ratio=$(awk -v a="$ma" -v p="$mp" 'BEGIN {printf "%.2f", a / p}')"
