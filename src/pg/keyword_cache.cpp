// The per-backend keyword cache.
//
// optout.keywords is read once, then kept until a change to the table commits:
// a statement trigger on the table (optout._config_changed) sends a relcache
// invalidation for it, which every backend receives at its next transaction
// (or lock) and which marks this cache stale. No call reads the table while
// the cache is valid.
#include <memory>

#include "citus.hpp"
#include "glue.hpp"
#include "guard.hpp"

extern "C" {
#include "common/hashfn.h"
}

extern "C" {
PG_FUNCTION_INFO_V1(optout_config_changed);
}

namespace {

// Static, so a longjmp never skips its destructor.
std::unique_ptr<optout::KeywordSet> cached;
// Bumped by every invalidation that may concern the table. A load is valid
// only if no invalidation arrived while it ran.
uint64 invalidations = 0;
uint64 loaded_at = UINT64_MAX;
Oid keywords_relid = InvalidOid;
// The identity of the cached set: a hash of its rows (keyword, intent,
// language, in keyword order), as 16 hex digits. Recorded with each
// classified stop, start and help request (the evidence pack).
char fingerprint[17] = "";
bool callback_registered = false;

void relcache_callback(Datum, Oid relid) {
    if (relid == InvalidOid || relid == keywords_relid) invalidations++;
}

struct Row {
    char* keyword;
    char* intent;
    char* language;
};

void load() {
    if (!callback_registered) {
        CacheRegisterRelcacheCallback(relcache_callback, (Datum)0);
        callback_registered = true;
    }
    uint64 started = invalidations;

    Oid nsp = optout_pg::optout_namespace();
    Oid relid = get_relname_relid("keywords", nsp);
    if (!OidIsValid(relid))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("table \"optout.keywords\" does not exist"),
                        errhint("Reinstall the extension: DROP EXTENSION optout; CREATE EXTENSION optout.")));
    keywords_relid = relid;

    // Read the rows into palloc'd memory of the caller's context (plain data only).
    MemoryContext caller = CurrentMemoryContext;
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
    int level = optout_pg::pin_search_path();
    int rc = SPI_execute(
        "SELECT k.keyword, k.intent::pg_catalog.text, k.language FROM optout.keywords k "
        "WHERE k.enabled ORDER BY k.keyword",
        true, 0);
    optout_pg::unpin_search_path(level);
    if (rc != SPI_OK_SELECT) elog(ERROR, "optout: reading optout.keywords failed: %s", SPI_result_code_string(rc));
    optout_pg::fault_point("keywords_load");
    uint64 n = SPI_processed;
    MemoryContext old = MemoryContextSwitchTo(caller);
    Row* rows = static_cast<Row*>(palloc0(sizeof(Row) * (n ? n : 1)));
    MemoryContextSwitchTo(old);
    for (uint64 i = 0; i < n; i++) {
        HeapTuple tup = SPI_tuptable->vals[i];
        TupleDesc desc = SPI_tuptable->tupdesc;
        char* kw = SPI_getvalue(tup, desc, 1);
        char* in = SPI_getvalue(tup, desc, 2);
        char* lang = SPI_getvalue(tup, desc, 3);
        old = MemoryContextSwitchTo(caller);
        rows[i].keyword = kw ? pstrdup(kw) : nullptr;
        rows[i].intent = in ? pstrdup(in) : nullptr;
        rows[i].language = lang ? pstrdup(lang) : pstrdup("");
        MemoryContextSwitchTo(old);
    }
    SPI_finish();

    // Convert keywords to UTF-8 before entering C++ (conversion can ereport).
    for (uint64 i = 0; i < n; i++) {
        if (!rows[i].keyword) continue;
        text* t = cstring_to_text(rows[i].keyword);
        optout_pg::Utf8 u = optout_pg::text_to_utf8(t);
        rows[i].keyword = pnstrdup(u.data, u.size);
    }

    // A row the classifier cannot use (the table's trigger refuses them, but
    // it can be bypassed) is left out with a warning: one bad keyword must
    // not stop every other from being matched. (Static: crosses the guard.)
    static uint64 skipped;
    static char first_skipped[256];
    skipped = 0;
    first_skipped[0] = '\0';
    OPTOUT_GUARD({
        auto fresh = std::make_unique<optout::KeywordSet>();
        for (uint64 i = 0; i < n; i++) {
            optout::Intent intent;
            if (!rows[i].keyword || !rows[i].intent || !optout::parse_intent(rows[i].intent, intent)) continue;
            try {
                fresh->add(rows[i].keyword, intent, rows[i].language);
            } catch (const optout::Error& e) {
                if (e.kind() == optout::Error::Kind::Icu) throw;
                if (skipped++ == 0) snprintf(first_skipped, sizeof first_skipped, "%s", e.what());
            }
        }
        cached = std::move(fresh);
    });
    if (skipped > 0)
        ereport(
            WARNING,
            (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
             errmsg("optout: " UINT64_FORMAT " row(s) of optout.keywords cannot be used and are ignored", skipped),
             errdetail("%s", first_skipped), errhint("Fix or delete them: the table's trigger would refuse them.")));
    uint64 h = 0;
    for (uint64 i = 0; i < n; i++) {
        const char* parts[3] = {rows[i].keyword, rows[i].intent, rows[i].language};
        for (const char* p : parts)
            h = hash_bytes_extended(reinterpret_cast<const unsigned char*>(p ? p : ""),
                                    p ? static_cast<int>(strlen(p)) + 1 : 0, h + 1);
    }
    snprintf(fingerprint, sizeof fingerprint, "%016llx", static_cast<unsigned long long>(h));
    for (uint64 i = 0; i < n; i++) {
        if (rows[i].keyword) pfree(rows[i].keyword);
        if (rows[i].intent) pfree(rows[i].intent);
        if (rows[i].language) pfree(rows[i].language);
    }
    pfree(rows);
    loaded_at = (invalidations == started) ? started : UINT64_MAX;
}

}  // namespace

namespace optout_pg {

const optout::KeywordSet& keywords() {
    if (!cached || loaded_at != invalidations) load();
    return *cached;
}

const char* keywords_fingerprint() {
    (void)keywords();
    return fingerprint;
}

}  // namespace optout_pg

// Statement trigger on optout's configuration tables (keywords, attachments):
// after the change commits, every backend drops its cache of the table.
extern "C" Datum optout_config_changed(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("optout._config_changed() must be called as a trigger")));
    TriggerData* trigdata = reinterpret_cast<TriggerData*>(fcinfo->context);
    CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
    // On Citus, the trigger fires on each node's shard: the caches watch the table.
    Oid table = optout_pg::citus_shard_parent(trigdata->tg_relation);
    if (OidIsValid(table)) CacheInvalidateRelcacheByRelid(table);
    return PointerGetDatum(nullptr);
}
