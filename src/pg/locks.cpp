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
// A bulk send or a bulk stop touches many contacts; holding a lock per
// contact would fill the shared lock table. After kMaxContactLocks contacts in
// one transaction it takes one lock on a database-wide key instead (see the
// modes below): an escalated send waits for stops in progress and holds off
// new ones until it commits; an escalated stop does the same with every send
// and stop. Ordinary sends and stops do not block each other on that key.
//
// A stop or start of several contacts (a statement's batch) takes their locks
// in a fixed order (by key) and never waits while holding one it took in
// that call: when a key is busy, it lets go of the others, waits for that
// one and keeps it (a try fails while anyone waits, so a lock let go of
// again is never won on a busy contact), and tries the others again. So two
// batches of stops, or a batch of stops and a transaction sending to the
// same contacts in another order, do not deadlock on these locks. apply.cpp
// takes the platform's contact rows the same way, all or nothing with these
// (try_lock_contacts_for_change, wait_for_lock).
//
// The locks are advisory locks in a key space of their own (field 4 of the
// tag), so they never collide with the application's pg_advisory_lock keys;
// pg_locks shows them as advisory locks with objsubid 0x4F70 / 0x4F71 (and
// 0x4F72 for the writers of optout.keywords).
#include "glue.hpp"
#include "locks.hpp"
#include "xact.hpp"

extern "C" {
#include "access/xact.h"
#include "common/hashfn.h"
#include "storage/lock.h"
}

namespace {

constexpr uint16 kContactKey = 0x4F70;
constexpr uint16 kDatabaseKey = 0x4F71;
constexpr uint16 kKeywordsKey = 0x4F72;  // writers of optout.keywords
constexpr int kMaxContactLocks = 256;

// What this transaction holds. The database-wide key is taken in one of four
// modes, chosen so that:
//   a send (ROW SHARE) and a stop (ROW EXCLUSIVE) meet only on contact keys;
//   an escalated send (SHARE) excludes every stop, and no send;
//   an escalated stop (EXCLUSIVE) excludes every send and every stop.
// An escalated transaction takes no more contact keys.
int contact_locks_taken = 0;
bool db_row_share = false, db_row_exclusive = false, db_share = false, db_exclusive = false;

void forget_database_modes() { db_row_share = db_row_exclusive = db_share = db_exclusive = false; }

void make_tag(LOCKTAG* tag, uint32 key, uint16 space) {
    SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, key, 0x6F70746FU /* "opto" */, space);
}

void lock_database(LOCKMODE mode, bool* held) {
    if (*held) return;
    LOCKTAG tag;
    make_tag(&tag, 0, kDatabaseKey);
    (void)LockAcquire(&tag, mode, false, false);
    *held = true;
}

uint32 contact_key(const char* contact) {
    return hash_bytes(reinterpret_cast<const unsigned char*>(contact), static_cast<int>(strlen(contact)));
}

bool lock_contact(const char* contact, LOCKMODE mode) {
    LOCKTAG tag;
    make_tag(&tag, contact_key(contact), kContactKey);
    return LockAcquire(&tag, mode, false, false) == LOCKACQUIRE_OK;
}

int compare_keys(const void* x, const void* y) {
    uint32 a = *static_cast<const uint32*>(x), b = *static_cast<const uint32*>(y);
    return a < b ? -1 : a > b;
}

// Tries EXCLUSIVE on every key (sorted, distinct) without waiting. On a busy
// key, lets go of the ones this call took and returns false, the busy key in
// *busy. *fresh gets how many it took that were not held before.
bool try_keys_exclusive(const uint32* keys, int n, LOCKTAG* busy, int* fresh) {
    LockAcquireResult* got = static_cast<LockAcquireResult*>(palloc(sizeof(LockAcquireResult) * (n ? n : 1)));
    int i = 0;
    for (; i < n; i++) {
        make_tag(busy, keys[i], kContactKey);
        got[i] = LockAcquire(busy, ExclusiveLock, false, true);
        if (got[i] == LOCKACQUIRE_NOT_AVAIL) break;
    }
    if (i < n) {
        for (int j = 0; j < i; j++) {
            LOCKTAG held;
            make_tag(&held, keys[j], kContactKey);
            LockRelease(&held, ExclusiveLock, false);
        }
        pfree(got);
        return false;
    }
    *fresh = 0;
    for (int j = 0; j < n; j++) *fresh += got[j] == LOCKACQUIRE_OK;
    pfree(got);
    return true;
}

// The contacts' keys, sorted and distinct; *m gets their number.
uint32* sorted_keys(const char* const* contacts, int n, int* m) {
    uint32* keys = static_cast<uint32*>(palloc(sizeof(uint32) * (n ? n : 1)));
    for (int i = 0; i < n; i++) keys[i] = contact_key(contacts[i]);
    qsort(keys, n, sizeof(uint32), compare_keys);
    *m = 0;
    for (int i = 0; i < n; i++)
        if (*m == 0 || keys[*m - 1] != keys[i]) keys[(*m)++] = keys[i];
    return keys;
}

}  // namespace

namespace optout_pg {

void lock_contact_for_send(const char* contact) {
    if (db_share || db_exclusive) return;
    if (contact_locks_taken >= kMaxContactLocks) {
        lock_database(ShareLock, &db_share);
        return;
    }
    lock_database(RowShareLock, &db_row_share);
    if (lock_contact(contact, ShareLock)) contact_locks_taken++;
}

bool contact_locks_escalated() { return db_share || db_exclusive; }

// The hooks of xact.cpp: the transaction's locks went with it; a rolled-back
// subtransaction released the locks it took: take them again when next
// needed (re-taking a lock still held costs a local lookup).
void forget_contact_locks() {
    contact_locks_taken = 0;
    forget_database_modes();
}
void forget_database_lock_modes() { forget_database_modes(); }

bool try_lock_contacts_for_change(const char* const* contacts, int n, LockWait* wait) {
    if (db_exclusive || n <= 0) return true;
    int m;
    uint32* keys = sorted_keys(contacts, n, &m);
    bool got = true;
    if (contact_locks_taken + m > kMaxContactLocks) {
        make_tag(&wait->tag, 0, kDatabaseKey);
        wait->mode = ExclusiveLock;
        got = LockAcquire(&wait->tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
        if (got) db_exclusive = true;
    } else {
        int fresh = 0;
        wait->mode = ExclusiveLock;
        got = try_keys_exclusive(keys, m, &wait->tag, &fresh);
        if (got && !db_row_exclusive) {
            // The database-wide key last: an escalated send or stop holds it.
            LOCKTAG db;
            make_tag(&db, 0, kDatabaseKey);
            if (LockAcquire(&db, RowExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL) {
                for (int i = 0; i < m; i++) {
                    LOCKTAG held;
                    make_tag(&held, keys[i], kContactKey);
                    LockRelease(&held, ExclusiveLock, false);
                }
                wait->tag = db;
                wait->mode = RowExclusiveLock;
                got = false;
            } else {
                db_row_exclusive = true;
            }
        }
        if (got) contact_locks_taken += fresh;
    }
    pfree(keys);
    return got;
}

void wait_for_lock(const LockWait& wait, bool keep) {
    LOCKTAG tag = wait.tag;
    (void)LockAcquire(&tag, wait.mode, false, false);
    if (!keep) LockRelease(&tag, wait.mode, false);
    CHECK_FOR_INTERRUPTS();
}

void release_lock(const LockWait& wait) {
    LOCKTAG tag = wait.tag;
    LockRelease(&tag, wait.mode, false);
}

// Waits for a busy lock holding nothing else this call took, and keeps it:
// a lock that others queue for is never won by trying again (a try fails
// while anyone waits), so what was waited for is held; the rest is tried
// again without waiting.
void lock_contacts_for_change(const char* const* contacts, int n) {
    LockWait wait, held;
    bool kept = false;
    while (!try_lock_contacts_for_change(contacts, n, &wait)) {
        if (kept) release_lock(held);
        held = wait;
        wait_for_lock(held, true);
        kept = true;
    }
}

}  // namespace optout_pg

// optout._lock_keywords(): serialises the writers of optout.keywords (its row
// trigger), in optout's key space, until the transaction ends.
extern "C" {
PG_FUNCTION_INFO_V1(optout_lock_keywords);
}
extern "C" Datum optout_lock_keywords(PG_FUNCTION_ARGS) {
    LOCKTAG tag;
    make_tag(&tag, 0, kKeywordsKey);
    (void)LockAcquire(&tag, ExclusiveLock, false, false);
    PG_RETURN_VOID();
}
