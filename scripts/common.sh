# shellcheck shell=bash
# Shared by scripts/demo.sh and scripts/test.sh. Source it; do not run it.
#
# - optout_packages: the Debian packages a build and the tests need (the last
#   line: building the Debian package, debian/).
# - ensure_packages: as root, apt-get installs what is missing; as a normal
#   user, names the one apt-get line to run and stops.
# - reexec_unprivileged: PostgreSQL refuses to run as root, so as root the
#   script re-runs itself as an unprivileged user on a copy of the tree.

# The PostgreSQL major version to build and test against: $PG, else the
# system's 15. scripts/pg.sh builds the others (17, 18) into a cache.
OPTOUT_PG_MAJOR=${PG:-${OPTOUT_PG_MAJOR:-15}}

# PostgreSQL 15 is Debian 12's own, and always installed: the default server,
# and the source of the cross-version dump and restore.
optout_packages() {
    echo "make g++ clang clang-format shellcheck cmake pkg-config python3 valgrind libicu-dev libgtest-dev libclang-rt-dev" \
         "postgresql-15 postgresql-server-dev-15 pgbouncer" \
         "debhelper dpkg-dev postgresql-server-dev-all"
}

# The packages of those named that are not installed.
missing_packages() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    echo "${missing[@]}"
}

ensure_packages() {
    local missing all
    read -ra all <<< "$(optout_packages)"
    missing=$(missing_packages "${all[@]}")
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" = 0 ]; then
        echo "==> installing: $missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
        echo "optout needs these Debian packages, which are not installed: $missing" >&2
        echo "Install them once (as root), then run this command again:" >&2
        echo "  sudo apt-get install -y $(optout_packages)" >&2
        exit 1
    fi
}

# pg_config of the PostgreSQL major version we build against (scripts/pg.sh:
# the system's for 15, else a build it caches, made on first use).
optout_pg_config() {
    bash "$OPTOUT_ROOT/scripts/pg.sh" "$OPTOUT_PG_MAJOR"
}

# reexec_unprivileged SCRIPT ARGS...: when root, copy the tree (tracked and
# untracked-but-not-ignored files) to a fresh directory owned by an
# unprivileged user and run SCRIPT there as that user. Returns its status.
reexec_unprivileged() {
    local script=$1; shift
    local user=postgres
    id "$user" >/dev/null 2>&1 || { useradd --system --create-home optout-runner 2>/dev/null || true; user=optout-runner; }
    local work
    work=$(mktemp -d /tmp/optout-run.XXXXXX)
    if git -C "$OPTOUT_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$OPTOUT_ROOT" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -C "$work" -xf -
    else
        (cd "$OPTOUT_ROOT" && tar --exclude=./build --exclude=./tmp_install --exclude=./tmp_check -cf - .) | tar -C "$work" -xf -
    fi
    chown -R "$user" "$work"
    chmod 755 "$work"
    echo "==> running as user '$user' in $work"
    local rc=0
    runuser -u "$user" -- env OPTOUT_UNPRIVILEGED=1 HOME="$work" bash "$work/scripts/$script" "$@" || rc=$?
    if [ "$rc" = 0 ] && [ -z "${OPTOUT_KEEP_WORK:-}" ]; then rm -rf "$work"; fi
    return "$rc"
}

# start_throwaway_server: builds optout into ./tmp_install and starts a server
# from it in a temporary directory, stopped and removed when the calling
# shell exits. Sets PGHOST, PGPORT, PGUSER, PGDATABASE and OPTOUT_BINDIR.
start_throwaway_server() {
    cd "$OPTOUT_ROOT" || return 1
    PG_CONFIG=$(optout_pg_config)
    export PG_CONFIG
    echo "==> building optout"
    make -j"${JOBS:-2}" >/dev/null
    make temp-install >/dev/null
    OPTOUT_BINDIR="$OPTOUT_ROOT/tmp_install$("$PG_CONFIG" --bindir)"
    OPTOUT_SERVER_DIR=$(mktemp -d /tmp/optout-server.XXXXXX)
    trap stop_throwaway_server EXIT
    echo "==> starting a throwaway server in $OPTOUT_SERVER_DIR"
    "$OPTOUT_BINDIR/initdb" -D "$OPTOUT_SERVER_DIR/data" -U postgres --encoding=UTF8 --no-locale \
        --auth=trust >/dev/null
    "$OPTOUT_BINDIR/pg_ctl" -D "$OPTOUT_SERVER_DIR/data" -l "$OPTOUT_SERVER_DIR/server.log" -w \
        -o "-c listen_addresses='' -c unix_socket_directories='$OPTOUT_SERVER_DIR' -c port=54329 ${OPTOUT_SERVER_OPTS:-}" \
        start >/dev/null
    export PGHOST="$OPTOUT_SERVER_DIR" PGPORT=54329 PGUSER=postgres PGDATABASE=postgres OPTOUT_BINDIR
}

stop_throwaway_server() {
    [ -n "${OPTOUT_SERVER_DIR:-}" ] || return 0
    "$OPTOUT_BINDIR/pg_ctl" -D "$OPTOUT_SERVER_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$OPTOUT_SERVER_DIR"
}
