// Contact locks: why a STOP and a send racing never leave a sendable row.
//
// A send (the outbound trigger) takes SHARE on the contact's lock before it
// reads the ledger, and holds it to the end of its transaction. A stop or a
// start takes EXCLUSIVE on it before it writes the ledger and fails queued
// rows. So a send that comes second waits for the stop to commit and then
// reads the ledger with the latest snapshot (it sees the stop); a stop that
// comes second waits for the send to commit and then fails queued rows with
// the latest snapshot (it sees the sent row). This holds under READ COMMITTED
// and REPEATABLE READ alike.
//
// A bulk send touches many contacts; holding a lock per contact would fill
// the shared lock table. After kMaxContactLocks contacts in one transaction a
// send takes one SHARE lock on a database-wide key instead, and a stop takes
// ROW EXCLUSIVE on that key after its contact lock: stops then wait for the
// bulk send to commit (and fail its rows), and bulk sends wait for stops.
// Stops do not block each other on that key, nor do sends.
//
// The locks are advisory locks in a key space of their own (field 4 of the
// tag), so they never collide with the application's pg_advisory_lock keys;
// pg_locks shows them as advisory locks with objsubid 0x4F70 / 0x4F71.
#include "enforce.hpp"

extern "C" {
#include "access/xact.h"
#include "common/hashfn.h"
#include "storage/lock.h"
}

namespace {

constexpr uint16 kContactKey = 0x4F70;
constexpr uint16 kDatabaseKey = 0x4F71;
constexpr int kMaxContactLocks = 256;

int contact_locks_taken = 0;
bool escalated = false;
bool callback_registered = false;

void xact_callback(XactEvent event, void*) {
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_COMMIT ||
        event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE) {
        contact_locks_taken = 0;
        escalated = false;
    }
}

void ensure_callback() {
    if (!callback_registered) {
        RegisterXactCallback(xact_callback, nullptr);
        callback_registered = true;
    }
}

void make_tag(LOCKTAG* tag, uint32 key, uint16 space) {
    SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, key, 0x6F70746FU /* "opto" */, space);
}

uint32 contact_hash(const char* contact) {
    return hash_bytes(reinterpret_cast<const unsigned char*>(contact), static_cast<int>(strlen(contact)));
}

}  // namespace

namespace optout_pg {

void lock_contact_for_send(const char* contact) {
    ensure_callback();
    if (escalated) return;
    LOCKTAG tag;
    make_tag(&tag, contact_hash(contact), kContactKey);
    if (LockAcquire(&tag, ShareLock, false, false) == LOCKACQUIRE_OK && ++contact_locks_taken >= kMaxContactLocks) {
        make_tag(&tag, 0, kDatabaseKey);
        (void)LockAcquire(&tag, ShareLock, false, false);
        escalated = true;
    }
}

bool contact_locks_escalated() { return escalated; }

void lock_contact_for_change(const char* contact) {
    ensure_callback();
    LOCKTAG tag;
    make_tag(&tag, contact_hash(contact), kContactKey);
    (void)LockAcquire(&tag, ExclusiveLock, false, false);
    make_tag(&tag, 0, kDatabaseKey);
    (void)LockAcquire(&tag, RowExclusiveLock, false, false);
}

}  // namespace optout_pg
