#!/usr/bin/env bash
# ALTER EXTENSION optout UPDATE from every released version to this tree's.
#
# For each released install script kept in test/upgrade/optout--X.sql (a
# release's script as it shipped; never edited), on a throwaway server of the
# tree's build (./tmp_install, where those scripts are copied beside the
# tree's own):
#   1. CREATE EXTENSION optout VERSION 'X'; attach a RapidPro-shaped schema
#      (test/upgrade/rapidpro.sql) and give it a history: keyword, custom
#      keyword, provider and manual stops, a blocked send, an open review;
#   2. ALTER EXTENSION optout UPDATE (to default_version);
#   3. the catalog equals a fresh install's after the same attach: the
#      extension's member objects (pg_depend deptype 'e'), its config tables
#      and conditions (extconfig, extcondition), the ACLs of its members and
#      their columns, and a normalised `pg_dump --schema-only` of the whole
#      database, once as is and once with the extension's membership dissolved
#      (pg_dump leaves out an extension's members: without their membership
#      it prints every function with its body, SECURITY DEFINER and SET
#      search_path, every table with its columns in order, index, trigger,
#      event trigger, comment and GRANT);
#   4. the data written under X is intact (every table's rows, on X's
#      columns), and enforcement still works on the attached tables.
# Also: a released version with no chain of upgrade scripts to the default
# version fails here (and in test/scripts/check_meta.py).
#
# Prints "ok"/"not ok" lines and "upgrade: N passed, N failed".
# Run by scripts/test.sh (as an unprivileged user, after the build).
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/common.sh
. "$OPTOUT_ROOT/scripts/common.sh"
start_throwaway_server >/dev/null
extdir="$OPTOUT_ROOT/tmp_install$("$PG_CONFIG" --sharedir)/extension"
default=$(sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$OPTOUT_ROOT/optout.control")
work=$OPTOUT_SERVER_DIR/upgrade
mkdir -p "$work"
psql() { "$OPTOUT_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" "$@"; }
passed=0 failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1"; failed=$((failed + 1)); }
check() {  # check NAME EXPECTED DB SQL
    local got
    got=$(psql -d "$3" -At -c "$4" 2>&1) || true
    if [ "$got" = "$2" ]; then ok "$1"
    else not_ok "$1"; echo "#   expected: $2"; echo "#   got:      $got" | head -n 20; fi
}
same() {  # same NAME FILE-A FILE-B: the two outputs are equal
    if diff -u "$2" "$3" >"$work/diff" 2>&1; then ok "$1"
    else not_ok "$1"; sed 's/^/#   /' "$work/diff" | head -n 60; fi
}

# The released versions, and the path of upgrade scripts from each to the
# default version (PostgreSQL takes the shortest; any path will do here).
released=()
for f in "$OPTOUT_ROOT"/test/upgrade/optout--*.sql; do
    v=${f##*/optout--}; v=${v%.sql}
    case $v in *--*) continue ;; esac
    released+=("$v")
done
[ ${#released[@]} -gt 0 ] || { not_ok "test/upgrade holds a released install script"; }
has_path() {  # has_path FROM: upgrade scripts lead from FROM to $default
    local seen=" $1 " frontier=("$1") next f a b
    while [ ${#frontier[@]} -gt 0 ]; do
        next=()
        for f in "$OPTOUT_ROOT"/src/sql/upgrade/optout--*--*.sql; do
            [ -e "$f" ] || continue
            a=${f##*/optout--}; a=${a%.sql}; b=${a#*--}; a=${a%%--*}
            case " ${frontier[*]} " in *" $a "*) ;; *) continue ;; esac
            [ "$b" = "$default" ] && return 0
            case $seen in *" $b "*) ;; *) seen="$seen$b "; next+=("$b") ;; esac
        done
        frontier=("${next[@]+"${next[@]}"}")
    done
    return 1
}

# The catalog of the extension and of the whole database, in text files.
catalog() {  # catalog DB PREFIX
    local db=$1 p=$2
    psql -d "$db" -At >"$p.members" -c "
        SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend
         WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
           AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'optout') ORDER BY 1"
    psql -d "$db" -At >"$p.extconfig" -c "
        SELECT c.cfg::regclass, coalesce(x.extcondition[c.n], '<none>')
          FROM pg_extension x, unnest(x.extconfig) WITH ORDINALITY AS c(cfg, n)
         WHERE x.extname = 'optout' ORDER BY 1"
    psql -d "$db" -At >"$p.acl" -c "
        WITH m AS (SELECT classid, objid FROM pg_depend
                    WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
                      AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'optout'))
        SELECT pg_describe_object(m.classid, m.objid, 0) || ' ' || coalesce(CASE m.classid
                 WHEN 'pg_proc'::regclass THEN (SELECT proacl::text FROM pg_proc WHERE oid = m.objid)
                 WHEN 'pg_class'::regclass THEN (SELECT relacl::text FROM pg_class WHERE oid = m.objid)
                 WHEN 'pg_namespace'::regclass THEN (SELECT nspacl::text FROM pg_namespace WHERE oid = m.objid)
                 WHEN 'pg_type'::regclass THEN (SELECT typacl::text FROM pg_type WHERE oid = m.objid)
               END, 'default') FROM m
        UNION ALL
        SELECT a.attrelid::regclass || '.' || a.attname || ' ' || a.attacl::text
          FROM m JOIN pg_attribute a ON m.classid = 'pg_class'::regclass AND a.attrelid = m.objid
         WHERE a.attacl IS NOT NULL
        ORDER BY 1"
    dump "$db" >"$p.dump"
}
# A schema-only dump without what differs between any two dumps: pg_dump's
# per-run \restrict key and its version comments.
dump() {
    "$OPTOUT_BINDIR/pg_dump" -h "$PGHOST" -p "$PGPORT" --schema-only -d "$1" \
        | grep -vE '^\\(un)?restrict |^-- Dumped (from|by) ' | cat -s
}
# Makes every member of the extension an ordinary object, so pg_dump prints it.
dissolve() {
    psql -d "$1" <<'SQL'
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT (pg_identify_object(classid, objid, objsubid)).* FROM pg_depend
              WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
                AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'optout')
    LOOP
        EXECUTE format('ALTER EXTENSION optout DROP %s %s',
                       CASE r.type WHEN 'composite type' THEN 'TYPE' ELSE upper(r.type) END, r.identity);
    END LOOP;
END $$;
SQL
}

# The tables whose rows must survive an update, with their columns at X.
tables="optout.keywords optout.stops optout.events optout.delivery_error_codes optout.attachments
        public.contacts_contact public.contacts_contactgroup_contacts public.msgs_msg public.channels_channelevent"
snapshot() {  # snapshot DB COLUMNS-FILE: one line per table, its row count and a hash of its rows
    local db=$1 cols=$2 t c
    for t in $tables; do
        c=$(grep "^$t " "$cols" | cut -d' ' -f2)
        # The one change the update makes to optout's rows, on purpose (0.4.0):
        # an inbound attachment made without a mode gets the mode in effect
        # (here the default, standard). Compared as that, and checked below.
        if [ "$t" = optout.attachments ]; then
            c=$(echo ",$c," | sed "s/,mode,/,CASE WHEN kind = 'inbound' THEN coalesce(mode, 'standard') ELSE mode END AS mode,/; s/^,//; s/,\$//")
        fi
        psql -d "$db" -At -c "SELECT '$t', count(*), md5(coalesce(string_agg(r::text, E'\n' ORDER BY r::text), ''))
                               FROM (SELECT $c FROM $t) r"
    done
}

# A fresh install of the default version, attached the same way.
psql -d postgres -c 'CREATE DATABASE fresh'
psql -d fresh -c 'CREATE EXTENSION optout' -f "$OPTOUT_ROOT/test/upgrade/rapidpro.sql" >/dev/null
catalog fresh "$work/fresh"
dissolve fresh
dump fresh >"$work/fresh.dissolved"

for x in "${released[@]}"; do
    echo "# from $x to $default"
    if has_path "$x"; then ok "$x: upgrade scripts in src/sql/upgrade lead to $default"
    else not_ok "$x: upgrade scripts in src/sql/upgrade lead to $default (none: add src/sql/upgrade/optout--$x--$default.sql)"; continue; fi
    cp "$OPTOUT_ROOT/test/upgrade/optout--$x.sql" "$extdir/"
    db="from_${x//./_}"
    psql -d postgres -c "CREATE DATABASE $db"
    if ! psql -d "$db" -c "CREATE EXTENSION optout VERSION '$x'" -f "$OPTOUT_ROOT/test/upgrade/rapidpro.sql" \
            >"$work/setup.log" 2>&1; then
        not_ok "$x: installed and attached"; sed 's/^/#   /' "$work/setup.log" | tail -n 20; continue
    fi
    ok "$x: installed and attached"
    # A history written under X.
    psql -d "$db" >/dev/null <<'SQL'
SET client_min_messages = warning;
INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES
    (1, 7, 1, 'queued before the stop', 'O', 'Q'),
    (1, 7, 1, 'STOP', 'I', 'P'),                  -- a keyword stop
    (1, 7, 2, 'basta', 'I', 'P'),                 -- the custom keyword
    (1, 7, 4, 'no', 'I', 'P'),                    -- a review
    (1, 7, 1, 'sent to a stopped contact', 'O', 'Q');
INSERT INTO channels_channelevent (org_id, channel_id, contact_id, event_type) VALUES (1, 7, 3, 'stop_contact');
SELECT optout.stop('5', reason => 'asked by phone');
SQL
    psql -d "$db" -At -c "SELECT table_schema || '.' || table_name || ' ' ||
                                   string_agg(quote_ident(column_name), ',' ORDER BY ordinal_position)
                              FROM information_schema.columns GROUP BY table_schema, table_name" >"$work/$db.columns"
    snapshot "$db" "$work/$db.columns" >"$work/$db.before"
    check "$x: the history under $x: 4 stopped, 1 open review, the send to a stopped contact marked" "1|1|1|1|1|F|C|1" "$db" "
        SELECT (SELECT count(*) FROM optout.stops WHERE contact IN ('1', '2', '3', '5')) / 4,
               (SELECT count(*) FROM optout.open_reviews WHERE contact = '4'),
               (SELECT count(*) FROM contacts_contact WHERE id IN (1, 2, 3, 5) AND status = 'S') / 4,
               (SELECT count(*) FROM optout.events WHERE kind = 'stop' AND contact = '2' AND keyword = 'basta'),
               (SELECT count(*) FROM optout.events WHERE kind = 'stop' AND contact = '3' AND source = 'provider'),
               (SELECT status || '|' || failed_reason FROM msgs_msg WHERE text = 'sent to a stopped contact'),
               (SELECT count(*) FROM msgs_msg WHERE text = 'queued before the stop' AND status = 'F')"

    if psql -d "$db" -c 'ALTER EXTENSION optout UPDATE' >"$work/update.log" 2>&1; then
        ok "$x: ALTER EXTENSION optout UPDATE"
    else
        not_ok "$x: ALTER EXTENSION optout UPDATE"; sed 's/^/#   /' "$work/update.log" | tail -n 20; continue
    fi
    check "$x: the extension is at $default" "$default" "$db" "SELECT extversion FROM pg_extension WHERE extname = 'optout'"

    # (1) the catalog
    catalog "$db" "$work/$db"
    same "$x: the extension's members (pg_depend 'e') equal a fresh install's" "$work/fresh.members" "$work/$db.members"
    same "$x: its config tables and conditions (extconfig, extcondition) equal a fresh install's" \
         "$work/fresh.extconfig" "$work/$db.extconfig"
    same "$x: the ACLs of its members and their columns equal a fresh install's" "$work/fresh.acl" "$work/$db.acl"
    same "$x: pg_dump --schema-only equals a fresh install's" "$work/fresh.dump" "$work/$db.dump"

    # (2) the data, then enforcement on the attached tables
    snapshot "$db" "$work/$db.columns" >"$work/$db.after"
    same "$x: every row written under $x is intact (counts and hashes of 9 tables, on $x's columns)" \
         "$work/$db.before" "$work/$db.after"
    check "$x: every inbound attachment has its mode stored (made without one: the mode in effect, standard)" "0" "$db" "
        SELECT count(*) FROM optout.attachments WHERE kind = 'inbound' AND mode IS DISTINCT FROM 'standard'"
    check "$x: the stops made under $x still hold: a send to each is marked failed (F, C)" "F|C|4" "$db" "
        INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status)
        SELECT 1, 7, c, 'after the update', 'O', 'Q' FROM unnest(ARRAY[1, 2, 3, 5]) c;
        SELECT status, failed_reason, count(*) FROM msgs_msg WHERE text = 'after the update' GROUP BY 1, 2"
    check "$x: a STOP after the update stops the contact (status S, in the ledger, in \\Stopped)" "S|1|\\Stopped" "$db" "
        INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 6, 'Stop', 'I', 'P');
        SELECT c.status, (SELECT count(*) FROM optout.stops WHERE contact = '6'),
               (SELECT string_agg(g.name, ',' ORDER BY g.name) FROM contacts_contactgroup_contacts m
                  JOIN contacts_contactgroup g ON g.id = m.contactgroup_id WHERE m.contact_id = 6 AND g.is_system)
          FROM contacts_contact c WHERE c.id = 6"
    check "$x: the custom keyword added under $x still stops" "S" "$db" "
        INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 7, 'BASTA', 'I', 'P');
        SELECT status FROM contacts_contact WHERE id = 7"
    check "$x: a send to a contact stopped after the update is marked failed (F, C)" "F|C" "$db" "
        INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 6, 'promo', 'O', 'Q');
        SELECT status, failed_reason FROM msgs_msg WHERE contact_id = 6 AND text = 'promo'"
    check "$x: START lifts the stop made under $x, and a send goes out again" "A|0|Q|" "$db" "
        INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 1, 'START', 'I', 'P');
        INSERT INTO msgs_msg (org_id, channel_id, contact_id, text, direction, status) VALUES (1, 7, 1, 'welcome back', 'O', 'Q');
        SELECT c.status, (SELECT count(*) FROM optout.stops WHERE contact = '1'), m.status, m.failed_reason
          FROM contacts_contact c, msgs_msg m WHERE c.id = 1 AND m.text = 'welcome back'"
    check "$x: the review opened under $x is open, and can be dismissed" "$(printf '1\nt\n0')" "$db" "
        SELECT count(*) FROM optout.open_reviews WHERE contact = '4';
        SELECT optout.dismiss_review((SELECT review_id FROM optout.open_reviews WHERE contact = '4'), 'not an opt-out');
        SELECT count(*) FROM optout.open_reviews WHERE contact = '4'"

    # (1, in full) every member's definition, as pg_dump prints an ordinary object
    dissolve "$db"
    dump "$db" >"$work/$db.dissolved"
    same "$x: every function, table, index, trigger, event trigger, comment and GRANT of the extension equals a fresh install's (pg_dump of its members)" \
         "$work/fresh.dissolved" "$work/$db.dissolved"
done

echo "upgrade: $passed passed, $failed failed"
[ "$failed" = 0 ]
