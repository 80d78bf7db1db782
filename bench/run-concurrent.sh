# shellcheck shell=bash
# bench/run.sh, workload "concurrent" (sourced; uses psql, OPTOUT_BINDIR,
# RUNS, SCALE): the mixed concurrent load of test/scripts/concurrency.sh
# (pgbench custom scripts on a RapidPro-shaped schema: inbound messages with
# STOP/START/HELP, single sends, INSERT ... SELECT broadcasts, re-queue
# UPDATEs, stops and starts by hand), attached versus the same schema
# unattached, at CONC_CLIENTS clients (default "1 4 8"), CONC_SECONDS
# seconds a run (default 10), RUNS runs of each, the variants rotated; the
# ratio of their throughputs is reported per run (median, min, max:
# bench.target). A third variant, "by hand", is the floor: the unattached
# schema made compliant with plain PL/pgSQL triggers (bench/concurrent-byhand.sql:
# exact keywords, no classifier, no locks, one log row an event), so the
# ratio attached / by hand is what optout costs over doing the required
# work at all.
conc_dir="$OPTOUT_ROOT/test/scripts/concurrency"
conc_contacts=$(num 20000)
[ "$conc_contacts" -ge 1000 ] || conc_contacts=1000
for db in bare attached byhand; do
    psql -d postgres -c "DROP DATABASE IF EXISTS conc_$db" -c "CREATE DATABASE conc_$db"
    psql -d conc_$db -v contacts="$conc_contacts" -f "$conc_dir/schema.sql" >/dev/null
    if [ "$db" = byhand ]; then
        psql -d conc_$db -v ON_ERROR_STOP=1 -f "$OPTOUT_ROOT/bench/concurrent-byhand.sql" >/dev/null
    else
        psql -d conc_$db -f "$conc_dir/app_$db.sql" >/dev/null
    fi
done
conc_tps() {  # conc_tps DB CLIENTS SEED: one run, prints its tps
    "$OPTOUT_BINDIR/pgbench" -n -c "$2" -j "$(( $2 < 2 ? $2 : 2 ))" -T "${CONC_SECONDS:-10}" --random-seed="$3" \
        -D contacts=$((conc_contacts * 95 / 100)) --max-tries=1 \
        -f "$conc_dir/inbound.sql@40" -f "$conc_dir/send.sql@30" -f "$conc_dir/broadcast.sql@4" \
        -f "$conc_dir/requeue.sql@10" -f "$conc_dir/stopstart.sql@16" "$1" 2>/dev/null |
        sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1
}
for c in ${CONC_CLIENTS:-1 4 8}; do
    psql -c "INSERT INTO bench.variants (workload, variant, ord)
             VALUES ('concurrent', 'bare, $c clients', 3 * $c), ('concurrent', 'attached, $c clients', 3 * $c + 1),
                    ('concurrent', 'by hand, $c clients', 3 * $c + 2)
             ON CONFLICT DO NOTHING"
    for r in $(seq 1 "$RUNS"); do
        case $((r % 3)) in
            1) order="bare attached byhand" ;;
            2) order="attached byhand bare" ;;
            *) order="byhand bare attached" ;;
        esac
        for v in $order; do
            label=$([ "$v" = byhand ] && echo "by hand" || echo "$v")
            psql -d "conc_$v" -c CHECKPOINT >/dev/null
            tps=$(conc_tps "conc_$v" "$c" "$r")
            echo "    $c clients, run $r, $label: ${tps:-?} tps"
            psql -c "INSERT INTO bench.timings (workload, variant, run, ms)
                     VALUES ('concurrent', '$label, $c clients', $r, 1000 / nullif(${tps:-0}, 0))"
        done
    done
    # Throughput attached / bare is the bare time a transaction over the
    # attached one: bench.target's per-run ratio of 'bare' to 'attached'.
    psql -At -c "
        SELECT bench.target('concurrent', 'throughput attached / bare, $c clients',
                            'bare, $c clients', 'attached, $c clients',
                            CASE WHEN $c = 8 THEN '>=' END, CASE WHEN $c = 8 THEN 0.85 END)" \
         -c "SELECT bench.target('concurrent', 'the floor: throughput by hand / bare, $c clients',
                                 'bare, $c clients', 'by hand, $c clients')" \
         -c "SELECT bench.target('concurrent', 'throughput attached / by hand, $c clients',
                                 'by hand, $c clients', 'attached, $c clients')" |
        sed 's/^/    /'
done
# Where the time goes (CONC_WAITS=1): one more 8-client run of each, its
# backends' wait events sampled from pg_stat_activity every 0.1 s.
if [ -n "${CONC_WAITS:-}" ]; then
    psql -c "CREATE TABLE IF NOT EXISTS bench.conc_waits (variant text, wait text, query text)"
    for v in bare attached; do
        "$OPTOUT_BINDIR/pgbench" -n -c 8 -j 2 -T "${CONC_SECONDS:-10}" --random-seed=99 \
            -D contacts=$((conc_contacts * 95 / 100)) --max-tries=1 \
            -f "$conc_dir/inbound.sql@40" -f "$conc_dir/send.sql@30" -f "$conc_dir/broadcast.sql@4" \
            -f "$conc_dir/requeue.sql@10" -f "$conc_dir/stopstart.sql@16" conc_$v >/dev/null 2>&1 &
        bench_pid=$!
        sleep 1
        while kill -0 "$bench_pid" 2>/dev/null; do
            psql -c "INSERT INTO bench.conc_waits SELECT '$v', coalesce(wait_event_type || ':' || wait_event, 'CPU'),
                            left(regexp_replace(query, '\s+', ' ', 'g'), 40)
                       FROM pg_stat_activity WHERE datname = 'conc_$v' AND state = 'active'" 2>/dev/null || true
            sleep 0.1
        done
        wait "$bench_pid" || true
    done
    psql -c "SELECT variant, wait, count(*) AS samples,
                    round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY variant), 1) AS pct
               FROM bench.conc_waits GROUP BY 1, 2 ORDER BY 1, 3 DESC" \
         -c "SELECT variant, wait, query, count(*) FROM bench.conc_waits WHERE wait <> 'CPU'
              GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 15"
fi
