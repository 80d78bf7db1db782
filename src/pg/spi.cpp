// Prepared statements (see spi.hpp).
#include "spi.hpp"

extern "C" {
#include "access/relation.h"
#include "nodes/plannodes.h"
#include "storage/bufmgr.h"
#include "utils/plancache.h"
}

namespace optout_pg {

SPIPlanPtr try_prepare_kept(const char* sql, int nargs, const Oid* types, int cursor_options) {
    SPIPlanPtr plan = SPI_prepare_cursor(sql, nargs, const_cast<Oid*>(types), cursor_options);
    if (!plan) return nullptr;
    if (SPI_keepplan(plan) != 0) elog(ERROR, "optout: SPI_keepplan failed");
    return plan;
}

SPIPlanPtr prepare_kept(const char* sql, int nargs, const Oid* types, int cursor_options, const char* what) {
    SPIPlanPtr plan = try_prepare_kept(sql, nargs, types, cursor_options);
    if (!plan) elog(ERROR, "optout: preparing %s failed (%s)", what ? what : sql, SPI_result_code_string(SPI_result));
    return plan;
}

namespace {

// The generic plan of plan's one statement (NULL: none made, or made invalid).
CachedPlan* generic_plan(SPIPlanPtr plan, CachedPlanSource** source) {
    List* sources = SPI_plan_get_plan_sources(plan);
    *source = list_length(sources) == 1 ? static_cast<CachedPlanSource*>(linitial(sources)) : nullptr;
    if (!*source) return nullptr;
    CachedPlan* gplan = (*source)->gplan;
    return gplan && gplan->is_valid ? gplan : nullptr;
}

// The table's size in pages, now (0: gone, or a relation without storage).
BlockNumber table_pages(Oid table) {
    Relation rel = try_relation_open(table, AccessShareLock);
    if (!rel) return 0;
    BlockNumber pages = RELKIND_HAS_STORAGE(rel->rd_rel->relkind) ? RelationGetNumberOfBlocks(rel) : 0;
    relation_close(rel, NoLock);
    return pages;
}

}  // namespace

bool generic_plan_usable(SPIPlanPtr plan, PlanWatch* watch) {
    if (watch->too_many) return false;
    CachedPlanSource* source;
    CachedPlan* gplan = generic_plan(plan, &source);
    if (!source) return false;
    // No plan yet, or not the one measured: this execution makes one.
    if (!gplan || gplan->generation != watch->generation) return true;
    for (int i = 0; i < watch->ntables; i++) {
        BlockNumber then = watch->pages[i], now = table_pages(watch->tables[i]);
        if (now > 8 && now / 2 > then) {
            // As PostgreSQL's own invalidation of a plan does (plancache.c):
            // the next execution, this one, makes a new generic plan.
            gplan->is_valid = false;
            watch->generation = 0;
            return true;
        }
    }
    return true;
}

void generic_plan_ran(SPIPlanPtr plan, PlanWatch* watch) {
    CachedPlanSource* source;
    CachedPlan* gplan = generic_plan(plan, &source);
    if (!gplan || gplan->generation == watch->generation) return;
    watch->ntables = 0;
    ListCell* lc;
    foreach (lc, gplan->stmt_list) {
        PlannedStmt* stmt = lfirst_node(PlannedStmt, lc);
        ListCell* t;
        foreach (t, stmt->relationOids) {
            Oid table = lfirst_oid(t);
            bool known = false;
            for (int i = 0; i < watch->ntables && !known; i++) known = watch->tables[i] == table;
            if (known) continue;
            if (watch->ntables == kWatchedTables) {
                watch->too_many = true;
                return;
            }
            watch->tables[watch->ntables] = table;
            watch->pages[watch->ntables++] = table_pages(table);
        }
    }
    watch->generation = gplan->generation;
}

}  // namespace optout_pg
