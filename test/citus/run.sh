#!/usr/bin/env bash
# test/citus/run.sh: optout on Citus (issue #18). Builds Citus once into a
# cache, starts a coordinator and two workers on this machine (a private copy
# of the PostgreSQL installation with optout and Citus in it, ports 5671-5673
# on 127.0.0.1), distributes a RapidPro-shaped schema and runs the scenario in
# test/citus/scenario.sh. Prints "ok"/"not ok" lines and closes with
# "citus: N passed, N failed".
#
# Exit status: 0 passed, 1 failed, 3 skipped (no Citus source here, as in CI;
# scripts/test.sh counts it as skipped).
#
# Citus is built from its source, never downloaded by this script:
#   CITUS_SRC       a source tree (with ./configure), or a git directory;
#                   default: the bare mirror /work/.mirror/citusdata+citus/repo
#   CITUS_VERSION   the git tag to build from a git directory (default v13.2.2,
#                   the newest release for PostgreSQL 15 to 17)
#   OPTOUT_CACHE    where the build is cached (as scripts/pg.sh: /var/cache/optout
#                   as root or where the build is already, else ~/.cache/optout);
#                   one directory citus-VERSION-pgMAJOR, complete with .optout-complete
#   PG              the PostgreSQL major version (default 15)
#   CITUS_BUILD_ONLY=1   build the cache and stop (scripts/test.sh does it as root)
#
# A build needs, beyond optout's packages: autoconf flex bison libcurl
# (optional) liblz4-dev libzstd-dev libkrb5-dev libssl-dev libselinux1-dev
# libxslt1-dev libpam0g-dev (the headers PostgreSQL's server headers include);
# as root, missing ones are installed.
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/common.sh
. "$OPTOUT_ROOT/scripts/common.sh"
say() { echo "# citus: $*"; }
skip() { say "skipped: $*"; echo "citus: 0 passed, 0 failed (skipped)"; exit 3; }
die() { say "$*"; echo "citus: 0 passed, 1 failed"; exit 1; }

CITUS_VERSION=${CITUS_VERSION:-v13.2.2}
PG_CONFIG=$(optout_pg_config)
pg_major=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
ver=${CITUS_VERSION#v}
name=citus-$ver-pg$pg_major

if [ -n "${OPTOUT_CACHE:-}" ]; then cache=$OPTOUT_CACHE
elif [ "$(id -u)" = 0 ] || [ -f "/var/cache/optout/$name/.optout-complete" ]; then cache=/var/cache/optout
else cache=${XDG_CACHE_HOME:-$HOME/.cache}/optout
fi
prefix=$cache/$name

build_citus() {
    [ -f "$prefix/.optout-complete" ] && { say "Citus $ver for PostgreSQL $pg_major in $prefix (cached)"; return 0; }
    local src=${CITUS_SRC:-/work/.mirror/citusdata+citus/repo} work log
    if [ ! -e "$src" ]; then
        skip "no Citus source at $src (set CITUS_SRC to a Citus tree or git directory); this script downloads nothing"
    fi
    umask 022
    mkdir -p "$cache"
    exec 8>"$cache/$name.lock"
    flock 8
    [ -f "$prefix/.optout-complete" ] && return 0
    local need="autoconf flex bison liblz4-dev libzstd-dev libkrb5-dev libssl-dev libselinux1-dev libxslt1-dev libpam0g-dev"
    local missing
    # shellcheck disable=SC2086,SC2207
    missing=($(missing_packages $need))
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "building Citus needs: sudo apt-get install -y ${missing[*]}"
        say "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    work=$(mktemp -d "${TMPDIR:-/tmp}/optout-citus.XXXXXX")
    log=$cache/$name.build.log
    : >"$log"
    if [ -x "$src/configure" ]; then
        say "building Citus from the tree $src (log: $log)"
        cp -a "$src/." "$work/"
    elif git --git-dir="$src" rev-parse --verify -q "$CITUS_VERSION^{commit}" >/dev/null 2>&1; then
        say "building Citus $CITUS_VERSION from the git directory $src (log: $log)"
        git --git-dir="$src" archive "$CITUS_VERSION" | tar -x -C "$work"
    else
        rm -rf "$work"
        skip "$src is neither a Citus source tree nor a git directory with the tag $CITUS_VERSION"
    fi
    # PostgreSQL 15.20 (and the other minors of its release) exports
    # have_createdb_privilege, which Citus 13.2.2 defines itself for 15: its
    # own copy is left out of the build tree (nothing of Citus is kept).
    if grep -q 'extern bool have_createdb_privilege' "$("$PG_CONFIG" --includedir-server)/commands/dbcommands.h" 2>/dev/null; then
        perl -0pi -e 's/static inline bool\nhave_createdb_privilege\(void\)\n\{.*?\n\}\n//s' \
            "$work/src/include/pg_version_compat.h"
    fi
    if ! (cd "$work" && PG_CONFIG=$PG_CONFIG ./configure --without-libcurl && make -j"${JOBS:-2}" with_llvm=no \
          && rm -rf "$prefix.tmp" && make install with_llvm=no DESTDIR="$prefix.tmp") >>"$log" 2>&1; then
        tail -n 30 "$log"; rm -rf "$work"; die "the build of Citus failed (log: $log)"
    fi
    rm -rf "$work" "$prefix"
    echo "$ver" >"$prefix.tmp/.optout-complete"
    mv "$prefix.tmp" "$prefix"
    chmod -R a+rX "$prefix"
    say "Citus $ver built into $prefix"
}

if [ -z "${OPTOUT_UNPRIVILEGED:-}" ]; then
    ensure_packages
    build_citus
    [ -n "${CITUS_BUILD_ONLY:-}" ] && exit 0
    if [ "$(id -u)" = 0 ]; then
        # PostgreSQL refuses root: run the rest as an unprivileged user on a
        # copy of the tree (scripts/common.sh runs scripts/X; this is ../test/citus).
        export OPTOUT_CACHE=$cache
        reexec_unprivileged ../test/citus/run.sh "$@"
        exit $?
    fi
else
    build_citus
fi

exec bash "$OPTOUT_ROOT/test/citus/scenario.sh" "$prefix"
