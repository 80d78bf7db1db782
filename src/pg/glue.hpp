// Shared pieces of the PostgreSQL glue.
#pragma once

#include "datum.hpp"
#include "pg.hpp"

#include "optout/classifier.hpp"

namespace optout_pg {

// The optout.match_mode setting.
optout::Mode default_mode();
// optout.confirmation_window and optout.help_reply_window, in seconds.
int confirmation_window();
int help_reply_window();
// optout.confirm_manual_stops: a manual or backfill stop allows a confirmation too.
bool confirm_manual_stops();
// optout.revoke_all_from as midnight UTC of its date (DT_NOEND: not set);
// *text (may be null) gets the setting as written.
TimestampTz revoke_all_from(const char** text);

// The keywords of optout.keywords (enabled rows), cached per backend and
// rebuilt after any change to the table commits (relcache invalidation).
const optout::KeywordSet& keywords();
// The identity of that set (16 hex digits of a hash of its rows).
const char* keywords_fingerprint();

// OIDs of the optout.intent and optout.match_mode enum labels, looked up once
// per call site (FmgrInfo) so that a dropped and re-created extension is
// never read through stale OIDs.
struct EnumOids {
    Oid intent[5];  // indexed by optout::Intent; [0] unused
    Oid mode[3];    // indexed by optout::Mode
};
const EnumOids& enum_oids(FmgrInfo* flinfo);
optout::Mode mode_from_oid(const EnumOids& oids, Oid label);

// Statements optout prepares are parsed with search_path = pg_catalog,
// pg_temp, whatever the session's search_path: no function or operator a
// user planted in another schema can be picked up. Returns the GUC nest
// level to pass to unpin_search_path().
int pin_search_path();
void unpin_search_path(int level);

// The test hook optout.fault_injection: errors (or cancels) when the setting
// names this point; costs a load and a test otherwise.
void fault_point(const char* point);

// The schema optout's OID; errors if the extension's schema is missing.
Oid optout_namespace();
// The OID of table optout.<name>; errors (with the hint to update the
// extension) if it is missing.
Oid optout_table(const char* name);

}  // namespace optout_pg
