# shellcheck shell=bash
# Sourced by test/citus/scenario.sh (and handy by hand): a Citus coordinator
# and two workers on this machine, from a private copy of the PostgreSQL
# installation with optout and Citus installed into it.
#
#   citus_cluster_start CITUS_PREFIX   builds optout (make temp-install), adds
#                                      Citus's files, starts the three nodes
#   citus_cluster_stop                 stops them and removes their directory
#   cq NODE SQL...                     psql on node 0 (coordinator), 1 or 2
#
# Ports: CITUS_PORT (default 5671) and the two after it, on 127.0.0.1 only.

CITUS_PORT=${CITUS_PORT:-5671}

citus_cluster_start() {
    local citus=$1 i port
    cd "$OPTOUT_ROOT" || return 1
    PG_CONFIG=$(optout_pg_config)
    export PG_CONFIG
    echo "# building optout into tmp_install"
    make -j"${JOBS:-2}" >/dev/null
    make temp-install >/dev/null
    # Citus's files, installed with DESTDIR: the same layout as tmp_install.
    (cd "$citus" && tar --exclude=./.optout-complete -cf - .) | tar -C "$OPTOUT_ROOT/tmp_install" -xf -
    CITUS_BINDIR="$OPTOUT_ROOT/tmp_install$("$PG_CONFIG" --bindir)"
    CITUS_DIR=$(mktemp -d /tmp/optout-citus.XXXXXX)
    trap citus_cluster_stop EXIT
    for i in 0 1 2; do
        port=$((CITUS_PORT + i))
        "$CITUS_BINDIR/initdb" -D "$CITUS_DIR/n$i" -U postgres --encoding=UTF8 --no-locale --auth=trust >/dev/null
        cat >>"$CITUS_DIR/n$i/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$CITUS_DIR'
shared_preload_libraries = 'citus'
max_connections = 200
max_prepared_transactions = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
citus.enable_unsafe_triggers = on
log_min_messages = warning
CONF
        "$CITUS_BINDIR/pg_ctl" -D "$CITUS_DIR/n$i" -l "$CITUS_DIR/n$i.log" -w start >/dev/null
    done
    echo "# coordinator on $CITUS_PORT, workers on $((CITUS_PORT + 1)) and $((CITUS_PORT + 2)) ($CITUS_DIR)"
}

citus_cluster_stop() {
    [ -n "${CITUS_DIR:-}" ] || return 0
    local i
    for i in 0 1 2; do
        "$CITUS_BINDIR/pg_ctl" -D "$CITUS_DIR/n$i" -m immediate stop >/dev/null 2>&1 || true
    done
    [ -n "${CITUS_KEEP:-}" ] || rm -rf "$CITUS_DIR"
}

# cq NODE SQL: the result, unaligned, tuples only.
cq() {
    local node=$1; shift
    PGOPTIONS='-c client_min_messages=warning' "$CITUS_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$CITUS_DIR" -p $((CITUS_PORT + node)) -U postgres -d postgres "$@"
}
