#!/usr/bin/env bash
# scripts/pg.sh VERSION: a PostgreSQL of that major version to build and test
# optout against. Prints the path of its pg_config (the only line on stdout;
# progress goes to stderr), so that
#
#   make PG_CONFIG="$(bash scripts/pg.sh 18)"
#
# works. Versions:
#
#   15   the system's Debian package (postgresql-15, postgresql-server-dev-15).
#   18   built from the Debian source package (suite sid) into a cache, once:
#        later runs on the same machine reuse it.
#   17   the same from the trixie suite, where its files can be downloaded.
#
# Exit status 3: the source package cannot be downloaded here (the version is
# then skipped by scripts/test.sh); any other failure is 1.
#
# The cache is $OPTOUT_CACHE if set, else /var/cache/optout (root, or where a
# build is already there), else ~/.cache/optout. Each version is one directory
# pg-VERSION, complete when it holds .optout-complete; it is world-readable so
# that the unprivileged user the tests run as can use what root built.
#
# A build needs bison, flex, perl, libicu-dev, libreadline-dev, zlib1g-dev, valgrind (its headers: the build defines USE_VALGRIND) and
# pkg-config; as root, missing ones are installed. The source package comes
# from the Debian mirror this machine already uses (read from its apt
# sources), through a private apt configuration: the system's apt sources and
# lists are not touched. The server is built as plain upstream PostgreSQL
# (./configure --without-llvm --with-icu; Debian's patches are not applied),
# with dblink from contrib (the regress suite uses it).
set -euo pipefail
V=${1:-}
JOBS=${JOBS:-2}
say() { echo "pg.sh: $*" >&2; }
die() { say "$*"; exit 1; }

case "$V" in
    15)
        c=/usr/lib/postgresql/15/bin/pg_config
        [ -x "$c" ] || die "PostgreSQL 15 is not installed: apt-get install postgresql-15 postgresql-server-dev-15"
        echo "$c"; exit 0 ;;
    17) suite=trixie ;;
    18) suite=sid ;;
    *) die "usage: scripts/pg.sh 15|17|18 (16 is in no Debian suite this machine reaches)" ;;
esac

if [ -n "${OPTOUT_CACHE:-}" ]; then cache=$OPTOUT_CACHE
elif [ "$(id -u)" = 0 ] || [ -f "/var/cache/optout/pg-$V/.optout-complete" ]; then cache=/var/cache/optout
else cache=${XDG_CACHE_HOME:-$HOME/.cache}/optout
fi
prefix=$cache/pg-$V
# Built with -DUSE_VALGRIND (valgrind then sees misuse of palloc'd memory;
# outside valgrind its client requests cost next to nothing). A cached build
# without it, from an older scripts/pg.sh, is rebuilt.
cflags="-DUSE_VALGRIND"
complete() { [ -f "$prefix/.optout-complete" ] && [ "$(cat "$prefix/.optout-cflags" 2>/dev/null)" = "$cflags" ]; }
if complete; then
    say "PostgreSQL $(cat "$prefix/.optout-complete") in $prefix (cached)"
    echo "$prefix/bin/pg_config"; exit 0
fi

umask 022
mkdir -p "$cache"
exec 9>"$cache/pg-$V.lock"
flock 9   # one build per version at a time; a second caller waits and reuses it
if complete; then echo "$prefix/bin/pg_config"; exit 0; fi

build_packages="bison flex perl pkg-config libicu-dev libreadline-dev zlib1g-dev make gcc valgrind"
missing=()
for p in $build_packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "building PostgreSQL $V needs: sudo apt-get install -y ${missing[*]}"
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian archive this machine uses: the first apt source whose path is
# .../debian (not debian-security, not a third-party repository).
mirror=$({ cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } \
         | sed -nE -e 's#^deb(-src)?[[:space:]]+(\[[^]]*\][[:space:]]+)?([a-z]+://[^[:space:]]+/debian)/?[[:space:]].*#\3#p' \
                   -e 's#^URIs:.*[[:space:]]([a-z]+://[^[:space:]]+/debian)/?([[:space:]].*)?$#\1#p' \
                   -e 's#^URIs:[[:space:]]*([a-z]+://[^[:space:]]+/debian)/?$#\1#p' | head -n 1)
[ -n "$mirror" ] || die "no Debian archive found in /etc/apt/sources.list*"

work=$(mktemp -d "${TMPDIR:-/tmp}/optout-pg$V.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$cache/pg-$V.build.log
: >"$log"
say "downloading Debian's $suite source package of PostgreSQL $V (log: $log)"
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$work/apt/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache" -o Debug::NoLocking=1)
# As root, apt would download as user _apt, who cannot write into $work.
[ "$(id -u)" = 0 ] && apt_opts+=(-o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" -qq update >>"$log" 2>&1 || { tail -n 20 "$log" >&2; die "apt-get update of $suite failed"; }
if ! (cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only "postgresql-$V") >>"$log" 2>&1; then
    grep -E '^(E|W):' "$log" | head -n 5 >&2
    say "postgresql-$V cannot be downloaded from the $suite suite"
    exit 3   # not to be had here: scripts/test.sh skips this version
fi
orig=$(ls "$work/src"/postgresql-"$V"_*.orig.tar.* | head -n 1)
debver=$(sed -n 's/^Version: //p' "$work/src"/postgresql-"$V"_*.dsc | head -n 1)
tar -C "$work/src" -xf "$orig"
src=$(ls -d "$work/src"/postgresql-"$V".*/ | head -n 1)

say "building PostgreSQL $debver into $prefix (about 15 minutes on 2 cores)"
rm -rf "$prefix"
{
    cd "$src"
    ./configure --prefix="$prefix" CPPFLAGS="$cflags" --without-llvm --with-icu --with-readline --with-zlib --enable-debug \
    && make -j"$JOBS" \
    && make install \
    && make -C contrib/dblink -j"$JOBS" install
} >>"$log" 2>&1 || { tail -n 40 "$log" >&2; rm -rf "$prefix"; die "building PostgreSQL $V failed (see $log)"; }

# PGXS's regresscheck and isolationcheck run these from the installation.
pgxs=$(dirname "$(dirname "$(dirname "$("$prefix/bin/pg_config" --pgxs)")")")   # .../lib/postgresql/pgxs
for f in src/test/regress/pg_regress src/test/isolation/pg_isolation_regress src/test/isolation/isolationtester; do
    [ -x "$pgxs/$f" ] || die "the build did not install $f"
done
echo "postgresql-$V $debver ($suite), orig $(sha256sum "$orig" | cut -d' ' -f1)" >"$prefix/SOURCE"
echo "$cflags" >"$prefix/.optout-cflags"
chmod -R a+rX "$prefix"
"$prefix/bin/pg_config" --version | sed 's/^PostgreSQL //' >"$prefix/.optout-complete"
say "PostgreSQL $(cat "$prefix/.optout-complete") built in $prefix"
echo "$prefix/bin/pg_config"
