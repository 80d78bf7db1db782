// The cache of optout.attachments: loading it, invalidating it, and the
// per-relation column numbers (RelInfo) of each attachment.
//
// optout.attachments is read once per backend into a cache (rebuilt after a
// committed change to it, or to an attached table's definition). The SQL each
// attachment runs on the platform's tables is generated once, by
// optout._action_sql() (which quotes every name and names each statement),
// and prepared once per backend with SPI_prepare + SPI_keepplan: no SQL text
// is built or parsed per row.
#include "attachments.hpp"
#include "citus.hpp"
#include "ledger.hpp"
#include "spi.hpp"

extern "C" {
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "utils/array.h"
#include "utils/datum.h"
}

namespace optout_pg {
namespace {

struct ActionName {
    const char* name;
    SPIPlanPtr ActionPlans::*plan;
};
constexpr ActionName kActionNames[] = {
    {"contacts.stop", &ActionPlans::contacts_stop}, {"contacts.start", &ActionPlans::contacts_start},
    {"groups.leave", &ActionPlans::groups_leave},   {"groups.join_stopped", &ActionPlans::groups_join_stopped},
    {"groups.start", &ActionPlans::groups_start},   {"outbound.fail_queued", &ActionPlans::outbound_fail_queued},
    {"optouts.stop", &ActionPlans::optouts_stop},   {"optouts.start", &ActionPlans::optouts_start},
};

// Static: the cache lives as long as the backend, and must outlive an error
// (a longjmp out of a load leaves it marked invalid, never half-freed).
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
// See pin_attachments() (attachments.hpp).
int cache_pins = 0;
Oid contact_type = InvalidOid;  // the contact key type of the first attachment
Oid attachments_relid = InvalidOid;
bool callback_registered = false;
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
        for (const ActionName& action : kActionNames) {
            if (attachments[i].plans.*action.plan) SPI_freeplan(attachments[i].plans.*action.plan);
            if (attachments[i].few.*action.plan) SPI_freeplan(attachments[i].few.*action.plan);
        }
        if (attachments[i].group_plan) SPI_freeplan(attachments[i].group_plan);
        if (attachments[i].group_plan_once) SPI_freeplan(attachments[i].group_plan_once);
        if (attachments[i].review_unless_plan) SPI_freeplan(attachments[i].review_unless_plan);
        if (attachments[i].lock_plan) SPI_freeplan(attachments[i].lock_plan);
        if (attachments[i].lock_plan_nowait) SPI_freeplan(attachments[i].lock_plan_nowait);
        if (attachments[i].lock_one_plan) SPI_freeplan(attachments[i].lock_one_plan);
        if (attachments[i].lock_one_plan_nowait) SPI_freeplan(attachments[i].lock_one_plan_nowait);
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

// Planned at every execution (the same statement runs for one contact or
// for fifty thousand), or with CURSOR_OPT_GENERIC_PLAN once (plan_for()).
SPIPlanPtr prepare_one(const char* sql, int nargs, Oid* types, int id, int options = CURSOR_OPT_CUSTOM_PLAN) {
    SPIPlanPtr plan = optout_pg::try_prepare_kept(sql, nargs, types, options);
    if (!plan)
        ereport(ERROR, (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
                        errmsg("optout: attachment %d cannot be prepared: %s", id, SPI_result_code_string(SPI_result)),
                        errdetail("Statement: %s", sql),
                        errhint("Check the attached table with optout.attached; detach and attach it again.")));
    return plan;
}

// The statement for a single contact: its sets of contacts ($1, and $2
// beside it), read with unnest(), become one row of their first elements.
// A generic plan estimates unnest() of a parameter at ten rows, and with ten
// contacts may choose a plan that is right for ten and wrong for one (all the
// table's queued messages read by status, then joined to the contact, where
// the plan of a custom planning, for one, reads the contact's messages by
// its index: 7 ms against 0.3 ms a stop, bench/run.sh's concurrent load);
// with one row, the generic plan is the custom plan's. The contact among
// the set, `= ANY ($1::pg_catalog.text[]::TYPE[])`, becomes
// `= ($1::pg_catalog.text[])[1]::TYPE` (a generic plan estimates that array
// at ten elements too). NULL: the statement reads its contacts in no form
// known here (`x.key = ANY ($1::TYPE[])` alone, on one table: its generic
// plan is planned as is).
char* single_contact_sql(const char* sql) {
    static const char* const kForms[][2] = {
        {"ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[])) u(",
         "(VALUES (($1::pg_catalog.text[])[1], ($2::pg_catalog.text[])[1])) u("},
        {"pg_catalog.unnest($1::pg_catalog.text[]) u(", "(VALUES (($1::pg_catalog.text[])[1])) u("},
    };
    static const char kAny[] = "ANY ($1::pg_catalog.text[]::";
    StringInfoData out;
    initStringInfo(&out);
    bool found = false;
    for (const char* p = sql; *p;) {
        bool matched = false;
        if (strncmp(p, kAny, sizeof kAny - 1) == 0) {
            // TYPE is schema.name, each part maybe a quoted identifier.
            const char* type = p + sizeof kAny - 1;
            const char* end = type;
            bool quoted = false;
            for (; *end; end++) {
                if (*end == '"') {
                    if (quoted && end[1] == '"')
                        end++;  // "" within a quoted identifier
                    else
                        quoted = !quoted;
                } else if (!quoted && *end == '[') {
                    break;
                }
            }
            if (strncmp(end, "[])", 3) == 0) {
                appendStringInfoString(&out, "($1::pg_catalog.text[])[1]::");
                appendBinaryStringInfo(&out, type, static_cast<int>(end - type));
                p = end + 3;
                found = true;
                continue;
            }
        }
        for (const auto& form : kForms) {
            size_t len = strlen(form[0]);
            if (strncmp(p, form[0], len) != 0) continue;
            appendStringInfoString(&out, form[1]);
            p += len;
            matched = found = true;
            break;
        }
        if (!matched) appendStringInfoChar(&out, *p++);
    }
    if (found) return out.data;
    pfree(out.data);
    return nullptr;
}

// Prepares each named statement into its field of plans, and its form for a
// single contact into few, with a generic plan (each set once kept, so that
// free_cache() frees what a load cut short had prepared).
void prepare_plans(char** names, char** sqls, int n, ActionPlans* plans, ActionPlans* few, int id) {
    static Oid types[2] = {TEXTARRAYOID, TEXTARRAYOID};
    for (int i = 0; i < n; i++) {
        SPIPlanPtr ActionPlans::*field = nullptr;
        for (const ActionName& action : kActionNames)
            if (names[i] && strcmp(names[i], action.name) == 0) field = action.plan;
        if (!field || plans->*field)
            elog(ERROR, "optout: attachment %d has an unknown or repeated statement \"%s\"", id,
                 names[i] ? names[i] : "");
        plans->*field = prepare_one(sqls[i], 2, types, id);
        char* single = single_contact_sql(sqls[i]);
        few->*field = prepare_one(single ? single : sqls[i], 2, types, id, CURSOR_OPT_GENERIC_PLAN);
        if (single) pfree(single);
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
    attachments_relid = optout_table("attachments");

    // As the owner, with search_path pinned: names in the statements resolve
    // the same way as when they were checked at attach time. (Columns added
    // since 0.3.0 are read through to_jsonb: a 0.3.0 database runs this
    // library until ALTER EXTENSION optout UPDATE.)
    OwnerScope scope = enter_owner();
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
        "a.stopped_group, a.stopped_group_query, c.relowner, "
        // Columns of 0.4.0, read so that a 0.3.0 catalog (before ALTER
        // EXTENSION optout UPDATE) loads too: absent, they are NULL.
        "(pg_catalog.to_jsonb(a) OPERATOR(pg_catalog.->>) 'review')::pg_catalog.bool, "
        "pg_catalog.to_jsonb(a) OPERATOR(pg_catalog.->>) 'review_unless', "
        "pg_catalog.to_jsonb(a) OPERATOR(pg_catalog.->>) 'contact_format', "
        "pg_catalog.to_jsonb(a) OPERATOR(pg_catalog.->>) 'organization_column' "
        "FROM optout.attachments a JOIN pg_catalog.pg_class c ON c.oid = a.tbl "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "CROSS JOIN LATERAL (SELECT pg_catalog.array_agg(s.name ORDER BY s.i) AS names, "
        "pg_catalog.array_agg(s.sql ORDER BY s.i) AS sqls FROM optout._action_sql(a.id) WITH ORDINALITY s(name, sql, "
        "i)) s "
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
                  : strcmp(kind, "optouts") == 0  ? kOptouts
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
        prepare_plans(names, sqls, nnames, &a->plans, &a->few, a->id);
        if (!OidIsValid(contact_type)) contact_type = DatumGetObjectId(SPI_getbinval(tup, desc, 23, &isnull));
        a->stopped_group = cache_strdup(tup, desc, 24);
        a->stopped_group_query = cache_strdup(tup, desc, 25);
        a->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 26, &isnull));
        a->organization_col = cache_strdup(tup, desc, 30);
        a->keyed = SPI_getvalue(tup, desc, 29) != nullptr || a->organization_col != nullptr;
        if (a->stopped_group_query) {
            static Oid one_text[1] = {TEXTOID};
            a->group_plan = prepare_one(a->stopped_group_query, 1, one_text, a->id);
        }
        bool review_null;
        Datum review = SPI_getbinval(tup, desc, 27, &review_null);
        a->review = review_null || DatumGetBool(review);  // NULL: the default, reviews on
        char* review_unless = SPI_getvalue(tup, desc, 28);
        if (review_unless) {
            static Oid one_text[1] = {TEXTOID};
            a->review_unless_plan = prepare_one(review_unless, 1, one_text, a->id);
        }
        fault_point("cache_load");
    }
    leave_owner(scope);
    loading = false;
    loaded_at = invalidations == started ? started : UINT64_MAX;
}

void ensure_cache() {
    if ((loaded_at != invalidations || !attachments_relid) && cache_pins == 0) load_cache();
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
    if (optout_pg::citus_shard_parent(rel) == a->relid) return;  // a Citus shard of the table
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("optout attachment %d is not attached to table \"%s\"", a->id, RelationGetRelationName(rel)),
                    errdetail("Attachment %d is on %s; only its triggers there (and on its partitions) act for it.",
                              a->id, a->table_name),
                    errhint("Attach the table with optout.attach_*() instead of creating optout's triggers by hand.")));
}

}  // namespace

Attachment* find_attachment(int id) {
    ensure_cache();
    for (int i = 0; i < nattachments; i++)
        if (attachments[i].id == id) return &attachments[i];
    return nullptr;
}

Attachment* all_attachments(int* n) {
    ensure_cache();
    *n = nattachments;
    return attachments;
}

void pin_attachments() { cache_pins++; }
void unpin_attachments() { cache_pins--; }

static_assert(sizeof(Attachment::few_watch) / sizeof(PlanWatch) == sizeof(kActionNames) / sizeof(ActionName),
              "a PlanWatch for each statement");

SPIPlanPtr plan_for(const Attachment* a, SPIPlanPtr plan, int n, PlanWatch** watch) {
    *watch = nullptr;
    if (n != 1 || !plan) return plan;
    for (size_t i = 0; i < sizeof(kActionNames) / sizeof(ActionName); i++) {
        SPIPlanPtr twin = a->few.*kActionNames[i].plan;
        if (a->plans.*kActionNames[i].plan != plan || !twin) continue;
        *watch = &a->few_watch[i];
        return twin;
    }
    return plan;
}

Oid attached_contact_type() {
    ensure_cache();
    return contact_type;
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
    r->organization = column(rel, a, a->organization_col, true);
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

}  // namespace optout_pg
