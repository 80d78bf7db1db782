// The ledger (optout.stops) and the event record (optout.events).
//
// Every statement here names its schema for tables, functions and operators
// (OPERATOR(pg_catalog.=)): it means the same under any search_path, even
// when the plan cache re-analyses it under the session's.
//
// Both are written only here, as the role that owns them (the extension's
// owner), whatever role fired the trigger or called the function: an
// application role can send and receive without any right on them. This is
// the same switch PostgreSQL's own foreign-key triggers make; an error while
// switched is undone by transaction abort, which restores the user. That
// includes the claims of confirmations and help replies (events too), which
// reply.cpp only decides on. The ledger is read only here as well: the send
// path's probe and its whole read, the batch's rows, the stops an attach
// applies, the stop a confirmation answers.
// Statements are prepared once per backend and reused.
#include "citus.hpp"
#include "datum.hpp"
#include "glue.hpp"
#include "ledger.hpp"
#include "reply.hpp"
#include "send_cache.hpp"
#include "spi.hpp"

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/async.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "optimizer/optimizer.h"
#include "parser/parse_relation.h"
#include "rewrite/rewriteHandler.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
}

namespace {

SPIPlanPtr event_plan = nullptr;
SPIPlanPtr citus_ids_plan = nullptr;  // on Citus (see record_events)
SPIPlanPtr citus_event_plan = nullptr;
SPIPlanPtr ledger_insert_plan = nullptr;
SPIPlanPtr ledger_delete_plan = nullptr;
SPIPlanPtr check_plan = nullptr;
SPIPlanPtr load_plan = nullptr;
SPIPlanPtr load_one_plan = nullptr;     // the same for one contact, planned once (ledger_load)
optout_pg::PlanWatch load_one_watch{};  // ... and the size of what its plan reads
SPIPlanPtr code_plan = nullptr;
SPIPlanPtr whole_plan = nullptr;
SPIPlanPtr confirmation_plan = nullptr;
SPIPlanPtr help_reply_plan = nullptr;
SPIPlanPtr peek_plan = nullptr;

// A statement here that reads a table is planned at every execution
// (CURSOR_OPT_CUSTOM_PLAN): a generic plan made while the ledger was empty
// would keep scanning it whole once it has grown. (The one exception,
// ledger_load's statement for one contact, watches the ledger's size.)
// Called in an owner scope, so parsed (and re-parsed) with the pinned path;
// so is prepare_once().
SPIPlanPtr prepare(const char* sql, int nargs, const Oid* types) {
    return optout_pg::prepare_kept(sql, nargs, types, CURSOR_OPT_CUSTOM_PLAN);
}
// A statement that reads no table (an INSERT of its parameters' rows, its
// conflicts found through the unique index it names) has no plan to choose
// by the tables' sizes: planned once per backend.
SPIPlanPtr prepare_once(const char* sql, int nargs, const Oid* types) {
    return optout_pg::prepare_kept(sql, nargs, types, CURSOR_OPT_GENERIC_PLAN);
}

using optout_pg::bind_texts;
using optout_pg::enter_owner;
using optout_pg::leave_owner;
using optout_pg::OwnerScope;

}  // namespace

namespace optout_pg {

// The switch a SECURITY DEFINER function with SET search_path makes: the
// owner's identity and a pinned search_path, together. Both are undone on
// the way out, and by (sub)transaction abort on error.
OwnerScope enter_owner() {
    OwnerScope s;
    GetUserIdAndSecContext(&s.saved_user, &s.saved_context);
    Oid owner = optout_pg::optout_owner();
    SetUserIdAndSecContext(owner, s.saved_context | SECURITY_LOCAL_USERID_CHANGE);
    s.guc_level = pin_search_path();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
    return s;
}
void leave_owner(const OwnerScope& s) {
    SPI_finish();
    unpin_search_path(s.guc_level);
    SetUserIdAndSecContext(s.saved_user, s.saved_context);
}

}  // namespace optout_pg

namespace {

Oid owner_oid = InvalidOid;
bool owner_callback = false;
void owner_inval(Datum, Oid) { owner_oid = InvalidOid; }

}  // namespace

namespace optout_pg {

Oid optout_owner() {
    if (OidIsValid(owner_oid)) return owner_oid;
    if (!owner_callback) {
        CacheRegisterRelcacheCallback(owner_inval, (Datum)0);
        owner_callback = true;
    }
    Oid relid = optout_table("stops");
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup)) elog(ERROR, "optout: cache lookup failed for relation %u", relid);
    owner_oid = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup))->relowner;
    ReleaseSysCache(tup);
    return owner_oid;
}

}  // namespace optout_pg

namespace {

// The columns of optout.events a row fills, and a row's values in that order;
// the others (id, at) take their defaults.
constexpr int kEventColumns = 16;
const char* const kEventColumnNames[kEventColumns] = {
    "kind",     "contact", "channel",    "source", "body",  "keyword",        "language",    "rule",
    "provider", "code",    "table_name", "reason", "actor", "optout_version", "keyword_set", "detail"};
void event_values(const optout_pg::EventRow& row, const char* actor, const char* out[kEventColumns]) {
    const optout_pg::EventInfo& info = row.info;
    const char* v[kEventColumns] = {
        row.kind,      row.contact,         row.channel,      info.source ? info.source : "manual",
        info.body,     info.keyword,        info.language,    info.rule,
        info.provider, info.code,           info.table_name,  info.reason,
        actor,         info.optout_version, info.keyword_set, info.detail};
    memcpy(out, v, sizeof v);
}

// Events are written the way COPY writes them: up to kBatch rows at a time
// with one table_multi_insert() (batched heap inserts and WAL), then each
// row's index entries; the columns not given take their defaults, the CHECK
// and NOT NULL constraints are checked, as an INSERT would. Several times
// cheaper a row than INSERT ... SELECT, and there is no text to parse back
// as with CopyFrom(). The ledger's new rows are written the same way, one at
// a time, each after a look at its unique key (see write_rows). Only for a
// plain table without triggers (the table as installed): a table a DBA has
// given triggers (or forced row security) goes through the INSERT, which
// fires them (or applies its policies).
constexpr int kBatch = 1000;
constexpr int kSmallWrite = 16;

bool direct_writable(Relation rel) {
    TupleConstr* constr = RelationGetDescr(rel)->constr;
    return rel->rd_rel->relkind == RELKIND_RELATION && rel->trigdesc == nullptr &&
           !(constr && constr->has_generated_stored) && !rel->rd_rel->relforcerowsecurity &&
           !optout_pg::citus_table(RelationGetRelid(rel));  // its rows are in Citus's shards
}

// A table written directly: the columns a row gives, by name, in order; the
// column whose value is read back (NULL: none); the fault point of its
// cache's build (sql/faults.sql).
struct DirectSpec {
    const char* const* names;
    int ngiven;
    const char* id_column;
    const char* fault;
};
constexpr int kMaxGiven = kEventColumns;
const DirectSpec kEventsSpec = {kEventColumnNames, kEventColumns, "id", "events_columns"};
const char* const kStopsColumnNames[] = {"contact", "channel", "source", "keyword", "rule", "event_id"};
constexpr int kStopsColumns = 6;
const DirectSpec kStopsSpec = {kStopsColumnNames, kStopsColumns, nullptr, "stops_columns"};

// How a row of such a table is filled and checked: where each given column
// goes, how its text is read, the default expressions of the others, and the
// CHECK constraints, parsed. Kept for the backend and built again after the
// table's relation cache entry is invalidated (any ALTER TABLE of it, a
// constraint added, dropped or replaced included); valid only once fully
// built (its memory is made under the caller's and adopted once complete).
// Without it each write looked the columns up by name and read the defaults
// and the constraints back from their text: ExecConstraints's parsing alone
// was an eighth of a STOP's instructions (the IN lists are array constants,
// read byte by byte). The expressions are kept planned (expression_planner:
// constants folded, SQL functions inlined), as a cached plan keeps them, so
// the cache is also built again when a function, operator or type changes
// (the invalidations PostgreSQL's plan cache follows); each call only
// initialises them (planning them at each call was a thirtieth of a STOP).
struct DirectColumns {
    Oid relid;
    int natts;
    int nchecks;
    AttrNumber given[kMaxGiven];
    FmgrInfo input[kMaxGiven];
    Oid ioparams[kMaxGiven];
    AttrNumber id_att;  // InvalidAttrNumber: none read back
    Expr** defaults;    // natts of them, planned; NULL: none, or given
    Expr** checks;      // nchecks of them, planned; NULL: not enforced (PostgreSQL 18)
    MemoryContext cxt;
};
// One a table (optout.events, optout.stops). invals counts the
// invalidations: one that arrives while the cache is being built (a catalog
// read takes a lock, which reads the pending invalidations) leaves the new
// build in use for that call only.
struct DirectCache {
    DirectColumns cols;
    bool valid;
    uint64 invals;
};
DirectCache events_cache{};
DirectCache stops_cache{};
bool direct_callbacks = false;
void direct_relcache_inval(Datum, Oid relid) {
    for (DirectCache* c : {&events_cache, &stops_cache})
        if (relid == InvalidOid || relid == c->cols.relid) {
            c->valid = false;
            c->invals++;
        }
}
void direct_syscache_inval(Datum, int, uint32) {
    for (DirectCache* c : {&events_cache, &stops_cache}) {
        c->valid = false;
        c->invals++;
    }
}

Expr* planned(Node* n) { return n ? expression_planner(reinterpret_cast<Expr*>(n)) : nullptr; }

int check_count(TupleDesc desc) { return desc->constr ? desc->constr->num_check : 0; }

const DirectColumns& columns_of(Relation rel, DirectCache& cache, const DirectSpec& spec) {
    TupleDesc desc = RelationGetDescr(rel);
    if (cache.valid && cache.cols.relid == RelationGetRelid(rel) && cache.cols.natts == desc->natts &&
        cache.cols.nchecks == check_count(desc))
        return cache.cols;
    cache.valid = false;
    const uint64 invals = cache.invals;
    if (!direct_callbacks) {
        CacheRegisterRelcacheCallback(direct_relcache_inval, (Datum)0);
        for (int id : {PROCOID, TYPEOID, OPEROID}) CacheRegisterSyscacheCallback(id, direct_syscache_inval, (Datum)0);
        direct_callbacks = true;
    }
    DirectColumns c{};
    c.relid = RelationGetRelid(rel);
    c.natts = desc->natts;
    c.nchecks = check_count(desc);
    c.cxt = AllocSetContextCreate(CurrentMemoryContext, "optout direct write columns", ALLOCSET_SMALL_SIZES);
    MemoryContext old = MemoryContextSwitchTo(c.cxt);
    for (int k = 0; k < spec.ngiven; k++) {
        c.given[k] = attnameAttNum(rel, spec.names[k], false);
        if (c.given[k] <= 0)
            elog(ERROR, "optout: column \"%s\" of %s does not exist", spec.names[k], RelationGetRelationName(rel));
        Oid fn;
        getTypeInputInfo(TupleDescAttr(desc, c.given[k] - 1)->atttypid, &fn, &c.ioparams[k]);
        fmgr_info_cxt(fn, &c.input[k], c.cxt);
    }
    c.id_att = spec.id_column ? attnameAttNum(rel, spec.id_column, false) : InvalidAttrNumber;
    c.defaults = static_cast<Expr**>(palloc0(sizeof(Expr*) * (c.natts ? c.natts : 1)));
    bool* is_given = static_cast<bool*>(palloc0(sizeof(bool) * (c.natts ? c.natts : 1)));
    for (int k = 0; k < spec.ngiven; k++) is_given[c.given[k] - 1] = true;
    for (int a = 0; a < c.natts; a++)
        if (!is_given[a] && !TupleDescAttr(desc, a)->attisdropped)
            c.defaults[a] = planned(build_column_default(rel, a + 1));
    c.checks = static_cast<Expr**>(palloc0(sizeof(Expr*) * (c.nchecks ? c.nchecks : 1)));
    for (int i = 0; i < c.nchecks; i++)
        if (optout_pg::compat::check_constraint_enforced(desc->constr->check[i]))
            c.checks[i] = planned(static_cast<Node*>(stringToNode(desc->constr->check[i].ccbin)));
    MemoryContextSwitchTo(old);
    optout_pg::fault_point(spec.fault);
    // Whole: the old one goes, this one is kept.
    if (cache.cols.cxt) MemoryContextDelete(cache.cols.cxt);
    MemoryContextSetParent(c.cxt, CacheMemoryContext);
    cache.cols = c;
    cache.valid = invals == cache.invals;
    return cache.cols;
}

// Gives rri the expression states of its relation's CHECK constraints, from
// the parsed trees above, before ExecConstraints would build them from text.
// Left to ExecConstraints where the constraints are not what the relation's
// row says (it reports that), or where PostgreSQL 18 would expand virtual
// generated columns in them.
void prepare_checks(ResultRelInfo* rri, const DirectColumns& cols, EState* estate) {
    Relation rel = rri->ri_RelationDesc;
    TupleConstr* constr = RelationGetDescr(rel)->constr;
    if (cols.nchecks == 0 || cols.nchecks != rel->rd_rel->relchecks || optout_pg::compat::has_virtual_generated(constr))
        return;
    MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);
    ExprState** states = static_cast<ExprState**>(palloc0(sizeof(ExprState*) * cols.nchecks));
    for (int i = 0; i < cols.nchecks; i++)
        if (cols.checks[i]) states[i] = ExecInitExpr(cols.checks[i], nullptr);
    MemoryContextSwitchTo(old);
    optout_pg::compat::check_constraint_states(rri) = states;
}

// The text of row i's given columns, in the spec's order (NULL: null).
using FillRow = void (*)(const void* rows, int i, const char* actor, const char** out);

// One row written as INSERT ... ON CONFLICT DO NOTHING writes it: a look at
// the arbiter index (a row there is kept; one in progress is waited for,
// then looked at again), then the row inserted speculatively, its index
// entries made without raising a conflict. A row that another transaction
// wrote in between (one that took no contact lock of optout's: a DBA's
// INSERT, a replication worker) makes the insert undo itself, and the look
// is made again (test/isolation/specs/ledger_conflict.spec).
void insert_unless_there(ResultRelInfo* rri, TupleTableSlot* slot, EState* estate, CommandId cid, List* arbiters) {
    Relation rel = rri->ri_RelationDesc;
    for (;;) {
        if (!optout_pg::compat::no_conflict(rri, slot, estate, arbiters)) return;
        optout_pg::fault_point("ledger_row");
        TransactionId xid = GetCurrentTransactionId();
        uint32 token = SpeculativeInsertionLockAcquire(xid);
        table_tuple_insert_speculative(rel, slot, cid, 0, nullptr, token);
        bool conflict = false;
        List* recheck = optout_pg::compat::insert_index_tuples(rri, slot, estate, arbiters, &conflict);
        table_tuple_complete_speculative(rel, slot, token, !conflict);
        SpeculativeInsertionLockRelease(xid);
        list_free(recheck);
        if (!conflict) return;
    }
}

// Writes n rows into rel. With ids, ids[i] gets row i's id_column. With
// cached_col >= 0, the distinct texts of that column (an event's detail,
// which repeats over a broadcast's blocked sends) are each read once. With a
// valid arbiter (a unique index), each row is written alone, by
// insert_unless_there: a row whose key is there already is not written (ON
// CONFLICT DO NOTHING on that index; a conflict in another unique index is
// raised).
void write_rows(Relation rel, DirectCache& cache, const DirectSpec& spec, const void* rows, FillRow fill, int n,
                const char* actor, int cached_col, int64* ids, Oid arbiter) {
    TupleDesc desc = RelationGetDescr(rel);
    int natts = desc->natts;
    const DirectColumns& cols = columns_of(rel, cache, spec);
    const AttrNumber* given = cols.given;
    const FmgrInfo* input = cols.input;
    const Oid* ioparams = cols.ioparams;
    AttrNumber id_att = cols.id_att;
    const bool one_by_one = OidIsValid(arbiter);
    EState* estate = CreateExecutorState();
    ExprState** defaults = static_cast<ExprState**>(palloc0(sizeof(ExprState*) * natts));
    MemoryContext call = MemoryContextSwitchTo(estate->es_query_cxt);
    for (int a = 0; a < natts; a++)
        if (cols.defaults[a]) defaults[a] = ExecInitExpr(cols.defaults[a], nullptr);
    List* arbiters = one_by_one ? list_make1_oid(arbiter) : NIL;
    MemoryContextSwitchTo(call);
    ResultRelInfo* rri = makeNode(ResultRelInfo);
    InitResultRelInfo(rri, rel, 0, nullptr, 0);
    // The arbiter's look needs its equality operators (speculative).
    ExecOpenIndices(rri, one_by_one);
    prepare_checks(rri, cols, estate);
    // A bulk write's ring of buffers, for a batch of rows (a stop's one or
    // two would only pay for setting it up).
    BulkInsertState bistate = n > kSmallWrite && !one_by_one ? GetBulkInsertState() : nullptr;
    CommandId cid = GetCurrentCommandId(true);
    ExprContext* econtext = GetPerTupleExprContext(estate);
    const int batch = one_by_one ? 1 : kBatch;
    TupleTableSlot** slots = static_cast<TupleTableSlot**>(palloc0(sizeof(TupleTableSlot*) * Min(n, batch)));
    // The slots get a copy of the row type that is not reference-counted:
    // a slot of the relation's own would pin it in the resource owner, and
    // pinning and releasing a thousand of them cost a quarter of a blocked
    // send's event.
    TupleDesc slot_desc = CreateTupleDescCopy(desc);
    const TupleTableSlotOps* slot_ops = table_slot_callbacks(rel);
    constexpr int kCached = 32;
    const char* cached_text[kCached];
    Datum cached_value[kCached];
    int ncached = 0;
    MemoryContext call_cxt = CurrentMemoryContext;

    for (int first = 0; first < n; first += batch) {
        int k = Min(batch, n - first);
        for (int i = 0; i < k; i++)
            if (!slots[i]) slots[i] = MakeSingleTupleTableSlot(slot_desc, slot_ops);
        // The values of a batch live until its rows are written.
        MemoryContext old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
        int keep = 0;
        for (int i = 0; i < k; i++) {
            TupleTableSlot* slot = slots[i];
            ExecClearTuple(slot);
            for (int a = 0; a < natts; a++) {
                slot->tts_isnull[a] = true;
                slot->tts_values[a] = (Datum)0;
            }
            const char* v[kMaxGiven];
            fill(rows, first + i, actor, v);
            for (int c = 0; c < spec.ngiven; c++) {
                if (!v[c]) continue;
                int a = given[c] - 1;
                Form_pg_attribute att = TupleDescAttr(desc, a);
                int hit = -1;
                if (c == cached_col)
                    for (int j = 0; j < ncached && hit < 0; j++)
                        if (strcmp(cached_text[j], v[c]) == 0) hit = j;
                if (hit >= 0) {
                    slot->tts_values[a] = cached_value[hit];
                } else {
                    slot->tts_values[a] = InputFunctionCall(const_cast<FmgrInfo*>(&input[c]), const_cast<char*>(v[c]),
                                                            ioparams[c], att->atttypmod);
                    if (c == cached_col && ncached < kCached) {
                        MemoryContext kept = MemoryContextSwitchTo(call_cxt);
                        cached_text[ncached] = pstrdup(v[c]);
                        cached_value[ncached] = datumCopy(slot->tts_values[a], att->attbyval, att->attlen);
                        MemoryContextSwitchTo(kept);
                        ncached++;
                    }
                }
                slot->tts_isnull[a] = false;
            }
            for (int a = 0; a < natts; a++) {
                if (!defaults[a]) continue;
                bool isnull;
                slot->tts_values[a] = ExecEvalExpr(defaults[a], econtext, &isnull);
                slot->tts_isnull[a] = isnull;
            }
            ExecStoreVirtualTuple(slot);
            if (desc->constr) ExecConstraints(rri, slot, estate);
            if (ids) {
                bool isnull = id_att <= 0 || slot->tts_isnull[id_att - 1];
                ids[first + i] = isnull ? 0 : DatumGetInt64(slot->tts_values[id_att - 1]);
            }
            if (one_by_one) {
                insert_unless_there(rri, slot, estate, cid, arbiters);
                continue;
            }
            keep++;
        }
        if (keep > 0) table_multi_insert(rel, slots, keep, cid, 0, bistate);
        for (int i = 0; i < k; i++) {
            if (i < keep && rri->ri_NumIndices > 0)
                list_free(optout_pg::compat::insert_index_tuples(rri, slots[i], estate));
            ExecClearTuple(slots[i]);
        }
        MemoryContextSwitchTo(old);
        ResetExprContext(econtext);
    }
    for (int i = 0; i < Min(n, batch); i++)
        if (slots[i]) ExecDropSingleTupleTableSlot(slots[i]);
    if (bistate) FreeBulkInsertState(bistate);
    table_finish_bulk_insert(rel, 0);
    ExecCloseIndices(rri);
    FreeExecutorState(estate);
    CommandCounterIncrement();
}

void fill_event(const void* rows, int i, const char* actor, const char** out) {
    event_values(static_cast<const optout_pg::EventRow*>(rows)[i], actor, out);
}

void write_events(Relation rel, const optout_pg::EventRow* rows, int n, const char* actor, int64* ids) {
    write_rows(rel, events_cache, kEventsSpec, rows, fill_event, n, actor, kEventColumns - 1, ids, InvalidOid);
}

// A ledger row's values: its event_id as text, made beforehand.
struct StopRow {
    const optout_pg::LedgerInsert* row;
    const char* event_id;
};
void fill_stop(const void* rows, int i, const char*, const char** out) {
    const StopRow& r = static_cast<const StopRow*>(rows)[i];
    const char* v[kStopsColumns] = {r.row->contact, r.row->channel, r.row->source ? r.row->source : "manual",
                                    r.row->keyword, r.row->rule,    r.event_id};
    memcpy(out, v, sizeof v);
}

// The ledger's new rows, in the owner scope of ledger_apply. Written
// directly where the table allows it (write_rows: a look at its unique key
// first, a row already there kept, as ON CONFLICT DO NOTHING keeps it), at a
// third of the INSERT's cost for a STOP; else by the INSERT, which fires
// what a DBA has given the table.
void ledger_insert(const optout_pg::LedgerInsert* ins, int nins) {
    Relation rel = table_open(optout_pg::optout_table("stops"), RowExclusiveLock);
    if (direct_writable(rel)) {
        Oid key = get_relname_relid("stops_contact_channel_key", optout_pg::optout_namespace());
        if (!OidIsValid(key))
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                            errmsg("index \"optout.stops_contact_channel_key\" does not exist"),
                            errhint("Update the extension: ALTER EXTENSION optout UPDATE.")));
        StopRow* rows = static_cast<StopRow*>(palloc(sizeof(StopRow) * nins));
        for (int i = 0; i < nins; i++) rows[i] = StopRow{&ins[i], psprintf(INT64_FORMAT, ins[i].event_id)};
        write_rows(rel, stops_cache, kStopsSpec, rows, fill_stop, nins, nullptr, -1, nullptr, key);
        table_close(rel, NoLock);
        return;
    }
    table_close(rel, NoLock);
    const char** cols[5];
    for (int c = 0; c < 5; c++) cols[c] = static_cast<const char**>(palloc(sizeof(char*) * nins));
    Datum* ids = static_cast<Datum*>(palloc(sizeof(Datum) * nins));
    for (int i = 0; i < nins; i++) {
        cols[0][i] = ins[i].contact;
        cols[1][i] = ins[i].channel;
        cols[2][i] = ins[i].source ? ins[i].source : "manual";
        cols[3][i] = ins[i].keyword;
        cols[4][i] = ins[i].rule;
        ids[i] = Int64GetDatum(ins[i].event_id);
    }
    Datum args[6];
    for (int c = 0; c < 5; c++) args[c] = optout_pg::cstring_array(cols[c], nins);
    int dims[1] = {nins};
    int lbs[1] = {1};
    args[5] = PointerGetDatum(construct_md_array(ids, nullptr, 1, dims, lbs, INT8OID, 8, true, TYPALIGN_DOUBLE));
    if (!ledger_insert_plan) {
        static const Oid itypes[6] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
                                      TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
        ledger_insert_plan = prepare_once(
            "INSERT INTO optout.stops (contact, channel, source, keyword, rule, event_id) "
            "SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), "
            "pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6)) "
            "ON CONFLICT ON CONSTRAINT stops_contact_channel_key DO NOTHING",
            6, itypes);
    }
    int rc = SPI_execute_plan(ledger_insert_plan, args, nullptr, false, 0);
    if (rc != SPI_OK_INSERT) elog(ERROR, "optout: writing the ledger failed: %s", SPI_result_code_string(rc));
}

}  // namespace

namespace optout_pg {

// Every event of a batch, in order; ids[i] gets row i's id.
void record_events(const EventRow* rows, int n, int64* ids) {
    if (n <= 0) return;
    // Who did it: the role that fired the trigger or called the function.
    const char* actor = GetUserNameFromId(GetUserId(), false);
    OwnerScope scope = enter_owner();
    Relation rel = table_open(optout_table("events"), RowExclusiveLock);
    if (direct_writable(rel)) {
        write_events(rel, rows, n, actor, ids);
        table_close(rel, NoLock);
        leave_owner(scope);
        return;
    }
    table_close(rel, NoLock);
    // One array a column (the actor's is the same name n times).
    const char** cols[kEventColumns];
    for (int c = 0; c < kEventColumns; c++) cols[c] = static_cast<const char**>(palloc(sizeof(char*) * n));
    for (int i = 0; i < n; i++) {
        const char* v[kEventColumns];
        event_values(rows[i], actor, v);
        for (int c = 0; c < kEventColumns; c++) cols[c][i] = v[c];
    }
    Datum values[kEventColumns];
    for (int c = 0; c < kEventColumns; c++) values[c] = cstring_array(cols[c], n);
    if (citus_table(optout_table("events"))) {
        // On Citus: the ids first, from this node's sequence, then the rows
        // with their ids and no RETURNING, which Citus copies straight into
        // the contacts' shards. (With RETURNING it would stage the rows as
        // "intermediate results" named after the plan; two workers flushing
        // in one distributed transaction, as a broadcast's commit makes them,
        // then write the same names on a third node and break each other.)
        if (!citus_ids_plan) {
            static const Oid itypes[1] = {INT4OID};
            citus_ids_plan = prepare(
                "SELECT pg_catalog.nextval('optout.events_id_seq'::pg_catalog.regclass) "
                "FROM pg_catalog.generate_series(1, $1)",
                1, itypes);
        }
        if (!citus_event_plan) {
            Oid types[kEventColumns + 1];
            types[0] = INT8ARRAYOID;
            for (int c = 1; c <= kEventColumns; c++) types[c] = TEXTARRAYOID;
            citus_event_plan = prepare(
                "INSERT INTO optout.events (id, kind, contact, channel, source, body, keyword, language, rule, "
                "provider, code, table_name, reason, actor, optout_version, keyword_set, detail) "
                "SELECT u.id, u.kind, u.contact, u.channel, u.source, u.body, u.keyword, u.language, u.rule, "
                "u.provider, u.code, u.table_name, u.reason, u.actor::pg_catalog.name, u.optout_version, "
                "u.keyword_set, u.detail::pg_catalog.jsonb "
                "FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), "
                "pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7), "
                "pg_catalog.unnest($8), pg_catalog.unnest($9), pg_catalog.unnest($10), pg_catalog.unnest($11), "
                "pg_catalog.unnest($12), pg_catalog.unnest($13), pg_catalog.unnest($14), pg_catalog.unnest($15), "
                "pg_catalog.unnest($16), pg_catalog.unnest($17)) "
                "AS u(id, kind, contact, channel, source, body, keyword, language, rule, provider, code, table_name, "
                "reason, actor, optout_version, keyword_set, detail)",
                kEventColumns + 1, types);
        }
        Datum count = Int32GetDatum(n);
        int rc = SPI_execute_plan(citus_ids_plan, &count, nullptr, false, 0);
        if (rc != SPI_OK_SELECT || SPI_processed != static_cast<uint64>(n))
            elog(ERROR, "optout: drawing event ids failed");
        Datum* idd = static_cast<Datum*>(palloc(sizeof(Datum) * n));
        for (int i = 0; i < n; i++) {
            bool isnull;
            int64 id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
            idd[i] = Int64GetDatum(id);
            if (ids) ids[i] = id;
        }
        Datum args[kEventColumns + 1];
        int dims[1] = {n};
        int lbs[1] = {1};
        args[0] = PointerGetDatum(construct_md_array(idd, nullptr, 1, dims, lbs, INT8OID, 8, true, TYPALIGN_DOUBLE));
        for (int c = 0; c < kEventColumns; c++) args[c + 1] = values[c];
        rc = SPI_execute_plan(citus_event_plan, args, nullptr, false, 0);
        if (rc != SPI_OK_INSERT || SPI_processed != static_cast<uint64>(n))
            elog(ERROR, "optout: recording events failed");
        leave_owner(scope);
        return;
    }
    if (!event_plan) {
        Oid types[kEventColumns];
        for (int c = 0; c < kEventColumns; c++) types[c] = TEXTARRAYOID;
        // The rows come out in array order, and each takes its id (the
        // column default) in that order, so RETURNING lists them in order.
        event_plan = prepare_once(
            "INSERT INTO optout.events (kind, contact, channel, source, body, keyword, language, rule, provider, "
            "code, table_name, reason, actor, optout_version, keyword_set, detail) "
            "SELECT u.kind, u.contact, u.channel, u.source, u.body, u.keyword, u.language, u.rule, u.provider, "
            "u.code, u.table_name, u.reason, u.actor::pg_catalog.name, u.optout_version, u.keyword_set, "
            "u.detail::pg_catalog.jsonb "
            "FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), "
            "pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7), "
            "pg_catalog.unnest($8), pg_catalog.unnest($9), pg_catalog.unnest($10), pg_catalog.unnest($11), "
            "pg_catalog.unnest($12), pg_catalog.unnest($13), pg_catalog.unnest($14), pg_catalog.unnest($15), "
            "pg_catalog.unnest($16)) WITH ORDINALITY "
            "AS u(kind, contact, channel, source, body, keyword, language, rule, provider, code, table_name, "
            "reason, actor, optout_version, keyword_set, detail, n) ORDER BY u.n RETURNING id",
            kEventColumns, types);
    }
    int rc = SPI_execute_plan(event_plan, values, nullptr, false, 0);
    if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != static_cast<uint64>(n))
        elog(ERROR, "optout: recording events failed");
    for (int i = 0; i < n; i++) {
        bool isnull;
        int64 id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
        if (ids) ids[i] = id;
    }
    leave_owner(scope);
}

int64 record_event(const char* kind, const char* contact, const char* channel, const EventInfo& info) {
    EventRow row{kind, contact, channel, info};
    int64 id = 0;
    record_events(&row, 1, &id);
    return id;
}

int ledger_load(const char* const* contacts, int n, char*** out_contacts, char*** out_channels) {
    MemoryContext caller = CurrentMemoryContext;
    Datum arg = cstring_array(contacts, n);
    OwnerScope scope = enter_owner();
    if (!load_plan) {
        static const Oid types[1] = {TEXTARRAYOID};
        load_plan =
            prepare("SELECT s.contact, s.channel FROM optout.stops s WHERE s.contact OPERATOR(pg_catalog.=) ANY ($1)",
                    1, types);
    }
    // One contact (a STOP, the common case): a twin planned once per
    // backend, planned again when the ledger has grown past twice the size
    // it was planned at (spi.hpp), as the platform's statements are.
    SPIPlanPtr plan = load_plan;
    if (n == 1) {
        if (!load_one_plan) {
            static const Oid types[1] = {TEXTARRAYOID};
            load_one_plan = prepare_once(
                "SELECT s.contact, s.channel FROM optout.stops s WHERE s.contact OPERATOR(pg_catalog.=) ($1)[1]", 1,
                types);
        }
        if (generic_plan_usable(load_one_plan, &load_one_watch)) plan = load_one_plan;
    }
    // The latest committed state (the caller holds the contacts' locks).
    int rc = SPI_execute_snapshot(plan, &arg, nullptr, GetLatestSnapshot(), InvalidSnapshot, true, false, 0);
    if (plan == load_one_plan && rc >= 0) generic_plan_ran(plan, &load_one_watch);
    if (rc != SPI_OK_SELECT) elog(ERROR, "optout: reading the ledger failed: %s", SPI_result_code_string(rc));
    int rows = static_cast<int>(SPI_processed);
    char** cs = static_cast<char**>(MemoryContextAlloc(caller, sizeof(char*) * (rows ? rows : 1)));
    char** chs = static_cast<char**>(MemoryContextAlloc(caller, sizeof(char*) * (rows ? rows : 1)));
    for (int i = 0; i < rows; i++) {
        char* c = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
        char* ch = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
        cs[i] = MemoryContextStrdup(caller, c);
        chs[i] = ch ? MemoryContextStrdup(caller, ch) : nullptr;
    }
    leave_owner(scope);
    *out_contacts = cs;
    *out_channels = chs;
    return rows;
}

void ledger_apply(const char* const* del_contacts, const char* const* del_channels, int ndel, const LedgerInsert* ins,
                  int nins) {
    if (ndel == 0 && nins == 0) return;
    Datum del_args[2];
    if (ndel > 0) {
        del_args[0] = cstring_array(del_contacts, ndel);
        del_args[1] = cstring_array(del_channels, ndel);
    }
    OwnerScope scope = enter_owner();
    // Each plan is kept only once it is prepared: an error leaves it unset.
    if (!ledger_delete_plan) {
        static const Oid dtypes[2] = {TEXTARRAYOID, TEXTARRAYOID};
        // (No IS NOT DISTINCT FROM: it finds its "=" by name.)
        ledger_delete_plan = prepare(
            "DELETE FROM optout.stops s USING ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) u(c, ch) "
            "WHERE s.contact OPERATOR(pg_catalog.=) u.c "
            "AND (s.channel OPERATOR(pg_catalog.=) u.ch OR (s.channel IS NULL AND u.ch IS NULL))",
            2, dtypes);
    }
    optout_pg::fault_point("apply_ledger");
    if (ndel > 0) {
        int rc = SPI_execute_plan(ledger_delete_plan, del_args, nullptr, false, 0);
        if (rc != SPI_OK_DELETE) elog(ERROR, "optout: writing the ledger failed: %s", SPI_result_code_string(rc));
    }
    if (nins > 0) ledger_insert(ins, nins);
    leave_owner(scope);
}

}  // namespace optout_pg

namespace {

// Is the contact stopped for the channel? One probe of the ledger's unique
// index on (contact, channel), read with the latest snapshot, without SPI or
// the planner: the send path asks this for each new contact of a
// transaction. (Like a foreign-key check, it reads optout's table directly,
// whatever the caller's rights.)
bool ledger_probe(const char* contact, const char* channel) {
    Oid ns = optout_pg::optout_namespace();
    Oid relid = get_relname_relid("stops", ns);
    Oid indexid = get_relname_relid("stops_contact_channel_key", ns);
    if (!OidIsValid(relid) || !OidIsValid(indexid))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("table \"optout.stops\" or its key does not exist"),
                        errhint("Update the extension: ALTER EXTENSION optout UPDATE.")));
    Relation rel = table_open(relid, AccessShareLock);
    Relation idx = index_open(indexid, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(contact));
    key.sk_collation = idx->rd_indcollation[0];
    Snapshot snap = RegisterSnapshot(GetLatestSnapshot());
    IndexScanDesc scan = optout_pg::compat::index_beginscan(rel, idx, snap, 1, 0);
    index_rescan(scan, &key, 1, nullptr, 0);
    TupleTableSlot* slot = table_slot_create(rel, nullptr);
    bool any = channel == optout_pg::kAnyChannel;
    text* want = channel && !any ? cstring_to_text(channel) : nullptr;
    bool stopped = false;
    while (!stopped && index_getnext_slot(scan, ForwardScanDirection, slot)) {
        bool isnull;
        Datum ch = slot_getattr(slot, 2, &isnull);  // optout.stops.channel
        if (isnull || any) {
            stopped = true;  // contact-wide, or any stop when any channel counts
        } else if (want) {
            text* have = DatumGetTextPP(ch);
            stopped = VARSIZE_ANY_EXHDR(have) == VARSIZE_ANY_EXHDR(want) &&
                      memcmp(VARDATA_ANY(have), VARDATA_ANY(want), VARSIZE_ANY_EXHDR(want)) == 0;
        }
    }
    ExecDropSingleTupleTableSlot(slot);
    index_endscan(scan);
    UnregisterSnapshot(snap);
    index_close(idx, NoLock);
    table_close(rel, NoLock);
    return stopped;
}

}  // namespace

namespace optout_pg {

double ledger_rows_estimate() {
    Oid relid = get_relname_relid("stops", optout_pg::optout_namespace());
    if (!OidIsValid(relid)) return 0;
    Relation rel = table_open(relid, AccessShareLock);
    BlockNumber pages = RelationGetNumberOfBlocks(rel);
    // The density ANALYZE saw, else about 100 rows a page (a row is ~70 bytes).
    double density = rel->rd_rel->relpages > 0 && rel->rd_rel->reltuples >= 0
                         ? rel->rd_rel->reltuples / rel->rd_rel->relpages
                         : 100.0;
    table_close(rel, AccessShareLock);
    return pages * density;
}

bool ledger_is_stopped(const char* contact, const char* channel, char** since, char** keyword) {
    // (On Citus the ledger's rows are in a shard: only a query reads them.)
    if (!since && !(citus_loaded() && citus_table(optout_table("stops")))) return ledger_probe(contact, channel);
    MemoryContext caller = CurrentMemoryContext;
    OwnerScope scope = enter_owner();
    if (!check_plan) {
        static const Oid types[3] = {TEXTOID, TEXTOID, BOOLOID};
        check_plan = prepare(
            "SELECT s.stopped_at::pg_catalog.text, s.keyword FROM optout.stops s "
            "WHERE s.contact OPERATOR(pg_catalog.=) $1 "
            "AND (s.channel IS NULL OR s.channel OPERATOR(pg_catalog.=) $2 OR $3) "
            "ORDER BY s.stopped_at LIMIT 1",
            3, types);
    }
    Datum values[3];
    char nulls[4];
    bool any = channel == kAnyChannel;
    const char* args[2] = {contact, any ? nullptr : channel};
    bind_texts(args, 2, values, nulls);
    values[2] = BoolGetDatum(any);
    nulls[2] = ' ';
    nulls[3] = '\0';
    // The latest committed state, not the transaction's snapshot: a stop
    // committed by another transaction after this one began still counts.
    int rc = SPI_execute_snapshot(check_plan, values, nulls, GetLatestSnapshot(), InvalidSnapshot, true, false, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "optout: reading the ledger failed: %s", SPI_result_code_string(rc));
    bool stopped = SPI_processed > 0;
    if (stopped && since) {
        char* s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        char* k = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
        MemoryContext old = MemoryContextSwitchTo(caller);
        *since = s ? pstrdup(s) : nullptr;
        if (keyword) *keyword = k ? pstrdup(k) : nullptr;
        MemoryContextSwitchTo(old);
    }
    leave_owner(scope);
    return stopped;
}

bool delivery_code_lookup(const char* provider, const char* code, bool* stops) {
    OwnerScope scope = enter_owner();
    if (!code_plan) {
        static const Oid types[2] = {TEXTOID, TEXTOID};
        code_plan = prepare(
            "SELECT c.stops FROM optout.delivery_error_codes c "
            "WHERE c.provider OPERATOR(pg_catalog.=) pg_catalog.lower(pg_catalog.btrim($1)) "
            "AND c.code OPERATOR(pg_catalog.=) pg_catalog.btrim($2)",
            2, types);
    }
    Datum values[2];
    char nulls[3];
    const char* args[2] = {provider, code};
    bind_texts(args, 2, values, nulls);
    int rc = SPI_execute_plan(code_plan, values, nulls, true, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "optout: reading delivery_error_codes failed");
    bool known = SPI_processed > 0;
    if (known) {
        bool isnull;
        *stops = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    }
    leave_owner(scope);
    return known;
}

}  // namespace optout_pg

// The claim of a confirmation or a help reply (reply.cpp decides when to
// claim). Why it is race-free: the claim is an INSERT of the 'confirmation'
// (or 'help_reply') event with {"for_event": <the stop's or help request's
// event id>}, under a unique index on that key (ledger.sql), with ON
// CONFLICT DO NOTHING. A second claim for the same stop, in this or any
// other transaction, finds the first (waiting for it to commit or roll back
// when it is in flight) and inserts nothing: that send stays blocked.
namespace {

// $1 contact, $2 channel of the send (NULL: none), $3 any channel (a table
// without a channel column), $4 table, $5 actor, $6 window in seconds,
// $7 manual and backfill stops allow one (keyword, provider and platform
// stops always do).
// The stop a confirmation answers: the contact's latest stop that blocks
// this send (by when it took effect).
#define OPTOUT_LATEST_STOP                                                  \
    "SELECT s.event_id, s.source, s.channel, e.at FROM optout.stops s "     \
    "JOIN optout.events e ON e.id OPERATOR(pg_catalog.=) s.event_id "       \
    "WHERE s.contact OPERATOR(pg_catalog.=) $1 "                            \
    "AND (s.channel IS NULL OR s.channel OPERATOR(pg_catalog.=) $2 OR $3) " \
    "ORDER BY e.at DESC, s.event_id DESC LIMIT 1"
#define OPTOUT_STOP_ALLOWS                                                                            \
    "(s.source OPERATOR(pg_catalog.=) ANY ('{keyword,provider,platform}'::pg_catalog.text[]) OR $7) " \
    "AND s.at OPERATOR(pg_catalog.>=) (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) "          \
    "pg_catalog.make_interval(secs => $6)) "

const char kConfirmationSql[] =
    "WITH s AS (" OPTOUT_LATEST_STOP
    ") "
    "INSERT INTO optout.events AS x (kind, contact, channel, source, table_name, actor, detail) "
    "SELECT 'confirmation', $1, $2, 'send', $4, $5::pg_catalog.name, pg_catalog.jsonb_build_object("
    "'for_event', s.event_id, 'stop_source', s.source, 'stop_channel', s.channel, "
    "'seconds_after_stop', pg_catalog.round(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() "
    "OPERATOR(pg_catalog.-) s.at)::pg_catalog.numeric, 3)) "
    "FROM s WHERE " OPTOUT_STOP_ALLOWS
    "ON CONFLICT (contact, ((detail OPERATOR(pg_catalog.->>) 'for_event')::pg_catalog.int8)) "
    "WHERE kind IN ('confirmation', 'help_reply') DO NOTHING "
    "RETURNING x.id";

// The help request a reply answers: the contact's latest one (on this
// channel, when both have one).
const char kHelpReplySql[] =
    "WITH h AS (SELECT e.id, e.at, e.channel FROM optout.events e "
    "WHERE e.contact OPERATOR(pg_catalog.=) $1 AND e.kind OPERATOR(pg_catalog.=) 'help' "
    "AND (e.channel IS NULL OR $2 IS NULL OR $3 OR e.channel OPERATOR(pg_catalog.=) $2) "
    "ORDER BY e.id DESC LIMIT 1) "
    "INSERT INTO optout.events AS x (kind, contact, channel, source, table_name, actor, detail) "
    "SELECT 'help_reply', $1, $2, 'send', $4, $5::pg_catalog.name, pg_catalog.jsonb_build_object("
    "'for_event', h.id, "
    "'seconds_after_help', pg_catalog.round(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() "
    "OPERATOR(pg_catalog.-) h.at)::pg_catalog.numeric, 3)) "
    "FROM h WHERE h.at OPERATOR(pg_catalog.>=) (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) "
    "pg_catalog.make_interval(secs => $6)) AND $7 IS NOT NULL "
    "ON CONFLICT (contact, ((detail OPERATOR(pg_catalog.->>) 'for_event')::pg_catalog.int8)) "
    "WHERE kind IN ('confirmation', 'help_reply') DO NOTHING "
    "RETURNING x.id";

// Would a confirmation be accepted now (optout.confirm_next's answer)?
const char kPeekSql[] =
    "WITH s AS (" OPTOUT_LATEST_STOP
    ") "
    "SELECT 1 FROM s WHERE " OPTOUT_STOP_ALLOWS
    "AND $4 IS NULL AND $5 IS NULL AND NOT EXISTS (SELECT 1 FROM optout.events c "
    "WHERE (c.detail OPERATOR(pg_catalog.->>) 'for_event')::pg_catalog.int8 OPERATOR(pg_catalog.=) s.event_id "
    "AND c.kind OPERATOR(pg_catalog.=) ANY ('{confirmation,help_reply}'::pg_catalog.text[]))";

// Runs one of the statements above as optout's owner, on the latest
// committed state; returns whether it produced a row.
bool run_reply(SPIPlanPtr* plan, const char* sql, const char* contact, const char* channel, const char* table,
               int window, bool read_only) {
    const char* actor = GetUserNameFromId(GetUserId(), false);
    optout_pg::OwnerScope scope = optout_pg::enter_owner();
    if (!*plan) {
        static const Oid types[7] = {TEXTOID, TEXTOID, BOOLOID, TEXTOID, TEXTOID, INT4OID, BOOLOID};
        *plan = optout_pg::prepare_kept(sql, 7, types, 0);
    }
    bool any = channel == optout_pg::kAnyChannel;
    Datum values[7];
    char nulls[8] = "       ";
    values[0] = CStringGetTextDatum(contact);
    if (any || !channel) {
        nulls[1] = 'n';
        values[1] = (Datum)0;
    } else {
        values[1] = CStringGetTextDatum(channel);
    }
    values[2] = BoolGetDatum(any);
    values[3] = table ? CStringGetTextDatum(table) : (Datum)0;
    if (!table) nulls[3] = 'n';
    values[4] = read_only ? (Datum)0 : CStringGetTextDatum(actor);
    if (read_only) nulls[4] = 'n';
    values[5] = Int32GetDatum(window);
    values[6] = BoolGetDatum(optout_pg::confirm_manual_stops());
    if (!read_only) {
        optout_pg::fault_point("reply_claim");
        CommandCounterIncrement();
    }
    int rc = SPI_execute_snapshot(*plan, values, nulls, GetLatestSnapshot(), InvalidSnapshot, read_only, false, 1);
    if (rc < 0) elog(ERROR, "optout: recording a reply failed: %s", SPI_result_code_string(rc));
    bool done = SPI_processed > 0;
    optout_pg::leave_owner(scope);
    if (!read_only) CommandCounterIncrement();
    return done;
}

}  // namespace

namespace optout_pg {

bool record_reply(ReplyKind kind, const char* contact, const char* channel, const char* table, int window) {
    if (kind == ReplyKind::Confirmation)
        return run_reply(&confirmation_plan, kConfirmationSql, contact, channel, table, window, false);
    return run_reply(&help_reply_plan, kHelpReplySql, contact, channel, table, window, false);
}

bool reply_would_record(const char* contact, const char* channel, int window) {
    return run_reply(&peek_plan, kPeekSql, contact, channel, nullptr, window, true);
}

// Every row, as the owner, with the latest snapshot. (SPI's copies of the
// strings go at leave_owner: fn copies what it keeps.)
void ledger_scan(void (*fn)(const char* contact, const char* channel, void* arg), void* arg) {
    OwnerScope scope = enter_owner();
    if (!whole_plan) whole_plan = prepare_kept("SELECT s.contact, s.channel FROM optout.stops s", 0, nullptr, 0);
    int rc = SPI_execute_snapshot(whole_plan, nullptr, nullptr, GetLatestSnapshot(), InvalidSnapshot, true, false, 0);
    if (rc != SPI_OK_SELECT) elog(ERROR, "optout: reading the ledger failed: %s", SPI_result_code_string(rc));
    for (uint64 i = 0; i < SPI_processed; i++)
        fn(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
           SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2), arg);
    leave_owner(scope);
}

// With the transaction's snapshot, as the owner; in the caller's memory.
int ledger_contact_wide(const char*** out) {
    MemoryContext caller = CurrentMemoryContext;
    OwnerScope scope = enter_owner();
    int rc = SPI_execute(
        "SELECT s.contact FROM optout.stops s WHERE s.channel IS NULL "
        "ORDER BY s.contact COLLATE pg_catalog.\"C\"",
        true, 0);
    if (rc != SPI_OK_SELECT) elog(ERROR, "optout: reading the ledger failed: %s", SPI_result_code_string(rc));
    int n = static_cast<int>(SPI_processed);
    const char** found = static_cast<const char**>(MemoryContextAlloc(caller, sizeof(char*) * (n ? n : 1)));
    for (int i = 0; i < n; i++)
        found[i] = MemoryContextStrdup(caller, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
    leave_owner(scope);
    *out = found;
    return n;
}

// NOTIFY optout, '{"event": "stop", ...}' once the transaction commits.
void notify_change(const char* kind, const char* contact, const char* channel, const EventInfo& info, int64 event_id) {
    StringInfoData buf;
    initStringInfo(&buf);
    appendStringInfo(&buf, "{\"event\": ");
    escape_json(&buf, kind);
    appendStringInfo(&buf, ", \"event_id\": " INT64_FORMAT ", \"contact\": ", event_id);
    escape_json(&buf, contact);
    appendStringInfoString(&buf, ", \"channel\": ");
    if (channel)
        escape_json(&buf, channel);
    else
        appendStringInfoString(&buf, "null");
    const char* fields[][2] = {{"message_channel", info.arrived_on},
                               {"source", info.source},
                               {"keyword", info.keyword},
                               {"rule", info.rule},
                               {"table", info.table_name},
                               {"provider", info.provider},
                               {"code", info.code}};
    for (auto& f : fields) {
        appendStringInfo(&buf, ", \"%s\": ", f[0]);
        if (f[1])
            escape_json(&buf, f[1]);
        else
            appendStringInfoString(&buf, "null");
    }
    appendStringInfo(&buf, ", \"at\": ");
    escape_json(&buf, timestamptz_to_str(GetCurrentTransactionStartTimestamp()));
    appendStringInfoChar(&buf, '}');
    Async_Notify("optout", buf.data);
    pfree(buf.data);
}

}  // namespace optout_pg
