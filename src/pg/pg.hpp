// PostgreSQL headers for the glue, in one place and inside extern "C".
//
// Only files under src/pg include this. Code in src/core never sees it.
#pragma once

extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
}

// PostgreSQL's c.h defines these as macros; they collide with the C++ library.
#ifdef gettext
#undef gettext
#endif

// Differences between PostgreSQL versions: wrappers, in one header.
#include "compat.hpp"
