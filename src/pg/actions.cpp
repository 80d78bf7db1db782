// Attachments, the actions of a stop and a start, the trigger functions and
// the SQL functions optout.stop / start / is_stopped / record_delivery_error.
//
// optout.attachments is read once per backend into a cache (rebuilt after a
// committed change to it, or to an attached table's definition). The SQL each
// attachment runs on the platform's tables is generated once, by
// optout._action_sql() (which quotes every name and names each statement),
// and prepared once per backend with SPI_prepare + SPI_keepplan: no SQL text
// is built or parsed per row. Statements on the platform's tables run as the table's owner (as a
// foreign-key check does), so the platform's own triggers fire with its own
// rights, whoever caused the stop; the ledger and the event record are
// written as optout's owner (ledger.cpp).
#include "enforce.hpp"
#include "guard.hpp"

#include <string>
#include <string_view>
#include <vector>

#include "optout/changes.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "utils/array.h"
#include "utils/datum.h"
#include "utils/snapmgr.h"
}

extern "C" {
PG_FUNCTION_INFO_V1(optout_inbound_trigger);
PG_FUNCTION_INFO_V1(optout_outbound_trigger);
PG_FUNCTION_INFO_V1(optout_contacts_trigger);
PG_FUNCTION_INFO_V1(optout_delivery_trigger);
PG_FUNCTION_INFO_V1(optout_stop);
PG_FUNCTION_INFO_V1(optout_start);
PG_FUNCTION_INFO_V1(optout_is_stopped);
PG_FUNCTION_INFO_V1(optout_record_delivery_error);
}

namespace {

enum Kind { kInbound, kOutbound, kContacts, kGroups, kDeliveryErrors };
enum OnBlocked { kError, kSkip, kMark };

// The statements an attachment runs on its table, prepared from
// optout._action_sql() by name (NULL: the attachment has none of that name).
struct ActionPlans {
    SPIPlanPtr contacts_stop;         // contacts: status becomes stopped_value
    SPIPlanPtr contacts_start;        // contacts: status back to active_value
    SPIPlanPtr groups_leave;          // groups: leave every group but the Stopped group
    SPIPlanPtr groups_join_stopped;   // groups: join the Stopped group
    SPIPlanPtr groups_start;          // groups: leave the Stopped group
    SPIPlanPtr outbound_fail_queued;  // outbound: fail the queued messages
};
struct ActionName {
    const char* name;
    SPIPlanPtr ActionPlans::*plan;
};
constexpr ActionName kActionNames[] = {
    {"contacts.stop", &ActionPlans::contacts_stop},
    {"contacts.start", &ActionPlans::contacts_start},
    {"groups.leave", &ActionPlans::groups_leave},
    {"groups.join_stopped", &ActionPlans::groups_join_stopped},
    {"groups.start", &ActionPlans::groups_start},
    {"outbound.fail_queued", &ActionPlans::outbound_fail_queued},
};

// Column numbers and converted values for one relation (an attached table or
// one of its partitions: their column numbers may differ).
struct RelInfo {
    Oid relid;
    AttrNumber contact, channel, body, status, code, provider, event;
    Oid contact_type, channel_type, status_type;
    int nmark;
    int* mark_cols;  // heap_modify_tuple_by_cols wants int
    Datum* mark_values;
    bool* mark_nulls;
    Datum stopped_value, active_value;
    RelInfo* next;
};

struct Attachment {
    int id;
    Oid relid;
    Kind kind;
    char* table_name;  // quoted, schema-qualified
    char* contact_col;
    char* channel_col;
    char* body_col;
    int mode;  // -1: the optout.match_mode setting
    bool channel_scope;
    OnBlocked on_blocked;
    int nmark;
    char** mark_cols;
    char** mark_values;
    char* status_col;
    char* stopped_value;
    char* active_value;
    char* code_col;
    char* provider;
    char* provider_col;
    char* event_col;
    int nstop_events;
    char** stop_events;
    char* stopped_group;
    char* stopped_group_query;
    SPIPlanPtr group_plan;  // the stopped_group_query, $1 one contact key
    ActionPlans plans;
    RelInfo* rels;
    Oid owner;  // of the table: its statements run as this role
};

// The cache is valid only when it was fully built and no invalidation that
// may concern it arrived since it started to build (loaded_at ==
// invalidations). An error or a cancel at any point of a load leaves it
// invalid: the next call builds it again, or raises the same error.
MemoryContext cache_cxt = nullptr;
Attachment* attachments = nullptr;
int nattachments = 0;
uint64 invalidations = 0;
uint64 loaded_at = UINT64_MAX;
bool loading = false;  // a load is under way (or was cut short by an error)
// While apply_changes walks the attachments, the statements it runs may fire
// optout's triggers again: the cache is not rebuilt under it (that would free
// what it walks); a stale cache is rebuilt at the next call after.
int cache_pins = 0;
Oid contact_type = InvalidOid;  // the contact key type of the first attachment
Oid attachments_relid = InvalidOid;
bool callback_registered = false;
int lifting = 0;

// Results that cross the guard (static: never unwound by a longjmp).
optout::Match inbound_match;
bool inbound_stopall = false;

// Counts the invalidations that may concern the cache: any, while a load is
// under way (its tables are not all known yet).
void relcache_callback(Datum, Oid relid) {
    if (loading || relid == InvalidOid || relid == attachments_relid) {
        invalidations++;
        return;
    }
    for (int i = 0; i < nattachments; i++) {
        if (attachments[i].relid == relid) {
            invalidations++;
            return;
        }
        for (RelInfo* r = attachments[i].rels; r; r = r->next)
            if (r->relid == relid) {
                invalidations++;
                return;
            }
    }
}

void free_cache() {
    for (int i = 0; i < nattachments; i++) {
        for (const ActionName& action : kActionNames)
            if (attachments[i].plans.*action.plan) SPI_freeplan(attachments[i].plans.*action.plan);
        if (attachments[i].group_plan) SPI_freeplan(attachments[i].group_plan);
    }
    attachments = nullptr;
    nattachments = 0;
    if (cache_cxt) MemoryContextReset(cache_cxt);
}

char* cache_strdup(HeapTuple tup, TupleDesc desc, int col) {
    char* v = SPI_getvalue(tup, desc, col);
    return v ? MemoryContextStrdup(cache_cxt, v) : nullptr;
}

int text_array(HeapTuple tup, TupleDesc desc, int col, char*** out) {
    bool isnull;
    Datum d = SPI_getbinval(tup, desc, col, &isnull);
    *out = nullptr;
    if (isnull) return 0;
    Datum* elems;
    bool* nulls;
    int n;
    deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
    char** arr = static_cast<char**>(MemoryContextAllocZero(cache_cxt, sizeof(char*) * (n ? n : 1)));
    for (int i = 0; i < n; i++)
        arr[i] = nulls[i] ? nullptr : MemoryContextStrdup(cache_cxt, TextDatumGetCString(elems[i]));
    *out = arr;
    return n;
}

// Planned at every execution: the same statement runs for one contact or
// for fifty thousand.
SPIPlanPtr prepare_one(const char* sql, int nargs, Oid* types, int id) {
    SPIPlanPtr plan = SPI_prepare_cursor(sql, nargs, types, CURSOR_OPT_CUSTOM_PLAN);
    if (!plan)
        ereport(ERROR, (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
                        errmsg("optout: attachment %d cannot be prepared: %s", id, SPI_result_code_string(SPI_result)),
                        errdetail("Statement: %s", sql),
                        errhint("Check the attached table with optout.attached; detach and attach it again.")));
    SPI_keepplan(plan);
    return plan;
}

// Prepares each named statement into its field of plans (set once kept, so
// that free_cache() frees what a load cut short had prepared).
void prepare_plans(char** names, char** sqls, int n, ActionPlans* plans, int id) {
    static Oid types[2] = {TEXTARRAYOID, TEXTARRAYOID};
    for (int i = 0; i < n; i++) {
        SPIPlanPtr ActionPlans::*field = nullptr;
        for (const ActionName& action : kActionNames)
            if (names[i] && strcmp(names[i], action.name) == 0) field = action.plan;
        if (!field || plans->*field)
            elog(ERROR, "optout: attachment %d has an unknown or repeated statement \"%s\"", id,
                 names[i] ? names[i] : "");
        plans->*field = prepare_one(sqls[i], 2, types, id);
    }
}

void load_cache() {
    if (!callback_registered) {
        CacheRegisterRelcacheCallback(relcache_callback, (Datum)0);
        callback_registered = true;
    }
    loading = true;
    uint64 started = invalidations;
    free_cache();
    if (!cache_cxt) cache_cxt = AllocSetContextCreate(CacheMemoryContext, "optout attachments", ALLOCSET_DEFAULT_SIZES);
    attachments_relid = optout_pg::optout_table("attachments");

    // As the owner, with search_path pinned: names in the statements resolve
    // the same way as when they were checked at attach time.
    optout_pg::OwnerScope scope = optout_pg::enter_owner();
    int rc = SPI_execute(
        "SELECT a.id, a.tbl::pg_catalog.oid, a.kind, a.contact_column::pg_catalog.text, "
        "a.channel_column::pg_catalog.text, a.body_column::pg_catalog.text, a.mode::pg_catalog.text, a.scope, "
        "a.on_blocked, "
        "(SELECT pg_catalog.array_agg(e.key ORDER BY e.key) FROM pg_catalog.jsonb_each_text(a.mark) e), "
        "(SELECT pg_catalog.array_agg(e.value ORDER BY e.key) FROM pg_catalog.jsonb_each_text(a.mark) e), "
        "a.status_column::pg_catalog.text, a.stopped_value, a.active_value, a.code_column::pg_catalog.text, "
        "a.provider, a.provider_column::pg_catalog.text, a.event_column::pg_catalog.text, a.stop_events, "
        "pg_catalog.format('%I.%I', n.nspname, c.relname), "
        "s.names, s.sqls, "
        "(SELECT t.atttypid FROM pg_catalog.pg_attribute t WHERE t.attrelid = a.tbl AND t.attname = a.contact_column), "
        "a.stopped_group, a.stopped_group_query, c.relowner "
        "FROM optout.attachments a JOIN pg_catalog.pg_class c ON c.oid = a.tbl "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "CROSS JOIN LATERAL (SELECT pg_catalog.array_agg(s.name ORDER BY s.i) AS names, "
        "pg_catalog.array_agg(s.sql ORDER BY s.i) AS sqls FROM optout._action_sql(a.id) WITH ORDINALITY s(name, sql, i)) s "
        "ORDER BY a.id",
        true, 0);
    if (rc != SPI_OK_SELECT) elog(ERROR, "optout: reading optout.attachments failed");
    uint64 n = SPI_processed;
    contact_type = InvalidOid;
    Attachment* arr = static_cast<Attachment*>(MemoryContextAllocZero(cache_cxt, sizeof(Attachment) * (n ? n : 1)));
    // Visible at once (every reader checks loaded_at first), so that
    // free_cache() frees the plans of a load cut short too.
    attachments = arr;
    for (uint64 i = 0; i < n; i++) {
        nattachments = static_cast<int>(i) + 1;
        HeapTuple tup = SPI_tuptable->vals[i];
        TupleDesc desc = SPI_tuptable->tupdesc;
        Attachment* a = &arr[i];
        bool isnull;
        a->id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
        a->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
        char* kind = SPI_getvalue(tup, desc, 3);
        a->kind = strcmp(kind, "inbound") == 0    ? kInbound
                  : strcmp(kind, "outbound") == 0 ? kOutbound
                  : strcmp(kind, "contacts") == 0 ? kContacts
                  : strcmp(kind, "groups") == 0   ? kGroups
                                                  : kDeliveryErrors;
        a->contact_col = cache_strdup(tup, desc, 4);
        a->channel_col = cache_strdup(tup, desc, 5);
        a->body_col = cache_strdup(tup, desc, 6);
        char* mode = SPI_getvalue(tup, desc, 7);
        optout::Mode m;
        a->mode = (mode && optout::parse_mode(mode, m)) ? static_cast<int>(m) : -1;
        char* scope_s = SPI_getvalue(tup, desc, 8);
        a->channel_scope = scope_s && strcmp(scope_s, "channel") == 0;
        char* ob = SPI_getvalue(tup, desc, 9);
        a->on_blocked = !ob ? kError : strcmp(ob, "skip") == 0 ? kSkip : strcmp(ob, "mark") == 0 ? kMark : kError;
        a->nmark = text_array(tup, desc, 10, &a->mark_cols);
        (void)text_array(tup, desc, 11, &a->mark_values);
        a->status_col = cache_strdup(tup, desc, 12);
        a->stopped_value = cache_strdup(tup, desc, 13);
        a->active_value = cache_strdup(tup, desc, 14);
        a->code_col = cache_strdup(tup, desc, 15);
        a->provider = cache_strdup(tup, desc, 16);
        a->provider_col = cache_strdup(tup, desc, 17);
        a->event_col = cache_strdup(tup, desc, 18);
        a->nstop_events = text_array(tup, desc, 19, &a->stop_events);
        a->table_name = cache_strdup(tup, desc, 20);
        char** names;
        char** sqls;
        int nnames = text_array(tup, desc, 21, &names);
        int nsqls = text_array(tup, desc, 22, &sqls);
        if (nnames != nsqls) elog(ERROR, "optout: attachment %d: statements and names differ", a->id);
        prepare_plans(names, sqls, nnames, &a->plans, a->id);
        if (!OidIsValid(contact_type)) contact_type = DatumGetObjectId(SPI_getbinval(tup, desc, 23, &isnull));
        a->stopped_group = cache_strdup(tup, desc, 24);
        a->stopped_group_query = cache_strdup(tup, desc, 25);
        a->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 26, &isnull));
        if (a->stopped_group_query) {
            static Oid one_text[1] = {TEXTOID};
            a->group_plan = prepare_one(a->stopped_group_query, 1, one_text, a->id);
        }
        optout_pg::fault_point("cache_load");
    }
    optout_pg::leave_owner(scope);
    loading = false;
    loaded_at = invalidations == started ? started : UINT64_MAX;
}

void ensure_cache() {
    if ((loaded_at != invalidations || !attachments_relid) && cache_pins == 0) load_cache();
}

Attachment* find_attachment(int id) {
    ensure_cache();
    for (int i = 0; i < nattachments; i++)
        if (attachments[i].id == id) return &attachments[i];
    return nullptr;
}

AttrNumber column(Relation rel, const Attachment* a, const char* name, bool required) {
    if (!name) return InvalidAttrNumber;
    int att = SPI_fnumber(RelationGetDescr(rel), name);
    if (att <= 0) {
        if (!required) return InvalidAttrNumber;
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("column \"%s\" of table \"%s\", attached to optout, does not exist", name,
                               RelationGetRelationName(rel)),
                        errhint("The table changed after it was attached: run optout.detach('%s') and attach it again.",
                                a->table_name)));
    }
    return static_cast<AttrNumber>(att);
}

Datum input_value(Relation rel, AttrNumber att, const char* value) {
    Oid type = TupleDescAttr(RelationGetDescr(rel), att - 1)->atttypid;
    int32 typmod = TupleDescAttr(RelationGetDescr(rel), att - 1)->atttypmod;
    Oid in, ioparam;
    getTypeInputInfo(type, &in, &ioparam);
    MemoryContext old = MemoryContextSwitchTo(cache_cxt);
    Datum d = OidInputFunctionCall(in, const_cast<char*>(value), ioparam, typmod);
    Form_pg_attribute attr = TupleDescAttr(RelationGetDescr(rel), att - 1);
    d = datumCopy(d, attr->attbyval, attr->attlen);
    MemoryContextSwitchTo(old);
    return d;
}

// A trigger function acts only for its attachment's table and that table's
// partitions: anyone may execute the trigger functions (PostgreSQL requires
// it of whoever creates a partition, whose row triggers it clones), so a
// trigger another role creates on its own table, naming an attachment, must
// not be able to stop or start anyone. Checked once per relation (cached).
void check_attached_relation(const Attachment* a, Relation rel) {
    Oid relid = RelationGetRelid(rel);
    if (relid == a->relid) return;
    if (rel->rd_rel->relispartition) {
        List* ancestors = get_partition_ancestors(relid);
        bool found = list_member_oid(ancestors, a->relid);
        list_free(ancestors);
        if (found) return;
    }
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("optout attachment %d is not attached to table \"%s\"", a->id, RelationGetRelationName(rel)),
                    errdetail("Attachment %d is on %s; only its triggers there (and on its partitions) act for it.",
                              a->id, a->table_name),
                    errhint("Attach the table with optout.attach_*() instead of creating optout's triggers by hand.")));
}

RelInfo* rel_info(Attachment* a, Relation rel) {
    Oid relid = RelationGetRelid(rel);
    for (RelInfo* r = a->rels; r; r = r->next)
        if (r->relid == relid) return r;
    check_attached_relation(a, rel);
    RelInfo* r = static_cast<RelInfo*>(MemoryContextAllocZero(cache_cxt, sizeof(RelInfo)));
    r->relid = relid;
    TupleDesc desc = RelationGetDescr(rel);
    r->contact = column(rel, a, a->contact_col, true);
    r->contact_type = TupleDescAttr(desc, r->contact - 1)->atttypid;
    r->channel = column(rel, a, a->channel_col, true);
    if (r->channel) r->channel_type = TupleDescAttr(desc, r->channel - 1)->atttypid;
    r->body = column(rel, a, a->body_col, true);
    r->code = column(rel, a, a->code_col, true);
    r->provider = column(rel, a, a->provider_col, true);
    r->event = column(rel, a, a->event_col, true);
    r->status = column(rel, a, a->status_col, true);
    if (r->status) {
        r->status_type = TupleDescAttr(desc, r->status - 1)->atttypid;
        r->stopped_value = input_value(rel, r->status, a->stopped_value);
    }
    if (a->nmark > 0) {
        r->nmark = a->nmark;
        r->mark_cols = static_cast<int*>(MemoryContextAlloc(cache_cxt, sizeof(int) * a->nmark));
        r->mark_values = static_cast<Datum*>(MemoryContextAlloc(cache_cxt, sizeof(Datum) * a->nmark));
        r->mark_nulls = static_cast<bool*>(MemoryContextAlloc(cache_cxt, sizeof(bool) * a->nmark));
        for (int i = 0; i < a->nmark; i++) {
            r->mark_cols[i] = column(rel, a, a->mark_cols[i], true);
            r->mark_nulls[i] = a->mark_values[i] == nullptr;
            r->mark_values[i] = r->mark_nulls[i] ? (Datum)0 : input_value(rel, r->mark_cols[i], a->mark_values[i]);
        }
    }
    r->next = a->rels;
    a->rels = r;
    return r;
}

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
uint64 exec_plan(const Attachment* a, SPIPlanPtr plan, Datum arg1, Datum arg2) {
    Datum values[2] = {arg1, arg2};
    const char nulls[3] = {' ', arg2 ? ' ' : 'n', '\0'};
    CommandCounterIncrement();
    TableOwnerScope owner = enter_table_owner(a);
    int rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(), InvalidSnapshot, false, true, 0);
    leave_table_owner(owner);
    if (rc < 0) elog(ERROR, "optout: enforcement statement failed: %s", SPI_result_code_string(rc));
    return SPI_processed;
}

Attachment* trigger_attachment(FunctionCallInfo fcinfo, const char* fname) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED), errmsg("%s must be called as a trigger", fname)));
    TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    if (!TRIGGER_FIRED_FOR_ROW(td->tg_event) || td->tg_trigger->tgnargs < 1)
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("%s must be a row trigger created by optout.attach_*()", fname)));
    int id = pg_strtoint32(td->tg_trigger->tgargs[0]);
    Attachment* a = find_attachment(id);
    if (!a)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("trigger \"%s\" on table \"%s\" refers to optout attachment %d, which does not exist",
                               td->tg_trigger->tgname, RelationGetRelationName(td->tg_relation), id),
                        errhint("Drop the trigger, or attach the table again.")));
    return a;
}

char* column_text(HeapTuple tup, Relation rel, AttrNumber att) {
    if (att == InvalidAttrNumber) return nullptr;
    bool isnull;
    Datum d = heap_getattr(tup, att, RelationGetDescr(rel), &isnull);
    if (isnull) return nullptr;
    return optout_pg::datum_text(d, TupleDescAttr(RelationGetDescr(rel), att - 1)->atttypid);
}

// The error a blocked send gets under the rule 'error'.
[[noreturn]] void refuse(const char* contact, const char* channel, Relation rel) {
    char* since = nullptr;
    char* keyword = nullptr;
    (void)optout_pg::ledger_is_stopped(contact, channel, &since, &keyword);
    ereport(ERROR,
            (errcode(ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION),
             errmsg("contact \"%s\" has opted out%s%s%s: message refused", contact, channel ? " of channel \"" : "",
                    channel ? channel : "", channel ? "\"" : ""),
             errdetail("The contact is stopped since %s%s%s%s.", since ? since : "?",
                       keyword ? " (keyword \"" : "", keyword ? keyword : "", keyword ? "\")" : ""),
             errhint("The contact must send START (or another opt-in keyword) before messages can be sent again."),
             errtable(rel)));
}

char* server_string(const std::string& utf8) {
    return text_to_cstring(optout_pg::utf8_to_text(utf8.data(), utf8.size()));
}

}  // namespace

namespace optout_pg {

bool lifting_stop() { return lifting > 0; }

}  // namespace optout_pg

namespace {

using optout_pg::ChangeRequest;
using optout_pg::ChangeType;
using optout_pg::EventInfo;

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
    int guc_level = optout_pg::pin_search_path();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
    for (int i = 0; i < n; i++) {
        Datum arg = CStringGetTextDatum(contacts[i]);
        TableOwnerScope owner = enter_table_owner(a);
        int rc = SPI_execute_snapshot(a->group_plan, &arg, nullptr, GetLatestSnapshot(), InvalidSnapshot, true, false, 1);
        leave_table_owner(owner);
        if (rc != SPI_OK_SELECT) elog(ERROR, "optout: the stopped_group_query of attachment %d failed", a->id);
        char* g = SPI_processed > 0 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : nullptr;
        groups[i] = g ? MemoryContextStrdup(caller, g) : nullptr;
    }
    SPI_finish();
    optout_pg::unpin_search_path(guc_level);
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
    Datum arg1 = optout_pg::cstring_array(contacts, n);
    Datum arg2 = second ? optout_pg::cstring_array(second, n) : (Datum)0;
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

// qsort's comparator of stop indexes: by contact (bytes), then by request order.
const ChangeRequest* sort_reqs;
const size_t* sort_scopes;
int compare_scopes(const void* x, const void* y) {
    int i = *static_cast<const int*>(x), j = *static_cast<const int*>(y);
    int c = strcmp(sort_reqs[sort_scopes[i]].contact, sort_reqs[sort_scopes[j]].contact);
    return c != 0 ? c : (i < j ? -1 : i > j);
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
    Datum arg1 = optout_pg::cstring_array(contacts, nscopes);
    Datum arg2 = optout_pg::cstring_array(channels, nscopes);
    MemoryContext caller = CurrentMemoryContext;
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
    uint64 rows = exec_plan(a, a->plans.outbound_fail_queued, arg1, arg2);
    optout_pg::EventRow* events =
        static_cast<optout_pg::EventRow*>(MemoryContextAllocZero(caller, sizeof(optout_pg::EventRow) * (rows ? rows : 1)));
    int nevents = 0;
    // The rows come by contact in byte order: walk the stops in that order
    // too, the first stop of each contact first.
    int* order = static_cast<int*>(MemoryContextAlloc(caller, sizeof(int) * nscopes));
    for (int i = 0; i < nscopes; i++) order[i] = i;
    sort_reqs = reqs;
    sort_scopes = scopes;
    qsort(order, nscopes, sizeof(int), compare_scopes);
    int next = 0;
    for (uint64 r = 0; r < rows; r++) {
        char* contact = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
        char* failed = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);
        if (!contact) continue;
        while (next < nscopes && strcmp(reqs[scopes[order[next]]].contact, contact) < 0) next++;
        if (next == nscopes || strcmp(reqs[scopes[order[next]]].contact, contact) != 0) continue;
        const ChangeRequest* stop = &reqs[scopes[order[next]]];
        optout_pg::EventRow& e = events[nevents++];
        e.kind = "blocked";
        e.contact = stop->contact;
        e.channel = stop->channel;
        e.info = stop->info;
        e.info.source = "send";
        e.info.body = nullptr;
        e.info.table_name = a->table_name;
        e.info.reason = nullptr;
        e.info.detail = MemoryContextStrdup(caller, psprintf("{\"queued_failed\": %s, \"rule\": \"%s\"}", failed,
                                                             a->on_blocked == kMark || a->nmark > 0 ? "mark" : "delete"));
    }
    SPI_finish();
    optout_pg::record_events(events, nevents, nullptr);
}

}  // namespace

namespace optout_pg {

void apply_changes(const ChangeRequest* reqs, int n, bool* results) {
    if (n <= 0) return;
    // Locks first: then no other transaction changes these contacts' stops.
    const char** lock_keys = static_cast<const char**>(palloc(sizeof(char*) * n));
    int nlock = 0;
    for (int i = 0; i < n; i++)
        if (reqs[i].type != ChangeType::Help) lock_keys[nlock++] = reqs[i].contact;
    lock_contacts_for_change(lock_keys, nlock);

    // The ledger rows of the batch's contacts.
    const char** contacts = static_cast<const char**>(palloc(sizeof(char*) * n));
    for (int i = 0; i < n; i++) contacts[i] = reqs[i].contact;
    char** lcontacts;
    char** lchannels;
    int nledger = ledger_load(contacts, n, &lcontacts, &lchannels);

    // What the batch does, planned in the core (no PostgreSQL call inside).
    optout::ChangeOutcome* outcomes = static_cast<optout::ChangeOutcome*>(palloc0(sizeof(optout::ChangeOutcome) * n));
    size_t* del = static_cast<size_t*>(palloc(sizeof(size_t) * (nledger ? nledger : 1)));
    size_t* ins = static_cast<size_t*>(palloc(sizeof(size_t) * n));
    size_t* scopes = static_cast<size_t*>(palloc(sizeof(size_t) * n));
    const char** plan_contact = static_cast<const char**>(palloc(sizeof(char*) * n));
    bool* left_groups = static_cast<bool*>(palloc0(sizeof(bool) * n));
    int* final_state = static_cast<int*>(palloc0(sizeof(int) * n));
    static int ndel, nins, nscopes, ncontacts;  // static: they cross the guard
    ndel = nins = nscopes = ncontacts = 0;
    OPTOUT_GUARD({
        std::vector<optout::Change> changes(static_cast<size_t>(n));
        for (int i = 0; i < n; i++) {
            changes[i].kind = reqs[i].type == ChangeType::Stop    ? optout::ChangeKind::Stop
                              : reqs[i].type == ChangeType::Start ? optout::ChangeKind::Start
                                                                  : optout::ChangeKind::Help;
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
            ncontacts++;
        }
    });
    const int n_del = ndel, n_ins = nins, n_scopes = nscopes, n_contacts = ncontacts;

    // The event record, in request order.
    EventRow* events = static_cast<EventRow*>(palloc0(sizeof(EventRow) * n));
    int* event_of = static_cast<int*>(palloc(sizeof(int) * n));
    int nevents = 0;
    for (int i = 0; i < n; i++) {
        event_of[i] = -1;
        if (!outcomes[i].event) continue;
        EventRow& e = events[nevents];
        e.kind = reqs[i].type == ChangeType::Stop ? "stop" : reqs[i].type == ChangeType::Start ? "start" : "help";
        e.contact = reqs[i].contact;
        e.info = reqs[i].info;
        e.channel = e.info.arrived_on ? e.info.arrived_on : reqs[i].channel;
        if (reqs[i].type == ChangeType::Start && !e.info.detail)
            e.info.detail = outcomes[i].result ? (outcomes[i].contact_wide ? "{\"lifted\": \"contact\"}"
                                                                           : "{\"lifted\": \"channel\"}")
                                               : "{\"lifted\": null}";
        event_of[i] = nevents++;
    }
    int64* ids = static_cast<int64*>(palloc0(sizeof(int64) * (nevents ? nevents : 1)));
    record_events(events, nevents, ids);
    fault_point("apply_events");

    // The ledger.
    const char** dc = static_cast<const char**>(palloc(sizeof(char*) * (n_del ? n_del : 1)));
    const char** dch = static_cast<const char**>(palloc(sizeof(char*) * (n_del ? n_del : 1)));
    for (int i = 0; i < n_del; i++) {
        dc[i] = lcontacts[del[i]];
        dch[i] = lchannels[del[i]];
    }
    LedgerInsert* li = static_cast<LedgerInsert*>(palloc0(sizeof(LedgerInsert) * (n_ins ? n_ins : 1)));
    for (int i = 0; i < n_ins; i++) {
        const ChangeRequest& r = reqs[ins[i]];
        li[i] = LedgerInsert{r.contact, r.channel, r.info.source, r.info.keyword, r.info.rule,
                             event_of[ins[i]] >= 0 ? ids[event_of[ins[i]]] : 0};
    }
    ledger_apply(dc, dch, n_del, li, n_ins);
    send_cache_reset();

    // The platform's tables: every contact-wide stop leaves its groups; the
    // last contact-wide action decides status and the Stopped group. The
    // contacts with anything to do, and the three sets of them (as indexes).
    const char** touched = static_cast<const char**>(palloc(sizeof(char*) * (n_contacts ? n_contacts : 1)));
    int* left = static_cast<int*>(palloc(sizeof(int) * (n_contacts ? n_contacts : 1)));
    int* stopped = static_cast<int*>(palloc(sizeof(int) * (n_contacts ? n_contacts : 1)));
    int* started = static_cast<int*>(palloc(sizeof(int) * (n_contacts ? n_contacts : 1)));
    int ntouched = 0, nleft = 0, nstopped = 0, nstarted = 0;
    for (int i = 0; i < n_contacts; i++) {
        bool is_stopped = final_state[i] == static_cast<int>(optout::FinalState::Stopped);
        bool is_started = final_state[i] == static_cast<int>(optout::FinalState::Started);
        if (!left_groups[i] && !is_stopped && !is_started) continue;
        if (left_groups[i]) left[nleft++] = ntouched;
        if (is_stopped) stopped[nstopped++] = ntouched;
        if (is_started) started[nstarted++] = ntouched;
        touched[ntouched++] = plan_contact[i];
    }
    ensure_cache();
    // The statements below fire triggers, optout's among them: the cache is
    // pinned while they run (an error unpins it on the way out).
    cache_pins++;
    PG_TRY();
    {
    for (int i = 0; i < nattachments; i++) {
        Attachment* a = &attachments[i];
        if (i == 1) fault_point("apply_platform");
        switch (a->kind) {
            case kContacts:
                if (a->plans.contacts_stop)
                    run_for(a, a->plans.contacts_stop, pick(touched, stopped, nstopped), nullptr, nstopped);
                if (a->plans.contacts_start)
                    run_lifting(a, a->plans.contacts_start, pick(touched, started, nstarted), nullptr, nstarted);
                break;
            case kGroups: {
                // Each contact's Stopped group, once (a stopped_group_query runs once a contact).
                const char** groups = ntouched > 0 ? stopped_groups(a, touched, ntouched) : nullptr;
                if (a->plans.groups_leave)
                    run_for(a, a->plans.groups_leave, pick(touched, left, nleft), pick(groups, left, nleft), nleft);
                if (a->plans.groups_join_stopped)
                    run_for(a, a->plans.groups_join_stopped, pick(touched, stopped, nstopped),
                            pick(groups, stopped, nstopped), nstopped);
                if (a->plans.groups_start)
                    run_lifting(a, a->plans.groups_start, pick(touched, started, nstarted),
                                pick(groups, started, nstarted), nstarted);
                break;
            }
            case kOutbound:
                fail_queued(a, reqs, scopes, n_scopes);
                break;
            default:
                break;
        }
    }
    }
    PG_FINALLY();
    { cache_pins--; }
    PG_END_TRY();

    // Listeners hear of every stop recorded and every stop lifted.
    for (int i = 0; i < n; i++) {
        if (event_of[i] < 0) continue;
        const EventRow& e = events[event_of[i]];
        if (reqs[i].type == ChangeType::Stop)
            notify_change("stop", reqs[i].contact, reqs[i].channel, e.info, ids[event_of[i]]);
        else if (reqs[i].type == ChangeType::Start && outcomes[i].result)
            notify_change("start", reqs[i].contact, reqs[i].channel, e.info, ids[event_of[i]]);
    }
    if (results)
        for (int i = 0; i < n; i++) results[i] = outcomes[i].result;
}

bool apply_stop(const char* contact, const char* channel, const EventInfo& info) {
    ChangeRequest r{ChangeType::Stop, contact, channel, info.source && strcmp(info.source, "provider") == 0, info};
    bool result = false;
    apply_changes(&r, 1, &result);
    return result;
}

bool apply_start(const char* contact, const char* channel, const EventInfo& info) {
    ChangeRequest r{ChangeType::Start, contact, channel, false, info};
    bool result = false;
    apply_changes(&r, 1, &result);
    return result;
}

}  // namespace optout_pg

using optout_pg::EventInfo;

// ---------------------------------------------------------------------------
// What a statement's row triggers collect, applied by its statement-level
// trigger (optout._flush): the stops, starts and help requests of keyword
// messages, and the stops of provider opt-out errors. Kept in a memory
// context of their own under TopTransactionContext, freed once they are
// applied. A rolled-back subtransaction takes what it collected with it.
namespace {

struct PendingChange {
    ChangeRequest req;
    int level;  // transaction nesting level that collected it
};

PendingChange* pending_changes = nullptr;
int npending_changes = 0, cap_changes = 0;
MemoryContext pending_cxt = nullptr;

void flush_pending_work();

}  // namespace

namespace optout_pg {

// Called by the transaction callbacks (send_cache.cpp), before the blocked
// sends are recorded: rows inserted into a partition made after the attach
// and named directly (no statement trigger there) are applied before commit.
void flush_collected_changes() {
    if (npending_changes == 0) return;
    PushActiveSnapshot(GetTransactionSnapshot());  // no portal is active at pre-commit
    flush_pending_work();
    PopActiveSnapshot();
}

void forget_collected_changes() {
    pending_changes = nullptr;
    npending_changes = cap_changes = 0;
    pending_cxt = nullptr;  // went with TopTransactionContext
}

void drop_collected_changes(int level) {
    int k = 0;
    for (int i = 0; i < npending_changes; i++)
        if (pending_changes[i].level < level) pending_changes[k++] = pending_changes[i];
    npending_changes = k;
}

}  // namespace optout_pg

namespace {

template <typename T>
T* grow(T* arr, int* cap, int need) {
    if (need <= *cap) return arr;
    int ncap = *cap ? *cap * 2 : 64;
    while (ncap < need) ncap *= 2;
    T* bigger = static_cast<T*>(MemoryContextAlloc(pending_cxt, sizeof(T) * ncap));
    if (arr) memcpy(bigger, arr, sizeof(T) * (*cap));
    *cap = ncap;
    return bigger;
}

char* xact_strdup(const char* s) { return s ? MemoryContextStrdup(pending_cxt, s) : nullptr; }

void collect_change(const ChangeRequest& r) {
    optout_pg::ensure_xact_callbacks();
    if (!pending_cxt)
        pending_cxt = AllocSetContextCreate(TopTransactionContext, "optout pending changes", ALLOCSET_DEFAULT_SIZES);
    pending_changes = grow(pending_changes, &cap_changes, npending_changes + 1);
    PendingChange& p = pending_changes[npending_changes++];
    p.level = GetCurrentTransactionNestLevel();
    p.req = r;
    p.req.contact = xact_strdup(r.contact);
    p.req.channel = xact_strdup(r.channel);
    EventInfo& i = p.req.info;
    i.source = xact_strdup(i.source);
    i.body = xact_strdup(i.body);
    i.keyword = xact_strdup(i.keyword);
    i.language = xact_strdup(i.language);
    i.rule = xact_strdup(i.rule);
    i.provider = xact_strdup(i.provider);
    i.code = xact_strdup(i.code);
    i.table_name = xact_strdup(i.table_name);
    i.reason = xact_strdup(i.reason);
    i.detail = xact_strdup(i.detail);
    i.arrived_on = xact_strdup(i.arrived_on);
}

void flush_pending_work() {
    while (npending_changes > 0) {
        // Take them, with their memory: what the statements they run collect
        // goes to a new list.
        PendingChange* changes = pending_changes;
        int n = npending_changes;
        MemoryContext cxt = pending_cxt;
        pending_changes = nullptr;
        npending_changes = cap_changes = 0;
        pending_cxt = nullptr;
        ChangeRequest* reqs = static_cast<ChangeRequest*>(palloc(sizeof(ChangeRequest) * n));
        for (int i = 0; i < n; i++) reqs[i] = changes[i].req;
        optout_pg::apply_changes(reqs, n, nullptr);
        MemoryContextDelete(cxt);
    }
}

// The attachment a WHEN function names (its first argument).
Attachment* when_attachment(FunctionCallInfo fcinfo) {
    int id = PG_GETARG_INT32(0);
    Attachment* a = find_attachment(id);
    if (!a)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("optout attachment %d does not exist", id),
                        errhint("Drop the trigger, or attach the table again.")));
    return a;
}

bool classify_row(Attachment* a, text* body_t) {
    optout_pg::Utf8 body = optout_pg::text_to_utf8(body_t);
    optout::Mode mode = a->mode < 0 ? optout_pg::default_mode() : static_cast<optout::Mode>(a->mode);
    const optout::KeywordSet& kw = optout_pg::keywords();
    OPTOUT_GUARD({
        inbound_match = optout::classify(std::string_view(body.data, body.size), mode, kw);
        inbound_stopall = inbound_match.intent == optout::Intent::OptOut &&
                          optout::keyword_key(inbound_match.keyword) == "stopall";
    });
    return inbound_match.intent != optout::Intent::None;
}

}  // namespace

extern "C" {
PG_FUNCTION_INFO_V1(optout_inbound_when);
PG_FUNCTION_INFO_V1(optout_outbound_when);
PG_FUNCTION_INFO_V1(optout_flush);
}

// optout._inbound_when(attachment, body) -> boolean: does the body classify
// as a keyword (the WHEN of the inbound trigger).
extern "C" Datum optout_inbound_when(PG_FUNCTION_ARGS) {
    Attachment* a = when_attachment(fcinfo);
    PG_RETURN_BOOL(classify_row(a, PG_GETARG_TEXT_PP(1)));
}

// optout._outbound_when(attachment, contact, channel) -> boolean: is this
// send blocked (the WHEN of the outbound trigger: only a blocked row calls
// the trigger function). Takes the contact's send lock.
extern "C" Datum optout_outbound_when(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(1)) PG_RETURN_BOOL(false);  // documented: a row without a contact is not enforced
    // The argument types of this call site, looked up once.
    Oid* types = static_cast<Oid*>(fcinfo->flinfo->fn_extra);
    if (!types) {
        types = static_cast<Oid*>(MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(Oid) * 2));
        types[0] = get_fn_expr_argtype(fcinfo->flinfo, 1);
        types[1] = get_fn_expr_argtype(fcinfo->flinfo, 2);
        if (!OidIsValid(types[0]) || !OidIsValid(types[1]))
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("optout._outbound_when() needs arguments of known types")));
        fcinfo->flinfo->fn_extra = types;
    }
    Datum channel = PG_ARGISNULL(2) ? (Datum)0 : PG_GETARG_DATUM(2);
    PG_RETURN_BOOL(optout_pg::send_blocked_datum(PG_GETARG_DATUM(1), types[0], PG_ARGISNULL(2) ? nullptr : &channel,
                                                 types[1]));
}

// AFTER INSERT FOR EACH STATEMENT: applies what the statement's row
// triggers collected.
extern "C" Datum optout_flush(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED), errmsg("optout._flush() must be called as a trigger")));
    flush_pending_work();
    return PointerGetDatum(nullptr);
}

// AFTER INSERT FOR EACH ROW on an inbound table, fired only for rows whose
// body classifies as a keyword (its WHEN): the stop, start or help request
// is collected and applied at the end of the statement, with the others.
extern "C" Datum optout_inbound_trigger(PG_FUNCTION_ARGS) {
    Attachment* a = trigger_attachment(fcinfo, "optout._inbound_trigger()");
    TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    Relation rel = td->tg_relation;
    HeapTuple tup = td->tg_trigtuple;
    RelInfo* r = rel_info(a, rel);

    bool isnull;
    Datum body_d = heap_getattr(tup, r->body, RelationGetDescr(rel), &isnull);
    if (isnull) return PointerGetDatum(nullptr);
    char* contact = column_text(tup, rel, r->contact);
    if (!contact) return PointerGetDatum(nullptr);  // documented: a row without a contact is not enforced
    char* channel = column_text(tup, rel, r->channel);

    text* body_t = DatumGetTextPP(body_d);
    if (!classify_row(a, body_t)) return PointerGetDatum(nullptr);

    ChangeRequest req{};
    EventInfo& info = req.info;
    info.source = "keyword";
    info.body = text_to_cstring(body_t);
    info.keyword = server_string(inbound_match.keyword);
    info.language = server_string(inbound_match.language);
    info.rule = optout::to_string(inbound_match.rule);
    info.table_name = a->table_name;
    info.arrived_on = channel;
    req.contact = contact;
    switch (inbound_match.intent) {
        case optout::Intent::OptOut:
            req.type = ChangeType::Stop;
            req.channel = (a->channel_scope && !inbound_stopall) ? channel : nullptr;
            break;
        case optout::Intent::OptIn:
            req.type = ChangeType::Start;
            req.channel = a->channel_scope ? channel : nullptr;
            break;
        default:
            req.type = ChangeType::Help;
            req.channel = channel;
            break;
    }
    collect_change(req);
    return PointerGetDatum(nullptr);
}

namespace {

// What a BEFORE trigger returns for a blocked row: nothing ('skip'), the row
// with the mark values ('mark'), or the row as it is.
Datum mark_row(const Attachment* a, const RelInfo* r, Relation rel, HeapTuple tup) {
    if (a->on_blocked == kSkip) return PointerGetDatum(nullptr);
    if (r->nmark == 0) return PointerGetDatum(tup);
    return PointerGetDatum(
        heap_modify_tuple_by_cols(tup, RelationGetDescr(rel), r->nmark, r->mark_cols, r->mark_values, r->mark_nulls));
}

}  // namespace

// BEFORE INSERT OR UPDATE FOR EACH ROW on an outbound table: a row for a
// stopped contact is refused, dropped or marked.
extern "C" Datum optout_outbound_trigger(PG_FUNCTION_ARGS) {
    Attachment* a = trigger_attachment(fcinfo, "optout._outbound_trigger()");
    TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    Relation rel = td->tg_relation;
    RelInfo* r = rel_info(a, rel);
    bool is_update = TRIGGER_FIRED_BY_UPDATE(td->tg_event);
    HeapTuple tup = is_update ? td->tg_newtuple : td->tg_trigtuple;

    // A blocked row of a bulk send with integer keys: counted and marked
    // without turning the keys into text (its WHEN found it blocked).
    if (!is_update && td->tg_trigger->tgqual && a->on_blocked != kError && optout_pg::is_integer_type(r->contact_type) &&
        (!r->channel || optout_pg::is_integer_type(r->channel_type))) {
        bool cnull, chnull = true;
        Datum c = heap_getattr(tup, r->contact, RelationGetDescr(rel), &cnull);
        Datum ch = r->channel ? heap_getattr(tup, r->channel, RelationGetDescr(rel), &chnull) : (Datum)0;
        if (cnull) return PointerGetDatum(tup);
        int64 channel_value = chnull ? 0 : optout_pg::integer_value(ch, r->channel_type);
        optout_pg::note_blocked_int(optout_pg::integer_value(c, r->contact_type), chnull ? nullptr : &channel_value, a->id,
                                    a->table_name, a->on_blocked == kSkip);
        return mark_row(a, r, rel, tup);
    }

    char* contact = column_text(tup, rel, r->contact);
    if (!contact) return PointerGetDatum(tup);
    char* channel = column_text(tup, rel, r->channel);
    // An UPDATE gets here as an INSERT does: it set the contact or channel
    // column (changed or not: optout_outbound), or it made the row sendable
    // again (optout_outbound_requeue), and the WHEN found the contact stopped.

    // The trigger's WHEN (optout._outbound_when) has found the row blocked,
    // under the contact's send lock; a trigger without it asks here.
    if (!td->tg_trigger->tgqual && !optout_pg::send_blocked(contact, channel)) return PointerGetDatum(tup);

    if (a->on_blocked == kError) refuse(contact, channel, rel);

    optout_pg::note_blocked(contact, channel, a->table_name, a->on_blocked == kSkip ? "skip" : "mark");
    return mark_row(a, r, rel, tup);
}

// BEFORE UPDATE OF <status> FOR EACH ROW on a contacts table: the sticky
// stop. Setting a stopped contact back to active outside an opt-in keeps it
// stopped, and the attempt is recorded.
extern "C" Datum optout_contacts_trigger(PG_FUNCTION_ARGS) {
    Attachment* a = trigger_attachment(fcinfo, "optout._contacts_trigger()");
    TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    Relation rel = td->tg_relation;
    RelInfo* r = rel_info(a, rel);
    HeapTuple newtup = td->tg_newtuple;
    if (!TRIGGER_FIRED_BY_UPDATE(td->tg_event) || optout_pg::lifting_stop()) return PointerGetDatum(newtup);

    char* new_status = column_text(newtup, rel, r->status);
    if (!new_status || !a->active_value || strcmp(new_status, a->active_value) != 0) return PointerGetDatum(newtup);
    char* old_status = column_text(td->tg_trigtuple, rel, r->status);
    if (old_status && strcmp(old_status, a->active_value) == 0) return PointerGetDatum(newtup);
    char* contact = column_text(newtup, rel, r->contact);
    if (!contact || !optout_pg::ledger_is_stopped(contact, nullptr, nullptr, nullptr)) return PointerGetDatum(newtup);

    EventInfo info;
    info.source = "update";
    info.table_name = a->table_name;
    info.detail = psprintf("{\"attempted\": \"%s\", \"kept\": \"%s\"}", a->active_value, a->stopped_value);
    optout_pg::record_event("status_kept", contact, nullptr, info);
    int col = r->status;
    bool nul = false;
    return PointerGetDatum(heap_modify_tuple_by_cols(newtup, RelationGetDescr(rel), 1, &col, &r->stopped_value, &nul));
}

// AFTER INSERT FOR EACH ROW on a delivery-error table: a provider error that
// means "recipient opted out" (or an event such as RapidPro's stop_contact)
// stops the contact.
extern "C" Datum optout_delivery_trigger(PG_FUNCTION_ARGS) {
    Attachment* a = trigger_attachment(fcinfo, "optout._delivery_trigger()");
    TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    Relation rel = td->tg_relation;
    HeapTuple tup = td->tg_trigtuple;
    RelInfo* r = rel_info(a, rel);
    char* contact = column_text(tup, rel, r->contact);
    if (!contact) return PointerGetDatum(nullptr);
    char* channel = column_text(tup, rel, r->channel);

    EventInfo info;
    info.source = "provider";
    info.table_name = a->table_name;
    info.arrived_on = channel;
    info.provider = r->provider ? column_text(tup, rel, r->provider) : a->provider;
    bool stops = false;
    if (r->event) {
        char* ev = column_text(tup, rel, r->event);
        for (int i = 0; ev && i < a->nstop_events; i++)
            if (a->stop_events[i] && strcmp(a->stop_events[i], ev) == 0) stops = true;
        if (stops) {
            info.code = ev;
            info.detail = "{\"stops\": true}";
            optout_pg::record_event("provider_error", contact, channel, info);
            info.detail = nullptr;
        }
    }
    if (!stops && r->code) {
        char* code = column_text(tup, rel, r->code);
        if (!code) return PointerGetDatum(nullptr);
        info.code = code;
        if (!info.provider || !optout_pg::delivery_code_lookup(info.provider, code, &stops)) return PointerGetDatum(nullptr);
        info.detail = stops ? "{\"stops\": true}" : "{\"stops\": false}";
        optout_pg::record_event("provider_error", contact, channel, info);
        info.detail = nullptr;
    }
    // Applied at the end of the statement with the statement's other stops
    // (a bulk load of receipts stops its contacts together).
    if (stops) collect_change(ChangeRequest{ChangeType::Stop, contact, a->channel_scope ? channel : nullptr, true, info});
    return PointerGetDatum(nullptr);
}

namespace {

char* arg_string(FunctionCallInfo fcinfo, int n) {
    if (PG_NARGS() <= n || PG_ARGISNULL(n)) return nullptr;
    return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

// A contact key as the attached tables spell it: ' 42' is 42, an upper-case
// uuid is its canonical lower-case form. A key that is not of the platform's
// type is an error here, before anything changes.
char* canonical_contact(char* contact) {
    ensure_cache();
    if (!OidIsValid(contact_type) || contact_type == TEXTOID) return contact;
    Oid in, ioparam;
    getTypeInputInfo(contact_type, &in, &ioparam);
    Datum d = OidInputFunctionCall(in, contact, ioparam, -1);
    return optout_pg::datum_text(d, contact_type);
}

char* required_contact(FunctionCallInfo fcinfo) {
    char* contact = arg_string(fcinfo, 0);
    if (!contact || contact[0] == '\0')
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("contact must not be NULL or empty")));
    return canonical_contact(contact);
}

}  // namespace

// optout.stop(contact text, channel text DEFAULT NULL, reason text DEFAULT NULL) -> boolean
extern "C" Datum optout_stop(PG_FUNCTION_ARGS) {
    char* contact = required_contact(fcinfo);
    EventInfo info;
    info.source = "manual";
    info.reason = arg_string(fcinfo, 2);
    PG_RETURN_BOOL(optout_pg::apply_stop(contact, arg_string(fcinfo, 1), info));
}

// optout.start(contact text, channel text DEFAULT NULL, reason text) -> boolean
extern "C" Datum optout_start(PG_FUNCTION_ARGS) {
    char* contact = required_contact(fcinfo);
    char* reason = arg_string(fcinfo, 2);
    if (!reason || strspn(reason, " \t\r\n") == strlen(reason))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("optout.start() requires a reason"),
                        errhint("Say why the stop is lifted, e.g. optout.start('42', reason => 'consent form signed 2026-11-02'); it is recorded in optout.events.")));
    EventInfo info;
    info.source = "manual";
    info.reason = reason;
    PG_RETURN_BOOL(optout_pg::apply_start(contact, arg_string(fcinfo, 1), info));
}

// optout.is_stopped(contact text, channel text DEFAULT NULL) -> boolean
extern "C" Datum optout_is_stopped(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    PG_RETURN_BOOL(optout_pg::ledger_is_stopped(canonical_contact(arg_string(fcinfo, 0)), arg_string(fcinfo, 1),
                                                nullptr, nullptr));
}

// optout.record_delivery_error(contact text, channel text, provider text, code text) -> boolean
extern "C" Datum optout_record_delivery_error(PG_FUNCTION_ARGS) {
    char* contact = required_contact(fcinfo);
    EventInfo info;
    info.source = "provider";
    info.provider = arg_string(fcinfo, 2);
    info.code = arg_string(fcinfo, 3);
    if (!info.provider || !info.code)
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("provider and code must not be NULL")));
    char* channel = arg_string(fcinfo, 1);
    info.arrived_on = channel;
    bool stops = false;
    if (!optout_pg::delivery_code_lookup(info.provider, info.code, &stops)) PG_RETURN_BOOL(false);
    info.detail = stops ? "{\"stops\": true}" : "{\"stops\": false}";
    optout_pg::record_event("provider_error", contact, channel, info);
    info.detail = nullptr;
    if (!stops) PG_RETURN_BOOL(false);
    PG_RETURN_BOOL(optout_pg::apply_stop(contact, nullptr, info));
}

// optout._apply_stop(contact, channel, source, body, keyword, language, rule,
// table_name, detail jsonb) -> boolean: a stop with every field of its record
// given (used by optout.backfill). Not granted to PUBLIC.
extern "C" {
PG_FUNCTION_INFO_V1(optout_apply_stop);
}
extern "C" Datum optout_apply_stop(PG_FUNCTION_ARGS) {
    char* contact = required_contact(fcinfo);
    EventInfo info;
    info.source = arg_string(fcinfo, 2);
    if (!info.source) info.source = "manual";
    info.body = arg_string(fcinfo, 3);
    info.keyword = arg_string(fcinfo, 4);
    info.language = arg_string(fcinfo, 5);
    info.rule = arg_string(fcinfo, 6);
    info.table_name = arg_string(fcinfo, 7);
    info.detail = arg_string(fcinfo, 8);
    PG_RETURN_BOOL(optout_pg::apply_stop(contact, arg_string(fcinfo, 1), info));
}
