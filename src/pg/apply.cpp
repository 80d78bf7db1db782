// Applying changes: a batch of stops, starts and help requests becomes the
// event record, the ledger, the statements of every attachment on the
// platform's tables (status, groups, queued messages failed) and the
// notifications, in that order (apply_changes).
//
// Statements on the platform's tables run as the table's owner (as a
// foreign-key check does), so the platform's own triggers fire with its own
// rights, whoever caused the stop; the ledger and the event record are
// written as optout's owner (ledger.cpp).
#include "apply.hpp"
#include "attachments.hpp"
#include "citus.hpp"
#include "guard.hpp"
#include "ledger.hpp"
#include "locks.hpp"
#include "send_cache.hpp"
#include "spi.hpp"

#include <cctype>
#include <string_view>
#include <vector>

#include "optout/changes.hpp"

extern "C" {
#include "access/xact.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace optout_pg {
namespace {

// Static: read by the contacts trigger that the statements of a start fire
// (lifting_stop()); PG_FINALLY restores it when an error longjmps out.
int lifting = 0;

// Static: set while a statement of run_unwaiting runs (exec_plan reads it;
// apply_planned's error handler reads and clears it), and that statement.
volatile bool unwaiting = false;
// Static: false when the statements of run_unwaiting may wait (see
// lock_for_change: a batch that found rows busy kMaxBusyRetries times).
bool unwaiting_on = true;
constexpr int kMaxBusyRetries = 8;
struct UnwaitingStatement {
    int attachment;
    SPIPlanPtr ActionPlans::*plan;
    Datum arg1, arg2;
    bool lifting;
};
UnwaitingStatement last_unwaiting;

// Statements on a platform's table run as the table's owner, the switch
// PostgreSQL's foreign-key checks make: whoever caused the stop (the role
// that wrote the message, a support role calling optout.stop(), a superuser
// running a backfill), the table's own triggers run with its owner's
// rights, never with the caller's. The session's search_path stays (the
// platform's triggers may rely on it; optout's statements name everything).
// An error on the way is undone by (sub)transaction abort.
struct TableOwnerScope {
    Oid saved_user;
    int saved_context;
};
TableOwnerScope enter_table_owner(const Attachment* a) {
    TableOwnerScope s;
    GetUserIdAndSecContext(&s.saved_user, &s.saved_context);
    SetUserIdAndSecContext(a->owner, s.saved_context | SECURITY_LOCAL_USERID_CHANGE);
    return s;
}
void leave_table_owner(const TableOwnerScope& s) { SetUserIdAndSecContext(s.saved_user, s.saved_context); }

// Runs a prepared statement of an attachment with ($1, $2) as the table's
// owner, on the latest committed state, SPI connected. Returns its rows.
// plan is the statement as prepared (planned at each execution); run, with
// its watch, its twin for one contact planned once (NULL: none), used while
// generic_plan_usable() allows it.
uint64 exec_prepared(const Attachment* a, SPIPlanPtr plan, SPIPlanPtr run, PlanWatch* watch, Datum arg1, Datum arg2) {
    Datum values[2] = {arg1, arg2};
    const char nulls[3] = {' ', arg2 ? ' ' : 'n', '\0'};
    CommandCounterIncrement();
    TableOwnerScope owner = enter_table_owner(a);
    // (On Citus, a statement for several contacts is a multi-shard one, run
    // from a trigger on a shard: allowed, see citus.hpp. The search_path is
    // the session's: the platform's own triggers it fires need it.)
    int guc_level = NewGUCNestLevel();
    // A statement run under contact locks on rows the platform may hold
    // (see run_unwaiting): a lock wait ends it (55P03) instead.
    if (unwaiting)
        (void)set_config_option("lock_timeout", "1", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    citus_allow_nested();
    if (!run || !generic_plan_usable(run, watch)) {
        run = plan;
        watch = nullptr;
    }
    int rc = SPI_execute_snapshot(run, values, nulls, GetLatestSnapshot(), InvalidSnapshot, false, true, 0);
    if (watch && rc >= 0) generic_plan_ran(run, watch);
    AtEOXact_GUC(true, guc_level);
    leave_table_owner(owner);
    if (rc < 0) elog(ERROR, "optout: enforcement statement failed: %s", SPI_result_code_string(rc));
    return SPI_processed;
}

// exec_prepared for a statement of a->plans, with its twin in a->few for a
// batch of one contact (plan_for).
uint64 exec_plan(const Attachment* a, SPIPlanPtr plan, Datum arg1, Datum arg2) {
    // $1 is the batch's contacts (a text array built here, never toasted).
    ArrayType* contacts = DatumGetArrayTypeP(arg1);
    PlanWatch* watch;
    SPIPlanPtr twin = plan_for(a, plan, ArrayGetNItems(ARR_NDIM(contacts), ARR_DIMS(contacts)), &watch);
    return exec_prepared(a, plan, watch ? twin : nullptr, watch, arg1, arg2);
}

// Each contact's Stopped group of a groups attachment, as text (NULL: none).
const char** stopped_groups(Attachment* a, const char* const* contacts, int n) {
    const char** groups = static_cast<const char**>(palloc(sizeof(char*) * (n ? n : 1)));
    if (!a->group_plan) {
        for (int i = 0; i < n; i++) groups[i] = a->stopped_group;
        return groups;
    }
    MemoryContext caller = CurrentMemoryContext;
    // As the table's owner, with search_path pinned (documented: the query
    // names its tables with their schema).
    int guc_level = pin_search_path();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
    // The query is run for one contact at a time: planned once (generic) and
    // planned again when a table it reads has grown, as the statements of
    // a->few are; planned at each execution (group_plan) when it reads more
    // tables than are watched, or could not be prepared so. A custom plan at
    // each stop was a twentieth of RapidPro's (its query joins two tables).
    if (!a->group_plan_once) {
        static Oid one_text[1] = {TEXTOID};
        a->group_plan_once = try_prepare_kept(a->stopped_group_query, 1, one_text, CURSOR_OPT_GENERIC_PLAN);
    }
    for (int i = 0; i < n; i++) {
        Datum arg = CStringGetTextDatum(contacts[i]);
        SPIPlanPtr plan = a->group_plan_once && generic_plan_usable(a->group_plan_once, &a->group_watch)
                              ? a->group_plan_once
                              : a->group_plan;
        TableOwnerScope owner = enter_table_owner(a);
        int rc = SPI_execute_snapshot(plan, &arg, nullptr, GetLatestSnapshot(), InvalidSnapshot, true, false, 1);
        leave_table_owner(owner);
        if (plan != a->group_plan && rc >= 0) generic_plan_ran(plan, &a->group_watch);
        if (rc != SPI_OK_SELECT) elog(ERROR, "optout: the stopped_group_query of attachment %d failed", a->id);
        char* g = SPI_processed > 0 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : nullptr;
        groups[i] = g ? MemoryContextStrdup(caller, g) : nullptr;
    }
    SPI_finish();
    unpin_search_path(guc_level);
    return groups;
}

// The strings at these indexes.
const char** pick(const char* const* from, const int* which, int n) {
    const char** out = static_cast<const char**>(palloc(sizeof(char*) * (n ? n : 1)));
    for (int i = 0; i < n; i++) out[i] = from[which[i]];
    return out;
}

// Runs one of an attachment's statements for these contacts ($2: their
// groups or channels), as the table's owner.
void run_for(const Attachment* a, SPIPlanPtr plan, const char* const* contacts, const char* const* second, int n) {
    if (n == 0) return;
    Datum arg1 = cstring_array(contacts, n);
    Datum arg2 = second ? cstring_array(second, n) : (Datum)0;
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
    (void)exec_plan(a, plan, arg1, arg2);
    SPI_finish();
}

void run_lifting(const Attachment* a, SPIPlanPtr plan, const char* const* contacts, const char* const* second, int n) {
    lifting++;
    PG_TRY();
    { run_for(a, plan, contacts, second, n); }
    PG_FINALLY();
    { lifting--; }
    PG_END_TRY();
}

// Runs one of an attachment's statements on rows the platform's
// transactions may hold (queued messages, memberships) while the batch holds
// contact locks: a transaction that holds such a row and then sends to the
// contact waits for those locks, so this statement must not wait for the row
// (the cycle of test/isolation/specs/queued_edit_vs_stop.spec). A lock wait
// of more than a millisecond ends it with 55P03 (lock_timeout): apply_planned
// then rolls back to before its contact locks, runs the statement once more
// holding none of them (wait_unwaiting: it waits there, as the platform's own
// statement would) and starts again. Returns the statement's rows, SPI
// connected. (On Citus the statement waits, as before.)
uint64 run_unwaiting(Attachment* a, SPIPlanPtr ActionPlans::*member, Datum arg1, Datum arg2, bool lift) {
    const bool wait = citus_table(a->relid);
    last_unwaiting = UnwaitingStatement{a->id, member, arg1, arg2, lift};
    volatile uint64 rows = 0;
    if (lift) lifting++;
    PG_TRY();
    {
        unwaiting = !wait && unwaiting_on;
        rows = exec_plan(a, a->plans.*member, arg1, arg2);
        // A lock timeout that fired as the lock came is reported here, still
        // counted as this statement's.
        CHECK_FOR_INTERRUPTS();
        unwaiting = false;
    }
    PG_FINALLY();
    {
        if (lift) lifting--;
    }
    PG_END_TRY();
    return rows;
}

// run_for for a statement of run_unwaiting.
void run_for_unwaiting(Attachment* a, SPIPlanPtr ActionPlans::*member, const char* const* contacts,
                       const char* const* second, int n, bool lift) {
    if (n == 0) return;
    Datum arg1 = cstring_array(contacts, n);
    Datum arg2 = second ? cstring_array(second, n) : (Datum)0;
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
    (void)run_unwaiting(a, member, arg1, arg2, lift);
    SPI_finish();
}

// After a statement of run_unwaiting found a row busy and the batch rolled
// back to before its contact locks: runs it again, holding none of them, in
// a subtransaction rolled back at once; so it waits for whatever it found
// busy (then lets go of it) as the platform's own statement would.
void wait_unwaiting() {
    MemoryContext cxt = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    const UnwaitingStatement st = last_unwaiting;
    BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(cxt);
    volatile bool pinned = false, lifted = false;  // read in PG_CATCH
    PG_TRY();
    {
        Attachment* a = find_attachment(st.attachment);
        if (a && a->plans.*st.plan) {
            pin_attachments();
            pinned = true;
            if (st.lifting) {
                lifting++;
                lifted = true;
            }
            if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
            (void)exec_plan(a, a->plans.*st.plan, st.arg1, st.arg2);
            SPI_finish();
        }
    }
    PG_CATCH();
    {
        if (lifted) lifting--;
        if (pinned) unpin_attachments();
        MemoryContextSwitchTo(cxt);
        ErrorData* edata = CopyErrorData();
        FlushErrorState();
        RollbackAndReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(cxt);
        CurrentResourceOwner = owner;
        ReThrowError(edata);
    }
    PG_END_TRY();
    if (lifted) lifting--;
    if (pinned) unpin_attachments();
    RollbackAndReleaseCurrentSubTransaction();
    MemoryContextSwitchTo(cxt);
    CurrentResourceOwner = owner;
}

// Locks the contacts' rows of every attached contacts table (FOR NO KEY
// UPDATE, in key order), as the table's owner, on the latest committed
// state; with nowait, a row another transaction holds is an error
// (55P03) instead of a wait.
void lock_platform_contacts(const char* const* contacts, int n, bool nowait) {
    int nattachments;
    Attachment* attachments = all_attachments(&nattachments);
    bool connected = false;
    for (int i = 0; i < nattachments; i++) {
        Attachment* a = &attachments[i];
        // A keyed table (a phone number within an organization) holds no
        // ledger key in a column: its rows are not taken here.
        if (a->kind != kContacts || a->keyed || citus_table(a->relid)) continue;
        SPIPlanPtr* plan = nowait ? &a->lock_plan_nowait : &a->lock_plan;
        // For one contact, a twin planned once (generic) as the statements
        // of a->few are: the plan cache never settles on a generic plan of
        // the statement for many (it costs ANY ($1) at ten rows), and
        // planning it each time was a twentieth of a stop (bench/profile.sh).
        SPIPlanPtr* one = nowait ? &a->lock_one_plan_nowait : &a->lock_one_plan;
        if (!*plan) {
            AttrNumber col = get_attnum(a->relid, a->contact_col);
            if (col == InvalidAttrNumber) continue;
            const char* type = format_type_be_qualified(get_atttype(a->relid, col));
            const char* name = quote_identifier(a->contact_col);
            const char* what = psprintf("the row locks of attachment %d", a->id);
            char* sql = psprintf(
                "SELECT 1 FROM %s x WHERE x.%s OPERATOR(pg_catalog.=) "
                "ANY ($1::pg_catalog.text[]::%s[]) ORDER BY x.%s FOR NO KEY UPDATE OF x%s",
                a->table_name, name, type, name, nowait ? " NOWAIT" : "");
            char* one_sql = psprintf(
                "SELECT 1 FROM %s x WHERE x.%s OPERATOR(pg_catalog.=) "
                "($1::pg_catalog.text[])[1]::%s FOR NO KEY UPDATE OF x%s",
                a->table_name, name, type, nowait ? " NOWAIT" : "");
            Oid types[1] = {TEXTARRAYOID};
            if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
            SPIPlanPtr p = prepare_kept(sql, 1, types, 0, what);
            SPIPlanPtr p1 = try_prepare_kept(one_sql, 1, types, CURSOR_OPT_GENERIC_PLAN);
            SPI_finish();
            if (!p1) {
                SPI_freeplan(p);
                elog(ERROR, "optout: preparing %s failed (%s)", what, SPI_result_code_string(SPI_result));
            }
            *plan = p;
            *one = p1;
        }
        if (!connected && SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
        connected = true;
        (void)exec_prepared(a, *plan, n == 1 ? *one : nullptr, &a->lock_one_watch[nowait ? 1 : 0],
                            cstring_array(contacts, n), (Datum)0);
    }
    if (connected) SPI_finish();
}

// Locks first, all or nothing: the rows of the contacts tables that the
// changes will write, then the contacts' locks (locks.cpp); then body(arg),
// the batch's writes, under them. A platform's transaction may update a
// contact's row and then send to the contact (its send lock), or send and
// then update the contact: a change that waits for either while holding the
// other closes a cycle that the platform's own statements do not have
// (test/isolation/specs/contact_row_order.spec). So the row locks are taken
// in a subtransaction, and when a contact lock is busy they are let go of
// (the subtransaction rolled back) before waiting for it. The lock waited
// for is kept (a lock others queue for is not won by trying again); the rows
// are then taken without waiting, and when one is busy, that lock is let go
// of in turn before waiting for the row. So a change waits for a row only
// while holding none of its contact locks, and for a contact lock only while
// holding none of its rows, as the platform's own stop (an UPDATE of the
// contact) would.
//
// The writes run in the same subtransaction: those on rows the platform may
// hold and then send (queued messages, memberships) do not wait
// (run_unwaiting); when one finds a row busy, everything since the locks is
// rolled back, the statement waits for it holding no contact lock
// (wait_unwaiting), and it all starts again
// (test/isolation/specs/queued_edit_vs_stop.spec). With no such row busy,
// every row is written once, as before.
using LockedBody = void (*)(void* arg);
void lock_for_change(const char* const* contacts, int n, LockedBody body, void* arg) {
    int nattachments;
    Attachment* attachments = all_attachments(&nattachments);
    bool rows = false, writes = false;
    for (int i = 0; i < nattachments; i++) {
        const Attachment& a = attachments[i];
        if (a.kind == kContacts && !a.keyed && !citus_table(a.relid)) rows = true;
        if ((a.kind == kGroups || a.kind == kOutbound) && !citus_table(a.relid)) writes = true;
    }
    // A batch applied from inside a statement of run_unwaiting (a trigger it
    // fired): that statement's state, as it was, when this one returns.
    const bool outer_unwaiting = unwaiting, outer_on = unwaiting_on;
    const UnwaitingStatement outer_statement = last_unwaiting;
    if ((!rows && !writes) || n <= 0) {
        lock_contacts_for_change(contacts, n);
        body(arg);
        unwaiting = outer_unwaiting;
        last_unwaiting = outer_statement;
        return;
    }
    MemoryContext cxt = CurrentMemoryContext;
    ResourceOwner owner = CurrentResourceOwner;
    LockWait held;
    bool kept = false;
    int busy_retries = 0;
    for (;;) {
        LockWait wait;
        volatile bool got = false, locking = false;  // read in PG_CATCH or after
        bool row_busy = false, write_busy = false;
        unwaiting = false;
        BeginInternalSubTransaction(nullptr);
        MemoryContextSwitchTo(cxt);
        PG_TRY();
        {
            locking = true;
            lock_platform_contacts(contacts, n, kept);
            locking = false;
            got = try_lock_contacts_for_change(contacts, n, &wait);
            if (got) {
                // Rows found busy again and again (a platform's trigger on
                // those tables waiting for a row that many transactions
                // write, say): the statements then wait, as before, rather
                // than start over forever.
                unwaiting_on = busy_retries < kMaxBusyRetries;
                body(arg);
                unwaiting_on = outer_on;
            }
        }
        PG_CATCH();
        {
            unwaiting_on = outer_on;
            MemoryContextSwitchTo(cxt);
            ErrorData* edata = CopyErrorData();
            FlushErrorState();
            RollbackAndReleaseCurrentSubTransaction();
            MemoryContextSwitchTo(cxt);
            CurrentResourceOwner = owner;
            bool busy = edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
            row_busy = busy && locking && kept;
            write_busy = busy && !locking && got && unwaiting;
            unwaiting = false;
            if (!row_busy && !write_busy) {
                unwaiting = outer_unwaiting;
                last_unwaiting = outer_statement;
                ReThrowError(edata);
            }
            FreeErrorData(edata);
            got = false;
        }
        PG_END_TRY();
        if (got) {
            ReleaseCurrentSubTransaction();  // its locks and writes pass to the transaction
            MemoryContextSwitchTo(cxt);
            CurrentResourceOwner = owner;
            unwaiting = outer_unwaiting;
            last_unwaiting = outer_statement;
            return;
        }
        if (!row_busy && !write_busy) {
            RollbackAndReleaseCurrentSubTransaction();
            MemoryContextSwitchTo(cxt);
            CurrentResourceOwner = owner;
        }
        if (kept) release_lock(held);
        kept = false;
        CHECK_FOR_INTERRUPTS();
        if (row_busy) continue;  // the rows again, waiting for them
        if (write_busy) {
            busy_retries++;
            wait_unwaiting();  // holding no contact lock
            continue;
        }
        held = wait;
        wait_for_lock(held, true);
        kept = true;
    }
}

// A stopped scope, ordered by contact (bytes), then by request order.
struct ScopeOrder {
    const char* contact;
    int index;  // into scopes
};
int compare_scope_order(const void* x, const void* y) {
    const ScopeOrder* p = static_cast<const ScopeOrder*>(x);
    const ScopeOrder* q = static_cast<const ScopeOrder*>(y);
    int c = strcmp(p->contact, q->contact);
    return c != 0 ? c : (p->index < q->index ? -1 : p->index > q->index);
}

// Fails the queued messages of the stopped scopes on an outbound
// attachment; records one 'blocked' event per contact that had any.
void fail_queued(Attachment* a, const ChangeRequest* reqs, const size_t* scopes, int nscopes) {
    if (!a->plans.outbound_fail_queued || nscopes == 0) return;
    const char** contacts = static_cast<const char**>(palloc(sizeof(char*) * nscopes));
    const char** channels = static_cast<const char**>(palloc(sizeof(char*) * nscopes));
    for (int i = 0; i < nscopes; i++) {
        contacts[i] = reqs[scopes[i]].contact;
        channels[i] = a->channel_col ? reqs[scopes[i]].channel : nullptr;
    }
    Datum arg1 = cstring_array(contacts, nscopes);
    Datum arg2 = cstring_array(channels, nscopes);
    MemoryContext caller = CurrentMemoryContext;
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
    uint64 rows = run_unwaiting(a, &ActionPlans::outbound_fail_queued, arg1, arg2, false);
    EventRow* events = static_cast<EventRow*>(MemoryContextAllocZero(caller, sizeof(EventRow) * (rows ? rows : 1)));
    int nevents = 0;
    // The rows come by contact in byte order: walk the stops in that order
    // too, the first stop of each contact first.
    ScopeOrder* order = static_cast<ScopeOrder*>(MemoryContextAlloc(caller, sizeof(ScopeOrder) * nscopes));
    for (int i = 0; i < nscopes; i++) order[i] = ScopeOrder{reqs[scopes[i]].contact, i};
    qsort(order, nscopes, sizeof(ScopeOrder), compare_scope_order);
    int next = 0;
    for (uint64 r = 0; r < rows; r++) {
        char* contact = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
        char* failed = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);
        if (!contact) continue;
        while (next < nscopes && strcmp(order[next].contact, contact) < 0) next++;
        if (next == nscopes || strcmp(order[next].contact, contact) != 0) continue;
        const ChangeRequest* stop = &reqs[scopes[order[next].index]];
        EventRow& e = events[nevents++];
        e.kind = "blocked";
        e.contact = stop->contact;
        e.channel = stop->channel;
        e.info = stop->info;
        e.info.source = "send";
        e.info.body = nullptr;
        e.info.table_name = a->table_name;
        e.info.reason = nullptr;
        e.info.detail =
            MemoryContextStrdup(caller, psprintf("{\"queued_failed\": %s, \"rule\": \"%s\"}", failed,
                                                 a->on_blocked == kMark || a->nmark > 0 ? "mark" : "delete"));
    }
    SPI_finish();
    record_events(events, nevents, nullptr);
}

// A JSON object's text with more members ("\"k\": v, ..."); NULL: none.
const char* detail_add(const char* detail, const char* members) {
    const char* end = detail ? strrchr(detail, '}') : nullptr;
    const char* open = detail ? strchr(detail, '{') : nullptr;
    if (!end || !open || open > end) return psprintf("{%s}", members);
    bool empty = true;
    for (const char* p = open + 1; p < end && empty; p++)
        if (!isspace(static_cast<unsigned char>(*p))) empty = false;
    return psprintf("%.*s%s%s}", static_cast<int>(end - detail), detail, empty ? "" : ", ", members);
}

// A JSON string of this text.
const char* json_string(const char* s) {
    StringInfoData buf;
    initStringInfo(&buf);
    escape_json(&buf, s);
    return buf.data;
}

// The FCC's revoke-all rule (optout.revoke_all_from): from its date, a stop
// on one channel is a stop on every channel. Returns the requests with each
// channel-scoped stop made contact-wide (the same array when none is), the
// channel it was asked for kept in the event (channel, and detail
// {"revoke_all_from": date, "requested_channel": ...}).
const ChangeRequest* revoke_all(const ChangeRequest* reqs, int n) {
    const char* date = nullptr;
    TimestampTz from = revoke_all_from(&date);
    if (from == DT_NOEND || GetCurrentTransactionStartTimestamp() < from) return reqs;
    ChangeRequest* out = nullptr;
    for (int i = 0; i < n; i++) {
        if (reqs[i].type != optout::ChangeKind::Stop || !reqs[i].channel) continue;
        if (!out) {
            out = static_cast<ChangeRequest*>(palloc(sizeof(ChangeRequest) * n));
            memcpy(static_cast<void*>(out), reqs, sizeof(ChangeRequest) * n);
        }
        if (!out[i].info.arrived_on) out[i].info.arrived_on = out[i].channel;
        out[i].info.detail =
            detail_add(out[i].info.detail, psprintf("\"revoke_all_from\": %s, \"requested_channel\": %s",
                                                    json_string(date), json_string(out[i].channel)));
        out[i].channel = nullptr;
    }
    return out ? out : reqs;
}

}  // namespace

bool lifting_stop() { return lifting > 0; }

namespace {
void apply_planned(const ChangeRequest* reqs, int n, bool* results);
}

void apply_changes(const ChangeRequest* reqs, int n, bool* results) {
    if (n <= 0) return;
    apply_planned(revoke_all(reqs, n), n, results);
}

namespace {

// A batch of changes goes through these phases, in this order (apply_planned):
//   1. lock_batch: the contact locks of its stops and starts (and the
//      platform's contact rows, all or nothing with them: lock_for_change).
//      Everything after reads and writes under them; the order is that of
//      docs/design.md, "Why it holds under concurrency".
//   2. plan_batch: the ledger rows of its contacts (latest committed state),
//      then the core's plan of what each request does (behind the guard).
//   3. record_batch_events: the event record, in request order.
//   4. write_batch_ledger: the ledger's rows go and come; the send path's
//      cached answers are forgotten.
//   5. apply_to_platform: the platform's tables (for the contacts
//      platform_sets picks), in three passes, with the attachment cache
//      pinned.
//   6. notify_batch: NOTIFY for every stop recorded and every stop lifted.

// The plan of a batch, as plain palloc'd data (it crosses the guard).
struct BatchPlan {
    char** lcontacts;  // the ledger rows of the batch's contacts
    char** lchannels;
    int nledger;
    optout::ChangeOutcome* outcomes;  // one per request
    size_t* del;                      // indexes of ledger rows that go
    size_t* ins;                      // requests whose row the ledger gains
    size_t* scopes;                   // the first stop of each distinct (contact, scope)
    int ndel, nins, nscopes;
    const char** contact;  // per contact of a stop or start, first seen first
    bool* left_groups;
    int* final_state;  // optout::FinalState
    bool* lifted;
    int ncontacts;
};

// The events of a batch and their ids; event_of[i]: request i's event (-1: none).
struct BatchEvents {
    EventRow* rows;
    int* event_of;
    int64* ids;
    int n;
};

// 1. Locks first: then no other transaction changes these contacts' stops;
// phases 2 to 5 run under them (body).
void lock_batch(const ChangeRequest* reqs, int n, LockedBody body, void* arg) {
    const char** lock_keys = static_cast<const char**>(palloc(sizeof(char*) * n));
    int nlock = 0;
    for (int i = 0; i < n; i++)
        if (reqs[i].type != optout::ChangeKind::Help && reqs[i].type != optout::ChangeKind::Review)
            lock_keys[nlock++] = reqs[i].contact;
    lock_for_change(lock_keys, nlock, body, arg);
}

// 2. The ledger rows of the batch's contacts, and what the batch does,
// planned in the core (no PostgreSQL call inside the guard).
void plan_batch(const ChangeRequest* reqs, int n, BatchPlan* p) {
    // The ledger rows of the contacts of its stops and starts: a help
    // request or a review changes no stop (the core plans nothing for it),
    // so a batch of those alone reads nothing.
    const char** contacts = static_cast<const char**>(palloc(sizeof(char*) * n));
    int nchanging = 0;
    for (int i = 0; i < n; i++)
        if (reqs[i].type != optout::ChangeKind::Help && reqs[i].type != optout::ChangeKind::Review)
            contacts[nchanging++] = reqs[i].contact;
    char** lcontacts = nullptr;
    char** lchannels = nullptr;
    int nledger = nchanging > 0 ? ledger_load(contacts, nchanging, &lcontacts, &lchannels) : 0;
    p->lcontacts = lcontacts;
    p->lchannels = lchannels;
    p->nledger = nledger;

    optout::ChangeOutcome* outcomes = static_cast<optout::ChangeOutcome*>(palloc0(sizeof(optout::ChangeOutcome) * n));
    size_t* del = static_cast<size_t*>(palloc(sizeof(size_t) * (nledger ? nledger : 1)));
    size_t* ins = static_cast<size_t*>(palloc(sizeof(size_t) * n));
    size_t* scopes = static_cast<size_t*>(palloc(sizeof(size_t) * n));
    const char** plan_contact = static_cast<const char**>(palloc(sizeof(char*) * n));
    bool* left_groups = static_cast<bool*>(palloc0(sizeof(bool) * n));
    int* final_state = static_cast<int*>(palloc0(sizeof(int) * n));
    bool* lifted = static_cast<bool*>(palloc0(sizeof(bool) * n));
    static int ndel, nins, nscopes, ncontacts;  // static: they cross the guard
    ndel = nins = nscopes = ncontacts = 0;
    OPTOUT_GUARD({
        std::vector<optout::Change> changes(static_cast<size_t>(n));
        for (int i = 0; i < n; i++) {
            changes[i].kind = reqs[i].type;
            changes[i].contact = reqs[i].contact;
            if (reqs[i].channel) changes[i].channel = std::string_view(reqs[i].channel);
            changes[i].only_if_new = reqs[i].only_if_new;
        }
        std::vector<optout::LedgerRow> ledger(static_cast<size_t>(nledger));
        for (int i = 0; i < nledger; i++) {
            ledger[i].contact = lcontacts[i];
            if (lchannels[i]) ledger[i].channel = std::string_view(lchannels[i]);
        }
        optout::ChangePlan plan = optout::plan_changes(changes, ledger);
        for (int i = 0; i < n; i++) outcomes[i] = plan.outcomes[i];
        for (size_t d : plan.ledger_delete) del[ndel++] = d;
        for (size_t k : plan.ledger_insert) ins[nins++] = k;
        for (size_t k : plan.stopped_scopes) scopes[nscopes++] = k;
        for (const optout::ContactPlan& c : plan.contacts) {
            // A view of a request's whole contact string: NUL-terminated.
            plan_contact[ncontacts] = c.contact.data();
            left_groups[ncontacts] = c.left_groups;
            final_state[ncontacts] = static_cast<int>(c.final_state);
            lifted[ncontacts] = c.lifted;
            ncontacts++;
        }
    });
    p->outcomes = outcomes;
    p->del = del;
    p->ins = ins;
    p->scopes = scopes;
    p->ndel = ndel;
    p->nins = nins;
    p->nscopes = nscopes;
    p->contact = plan_contact;
    p->left_groups = left_groups;
    p->final_state = final_state;
    p->lifted = lifted;
    p->ncontacts = ncontacts;
}

// 3. The event record, in request order.
BatchEvents record_batch_events(const ChangeRequest* reqs, int n, const BatchPlan& p) {
    const optout::ChangeOutcome* outcomes = p.outcomes;
    EventRow* events = static_cast<EventRow*>(palloc0(sizeof(EventRow) * n));
    int* event_of = static_cast<int*>(palloc(sizeof(int) * n));
    int nevents = 0;
    for (int i = 0; i < n; i++) {
        event_of[i] = -1;
        if (!outcomes[i].event) continue;
        EventRow& e = events[nevents];
        e.kind = reqs[i].type == optout::ChangeKind::Stop     ? "stop"
                 : reqs[i].type == optout::ChangeKind::Start  ? "start"
                 : reqs[i].type == optout::ChangeKind::Review ? "review"
                                                              : "help";
        e.contact = reqs[i].contact;
        e.info = reqs[i].info;
        e.channel = e.info.arrived_on ? e.info.arrived_on : reqs[i].channel;
        if (reqs[i].type == optout::ChangeKind::Start && !e.info.detail)
            e.info.detail = outcomes[i].result
                                ? (outcomes[i].contact_wide ? "{\"lifted\": \"contact\"}" : "{\"lifted\": \"channel\"}")
                                : "{\"lifted\": null}";
        // What classified it: optout's version and the keyword set (evidence).
        if (e.info.source && (strcmp(e.info.source, "keyword") == 0 || strcmp(e.info.source, "backfill") == 0)) {
            e.info.optout_version = OPTOUT_VERSION;
            e.info.keyword_set = keywords_fingerprint();
        }
        event_of[i] = nevents++;
    }
    int64* ids = static_cast<int64*>(palloc0(sizeof(int64) * (nevents ? nevents : 1)));
    record_events(events, nevents, ids);
    fault_point("apply_events");
    return BatchEvents{events, event_of, ids, nevents};
}

// 4. The ledger.
void write_batch_ledger(const ChangeRequest* reqs, const BatchPlan& p, const BatchEvents& ev) {
    const int n_del = p.ndel, n_ins = p.nins;
    const int* event_of = ev.event_of;
    const int64* ids = ev.ids;
    const char** dc = static_cast<const char**>(palloc(sizeof(char*) * (n_del ? n_del : 1)));
    const char** dch = static_cast<const char**>(palloc(sizeof(char*) * (n_del ? n_del : 1)));
    for (int i = 0; i < n_del; i++) {
        dc[i] = p.lcontacts[p.del[i]];
        dch[i] = p.lchannels[p.del[i]];
    }
    LedgerInsert* li = static_cast<LedgerInsert*>(palloc0(sizeof(LedgerInsert) * (n_ins ? n_ins : 1)));
    for (int i = 0; i < n_ins; i++) {
        const ChangeRequest& r = reqs[p.ins[i]];
        li[i] = LedgerInsert{r.contact,      r.channel,   r.info.source,
                             r.info.keyword, r.info.rule, event_of[p.ins[i]] >= 0 ? ids[event_of[p.ins[i]]] : 0};
    }
    ledger_apply(dc, dch, n_del, li, n_ins);
    send_cache_reset();
}

// 5a. Every contact-wide stop leaves its groups; the last contact-wide
// action decides status and the Stopped group. The contacts with anything to
// do (touched), and the three sets of them (as indexes into touched): left
// (a contact-wide stop: the batch stops it), started (it ends started) and
// flip_start (it ends stopped after a start lifted a contact-wide stop). A
// contact the batch both stopped and started, in either order, gets the
// statements of both states, the one it ends in last: one request at a time,
// its status would have changed and changed back, and the touch column moved
// (RapidPro's modified_on).
struct PlatformSets {
    const char** touched;
    int* left;
    int* started;
    int* flip_start;
    int ntouched, nleft, nstarted, nflip_start;
};

PlatformSets platform_sets(const BatchPlan& p) {
    const int n_contacts = p.ncontacts;
    PlatformSets w;
    w.touched = static_cast<const char**>(palloc(sizeof(char*) * (n_contacts ? n_contacts : 1)));
    w.left = static_cast<int*>(palloc(sizeof(int) * (n_contacts ? n_contacts : 1)));
    w.started = static_cast<int*>(palloc(sizeof(int) * (n_contacts ? n_contacts : 1)));
    w.flip_start = static_cast<int*>(palloc(sizeof(int) * (n_contacts ? n_contacts : 1)));
    w.ntouched = w.nleft = w.nstarted = w.nflip_start = 0;
    for (int i = 0; i < n_contacts; i++) {
        bool is_stopped = p.final_state[i] == static_cast<int>(optout::FinalState::Stopped);
        bool is_started = p.final_state[i] == static_cast<int>(optout::FinalState::Started);
        if (!p.left_groups[i] && !is_stopped && !is_started) continue;
        if (p.left_groups[i]) w.left[w.nleft++] = w.ntouched;
        if (is_started) w.started[w.nstarted++] = w.ntouched;
        if (p.left_groups[i] && p.lifted[i] && is_stopped) w.flip_start[w.nflip_start++] = w.ntouched;
        w.touched[w.ntouched++] = p.contact[i];
    }
    return w;
}

// 5b. The platform's tables, for those sets.
void apply_to_platform(const ChangeRequest* reqs, const BatchPlan& p) {
    const PlatformSets w = platform_sets(p);
    const char** touched = w.touched;
    const int *left = w.left, *started = w.started, *flip_start = w.flip_start;
    const int ntouched = w.ntouched, nleft = w.nleft, nstarted = w.nstarted, nflip_start = w.nflip_start;
    const size_t* scopes = p.scopes;
    const int n_scopes = p.nscopes;
    int nattachments;
    Attachment* attachments = all_attachments(&nattachments);
    // The statements below fire triggers, optout's among them: the cache is
    // pinned while they run (an error unpins it on the way out).
    // In three passes over the attachments, as one request at a time would
    // leave them: (1) the contacts the batch ends stopped after lifting a
    // stop are started first (see flip_start); (2) every contact with a
    // contact-wide stop is stopped: status, other groups left, Stopped group
    // joined, queued messages failed; (3) the contacts it ends started are
    // started: status back, Stopped group left. (The platform's own triggers
    // move a contact between its status groups as its status changes: each
    // pass runs before the group statements of the next.)
    const char*** groups = static_cast<const char***>(palloc0(sizeof(char**) * (nattachments ? nattachments : 1)));
    pin_attachments();
    PG_TRY();
    {
        for (int pass = 0; pass < 3; pass++) {
            // pass 0: flip_start; pass 1: left; pass 2: started
            const int* which = pass == 0 ? flip_start : pass == 1 ? left : started;
            int nwhich = pass == 0 ? nflip_start : pass == 1 ? nleft : nstarted;
            if (nwhich == 0 && pass != 1) continue;
            const char** who = pick(touched, which, nwhich);
            for (int i = 0; i < nattachments; i++) {
                Attachment* a = &attachments[i];
                if (pass == 1 && i == 1) fault_point("apply_platform");
                switch (a->kind) {
                    case kContacts:
                        if (pass == 1 && a->plans.contacts_stop)
                            run_for(a, a->plans.contacts_stop, who, nullptr, nwhich);
                        if (pass != 1 && a->plans.contacts_start)
                            run_lifting(a, a->plans.contacts_start, who, nullptr, nwhich);
                        break;
                    case kGroups: {
                        // Each contact's Stopped group, once (a stopped_group_query runs once a contact).
                        if (!groups[i] && ntouched > 0) groups[i] = stopped_groups(a, touched, ntouched);
                        const char** sg = pick(groups[i], which, nwhich);
                        if (pass != 1) {
                            if (a->plans.groups_start)
                                run_for_unwaiting(a, &ActionPlans::groups_start, who, sg, nwhich, true);
                            break;
                        }
                        if (a->plans.groups_leave)
                            run_for_unwaiting(a, &ActionPlans::groups_leave, who, sg, nwhich, false);
                        if (a->plans.groups_join_stopped && nwhich > 0) {
                            if (citus_table(a->relid)) {
                                // On Citus, one contact at a time: its statement then
                                // goes to the contact's shard (see optout._action_sql).
                                for (int k = 0; k < nwhich; k++)
                                    run_for(a, a->plans.groups_join_stopped, who + k, sg + k, 1);
                            } else {
                                run_for_unwaiting(a, &ActionPlans::groups_join_stopped, who, sg, nwhich, false);
                            }
                        }
                        break;
                    }
                    case kOutbound:
                        if (pass == 1) fail_queued(a, reqs, scopes, n_scopes);
                        break;
                    case kOptouts:
                        // The platform's opt-out rows: optout's own writes (its
                        // trigger there ignores them, see lifting_stop()).
                        if (pass == 1 && a->plans.optouts_stop)
                            run_lifting(a, a->plans.optouts_stop, who, nullptr, nwhich);
                        if (pass != 1 && a->plans.optouts_start)
                            run_lifting(a, a->plans.optouts_start, who, nullptr, nwhich);
                        break;
                    default: break;
                }
            }
        }
    }
    PG_FINALLY();
    { unpin_attachments(); }
    PG_END_TRY();
}

// 6. Listeners hear of every stop recorded and every stop lifted.
void notify_batch(const ChangeRequest* reqs, int n, const BatchPlan& p, const BatchEvents& ev) {
    for (int i = 0; i < n; i++) {
        if (ev.event_of[i] < 0) continue;
        const EventRow& e = ev.rows[ev.event_of[i]];
        if (reqs[i].type == optout::ChangeKind::Stop)
            notify_change("stop", reqs[i].contact, reqs[i].channel, e.info, ev.ids[ev.event_of[i]]);
        else if (reqs[i].type == optout::ChangeKind::Start && p.outcomes[i].result)
            notify_change("start", reqs[i].contact, reqs[i].channel, e.info, ev.ids[ev.event_of[i]]);
    }
}

// Phases 2 to 5, under the locks (they may run again: see lock_for_change).
struct LockedBatch {
    const ChangeRequest* reqs;
    int n;
    BatchPlan plan;
    BatchEvents events;
};
void apply_locked(void* arg) {
    LockedBatch* b = static_cast<LockedBatch*>(arg);
    plan_batch(b->reqs, b->n, &b->plan);
    b->events = record_batch_events(b->reqs, b->n, b->plan);
    write_batch_ledger(b->reqs, b->plan, b->events);
    apply_to_platform(b->reqs, b->plan);
}

void apply_planned(const ChangeRequest* reqs, int n, bool* results) {
    LockedBatch* b = static_cast<LockedBatch*>(palloc0(sizeof(LockedBatch)));
    b->reqs = reqs;
    b->n = n;
    lock_batch(reqs, n, apply_locked, b);
    notify_batch(reqs, n, b->plan, b->events);
    if (results)
        for (int i = 0; i < n; i++) results[i] = b->plan.outcomes[i].result;
}
}  // namespace

bool contact_query_finds(const Attachment* a, SPIPlanPtr plan, const char* contact) {
    int guc_level = pin_search_path();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
    Datum arg = CStringGetTextDatum(contact);
    TableOwnerScope owner = enter_table_owner(a);
    int rc = SPI_execute_snapshot(plan, &arg, nullptr, GetLatestSnapshot(), InvalidSnapshot, true, false, 1);
    leave_table_owner(owner);
    if (rc != SPI_OK_SELECT)
        elog(ERROR, "optout: a query of attachment %d failed: %s", a->id, SPI_result_code_string(rc));
    bool found = SPI_processed > 0;
    SPI_finish();
    unpin_search_path(guc_level);
    return found;
}

int64 apply_existing_stops(Attachment* a) {
    if (a->kind != kContacts && a->kind != kGroups) return 0;
    // The contact-wide stops on record (a stop on one channel changes no
    // status and no group), read as optout's owner.
    const char** found;
    int n = ledger_contact_wide(&found);
    if (n == 0) return 0;
    // Under the contacts' locks, the ones still stopped contact-wide.
    lock_contacts_for_change(found, n);
    char** lcontacts;
    char** lchannels;
    int nledger = ledger_load(found, n, &lcontacts, &lchannels);
    const char** contacts = static_cast<const char**>(palloc(sizeof(char*) * (nledger ? nledger : 1)));
    int ncontacts = 0;
    for (int i = 0; i < nledger; i++)
        if (!lchannels[i]) contacts[ncontacts++] = lcontacts[i];
    if (ncontacts == 0) return 0;

    volatile int64 changed = 0;  // read after PG_TRY
    // The attach_* function that calls this runs with search_path pinned;
    // the platform's own triggers, which these statements fire, get the
    // session's default search_path (its reset value) instead, as they would
    // in the platform's own sessions. (optout's statements name everything.)
    int guc_level = NewGUCNestLevel();
    (void)set_config_option("search_path", GetConfigOptionResetString("search_path"), PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
    pin_attachments();
    PG_TRY();
    {
        if (a->kind == kContacts && a->plans.contacts_stop) {
            if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
            changed +=
                static_cast<int64>(exec_plan(a, a->plans.contacts_stop, cstring_array(contacts, ncontacts), (Datum)0));
            SPI_finish();
        } else if (a->kind == kGroups) {
            const char** groups = stopped_groups(a, contacts, ncontacts);
            if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
            if (a->plans.groups_leave)
                changed += static_cast<int64>(exec_plan(a, a->plans.groups_leave, cstring_array(contacts, ncontacts),
                                                        cstring_array(groups, ncontacts)));
            if (a->plans.groups_join_stopped) {
                if (citus_table(a->relid)) {
                    for (int k = 0; k < ncontacts; k++)
                        changed +=
                            static_cast<int64>(exec_plan(a, a->plans.groups_join_stopped,
                                                         cstring_array(contacts + k, 1), cstring_array(groups + k, 1)));
                } else {
                    changed += static_cast<int64>(exec_plan(a, a->plans.groups_join_stopped,
                                                            cstring_array(contacts, ncontacts),
                                                            cstring_array(groups, ncontacts)));
                }
            }
            SPI_finish();
        }
    }
    PG_FINALLY();
    { unpin_attachments(); }
    PG_END_TRY();
    AtEOXact_GUC(true, guc_level);
    return changed;
}

bool apply_stop(const char* contact, const char* channel, const EventInfo& info) {
    ChangeRequest r{optout::ChangeKind::Stop, contact, channel, info.source && strcmp(info.source, "provider") == 0,
                    info};
    bool result = false;
    apply_changes(&r, 1, &result);
    return result;
}

bool apply_start(const char* contact, const char* channel, const EventInfo& info) {
    ChangeRequest r{optout::ChangeKind::Start, contact, channel, false, info};
    bool result = false;
    apply_changes(&r, 1, &result);
    return result;
}

}  // namespace optout_pg
