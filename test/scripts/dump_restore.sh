#!/usr/bin/env bash
# pg_dump of a database using optout, restored into a fresh database, keeps
# keywords (with user edits), the ledger, events and attachments, and
# enforcement works after the restore. Prints TAP-like "ok"/"not ok" lines and
# a closing "dump_restore: N passed, N failed" line; exits non-zero on failure.
#
# With OPTOUT_RESTORE_BINDIR, the bin directory of a temporary installation
# of a newer PostgreSQL with optout installed (build-pg18/tmp_install/.../bin,
# as scripts/test.sh leaves it), the dump is restored into a server of that
# version instead: the upgrade path by dump and restore. The dump is made
# with the source's own pg_dump and restored with the target's pg_restore.
# (PostgreSQL's documentation advises the newer pg_dump, but 18.6's copies
# the reserved column option pg_attver that 15.20 sets on every column into
# the dump, and 18.6 then rejects it: a PostgreSQL matter that hits any
# table, not optout's.)
#
# Run by scripts/test.sh (as an unprivileged user, after the build).
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/common.sh
. "$OPTOUT_ROOT/scripts/common.sh"
start_throwaway_server >/dev/null
src=(-h "$PGHOST" -p "$PGPORT")
dst=("${src[@]}")
dst_bindir=${OPTOUT_RESTORE_BINDIR:-$OPTOUT_BINDIR}
if [ -n "${OPTOUT_RESTORE_BINDIR:-}" ]; then
    dst_dir=$OPTOUT_SERVER_DIR/restore-server
    "$dst_bindir/initdb" -D "$dst_dir/data" -U postgres --encoding=UTF8 --no-locale --auth=trust >/dev/null
    "$dst_bindir/pg_ctl" -D "$dst_dir/data" -l "$dst_dir/server.log" -w \
        -o "-c listen_addresses='' -c unix_socket_directories='$dst_dir' -c port=54330" start >/dev/null
    trap '"$dst_bindir/pg_ctl" -D "$dst_dir/data" -m immediate stop >/dev/null 2>&1 || true; stop_throwaway_server' EXIT
    dst=(-h "$dst_dir" -p 54330)
fi
psql() { "$OPTOUT_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "${src[@]}" "$@"; }
psql_dst() { "$dst_bindir/psql" -X -q -v ON_ERROR_STOP=1 "${dst[@]}" "$@"; }
echo "# from $(psql -d postgres -At -c 'SHOW server_version') to $(psql_dst -d postgres -At -c 'SHOW server_version')"
passed=0 failed=0
check() {  # check NAME EXPECTED SQL: SQL's result in the restored database
    local got
    got=$(psql_dst -d restored -At -c "$3" 2>&1) || true
    if [ "$got" = "$2" ]; then
        echo "ok - $1"; passed=$((passed + 1))
    else
        echo "not ok - $1"; echo "#   expected: $2"; echo "#   got:      $got"; failed=$((failed + 1))
    fi
}

psql -d postgres -c 'CREATE DATABASE source'
# A database-level setting, which a pg_dump without --create does not carry:
# the inbound attachment below, made without a mode, stores it (issue #26).
psql -d postgres -c "ALTER DATABASE source SET optout.match_mode = 'reasonable'"
psql_dst -d postgres -c 'CREATE DATABASE restored'
psql -d source >/dev/null <<'SQL'
CREATE EXTENSION optout;
CREATE TABLE contacts (id int PRIMARY KEY, status text NOT NULL DEFAULT 'A');
CREATE TABLE "Messages" (id serial, contact int, direction text, body text, status text DEFAULT 'Q');
INSERT INTO contacts SELECT generate_series(1, 5);
SELECT optout.attach_inbound('"Messages"', 'body', 'contact', row_filter => '{"direction": "in"}');
SELECT optout.attach_outbound('"Messages"', 'contact', on_blocked => 'mark', mark => '{"status": "F"}',
                              queued => '{"status": "Q"}', row_filter => '{"direction": "out"}');
SELECT optout.attach_contacts('contacts', 'id', 'status', 'S', 'A');
-- user edits of the configuration
INSERT INTO optout.keywords (keyword, intent, language) VALUES ('basta', 'opt_out', 'it');
UPDATE optout.keywords SET enabled = false WHERE keyword = 'yes';
UPDATE optout.delivery_error_codes SET stops = false WHERE provider = 'twilio' AND code = '30004';
INSERT INTO optout.delivery_error_codes (provider, code, description) VALUES ('acme', '77', 'opted out');
-- history
INSERT INTO "Messages" (contact, direction, body) VALUES (1, 'in', 'STOP'), (2, 'in', 'basta');
INSERT INTO "Messages" (contact, direction, body) VALUES (1, 'out', 'hello');
SQL
"$OPTOUT_BINDIR/pg_dump" "${src[@]}" -Fc -d source -f "$OPTOUT_SERVER_DIR/source.dump"
if "$dst_bindir/pg_restore" "${dst[@]}" -d restored --exit-on-error "$OPTOUT_SERVER_DIR/source.dump" \
        2>"$OPTOUT_SERVER_DIR/restore.err"; then
    echo "ok - pg_restore ran without error"; passed=$((passed + 1))
else
    echo "not ok - pg_restore ran without error"; sed 's/^/#   /' "$OPTOUT_SERVER_DIR/restore.err"; failed=$((failed + 1))
fi

check "the extension is at the source's version" "$(psql -d source -At -c "SELECT extversion FROM pg_extension WHERE extname = 'optout'")" \
      "SELECT extversion FROM pg_extension WHERE extname = 'optout'"
check "keywords: user keyword kept" "basta|opt_out|it" "SELECT keyword, intent, language FROM optout.keywords WHERE keyword = 'basta'"
check "keywords: disabled default stays disabled" "f" "SELECT enabled FROM optout.keywords WHERE keyword = 'yes'"
check "keywords: defaults not duplicated" "$(psql -d source -At -c "SELECT count(*) FROM optout.keywords WHERE is_default")" \
      "SELECT count(*) FROM optout.keywords WHERE is_default"
check "keywords: same table as the source" \
      "$(psql -d source -At -c "SELECT md5(string_agg(keyword || intent || language || enabled || is_default, ',' ORDER BY keyword)) FROM optout.keywords")" \
      "SELECT md5(string_agg(keyword || intent || language || enabled || is_default, ',' ORDER BY keyword)) FROM optout.keywords"
check "delivery codes: user edit and addition kept" "f|t" \
      "SELECT (SELECT stops FROM optout.delivery_error_codes WHERE code = '30004'), (SELECT stops FROM optout.delivery_error_codes WHERE provider = 'acme')"
check "ledger kept" "1,2" "SELECT string_agg(contact, ',' ORDER BY contact) FROM optout.stops"
check "events kept" "$(psql -d source -At -c 'SELECT count(*) FROM optout.events')" "SELECT count(*) FROM optout.events"
check "attachments kept" "3" "SELECT count(*) FROM optout.attached WHERE trigger_enabled"
check "the database-level setting is not in the restored database" "" \
      "SELECT setconfig FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
check "the inbound attachment keeps the mode fixed at attach (reasonable)" "reasonable" \
      "SELECT mode FROM optout.attachments WHERE kind = 'inbound'"
check "classifier sees the restored keywords" "opt_out|" "SELECT optout.classify('BASTA!'), optout.classify('yes')"
check "enforcement after restore: a send to a stopped contact is marked" "F" \
      "INSERT INTO \"Messages\" (contact, direction, body) VALUES (2, 'out', 'after restore') RETURNING status"
check "enforcement after restore: a new STOP stops" "S" \
      "INSERT INTO \"Messages\" (contact, direction, body) VALUES (3, 'in', 'Stop please'); SELECT status FROM contacts WHERE id = 3"
check "enforcement after restore: the sticky stop holds" "S" \
      "UPDATE contacts SET status = 'A' WHERE id = 1; SELECT status FROM contacts WHERE id = 1"
check "enforcement after restore: the restored mode (reasonable) is used" "S" \
      "INSERT INTO \"Messages\" (contact, direction, body) VALUES (4, 'in', 'please stop texting me'); SELECT status FROM contacts WHERE id = 4"
check "new events continue the sequence" "t" \
      "SELECT count(*) = count(DISTINCT id) FROM optout.events"

echo "dump_restore: $passed passed, $failed failed"
[ "$failed" = 0 ]
