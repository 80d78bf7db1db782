#!/usr/bin/env bash
# Sets up everything and runs the demo: installs missing packages (as root) or
# names them (as a normal user), builds optout, starts a throwaway PostgreSQL
# server from a private copy of the installation, runs demo/demo.sql, and
# removes the server again. PG=18 bash scripts/demo.sh runs it on PostgreSQL 18
# (see scripts/pg.sh).
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
. "$OPTOUT_ROOT/scripts/common.sh"

if [ -z "${OPTOUT_UNPRIVILEGED:-}" ]; then
    ensure_packages
    bash "$OPTOUT_ROOT/scripts/pg.sh" "$OPTOUT_PG_MAJOR" >/dev/null   # PG=18: built and cached once, as root
    if [ "$(id -u)" = 0 ]; then
        reexec_unprivileged demo.sh "$@"
        exit $?
    fi
fi

start_throwaway_server
echo "==> running demo/demo.sql"
echo
"$OPTOUT_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -f demo/demo.sql
