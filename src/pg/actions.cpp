// Attachments, the actions of a stop and a start, the trigger functions and
// the SQL functions optout.stop / start / is_stopped / record_delivery_error.
//
// optout.attachments is read once per backend into a cache (rebuilt after a
// committed change to it, or to an attached table's definition). The SQL each
// attachment runs on the platform's tables is generated once, by
// optout._action_sql() (which quotes every name), and prepared once per
// backend with SPI_prepare + SPI_keepplan: no SQL text is built or parsed per
// row. Statements on the platform's tables run as the role that fired the
// trigger or called the function, so the platform's own triggers fire and its
// privileges apply; the ledger and the event record are written as optout's
// owner (ledger.cpp).
#include "enforce.hpp"
#include "guard.hpp"

#include <string>

extern "C" {
#include "access/xact.h"
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
constexpr int kMaxPlans = 4;

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
    int nstop_plans, nstart_plans;
    SPIPlanPtr stop_plans[kMaxPlans];
    SPIPlanPtr start_plans[kMaxPlans];
    RelInfo* rels;
};

MemoryContext cache_cxt = nullptr;
Attachment* attachments = nullptr;
int nattachments = 0;
bool cache_valid = false;
Oid contact_type = InvalidOid;  // the contact key type of the first attachment
Oid attachments_relid = InvalidOid;
bool callback_registered = false;
int lifting = 0;

// Results that cross the guard (static: never unwound by a longjmp).
optout::Match inbound_match;
bool inbound_stopall = false;

void relcache_callback(Datum, Oid relid) {
    if (!cache_valid) return;
    if (relid == InvalidOid || relid == attachments_relid) {
        cache_valid = false;
        return;
    }
    for (int i = 0; i < nattachments; i++) {
        if (attachments[i].relid == relid) {
            cache_valid = false;
            return;
        }
        for (RelInfo* r = attachments[i].rels; r; r = r->next)
            if (r->relid == relid) {
                cache_valid = false;
                return;
            }
    }
}

void free_cache() {
    for (int i = 0; i < nattachments; i++) {
        for (int p = 0; p < attachments[i].nstop_plans; p++) SPI_freeplan(attachments[i].stop_plans[p]);
        for (int p = 0; p < attachments[i].nstart_plans; p++) SPI_freeplan(attachments[i].start_plans[p]);
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

int prepare_plans(char** sqls, int n, SPIPlanPtr* plans, int id) {
    static Oid types[2] = {TEXTOID, TEXTOID};
    if (n > kMaxPlans) elog(ERROR, "optout: attachment %d has too many statements", id);
    for (int i = 0; i < n; i++) {
        SPIPlanPtr plan = SPI_prepare(sqls[i], 2, types);
        if (!plan)
            ereport(ERROR, (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
                            errmsg("optout: attachment %d cannot be prepared: %s", id, SPI_result_code_string(SPI_result)),
                            errdetail("Statement: %s", sqls[i]),
                            errhint("Check the attached table with optout.attached; detach and attach it again.")));
        SPI_keepplan(plan);
        plans[i] = plan;
    }
    return n;
}

void load_cache() {
    if (!callback_registered) {
        CacheRegisterRelcacheCallback(relcache_callback, (Datum)0);
        callback_registered = true;
    }
    free_cache();
    if (!cache_cxt) cache_cxt = AllocSetContextCreate(CacheMemoryContext, "optout attachments", ALLOCSET_DEFAULT_SIZES);
    attachments_relid = get_relname_relid("attachments", optout_pg::optout_namespace());
    if (!OidIsValid(attachments_relid))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("table \"optout.attachments\" does not exist"),
                        errhint("Update the extension: ALTER EXTENSION optout UPDATE.")));
    cache_valid = true;  // an invalidation during the load clears it again

    // Names in the statements resolve the same way as when they were checked
    // at attach time, whatever the session's search_path.
    int guc_level = optout_pg::pin_search_path();
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
        "optout._action_sql(a.id, 'stop'), optout._action_sql(a.id, 'start'), "
        "(SELECT t.atttypid FROM pg_catalog.pg_attribute t WHERE t.attrelid = a.tbl AND t.attname = a.contact_column) "
        "FROM optout.attachments a JOIN pg_catalog.pg_class c ON c.oid = a.tbl "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ORDER BY a.id",
        true, 0);
    if (rc != SPI_OK_SELECT) elog(ERROR, "optout: reading optout.attachments failed");
    uint64 n = SPI_processed;
    contact_type = InvalidOid;
    Attachment* arr = static_cast<Attachment*>(MemoryContextAllocZero(cache_cxt, sizeof(Attachment) * (n ? n : 1)));
    for (uint64 i = 0; i < n; i++) {
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
        char** stop_sql;
        char** start_sql;
        int nstop = text_array(tup, desc, 21, &stop_sql);
        int nstart = text_array(tup, desc, 22, &start_sql);
        a->nstop_plans = prepare_plans(stop_sql, nstop, a->stop_plans, a->id);
        a->nstart_plans = prepare_plans(start_sql, nstart, a->start_plans, a->id);
        if (!OidIsValid(contact_type)) contact_type = DatumGetObjectId(SPI_getbinval(tup, desc, 23, &isnull));
    }
    optout_pg::leave_owner(scope);
    optout_pg::unpin_search_path(guc_level);
    attachments = arr;
    nattachments = static_cast<int>(n);
}

void ensure_cache() {
    if (!cache_valid || !attachments_relid) load_cache();
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

RelInfo* rel_info(Attachment* a, Relation rel) {
    Oid relid = RelationGetRelid(rel);
    for (RelInfo* r = a->rels; r; r = r->next)
        if (r->relid == relid) return r;
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

// Runs an attachment's prepared statements with (contact, channel) as the
// current user, on the latest committed state. Returns the rows they touched.
uint64 run_plans(SPIPlanPtr* plans, int n, const char* contact, const char* channel) {
    if (n == 0) return 0;
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
    Datum values[2] = {CStringGetTextDatum(contact), channel ? CStringGetTextDatum(channel) : (Datum)0};
    char nulls[3] = {' ', channel ? ' ' : 'n', '\0'};
    uint64 touched = 0;
    for (int i = 0; i < n; i++) {
        CommandCounterIncrement();
        int rc = SPI_execute_snapshot(plans[i], values, nulls, GetLatestSnapshot(), InvalidSnapshot, false, true, 0);
        if (rc < 0) elog(ERROR, "optout: enforcement statement failed: %s", SPI_result_code_string(rc));
        touched += SPI_processed;
    }
    SPI_finish();
    return touched;
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

char* server_string(const std::string& utf8) {
    return text_to_cstring(optout_pg::utf8_to_text(utf8.data(), utf8.size()));
}

}  // namespace

namespace optout_pg {

bool lifting_stop() { return lifting > 0; }

bool apply_stop(const char* contact, const char* channel, const EventInfo& info) {
    lock_contact_for_change(contact);
    // A contact's own STOP is recorded every time it is sent; a provider error
    // for a contact already stopped is recorded as that error only.
    bool added = false;
    int64 event_id = 0;
    bool provider = info.source && strcmp(info.source, "provider") == 0;
    if (!provider || !ledger_is_stopped(contact, channel, nullptr, nullptr)) {
        event_id = record_event("stop", contact, info.arrived_on ? info.arrived_on : channel, info);
        added = ledger_add(contact, channel, info, event_id);
        send_cache_reset();
    }
    ensure_cache();
    for (int i = 0; i < nattachments; i++) {
        Attachment* a = &attachments[i];
        if ((a->kind == kContacts || a->kind == kGroups) && channel == nullptr) {
            run_plans(a->stop_plans, a->nstop_plans, contact, nullptr);
        } else if (a->kind == kOutbound) {
            uint64 failed = run_plans(a->stop_plans, a->nstop_plans, contact, a->channel_col ? channel : nullptr);
            if (failed > 0) {
                EventInfo b = info;
                b.source = "send";
                b.body = nullptr;
                b.table_name = a->table_name;
                b.reason = nullptr;
                b.detail = psprintf("{\"queued_failed\": " UINT64_FORMAT ", \"rule\": \"%s\"}", failed,
                                    a->on_blocked == kMark || a->nmark > 0 ? "mark" : "delete");
                record_event("blocked", contact, channel, b);
            }
        }
    }
    if (event_id) notify_change("stop", contact, channel, info, event_id);
    return added;
}

bool apply_start(const char* contact, const char* channel, const EventInfo& info) {
    lock_contact_for_change(contact);
    bool contact_wide = false;
    bool lifted = ledger_remove(contact, channel, &contact_wide);
    send_cache_reset();
    EventInfo e = info;
    if (!e.detail) e.detail = lifted ? (contact_wide ? "{\"lifted\": \"contact\"}" : "{\"lifted\": \"channel\"}")
                                     : "{\"lifted\": null}";
    int64 event_id = record_event("start", contact, e.arrived_on ? e.arrived_on : channel, e);
    if (lifted && contact_wide) {
        ensure_cache();
        lifting++;
        PG_TRY();
        {
            for (int i = 0; i < nattachments; i++) {
                Attachment* a = &attachments[i];
                if (a->kind == kContacts || a->kind == kGroups) run_plans(a->start_plans, a->nstart_plans, contact, nullptr);
            }
        }
        PG_FINALLY();
        { lifting--; }
        PG_END_TRY();
    }
    if (lifted) notify_change("start", contact, channel, e, event_id);
    return lifted;
}

}  // namespace optout_pg

using optout_pg::EventInfo;

// AFTER INSERT FOR EACH ROW on an inbound table: classify, then stop, start
// or record help, in the same transaction.
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
    optout_pg::Utf8 body = optout_pg::text_to_utf8(body_t);
    optout::Mode mode = a->mode < 0 ? optout_pg::default_mode() : static_cast<optout::Mode>(a->mode);
    const optout::KeywordSet& kw = optout_pg::keywords();
    OPTOUT_GUARD({
        inbound_match = optout::classify(std::string_view(body.data, body.size), mode, kw);
        inbound_stopall = inbound_match.intent == optout::Intent::OptOut &&
                          optout::keyword_key(inbound_match.keyword) == "stopall";
    });
    if (inbound_match.intent == optout::Intent::None) return PointerGetDatum(nullptr);

    EventInfo info;
    info.source = "keyword";
    info.body = text_to_cstring(body_t);
    info.keyword = server_string(inbound_match.keyword);
    info.language = server_string(inbound_match.language);
    info.rule = optout::to_string(inbound_match.rule);
    info.table_name = a->table_name;
    info.arrived_on = channel;
    const char* scope_channel = (a->channel_scope && !inbound_stopall) ? channel : nullptr;
    switch (inbound_match.intent) {
        case optout::Intent::OptOut:
            optout_pg::apply_stop(contact, scope_channel, info);
            break;
        case optout::Intent::OptIn:
            optout_pg::apply_start(contact, a->channel_scope ? channel : nullptr, info);
            break;
        case optout::Intent::Help:
            optout_pg::record_event("help", contact, channel, info);
            break;
        case optout::Intent::None:
            break;
    }
    return PointerGetDatum(nullptr);
}

// BEFORE INSERT OR UPDATE FOR EACH ROW on an outbound table: a row for a
// stopped contact is refused, dropped or marked.
extern "C" Datum optout_outbound_trigger(PG_FUNCTION_ARGS) {
    Attachment* a = trigger_attachment(fcinfo, "optout._outbound_trigger()");
    TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    Relation rel = td->tg_relation;
    RelInfo* r = rel_info(a, rel);
    bool is_update = TRIGGER_FIRED_BY_UPDATE(td->tg_event);
    HeapTuple tup = is_update ? td->tg_newtuple : td->tg_trigtuple;

    char* contact = column_text(tup, rel, r->contact);
    if (!contact) return PointerGetDatum(tup);
    char* channel = column_text(tup, rel, r->channel);
    if (is_update) {
        // Only an UPDATE that re-targets the row (another contact or channel) is checked.
        char* old_contact = column_text(td->tg_trigtuple, rel, r->contact);
        char* old_channel = column_text(td->tg_trigtuple, rel, r->channel);
        bool same_contact = old_contact && strcmp(old_contact, contact) == 0;
        bool same_channel = (!old_channel && !channel) || (old_channel && channel && strcmp(old_channel, channel) == 0);
        if (same_contact && same_channel) return PointerGetDatum(tup);
    }

    if (!optout_pg::send_blocked(contact, channel)) return PointerGetDatum(tup);

    if (a->on_blocked == kError) {
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

    optout_pg::note_blocked(contact, channel, a->table_name, a->on_blocked == kSkip ? "skip" : "mark");
    if (a->on_blocked == kSkip) return PointerGetDatum(nullptr);
    if (r->nmark == 0) return PointerGetDatum(tup);
    HeapTuple marked = heap_modify_tuple_by_cols(tup, RelationGetDescr(rel), r->nmark, r->mark_cols, r->mark_values,
                                                 r->mark_nulls);
    return PointerGetDatum(marked);
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
    if (stops) optout_pg::apply_stop(contact, a->channel_scope ? channel : nullptr, info);
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
