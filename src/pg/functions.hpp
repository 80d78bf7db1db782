// The SQL functions that stop, start and look up (functions.cpp).
#pragma once

#include "pg.hpp"

namespace optout_pg {

// On a hot standby or in a read-only transaction: a clear error (25006)
// naming what cannot be done and the function to call on the primary.
void require_writable(const char* what, const char* function);

}  // namespace optout_pg
