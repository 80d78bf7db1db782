// Contact locks (locks.cpp, which states the protocol): a send takes SHARE
// on its contact's lock, a stop or start EXCLUSIVE, escalating to one
// database-wide key after many contacts.
#pragma once

#include "pg.hpp"

extern "C" {
#include "storage/lock.h"
}

namespace optout_pg {

void lock_contact_for_send(const char* contact);
// EXCLUSIVE on each contact's lock, in a fixed order, without waiting while
// holding one (see locks.cpp).
void lock_contacts_for_change(const char* const* contacts, int n);
// The same without waiting: false when a lock is busy, *wait then names it
// (nothing this call took is held). wait_for_lock waits until it is
// granted and keeps it when asked (release_lock lets go of it). apply.cpp
// uses them to take the platform's rows and the contact locks all or nothing.
struct LockWait {
    LOCKTAG tag;
    LOCKMODE mode;
};
bool try_lock_contacts_for_change(const char* const* contacts, int n, LockWait* wait);
void wait_for_lock(const LockWait& wait, bool keep);
void release_lock(const LockWait& wait);
// Has this transaction's send path escalated to the database-wide lock?
bool contact_locks_escalated();

}  // namespace optout_pg
