// The send path, made cheap for bulk sends, without weakening the locks.
//
// Why a cache is sound: a send takes SHARE on its contact's lock before it
// reads the ledger and holds it to commit, and every stop or start needs
// EXCLUSIVE on that lock. So once this transaction has read the ledger for a
// contact, no other transaction can change that contact's stops until this
// one ends: the answer can be kept for the rest of the transaction. Once a
// bulk send has escalated to the database-wide SHARE lock, no stop or start
// can run anywhere until this transaction ends: the whole ledger is read
// once (a large ledger only after the send has looked up a fifth of its size
// in contacts one by one) and every later check is a hash lookup. This
// backend's own stops and starts clear the cache.
//
// Blocked sends are recorded once per contact, channel and table for each
// transaction (kind 'blocked', detail {"rule": ..., "count": n}), written
// just before commit in one statement, instead of one INSERT per row.
#include "glue.hpp"
#include "ledger.hpp"
#include "locks.hpp"
#include "send_cache.hpp"
#include "xact.hpp"

#include "optout/hash_table.hpp"
#include "optout/int_set.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "utils/snapmgr.h"
}

namespace {

// The tables of the send path (optout::HashTable) allocate in
// TopTransactionContext: they die with the transaction, and the pointers to
// them are reset by the transaction callbacks.
void* context_alloc(void* context, size_t bytes) {
    return MemoryContextAllocExtended(static_cast<MemoryContext>(context), bytes, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
}
void context_release(void*, void* block) { pfree(block); }

template <typename Table>
Table* new_table() {
    Table* t = static_cast<Table*>(MemoryContextAlloc(TopTransactionContext, sizeof(Table)));
    t->init(optout::TableMemory{context_alloc, context_release, TopTransactionContext});
    return t;
}

char* xact_strdup(const char* s) { return s ? MemoryContextStrdup(TopTransactionContext, s) : nullptr; }

uint64 hash_text(const char* s, uint64 seed) {
    return s ? hash_bytes_extended(reinterpret_cast<const unsigned char*>(s), static_cast<int>(strlen(s)), seed)
             : seed * UINT64CONST(0x9E3779B97F4A7C15) + 1;
}
// Equal strings, or both NULL.
bool same_text(const char* a, const char* b) { return a == b || (a && b && strcmp(a, b) == 0); }

// A contact and a channel (NULL: none or contact-wide), NUL-terminated.
struct ContactChannel {
    const char* contact;
    const char* channel;
};
struct ContactChannelTraits {
    static uint64 hash(const ContactChannel& k) { return hash_text(k.channel, hash_text(k.contact, 0)); }
    static bool equal(const ContactChannel& a, const ContactChannel& b) {
        return strcmp(a.contact, b.contact) == 0 && same_text(a.channel, b.channel);
    }
};
// (contact, channel) -> stopped; a set when the value is unused.
using ContactTable = optout::HashTable<ContactChannel, bool, ContactChannelTraits>;

// What blocked sends are counted by: contact, channel (NULL: the row had
// none), table and rule.
struct BlockedKey {
    const char* contact;
    const char* channel;
    const char* table;
    const char* rule;
};
// Their order at commit: contact, channel (none first), table, rule.
int compare_blocked(const BlockedKey& a, const BlockedKey& b) {
    int c = strcmp(a.contact, b.contact);
    if (c != 0) return c;
    if (!a.channel || !b.channel) {
        c = (a.channel != nullptr) - (b.channel != nullptr);
    } else {
        c = strcmp(a.channel, b.channel);
    }
    if (c != 0) return c;
    c = strcmp(a.table, b.table);
    return c != 0 ? c : strcmp(a.rule, b.rule);
}
struct BlockedKeyTraits {
    static uint64 hash(const BlockedKey& k) {
        return hash_text(k.rule, hash_text(k.table, hash_text(k.channel, hash_text(k.contact, 0))));
    }
    static bool equal(const BlockedKey& a, const BlockedKey& b) { return compare_blocked(a, b) == 0; }
};
using BlockedTable = optout::HashTable<BlockedKey, int64, BlockedKeyTraits>;

// The same for integer contacts and channels (a bulk send's blocked rows),
// counted by value without formatting them; turned into text at commit.
struct IntPendingKey {
    int64 contact;
    int64 channel;
    int32 attachment;
    int32 flags;  // 1: no channel; 2: rule 'skip' (else 'mark')
};
struct IntPendingCount {
    int64 count;
    const char* table;  // in TopTransactionContext
};
struct IntPendingTraits {
    static uint64 hash(const IntPendingKey& k);
    static bool equal(const IntPendingKey& a, const IntPendingKey& b) { return memcmp(&a, &b, sizeof a) == 0; }
};
uint64 IntPendingTraits::hash(const IntPendingKey& k) {
    uint64 h = static_cast<uint64>(k.contact) * UINT64CONST(0x9E3779B97F4A7C15);
    h ^= static_cast<uint64>(k.channel) * UINT64CONST(0xC2B2AE3D27D4EB4F);
    h ^= (static_cast<uint64>(static_cast<uint32>(k.attachment)) << 2 | static_cast<uint32>(k.flags)) *
         UINT64CONST(0x165667B19E3779F9);
    return h ^ (h >> 32);
}

using IntPendingTable = optout::HashTable<IntPendingKey, IntPendingCount, IntPendingTraits>;

template <typename Int>
struct IntTraits {
    static uint64 hash(const Int& k) { return static_cast<uint64>(k); }
    static bool equal(const Int& a, const Int& b) { return a == b; }
};
// The table name of each attachment that blocked a row, copied once.
using TableNames = optout::HashTable<int32, const char*, IntTraits<int32>>;

ContactTable* answers = nullptr;      // per transaction: (contact, channel) -> stopped
ContactTable* answers_any = nullptr;  // ... (contact, any channel) -> stopped
ContactTable* ledger_keys = nullptr;  // escalated: every (contact, channel) in the ledger
// ... and its contact-wide stops whose contact is an integer (a bulk send
// asks it once a row, by value; a bitmap when they are dense).
optout::IntSet* ledger_ints = nullptr;
bool ledger_has_channels = false;                 // ... and whether any of them is per channel
ContactTable* ledger_channel_contacts = nullptr;  // ... and the contacts that have a per-channel one
BlockedTable* pending = nullptr;                  // blocked sends to record at commit
IntPendingTable* pending_ints = nullptr;          // ... of integer contacts
TableNames* table_names = nullptr;
// Once escalated, how many more contacts to look up one by one before reading
// the whole ledger instead (-1: not decided yet in this transaction). A
// small ledger is read at once (50,000 rows: about 40 ms). A larger one costs
// about a fifth of a lookup a row: after a fifth of its size in lookups, the
// send has paid at most twice what the better of the two would have cost. A
// send to 300 contacts does not read a ledger of a million stops; a broadcast
// to most of the contacts reads it once.
constexpr double kSmallLedger = 50000;
int64 lookups_left = -1;

void forget(void) {
    answers = nullptr;  // the memory goes with TopTransactionContext
    answers_any = nullptr;
    ledger_keys = nullptr;
    ledger_channel_contacts = nullptr;
    ledger_ints = nullptr;
    lookups_left = -1;
}

// Whether an escalated send should read the whole ledger now.
bool read_whole_ledger(void) {
    if (lookups_left < 0) {
        double rows = optout_pg::ledger_rows_estimate();
        lookups_left = rows <= kSmallLedger ? 0 : static_cast<int64>(rows / 5);
    }
    return lookups_left <= 0;
}

// The ledger's contact-wide stops whose contact is an integer, written as
// an integer column's value is ("7", not "007", "+7" or " 7": the text a
// send's contact is compared with on the other paths).
optout::IntSet* load_ledger_ints(void) {
    optout::IntSet* set = new_table<optout::IntSet>();
    int64_t* values = static_cast<int64_t*>(
        MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64_t) * (ledger_keys->size() + 1)));
    size_t n = 0;
    for (const ContactTable::Entry* e = ledger_keys->first(); e; e = ledger_keys->next(e)) {
        if (e->key.channel) continue;  // per channel
        char* end = nullptr;
        errno = 0;
        long long v = strtoll(e->key.contact, &end, 10);
        if (errno != 0 || end == e->key.contact || *end != '\0') continue;  // not an integer
        char canonical[32];
        snprintf(canonical, sizeof canonical, "%lld", v);
        if (strcmp(canonical, e->key.contact) != 0) continue;  // another spelling: no integer's text
        values[n++] = static_cast<int64_t>(v);
    }
    set->build(values, n);
    pfree(values);
    return set;
}

// Every (contact, channel) in the ledger, read once with the latest snapshot.
struct LedgerKeys {
    ContactTable* keys;
    ContactTable* channel_contacts;
};

void add_ledger_key(const char* contact, const char* channel, void* arg) {
    LedgerKeys* k = static_cast<LedgerKeys*>(arg);
    if (channel) ledger_has_channels = true;
    if (!contact) return;
    bool found;
    ContactTable::Entry* e = k->keys->insert(ContactChannel{contact, channel}, &found);
    if (!found) e->key = ContactChannel{xact_strdup(contact), xact_strdup(channel)};  // SPI's copies go at leave_owner
    if (channel) {
        e = k->channel_contacts->insert(ContactChannel{contact, nullptr}, &found);
        if (!found) e->key = ContactChannel{xact_strdup(contact), nullptr};
    }
}

ContactTable* load_ledger_keys(void) {
    LedgerKeys k{new_table<ContactTable>(), new_table<ContactTable>()};
    ledger_has_channels = false;
    optout_pg::fault_point("send_ledger_read");
    optout_pg::ledger_scan(add_ledger_key, &k);
    ledger_channel_contacts = k.channel_contacts;
    return k.keys;
}

// The record of `count` blocked sends of a contact, channel and table.
optout_pg::EventRow blocked_row(const char* contact, const char* channel, const char* table, const char* rule,
                                int64 count) {
    optout_pg::EventRow r{};
    r.kind = "blocked";
    r.contact = contact;
    r.channel = channel;
    r.info.source = "send";
    r.info.table_name = table;
    r.info.detail = psprintf("{\"rule\": \"%s\", \"count\": " INT64_FORMAT "}", rule, count);
    return r;
}

// A blocked-send record as it is put together at commit.
struct BlockedCount {
    BlockedKey key;
    int64 count;
};

int compare_counts(const void* x, const void* y) {
    return compare_blocked(static_cast<const BlockedCount*>(x)->key, static_cast<const BlockedCount*>(y)->key);
}

// One write for every blocked send of the transaction, just before commit,
// in a fixed order (contact, channel, table, rule). Blocked sends counted as
// text (before a bulk send escalated) and by value (after) are merged: one
// record per contact, channel and table.
void flush_pending(void) {
    long ntext = pending ? static_cast<long>(pending->size()) : 0;
    long nint = pending_ints ? static_cast<long>(pending_ints->size()) : 0;
    BlockedTable* texts = pending;
    IntPendingTable* ints = pending_ints;
    pending = nullptr;
    pending_ints = nullptr;
    if (ntext + nint == 0) return;
    BlockedCount* all = static_cast<BlockedCount*>(palloc(sizeof(BlockedCount) * (ntext + nint)));
    long n = 0;
    if (ntext > 0)
        for (const BlockedTable::Entry* e = texts->first(); e; e = texts->next(e))
            all[n++] = BlockedCount{e->key, e->value};
    if (nint > 0) {
        constexpr int kDigits = 24;
        char* digits = static_cast<char*>(palloc(static_cast<Size>(nint) * 2 * kDigits));
        for (const IntPendingTable::Entry* e = ints->first(); e; e = ints->next(e)) {
            snprintf(digits, kDigits, INT64_FORMAT, e->key.contact);
            snprintf(digits + kDigits, kDigits, INT64_FORMAT, e->key.channel);
            BlockedKey key{digits, (e->key.flags & 1) ? nullptr : digits + kDigits, e->value.table,
                           (e->key.flags & 2) ? "skip" : "mark"};
            all[n++] = BlockedCount{key, e->value.count};
            digits += 2 * kDigits;
        }
    }
    qsort(all, n, sizeof(BlockedCount), compare_counts);
    long m = 0;
    for (long i = 0; i < n; i++) {
        if (m > 0 && compare_counts(&all[m - 1], &all[i]) == 0)
            all[m - 1].count += all[i].count;
        else
            all[m++] = all[i];
    }
    optout_pg::EventRow* rows = static_cast<optout_pg::EventRow*>(palloc(sizeof(optout_pg::EventRow) * m));
    for (long i = 0; i < m; i++)
        rows[i] = blocked_row(all[i].key.contact, all[i].key.channel, all[i].key.table, all[i].key.rule, all[i].count);
    // At pre-commit no portal is active: give the statements a snapshot.
    PushActiveSnapshot(GetTransactionSnapshot());
    optout_pg::record_events(rows, static_cast<int>(m), nullptr);
    PopActiveSnapshot();
}

// The name of an attachment's table, copied once a transaction.
const char* table_of(int32 attachment, const char* table) {
    if (!table_names) table_names = new_table<TableNames>();
    bool found;
    TableNames::Entry* e = table_names->insert(attachment, &found);
    if (!found) e->value = xact_strdup(table);
    return e->value;
}

}  // namespace

namespace optout_pg {

void send_cache_reset() { forget(); }

// The hooks of xact.cpp.
void record_blocked_sends() { flush_pending(); }

void forget_send_cache() {
    forget();
    pending = nullptr;
    pending_ints = nullptr;
    table_names = nullptr;
}

const char kAnyChannel[] = "";

bool send_blocked(const char* contact, const char* channel) {
    lock_contact_for_send(contact);
    bool escalated = contact_locks_escalated();
    if (escalated && !ledger_keys && read_whole_ledger()) ledger_keys = load_ledger_keys();
    bool any = channel == kAnyChannel;
    if (escalated && ledger_keys) {
        if (ledger_keys->find(ContactChannel{contact, nullptr})) return true;
        if (!channel || !ledger_has_channels) return false;
        return any ? ledger_channel_contacts->find(ContactChannel{contact, nullptr}) != nullptr
                   : ledger_keys->find(ContactChannel{contact, channel}) != nullptr;
    }
    ContactTable*& cache = any ? answers_any : answers;
    const char* key_channel = any ? nullptr : channel;
    if (!cache) cache = new_table<ContactTable>();
    const ContactTable::Entry* cached = cache->find(ContactChannel{contact, key_channel});
    if (cached) return cached->value;
    if (escalated && lookups_left > 0) lookups_left--;
    bool stopped = ledger_is_stopped(contact, channel, nullptr, nullptr);
    bool found;
    ContactTable::Entry* e = cache->insert(ContactChannel{contact, key_channel}, &found);
    if (!found) e->key = ContactChannel{xact_strdup(contact), xact_strdup(key_channel)};
    e->value = stopped;
    return stopped;
}

bool send_blocked_datum(Datum contact, Oid type, const Datum* channel, Oid channel_type, bool any_channel) {
    // An integer key once the whole ledger is read (a bulk send): one lookup
    // by value, no text. Per-channel stops need the text path.
    if (is_integer_type(type) && contact_locks_escalated() && ledger_keys && !ledger_has_channels) {
        if (!ledger_ints) ledger_ints = load_ledger_ints();
        return ledger_ints->contains(integer_value(contact, type));
    }
    return send_blocked(datum_text(contact, type), any_channel ? kAnyChannel
                                                   : channel   ? datum_text(*channel, channel_type)
                                                               : nullptr);
}

void note_blocked(const char* contact, const char* channel, const char* table, const char* rule) {
    if (!pending) pending = new_table<BlockedTable>();
    bool found;
    BlockedTable::Entry* e = pending->insert(BlockedKey{contact, channel, table, rule}, &found);
    if (!found) e->key = BlockedKey{xact_strdup(contact), xact_strdup(channel), xact_strdup(table), xact_strdup(rule)};
    e->value++;
}

void note_blocked_int(int64 contact, const int64* channel, int attachment, const char* table, bool skip) {
    if (!pending_ints) pending_ints = new_table<IntPendingTable>();
    IntPendingKey key;
    memset(&key, 0, sizeof key);
    key.contact = contact;
    key.channel = channel ? *channel : 0;
    key.attachment = attachment;
    key.flags = (channel ? 0 : 1) | (skip ? 2 : 0);
    bool found;
    IntPendingTable::Entry* e = pending_ints->insert(key, &found);
    if (!found) e->value.table = table_of(attachment, table);
    e->value.count++;
}

}  // namespace optout_pg
