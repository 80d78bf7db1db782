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

}  // namespace optout_pg
