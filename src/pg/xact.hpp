// The end of a transaction, for every module of the glue: one pair of
// transaction callbacks (xact.cpp), registered in _PG_init, calls each
// module's hook in the order stated in xact.cpp. The hooks are declared here
// and called from nowhere else (but send_cache_reset(), which apply.cpp calls
// too).
#pragma once

#include "pg.hpp"

namespace optout_pg {

// From _PG_init, once per process.
void register_xact_callbacks();

// Before commit (or PREPARE TRANSACTION), a snapshot-less point where
// statements may still run:
void flush_collected_changes();  // collect.cpp: apply the stops no statement trigger applied
void record_blocked_sends();     // send_cache.cpp: one event per contact, channel and table

// At the end of the transaction (commit, abort, prepare): forget its state,
// whose memory went with TopTransactionContext.
void forget_send_cache();         // send_cache.cpp: the answers and the counts
void forget_collected_changes();  // collect.cpp
void forget_armed();              // reply.cpp: optout.confirm_next()
void forget_contact_locks();      // locks.cpp: the locks went with the transaction

// A subtransaction rolled back (and send_cache_reset(), send_cache.hpp: its
// writes to the ledger may be undone, so the send path asks again):
void drop_collected_changes(int level);  // collect.cpp: what it collected goes with it
void forget_database_lock_modes();       // locks.cpp: the locks it took went with it

}  // namespace optout_pg
