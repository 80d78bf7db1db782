// Prepared statements: the one way the glue prepares a statement it keeps.
#pragma once

#include "pg.hpp"

namespace optout_pg {

// Prepares sql (inside an SPI connection) and keeps the plan for the backend
// (SPI_keepplan; the plan cache revalidates it after DDL). cursor_options:
// CURSOR_OPT_CUSTOM_PLAN plans it at every execution (a statement that runs
// for one contact or for fifty thousand, or on a table that grows), 0 lets
// the plan cache choose. Returns null, with SPI_result set and nothing kept,
// when SPI_prepare fails without raising an error itself.
SPIPlanPtr try_prepare_kept(const char* sql, int nargs, const Oid* types, int cursor_options);
// The same, raising an internal error that names `what` (or the statement)
// when it fails.
SPIPlanPtr prepare_kept(const char* sql, int nargs, const Oid* types, int cursor_options, const char* what = nullptr);

// A statement prepared with CURSOR_OPT_GENERIC_PLAN keeps the plan made at
// its first execution until an invalidation (ANALYZE, DDL): a table that
// grows from nearly empty, with autovacuum off or behind, would keep that
// plan's sequential scan for good. A PlanWatch follows the tables the plan
// reads (up to kWatchedTables; past that the generic plan is not used), with
// their size in pages when it was made; a plan whose table has since grown
// past twice that size (and 8 pages) is planned again, as an invalidation
// would have it. Zeroed: nothing known yet.
constexpr int kWatchedTables = 16;
struct PlanWatch {
    int generation;  // of the generic plan the sizes are of (0: none yet)
    bool too_many;   // the plan reads more tables than are watched
    int ntables;
    Oid tables[kWatchedTables];
    BlockNumber pages[kWatchedTables];
};
// Before running plan (prepared generic): false when its generic plan must
// not be used (too many tables to watch: run a custom-planned twin instead).
// A table grown as above marks the generic plan invalid, so this execution
// plans it again. Opens the watched tables with AccessShareLock (the
// statement takes at least that) and their sizes are read: call it where the
// statement's lock waits are allowed.
bool generic_plan_usable(SPIPlanPtr plan, PlanWatch* watch);
// After running it: records the tables and sizes of a generic plan made by
// that execution (nothing to do when they are known).
void generic_plan_ran(SPIPlanPtr plan, PlanWatch* watch);

}  // namespace optout_pg
