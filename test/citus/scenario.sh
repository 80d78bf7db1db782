#!/usr/bin/env bash
# test/citus/scenario.sh CITUS_PREFIX: the scenario of test/citus/run.sh (run
# that script, which builds Citus first; this one expects the build).
set -euo pipefail
OPTOUT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/common.sh
. "$OPTOUT_ROOT/scripts/common.sh"
# shellcheck source=test/citus/cluster.sh
. "$OPTOUT_ROOT/test/citus/cluster.sh"
citus_cluster_start "$1"

passed=0 failed=0
check() {  # check NAME EXPECTED NODE SQL
    local got
    got=$(cq "$3" -c "$4" 2>&1) || true
    if [ "$got" = "$2" ]; then
        echo "ok - $1"; passed=$((passed + 1))
    else
        echo "not ok - $1"; echo "#   expected: $2"; echo "#   got:      $got"; failed=$((failed + 1))
    fi
}
run() {  # run NAME NODE SQL: the statement succeeds
    local got
    if got=$(cq "$2" -c "$3" 2>&1); then echo "ok - $1"; passed=$((passed + 1))
    else echo "not ok - $1"; echo "#   $got" | head -n 5; failed=$((failed + 1)); fi
}
fails() {  # fails NAME PATTERN NODE SQL: the statement errors with a message matching PATTERN
    local got
    if got=$(cq "$3" -c "$4" 2>&1); then
        echo "not ok - $1"; echo "#   expected an error matching: $2"; echo "#   got: $got"; failed=$((failed + 1))
    elif echo "$got" | grep -qE "$2"; then
        echo "ok - $1"; passed=$((passed + 1))
    else
        echo "not ok - $1"; echo "#   expected an error matching: $2"; echo "#   got: $got"; failed=$((failed + 1))
    fi
}

for n in 0 1 2; do cq $n -c 'CREATE EXTENSION citus' >/dev/null; done
cq 0 >/dev/null <<SQL
SELECT citus_set_coordinator_host('127.0.0.1', $CITUS_PORT);
SELECT citus_add_node('127.0.0.1', $((CITUS_PORT + 1)));
SELECT citus_add_node('127.0.0.1', $((CITUS_PORT + 2)));
CREATE EXTENSION optout;   -- Citus creates it on the workers too
SQL
check "optout.distribute() makes optout's tables Citus tables" \
      "optout.attachments|reference
optout.delivery_error_codes|reference
optout.events|distributed
optout.keywords|reference
optout.stops|reference" 0 "SELECT * FROM optout.distribute()"
cq 0 -f "$OPTOUT_ROOT/test/citus/schema.sql" >/dev/null
# attach_rapidpro(), groups included: on a table distributed by contact,
# optout moves a stopped contact to \Stopped with a statement for its shard.
check "attach_rapidpro() on the distributed tables" "5" 0 "SELECT count(*) FROM optout.attach_rapidpro()"
# Shapes optout cannot enforce on are refused, with the reason.
cq 0 >/dev/null <<'SQL'
CREATE TABLE sms_by_id (id bigint PRIMARY KEY, contact_id integer NOT NULL, status text);
SELECT create_distributed_table('sms_by_id', 'id', colocate_with => 'none');
CREATE TABLE sms_everywhere (id bigint PRIMARY KEY, contact_id integer NOT NULL, status text);
SELECT create_reference_table('sms_everywhere');
SQL
fails "attach_outbound refuses messages not co-located with the contacts" \
      'table public.sms_by_id is not co-located with public.contacts_contact, which optout is attached to' 0 \
      "SELECT optout.attach_outbound('sms_by_id', 'contact_id', on_blocked => 'mark', mark => '{\"status\": \"F\"}')"
fails "attach_inbound refuses a reference table" 'table public.sms_everywhere is a Citus reference table' 0 \
      "SELECT optout.attach_inbound('sms_everywhere', 'status', 'contact_id')"
check "nothing of the refused attachments is left" "5" 0 "SELECT count(*) FROM optout.attachments"
check "optout's triggers are on every shard of msgs_msg" "0" 0 \
      "SELECT count(*) FILTER (WHERE r::int < 4) FROM run_command_on_shards('msgs_msg', \$\$SELECT count(*) FROM pg_trigger WHERE tgrelid = '%s'::regclass AND tgname LIKE 'optout%%'\$\$) x(shard, ok, r)"

# Two contacts on shards of different workers.
worker_of() { cq 0 -c "SELECT nodeport FROM citus_shards WHERE shardid = get_shard_id_for_distribution_column('contacts_contact', $1)"; }
a=1; while [ "$(worker_of $a)" != $((CITUS_PORT + 1)) ]; do a=$((a + 1)); done
b=1; while [ "$(worker_of $b)" != $((CITUS_PORT + 2)) ]; do b=$((b + 1)); done
echo "# contact $a is on the worker on $((CITUS_PORT + 1)), contact $b on $((CITUS_PORT + 2))"

# A contact's groups, by name (they are on its shard).
groups_of() { echo "SELECT coalesce(string_agg(g.name, ',' ORDER BY g.name), '(none)') FROM contacts_contactgroup_contacts m
                   JOIN contacts_contactgroup g ON g.id = m.contactgroup_id WHERE m.contact_id = $1"; }
check "contact $a starts in its org's groups" 'Farmers,\Active' 0 "$(groups_of $a)"

# Queued messages for both, then a STOP from contact a, written on its own worker.
run "queue a message for each" 0 "INSERT INTO msgs_msg (org_id, contact_id, text, direction, status)
         SELECT org_id, id, 'queued ' || id, 'O', 'Q' FROM contacts_contact WHERE id IN ($a, $b)"
run "a STOP inserted on the worker that holds the contact" 1 "INSERT INTO msgs_msg (org_id, contact_id, text, direction, status) VALUES (1, $a, 'Ｓｔｏｐ please', 'I', 'H')"
check "STOP on a worker's shard: the contact is stopped" "S" 0 "SELECT status FROM contacts_contact WHERE id = $a"
check "its queued message on that shard is failed" "F|C" 0 \
      "SELECT status, failed_reason FROM msgs_msg WHERE contact_id = $a AND direction = 'O'"
for n in 0 1 2; do
    check "the ledger says so on node $n" "t" $n "SELECT optout.is_stopped('$a')"
done
check "... it is in its org's \\Stopped group and out of every other" '\Stopped' 0 "$(groups_of $a)"
check "... the other contact's groups are untouched" 'Farmers,\Active' 0 "$(groups_of $b)"
check "the other contact's queued message is untouched" "Q" 0 \
      "SELECT status FROM msgs_msg WHERE contact_id = $b AND direction = 'O'"

# A stop by hand on the coordinator, for contact b: its queued message, on
# the other worker's shard, is failed.
check "optout.stop() on the coordinator" "t" 0 "SELECT optout.stop('$b', reason => 'asked by phone')"
check "queued message failed on the other worker's shard" "F" 0 \
      "SELECT status FROM msgs_msg WHERE contact_id = $b AND direction = 'O'"
check "... and its groups, there too, are \\Stopped alone" '\Stopped' 0 "$(groups_of $b)"
check "a send to the stopped contact, written on the other worker, is stored failed" "F" 2 \
      "INSERT INTO msgs_msg (org_id, contact_id, text, direction, status) VALUES (1, $a, 'hello', 'O', 'Q') RETURNING status"

# A broadcast: INSERT ... SELECT across all shards, from the coordinator.
run "a broadcast INSERT ... SELECT from the coordinator" 0 "INSERT INTO msgs_msg (org_id, contact_id, text, direction, status)
         SELECT org_id, id, 'broadcast', 'O', 'Q' FROM contacts_contact"
check "broadcast across all shards: stopped contacts marked, the others queued" "F|2
Q|998" 0 "SELECT status, count(*) FROM msgs_msg WHERE text = 'broadcast' GROUP BY 1 ORDER BY 1"
check "... the marked ones are the stopped contacts" "$a,$b" 0 \
      "SELECT string_agg(contact_id::text, ',' ORDER BY contact_id) FROM msgs_msg WHERE text = 'broadcast' AND status = 'F'"

# START from contact a, written through the other worker.
run "START inserted through the other worker" 2 "INSERT INTO msgs_msg (org_id, contact_id, text, direction, status) VALUES (1, $a, 'START', 'I', 'H')"
check "START lifts the stop" "A" 0 "SELECT status FROM contacts_contact WHERE id = $a"
# As on one node: out of \Stopped, back in no other group (RapidPro's own
# status trigger, absent here, puts it back in \Active).
check "... and takes it out of \\Stopped" "(none)" 0 "$(groups_of $a)"
for n in 0 1 2; do
    check "the ledger says so on node $n" "f" $n "SELECT optout.is_stopped('$a')"
done
check "a send after START is queued" "Q" 1 \
      "INSERT INTO msgs_msg (org_id, contact_id, text, direction, status) VALUES (1, $a, 'welcome back', 'O', 'Q') RETURNING status"

# The reports, from the coordinator.
check "history() from the coordinator (queued failed, a send, the broadcast)" "stop|keyword
blocked|send
blocked|send
blocked|send
start|keyword" 0 "SELECT kind, source FROM optout.history('$a') WHERE kind <> 'help'"
check "the stopped contacts, from the coordinator" "$b" 0 "SELECT string_agg(contact, ',') FROM optout.stops"
check "events from both workers, from the coordinator" "2" 0 \
      "SELECT count(DISTINCT contact) FROM optout.events WHERE kind = 'stop'"

# A table another role names like a shard of msgs_msg, on a worker that does
# not hold that shard, with optout's trigger: it is not a shard, and acts for
# no one.
far=$(cq 0 -c "SELECT shardid FROM citus_shards WHERE table_name = 'msgs_msg'::regclass AND nodeport = $((CITUS_PORT + 2)) LIMIT 1")
att=$(cq 0 -c "SELECT id FROM optout.attachments WHERE kind = 'inbound'")
cq 0 -c "CREATE ROLE intruder LOGIN; GRANT CREATE ON SCHEMA public TO intruder" >/dev/null
fails "a look-alike of a shard, owned by another role, is refused" "optout attachment $att is not attached to table \"msgs_msg_$far\"" 1 "
SET ROLE intruder;
CREATE TABLE public.msgs_msg_$far (text text, contact_id integer, channel_id integer, direction text);
CREATE TRIGGER t BEFORE INSERT ON public.msgs_msg_$far FOR EACH ROW EXECUTE FUNCTION optout._inbound_trigger('$att');
INSERT INTO public.msgs_msg_$far VALUES ('STOP', 500, 1, 'I')"
check "... and stopped no one" "f" 0 "SELECT optout.is_stopped('500')"

# A bulk import of STOPs across all shards in one statement: both workers
# write the ledger and the events in the same distributed transaction.
run "a STOP for 100 contacts on all shards, in one INSERT ... SELECT" 0 \
    "INSERT INTO msgs_msg (org_id, contact_id, text, direction, status)
     SELECT org_id, id, 'STOP', 'I', 'H' FROM contacts_contact WHERE id BETWEEN 101 AND 200"
check "... stops every one of them" "100" 0 \
      "SELECT count(*) FROM contacts_contact WHERE id BETWEEN 101 AND 200 AND status = 'S'"
for n in 0 1 2; do
    check "... in the ledger of node $n" "100" $n "SELECT count(*) FROM optout.stops WHERE contact::int BETWEEN 101 AND 200"
done
check "... each in its org's \\Stopped group alone" "100|100" 0 \
      "SELECT count(*), count(*) FILTER (WHERE g.group_type = 'S') FROM contacts_contactgroup_contacts m
         JOIN contacts_contactgroup g ON g.id = m.contactgroup_id WHERE m.contact_id BETWEEN 101 AND 200"
check "... each with its stop event" "100" 0 \
      "SELECT count(*) FROM optout.events WHERE kind = 'stop' AND contact::int BETWEEN 101 AND 200"
check "event ids are unique across the nodes" "t" 0 "SELECT count(DISTINCT id) = count(*) FROM optout.events"
# The reports, from the coordinator.
check "stopped_now" "101" 0 "SELECT count(*) FROM optout.stopped_now"
check "requests_daily (101 keyword stops, 1 by hand)" "102" 0 "SELECT sum(requests) FROM optout.requests_daily WHERE request = 'opt_out'"
check "blocked_daily (queued failed: 2, and the 100 contacts' broadcast; sends: 3)" "102|3" 0 \
      "SELECT sum(queued_failed), sum(sends_blocked) FROM optout.blocked_daily"
# explain_contact, from the coordinator: contact b's stop by hand, the queued
# message it failed and the broadcast's row marked since.
check "explain_contact" "$b|true|1|manual|1|1" 0 \
      "SELECT r ->> 'contact', r ->> 'stopped', jsonb_array_length(r -> 'stops'), r #>> '{stops,0,source}',
              r #>> '{stops,0,queued_failed}', r #>> '{stops,0,blocked_since}' FROM optout.explain_contact('$b') r"

# A keyword added on the coordinator reaches every node's classifier.
run "a keyword added on the coordinator" 0 "INSERT INTO optout.keywords (keyword, intent, language) VALUES ('basta', 'opt_out', 'it')"
run "... used by a message on the other worker's shard" 1 \
    "INSERT INTO msgs_msg (org_id, contact_id, text, direction, status) VALUES (1, $b, 'Basta!', 'I', 'H')"
check "... is read as an opt-out there" "basta" 0 \
      "SELECT keyword FROM optout.events WHERE contact = '$b' AND kind = 'stop' AND source = 'keyword'"

# Detaching a distributed table takes optout's triggers off every shard.
check "detach" "2" 0 "SELECT optout.detach('msgs_msg')"
check "... no optout trigger is left on a shard of msgs_msg" "0" 0 \
      "SELECT sum(r::int) FROM run_command_on_shards('msgs_msg', \$\$SELECT count(*) FROM pg_trigger WHERE tgrelid = '%s'::regclass AND tgname LIKE 'optout%%'\$\$) x(shard, ok, r)"

[ -n "${CITUS_KEEP:-}" ] && { trap - EXIT; echo "# kept: $CITUS_DIR (ports $CITUS_PORT..$((CITUS_PORT + 2)))"; }
echo "citus: $passed passed, $failed failed"
[ "$failed" = 0 ]
