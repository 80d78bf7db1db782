#!/usr/bin/env bash
# The Debian package postgresql-15-optout (debian/, PostgreSQL's pg_buildext),
# built from a clean copy of the tree, installed into this system, and tested
# on a fresh cluster of the system's PostgreSQL 15: the installed package, not
# the build tree.
#
#   test/scripts/package.sh --install   as root (scripts/test.sh's root phase):
#       copies the tree (tracked and untracked-but-not-ignored files) to a
#       fresh directory, builds the binary package there as an unprivileged
#       user (dpkg-buildpackage -us -uc -b), installs it with apt-get; records
#       how it went in $OPTOUT_PACKAGE_STATE (a directory) for the test below.
#   test/scripts/package.sh             as the unprivileged user: checks the
#       build and install recorded there, then initdb, CREATE EXTENSION optout
#       and a short enforcement check on the installed package. Without a
#       recorded install (test.sh not run as root), says so and counts nothing.
#
# Prints "ok"/"not ok" lines and "package: N passed, N failed".
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
state=${OPTOUT_PACKAGE_STATE:-}
version=$(sed -n '1s/^optout (\([^)]*\)).*/\1/p' "$OPTOUT_ROOT/debian/changelog")   # e.g. 0.4.0-1
pg=15
pkg=postgresql-$pg-optout

if [ "${1:-}" = --install ]; then
    [ "$(id -u)" = 0 ] || { echo "package.sh --install: run as root" >&2; exit 1; }
    [ -n "$state" ] || { echo "package.sh --install: set OPTOUT_PACKAGE_STATE to a directory" >&2; exit 1; }
    mkdir -p "$state"; chmod 755 "$state"
    user=postgres
    id "$user" >/dev/null 2>&1 || { useradd --system --create-home optout-runner 2>/dev/null || true; user=optout-runner; }
    work=$(mktemp -d /tmp/optout-deb.XXXXXX)
    src=$work/optout-${version%-*}
    mkdir "$src"
    if git -C "$OPTOUT_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$OPTOUT_ROOT" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -C "$src" -xf -
    else
        (cd "$OPTOUT_ROOT" && tar --exclude=./build --exclude='./build-*' --exclude='./tmp_*' --exclude='*.o' \
                                  --exclude='*.so' --exclude='*.bc' -cf - .) | tar -C "$src" -xf -
    fi
    chown -R "$user" "$work"
    t0=$SECONDS
    if runuser -u "$user" -- env HOME="$work" PG_UPDATECONTROL=yes bash -c "cd '$src' && dpkg-buildpackage -us -uc -b -j${JOBS:-2}" \
            >"$state/build.log" 2>&1; then
        echo "$((SECONDS - t0))" >"$state/build.seconds"
        cp "$work/${pkg}_${version}_"*.deb "$state/"
        t0=$SECONDS
        if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall "$state/${pkg}_${version}_"*.deb \
                >"$state/install.log" 2>&1; then
            echo "$((SECONDS - t0))" >"$state/install.seconds"
        fi
    fi
    chmod -R a+rX "$state"
    rm -rf "$work"
    exit 0
fi

passed=0 failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1"; failed=$((failed + 1)); }
if [ -z "$state" ] || [ ! -f "$state/build.log" ]; then
    echo "# skipped: the package is built and installed by scripts/test.sh's root phase (run it as root)"
    echo "package: 0 passed, 0 failed"; exit 0
fi
if [ -f "$state/build.seconds" ]; then
    ok "dpkg-buildpackage -us -uc -b built $pkg $version from a clean copy of the tree ($(cat "$state/build.seconds")s)"
else
    not_ok "dpkg-buildpackage built $pkg $version from a clean copy of the tree"
    tail -n 30 "$state/build.log" | sed 's/^/#   /'
    echo "package: $passed passed, $failed failed"; exit 1
fi
if [ -f "$state/install.seconds" ] \
   && [ "$(dpkg-query -W -f='${Status} ${Version}' "$pkg" 2>/dev/null)" = "install ok installed $version" ]; then
    ok "apt-get installed $pkg $version ($(cat "$state/install.seconds")s)"
else
    not_ok "apt-get installed $pkg $version"; tail -n 20 "$state/install.log" 2>/dev/null | sed 's/^/#   /'
    echo "package: $passed passed, $failed failed"; exit 1
fi
# Every installed file is the package's, unmodified.
if out=$(dpkg --verify "$pkg" 2>&1) && [ -z "$out" ]; then ok "dpkg --verify $pkg: the installed files are the package's"
else not_ok "dpkg --verify $pkg: the installed files are the package's"; printf '%s\n' "$out" | sed 's/^/#   /'; fi

# A fresh cluster of the system's PostgreSQL, which finds extensions only in
# its own directories: where the package installed optout.
bindir=/usr/lib/postgresql/$pg/bin
dir=$(mktemp -d "${TMPDIR:-/tmp}/optout-package.XXXXXX")
trap '"$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
"$bindir/initdb" -D "$dir/data" -U postgres --encoding=UTF8 --no-locale --auth=trust >/dev/null
"$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c port=54341" start >/dev/null
psql() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p 54341 -U postgres -d postgres "$@"; }
check() {  # check NAME EXPECTED SQL
    local got
    got=$(psql -At -c "$3" 2>&1) || true
    if [ "$got" = "$2" ]; then ok "$1"
    else not_ok "$1"; echo "#   expected: $2"; echo "#   got:      $got" | head -n 20; fi
}
default=$(sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$OPTOUT_ROOT/optout.control")
check "CREATE EXTENSION optout on a fresh cluster of the system's PostgreSQL $pg: version $default" "$default" \
      "CREATE EXTENSION optout; SELECT extversion FROM pg_extension WHERE extname = 'optout'"
check "the backend runs the package's library ($("$bindir/pg_config" --pkglibdir)/optout.so)" \
      "opt_out|$("$bindir/pg_config" --pkglibdir)/optout.so" \
      "SELECT optout.classify('STOP'), (SELECT string_agg(DISTINCT m[1], ',')
         FROM regexp_matches(pg_read_file('/proc/self/maps'), '(/\S*optout\.so)', 'g') m)"
check "the package carries the upgrade path from each release (ALTER EXTENSION optout UPDATE)" \
      "$(cd "$OPTOUT_ROOT/test/upgrade" && printf '%s\n' optout--*.sql | sed -E 's/^optout--(.*)\.sql$/\1/' | grep -v -- -- | sort | tr '\n' ' ')" \
      "SELECT string_agg(source, ' ' ORDER BY source) || ' ' FROM pg_extension_update_paths('optout')
        WHERE target = '$default' AND path IS NOT NULL AND source <> '$default'"
psql >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE TABLE contacts (id int PRIMARY KEY, status text NOT NULL DEFAULT 'A');
CREATE TABLE messages (id serial, contact int, direction text, body text, status text DEFAULT 'Q');
INSERT INTO contacts SELECT generate_series(1, 3);
SELECT optout.attach_inbound('messages', 'body', 'contact', row_filter => '{"direction": "in"}');
SELECT optout.attach_outbound('messages', 'contact', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}', row_filter => '{"direction": "out"}');
SELECT optout.attach_contacts('contacts', 'id', 'status', 'S', 'A');
SQL
check "enforcement: a STOP stops the contact" "S|1" \
      "INSERT INTO messages (contact, direction, body) VALUES (1, 'in', 'STOP');
       SELECT status, (SELECT count(*) FROM optout.stops WHERE contact = '1') FROM contacts WHERE id = 1"
check "enforcement: a send to the stopped contact is marked failed, one to another goes" "F|Q" \
      "INSERT INTO messages (contact, direction, body) VALUES (1, 'out', 'promo'), (2, 'out', 'promo');
       SELECT string_agg(status, '|' ORDER BY contact) FROM messages WHERE body = 'promo'"
check "enforcement: START lifts the stop" "A|Q" \
      "INSERT INTO messages (contact, direction, body) VALUES (1, 'in', 'START');
       INSERT INTO messages (contact, direction, body) VALUES (1, 'out', 'welcome back');
       SELECT (SELECT status FROM contacts WHERE id = 1), (SELECT status FROM messages WHERE body = 'welcome back')"

echo "package: $passed passed, $failed failed"
[ "$failed" = 0 ]
