// The transaction callbacks of the glue: one pair, registered in _PG_init,
// that call each module's end-of-transaction hook (xact.hpp) in this order.
//
// Before commit (XACT_EVENT_PRE_COMMIT, XACT_EVENT_PRE_PREPARE):
//   1. the collected changes (collect.cpp) no statement trigger applied:
//      applying a stop runs the platform's statements, which may fire the
//      outbound trigger and block sends, and takes contact locks, so it
//      comes while the send path and the locks still know their state;
//   2. the blocked sends (send_cache.cpp), counted until now, including those
//      of step 1, recorded as events in one statement.
// At the end (commit, abort, prepare, and their parallel forms), each module
// forgets its state: it holds pointers into TopTransactionContext, gone now.
// No hook runs statements there; the order is that of the steps above, then
// the arming of a confirmation (reply.cpp), then the lock bookkeeping
// (locks.cpp), whose locks the transaction has released.
// A rolled-back subtransaction: the send path asks the ledger again (the
// subtransaction may have written it), its collected changes are dropped,
// and the database-wide lock modes it took are forgotten (released with it).
//
// The modules used to register callbacks of their own on first use; one
// registration makes the order a property of this file, not of which module
// a backend happened to use first.
#include "send_cache.hpp"
#include "xact.hpp"

extern "C" {
#include "access/xact.h"
}

namespace {

void xact_callback(XactEvent event, void*) {
    switch (event) {
        case XACT_EVENT_PRE_COMMIT:
        case XACT_EVENT_PRE_PREPARE:
            optout_pg::flush_collected_changes();
            optout_pg::record_blocked_sends();
            break;
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PREPARE:
        case XACT_EVENT_PARALLEL_COMMIT:
        case XACT_EVENT_PARALLEL_ABORT:
            optout_pg::forget_send_cache();
            optout_pg::forget_collected_changes();
            optout_pg::forget_armed();
            optout_pg::forget_contact_locks();
            break;
        default: break;
    }
}

void subxact_callback(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
    if (event != SUBXACT_EVENT_ABORT_SUB) return;
    optout_pg::send_cache_reset();
    optout_pg::drop_collected_changes(GetCurrentTransactionNestLevel());
    optout_pg::forget_database_lock_modes();
}

bool registered = false;

}  // namespace

namespace optout_pg {

void register_xact_callbacks() {
    if (registered) return;
    RegisterXactCallback(xact_callback, nullptr);
    RegisterSubXactCallback(subxact_callback, nullptr);
    registered = true;
}

}  // namespace optout_pg
