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
// switched is undone by transaction abort, which restores the user.
// Statements are prepared once per backend and reused.
#include "enforce.hpp"

extern "C" {
#include "commands/async.h"
#include "utils/json.h"
#include "utils/snapmgr.h"
}

namespace {

SPIPlanPtr event_plan = nullptr;
SPIPlanPtr stop_plan = nullptr;
SPIPlanPtr start_plan = nullptr;
SPIPlanPtr check_plan = nullptr;
SPIPlanPtr code_plan = nullptr;

// Planned at every execution (CURSOR_OPT_CUSTOM_PLAN): a generic plan made
// while the ledger was empty would keep scanning it whole once it has grown.
SPIPlanPtr prepare(const char* sql, int nargs, const Oid* types) {
    int level = optout_pg::pin_search_path();
    SPIPlanPtr plan = SPI_prepare_cursor(sql, nargs, const_cast<Oid*>(types), CURSOR_OPT_CUSTOM_PLAN);
    optout_pg::unpin_search_path(level);
    if (!plan) elog(ERROR, "optout: SPI_prepare failed (%s): %s", SPI_result_code_string(SPI_result), sql);
    if (SPI_keepplan(plan) != 0) elog(ERROR, "optout: SPI_keepplan failed");
    return plan;
}

Datum text_or_null(const char* s, char* null_flag) {
    if (!s) {
        *null_flag = 'n';
        return (Datum)0;
    }
    *null_flag = ' ';
    return CStringGetTextDatum(s);
}

// SPI arguments from strings (NULL pointers are SQL NULLs); nulls gets n + 1 chars.
void bind_texts(const char* const* args, int n, Datum* values, char* nulls) {
    for (int i = 0; i < n; i++) values[i] = text_or_null(args[i], &nulls[i]);
    nulls[n] = '\0';
}

using optout_pg::OwnerScope;
using optout_pg::enter_owner;
using optout_pg::leave_owner;

}  // namespace

namespace optout_pg {

OwnerScope enter_owner() {
    OwnerScope s;
    GetUserIdAndSecContext(&s.saved_user, &s.saved_context);
    Oid owner = optout_pg::optout_owner();
    SetUserIdAndSecContext(owner, s.saved_context | SECURITY_LOCAL_USERID_CHANGE);
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
    return s;
}
void leave_owner(const OwnerScope& s) {
    SPI_finish();
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
    Oid relid = get_relname_relid("stops", optout_namespace());
    if (!OidIsValid(relid))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("table \"optout.stops\" does not exist"),
                        errhint("Update the extension: ALTER EXTENSION optout UPDATE.")));
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup)) elog(ERROR, "optout: cache lookup failed for relation %u", relid);
    owner_oid = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup))->relowner;
    ReleaseSysCache(tup);
    return owner_oid;
}

// Output functions of the key types seen, looked up once per backend (the
// send path turns a key into text for every row).
char* datum_text(Datum value, Oid type) {
    struct OutputFn {
        Oid type;
        FmgrInfo fn;
    };
    static OutputFn cache[16];
    static int ncached = 0;
    for (int i = 0; i < ncached; i++)
        if (cache[i].type == type) return OutputFunctionCall(&cache[i].fn, value);
    Oid out;
    bool varlena;
    getTypeOutputInfo(type, &out, &varlena);
    if (ncached == 16) return OidOutputFunctionCall(out, value);
    fmgr_info_cxt(out, &cache[ncached].fn, TopMemoryContext);
    cache[ncached].type = type;
    ncached++;
    return OutputFunctionCall(&cache[ncached - 1].fn, value);
}

int64 record_event(const char* kind, const char* contact, const char* channel, const EventInfo& info) {
    // Who did it: the role that fired the trigger or called the function.
    const char* actor = GetUserNameFromId(GetUserId(), false);
    OwnerScope scope = enter_owner();
    if (!event_plan) {
        static const Oid types[15] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
                                      TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
        event_plan = prepare(
            "INSERT INTO optout.events (kind, contact, channel, source, body, keyword, language, rule, provider, "
            "code, table_name, reason, actor, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
            "$13::pg_catalog.name, $14::pg_catalog.jsonb) RETURNING id",
            14, types);
    }
    Datum values[14];
    char nulls[15];
    const char* args[14] = {kind,          contact,       channel,     info.source ? info.source : "manual",
                            info.body,     info.keyword,  info.language, info.rule,
                            info.provider, info.code,     info.table_name, info.reason,
                            actor,         info.detail};
    bind_texts(args, 14, values, nulls);
    int rc = SPI_execute_plan(event_plan, values, nulls, false, 1);
    if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1) elog(ERROR, "optout: recording an event failed");
    bool isnull;
    int64 id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    leave_owner(scope);
    return id;
}

bool ledger_add(const char* contact, const char* channel, const EventInfo& info, int64 event_id) {
    OwnerScope scope = enter_owner();
    if (!stop_plan) {
        static const Oid types[6] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID};
        stop_plan = prepare(
            "INSERT INTO optout.stops (contact, channel, source, keyword, rule, event_id) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT ON CONSTRAINT stops_contact_channel_key DO NOTHING",
            6, types);
    }
    Datum values[6];
    char nulls[7];
    const char* args[5] = {contact, channel, info.source ? info.source : "manual", info.keyword, info.rule};
    bind_texts(args, 5, values, nulls);
    values[5] = Int64GetDatum(event_id);
    nulls[5] = ' ';
    nulls[6] = '\0';
    int rc = SPI_execute_plan(stop_plan, values, nulls, false, 0);
    if (rc != SPI_OK_INSERT) elog(ERROR, "optout: writing the ledger failed: %s", SPI_result_code_string(rc));
    bool added = SPI_processed > 0;
    leave_owner(scope);
    return added;
}

bool ledger_remove(const char* contact, const char* channel, bool* contact_wide) {
    OwnerScope scope = enter_owner();
    if (!start_plan) {
        static const Oid types[2] = {TEXTOID, TEXTOID};
        start_plan = prepare(
            "DELETE FROM optout.stops WHERE contact OPERATOR(pg_catalog.=) $1 "
            "AND ($2 IS NULL OR channel IS NULL OR channel OPERATOR(pg_catalog.=) $2) RETURNING channel IS NULL",
            2, types);
    }
    Datum values[2];
    char nulls[3];
    const char* args[2] = {contact, channel};
    bind_texts(args, 2, values, nulls);
    int rc = SPI_execute_plan(start_plan, values, nulls, false, 0);
    if (rc != SPI_OK_DELETE_RETURNING) elog(ERROR, "optout: writing the ledger failed: %s", SPI_result_code_string(rc));
    bool lifted = SPI_processed > 0;
    *contact_wide = false;
    for (uint64 i = 0; i < SPI_processed; i++) {
        bool isnull;
        if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull))) *contact_wide = true;
    }
    leave_owner(scope);
    return lifted;
}

bool ledger_is_stopped(const char* contact, const char* channel, char** since, char** keyword) {
    MemoryContext caller = CurrentMemoryContext;
    OwnerScope scope = enter_owner();
    if (!check_plan) {
        static const Oid types[2] = {TEXTOID, TEXTOID};
        check_plan = prepare(
            "SELECT s.stopped_at::pg_catalog.text, s.keyword FROM optout.stops s "
            "WHERE s.contact OPERATOR(pg_catalog.=) $1 AND (s.channel IS NULL OR s.channel OPERATOR(pg_catalog.=) $2) "
            "ORDER BY s.stopped_at LIMIT 1",
            2, types);
    }
    Datum values[2];
    char nulls[3];
    const char* args[2] = {contact, channel};
    bind_texts(args, 2, values, nulls);
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

// NOTIFY optout, '{"event": "stop", ...}' once the transaction commits.
void notify_change(const char* kind, const char* contact, const char* channel, const EventInfo& info,
                   int64 event_id) {
    StringInfoData buf;
    initStringInfo(&buf);
    appendStringInfo(&buf, "{\"event\": ");
    escape_json(&buf, kind);
    appendStringInfo(&buf, ", \"event_id\": " INT64_FORMAT ", \"contact\": ", event_id);
    escape_json(&buf, contact);
    appendStringInfoString(&buf, ", \"channel\": ");
    if (channel) escape_json(&buf, channel); else appendStringInfoString(&buf, "null");
    const char* fields[][2] = {{"message_channel", info.arrived_on}, {"source", info.source},
                               {"keyword", info.keyword}, {"rule", info.rule},
                               {"table", info.table_name}, {"provider", info.provider}, {"code", info.code}};
    for (auto& f : fields) {
        appendStringInfo(&buf, ", \"%s\": ", f[0]);
        if (f[1]) escape_json(&buf, f[1]); else appendStringInfoString(&buf, "null");
    }
    appendStringInfo(&buf, ", \"at\": ");
    escape_json(&buf, timestamptz_to_str(GetCurrentTransactionStartTimestamp()));
    appendStringInfoChar(&buf, '}');
    Async_Notify("optout", buf.data);
    pfree(buf.data);
}

}  // namespace optout_pg
