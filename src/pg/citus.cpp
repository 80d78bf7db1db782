// Citus awareness of the glue: see citus.hpp.
#include "citus.hpp"

extern "C" {
#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "utils/fmgroids.h"
}

namespace {

// Citus's catalogs (pg_catalog.pg_dist_partition, pg_dist_shard): column 1
// is logicalrelid in both, column 2 of pg_dist_shard is shardid.
Oid dist_catalog(const char* name) { return get_relname_relid(name, PG_CATALOG_NAMESPACE); }

// Does the catalog have a row whose column `att` equals `value`
// (logicalrelid: oid, shardid: int8)? Sets *logicalrelid from column 1.
bool catalog_has(Oid catalog, AttrNumber att, Datum value, RegProcedure eq, Oid* logicalrelid) {
    Relation rel = table_open(catalog, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, att, BTEqualStrategyNumber, eq, value);
    SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, nullptr, 1, &key);
    HeapTuple tup = systable_getnext(scan);
    bool found = HeapTupleIsValid(tup);
    if (found && logicalrelid) {
        bool isnull;
        *logicalrelid = DatumGetObjectId(heap_getattr(tup, 1, RelationGetDescr(rel), &isnull));
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return found;
}

}  // namespace

namespace optout_pg {

bool citus_loaded() { return OidIsValid(dist_catalog("pg_dist_partition")); }

bool citus_table(Oid relid) {
    // Not cached: Citus and optout use up most of PostgreSQL's ten relcache
    // callbacks. Without Citus this is one name lookup.
    Oid catalog = dist_catalog("pg_dist_partition");
    return OidIsValid(catalog) && catalog_has(catalog, 1, ObjectIdGetDatum(relid), F_OIDEQ, nullptr);
}

Oid citus_shard_parent(Relation rel) {
    const char* name = RelationGetRelationName(rel);
    const char* us = strrchr(name, '_');
    if (!us || us == name || us[1] == '\0' || strspn(us + 1, "0123456789") != strlen(us + 1)) return InvalidOid;
    Oid catalog = dist_catalog("pg_dist_shard");
    if (!OidIsValid(catalog)) return InvalidOid;
    int64 shardid = strtoll(us + 1, nullptr, 10);
    Oid parent = InvalidOid;
    if (!catalog_has(catalog, 2, Int64GetDatum(shardid), F_INT8EQ, &parent) || !OidIsValid(parent)) return InvalidOid;
    // The shard of that table: same schema, named <table>_<shardid>, and the
    // same owner (Citus gives a shard its table's owner; a table another
    // role names so on a node that does not hold that shard is not one).
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(parent));
    if (!HeapTupleIsValid(tup)) return InvalidOid;
    Form_pg_class form = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup));
    bool same = form->relnamespace == RelationGetNamespace(rel) && form->relowner == rel->rd_rel->relowner &&
                strlen(NameStr(form->relname)) == static_cast<size_t>(us - name) &&
                strncmp(NameStr(form->relname), name, us - name) == 0;
    ReleaseSysCache(tup);
    return same ? parent : InvalidOid;
}

void citus_allow_nested() {
    if (GetConfigOption("citus.allow_nested_distributed_execution", true, false) == nullptr) return;
    (void)set_config_option("citus.allow_nested_distributed_execution", "on", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
}

}  // namespace optout_pg
