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
#include "enforce.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/hsearch.h"
#include "utils/snapmgr.h"
}

namespace {

constexpr int kKeyLen = 96;  // longer keys are not cached (read the ledger each time); short keys hash fast

struct CacheEntry {
    char key[kKeyLen];
    bool stopped;
};

struct PendingEntry {
    char key[kKeyLen + 64];  // contact \x1f channel \x1f table \x1f rule
    int64 count;
};

// The same for integer contacts and channels (a bulk send's blocked rows),
// counted by value without formatting them, in an open-addressing table (a
// bulk send counts every blocked row: a dynahash probe missed the cache
// several times over); turned into text at commit.
struct IntPendingKey {
    int64 contact;
    int64 channel;
    int32 attachment;
    int32 flags;  // 1: no channel; 2: rule 'skip' (else 'mark')
};
struct IntPendingEntry {
    IntPendingKey key;
    int64 count;        // 0: a free slot
    const char* table;  // in TopTransactionContext
};
struct IntCounts {
    IntPendingEntry* slots;
    uint64 mask;
    uint64 used;
};
// The table name of each attachment that blocked a row, copied once.
struct TableOf {
    int32 attachment;
    const char* name;
};

HTAB* answers = nullptr;      // per transaction: (contact, channel) -> stopped
HTAB* ledger_keys = nullptr;  // escalated: every (contact, channel) in the ledger
// ... and its contact-wide stops whose contact is an integer: an open-addressing
// set (a bulk send asks it once a row; dynahash costs several times more).
struct IntSet {
    int64* slots;
    bool* used;
    uint64 mask;
};
IntSet* ledger_ints = nullptr;
bool ledger_has_channels = false;  // ... and whether any of them is per channel
HTAB* pending = nullptr;      // blocked sends to record at commit
IntCounts* pending_ints = nullptr;  // ... of integer contacts
TableOf* table_names = nullptr;
int ntable_names = 0;
bool callbacks_registered = false;
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
    ledger_keys = nullptr;
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

// A hash table for the transaction, with string keys.
HTAB* make_table(const char* name, Size keysize, Size entrysize) {
    HASHCTL ctl;
    memset(&ctl, 0, sizeof ctl);
    ctl.keysize = keysize;
    ctl.entrysize = entrysize;
    ctl.hcxt = TopTransactionContext;
    return hash_create(name, 1024, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

bool make_key(char* out, Size size, const char* a, const char* b) {
    size_t la = strlen(a), lb = b ? strlen(b) : 0;
    if (la + lb + 2 > size) return false;
    memcpy(out, a, la);
    out[la] = '\x1f';
    if (lb) memcpy(out + la + 1, b, lb);
    out[la + 1 + lb] = '\0';
    return true;
}

inline uint64 int_slot(int64 v, uint64 mask) { return (static_cast<uint64>(v) * UINT64CONST(0x9E3779B97F4A7C15)) >> 20 & mask; }

bool int_set_has(const IntSet* set, int64 v) {
    for (uint64 i = int_slot(v, set->mask);; i = (i + 1) & set->mask) {
        if (!set->used[i]) return false;
        if (set->slots[i] == v) return true;
    }
}

// The ledger's contact-wide stops whose contact is an integer.
IntSet* load_ledger_ints(void) {
    uint64 cap = 64;
    while (cap < static_cast<uint64>(hash_get_num_entries(ledger_keys)) * 2 + 1) cap <<= 1;
    IntSet* set = static_cast<IntSet*>(MemoryContextAlloc(TopTransactionContext, sizeof(IntSet)));
    set->slots = static_cast<int64*>(MemoryContextAllocHuge(TopTransactionContext, sizeof(int64) * cap));
    set->used = static_cast<bool*>(MemoryContextAllocHuge(TopTransactionContext, cap));
    memset(set->used, 0, cap);
    set->mask = cap - 1;
    HASH_SEQ_STATUS seq;
    hash_seq_init(&seq, ledger_keys);
    for (CacheEntry* e; (e = static_cast<CacheEntry*>(hash_seq_search(&seq))) != nullptr;) {
        char* end = nullptr;
        errno = 0;
        long long v = strtoll(e->key, &end, 10);
        if (errno != 0 || end == e->key || *end != '\x1f' || end[1] != '\0') continue;  // per channel, or not an integer
        uint64 i = int_slot(v, set->mask);
        while (set->used[i] && set->slots[i] != v) i = (i + 1) & set->mask;
        set->used[i] = true;
        set->slots[i] = v;
    }
    return set;
}

void flush_pending(void);
HTAB* load_ledger_keys(void);

void xact_callback(XactEvent event, void*) {
    switch (event) {
        case XACT_EVENT_PRE_COMMIT:
        case XACT_EVENT_PRE_PREPARE:
            // Collected stops first: what they run may block sends too.
            optout_pg::flush_collected_changes();
            flush_pending();
            break;
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PREPARE:
        case XACT_EVENT_PARALLEL_COMMIT:
        case XACT_EVENT_PARALLEL_ABORT:
            forget();
            pending = nullptr;
            pending_ints = nullptr;
            table_names = nullptr;
            ntable_names = 0;
            optout_pg::forget_collected_changes();
            break;
        default:
            break;
    }
}

void subxact_callback(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
    // A rolled-back subtransaction may have written the ledger: ask again.
    // (Its blocked sends stay counted: the rows were refused all the same.)
    // The stops its statements collected go with it.
    if (event == SUBXACT_EVENT_ABORT_SUB) {
        forget();
        optout_pg::drop_collected_changes(GetCurrentTransactionNestLevel());
    }
}

// Every (contact, channel) in the ledger, read once with the latest snapshot.
HTAB* load_ledger_keys(void) {
    HTAB* keys = make_table("optout ledger", kKeyLen, sizeof(CacheEntry));
    ledger_has_channels = false;
    optout_pg::OwnerScope scope = optout_pg::enter_owner();
    optout_pg::fault_point("send_ledger_read");
    SPIPlanPtr plan = SPI_prepare("SELECT s.contact, s.channel FROM optout.stops s", 0, nullptr);
    if (!plan) elog(ERROR, "optout: reading the ledger failed");
    int rc = SPI_execute_snapshot(plan, nullptr, nullptr, GetLatestSnapshot(), InvalidSnapshot, true, false, 0);
    if (rc != SPI_OK_SELECT) elog(ERROR, "optout: reading the ledger failed: %s", SPI_result_code_string(rc));
    for (uint64 i = 0; i < SPI_processed; i++) {
        char key[kKeyLen];
        char* contact = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
        char* channel = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
        if (channel) ledger_has_channels = true;
        if (contact && make_key(key, sizeof key, contact, channel)) {
            bool found;
            CacheEntry* e = static_cast<CacheEntry*>(hash_search(keys, key, HASH_ENTER, &found));
            e->stopped = true;
        }
    }
    optout_pg::leave_owner(scope);
    return keys;
}

void add_pending(const char* key, int64 count) {
    if (!pending) pending = make_table("optout blocked", kKeyLen + 64, sizeof(PendingEntry));
    bool found;
    PendingEntry* e = static_cast<PendingEntry*>(hash_search(pending, key, HASH_ENTER, &found));
    e->count = found ? e->count + count : count;
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

// Counts `count` blocked sends of a contact, channel and table; one whose
// key is too long to aggregate is recorded at once.
void add_blocked(const char* contact, const char* channel, const char* table, const char* rule, int64 count) {
    char key[kKeyLen + 64];
    int n = snprintf(key, sizeof key, "%s\x1f%s\x1f%s\x1f%s", contact, channel ? channel : "\x1e", table, rule);
    if (n < 0 || static_cast<Size>(n) >= sizeof key) {
        optout_pg::EventRow row = blocked_row(contact, channel, table, rule, count);
        optout_pg::record_events(&row, 1, nullptr);
        return;
    }
    add_pending(key, count);
}

// A blocked-send record as it is put together at commit.
struct BlockedCount {
    const char* contact;
    const char* channel;  // nullptr: the row had no channel
    const char* table;
    const char* rule;
    int64 count;
};

int compare_counts(const void* x, const void* y) {
    const BlockedCount* a = static_cast<const BlockedCount*>(x);
    const BlockedCount* b = static_cast<const BlockedCount*>(y);
    int c = strcmp(a->contact, b->contact);
    if (c != 0) return c;
    if (!a->channel || !b->channel) {
        c = (a->channel != nullptr) - (b->channel != nullptr);
    } else {
        c = strcmp(a->channel, b->channel);
    }
    if (c != 0) return c;
    c = strcmp(a->table, b->table);
    return c != 0 ? c : strcmp(a->rule, b->rule);
}

// One write for every blocked send of the transaction, just before commit,
// in a fixed order (contact, channel, table, rule). Blocked sends counted as
// text (before a bulk send escalated) and by value (after) are merged: one
// record per contact, channel and table.
void flush_pending(void) {
    long ntext = pending ? hash_get_num_entries(pending) : 0;
    long nint = pending_ints ? static_cast<long>(pending_ints->used) : 0;
    HTAB* texts = pending;
    IntCounts* ints = pending_ints;
    pending = nullptr;
    pending_ints = nullptr;
    if (ntext + nint == 0) return;
    BlockedCount* all = static_cast<BlockedCount*>(palloc(sizeof(BlockedCount) * (ntext + nint)));
    long n = 0;
    HASH_SEQ_STATUS seq;
    if (ntext > 0) {
        hash_seq_init(&seq, texts);
        for (PendingEntry* e; (e = static_cast<PendingEntry*>(hash_seq_search(&seq))) != nullptr;) {
            char* key = pstrdup(e->key);
            char* parts[4];
            for (int p = 0; p < 4; p++) parts[p] = strsep(&key, "\x1f");
            all[n++] = BlockedCount{parts[0], parts[1][0] == '\x1e' ? nullptr : parts[1], parts[2], parts[3], e->count};
        }
    }
    if (nint > 0) {
        constexpr int kDigits = 24;
        char* digits = static_cast<char*>(palloc(static_cast<Size>(nint) * 2 * kDigits));
        for (uint64 i = 0; i <= ints->mask; i++) {
            const IntPendingEntry* e = &ints->slots[i];
            if (e->count == 0) continue;
            snprintf(digits, kDigits, INT64_FORMAT, e->key.contact);
            snprintf(digits + kDigits, kDigits, INT64_FORMAT, e->key.channel);
            all[n++] = BlockedCount{digits, (e->key.flags & 1) ? nullptr : digits + kDigits, e->table,
                                    (e->key.flags & 2) ? "skip" : "mark", e->count};
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
    for (long i = 0; i < m; i++) rows[i] = blocked_row(all[i].contact, all[i].channel, all[i].table, all[i].rule, all[i].count);
    // At pre-commit no portal is active: give the statements a snapshot.
    PushActiveSnapshot(GetTransactionSnapshot());
    optout_pg::record_events(rows, static_cast<int>(m), nullptr);
    PopActiveSnapshot();
}

uint64 count_hash(const IntPendingKey& k) {
    uint64 h = static_cast<uint64>(k.contact) * UINT64CONST(0x9E3779B97F4A7C15);
    h ^= static_cast<uint64>(k.channel) * UINT64CONST(0xC2B2AE3D27D4EB4F);
    h ^= (static_cast<uint64>(static_cast<uint32>(k.attachment)) << 2 | static_cast<uint32>(k.flags)) *
         UINT64CONST(0x165667B19E3779F9);
    return h ^ (h >> 32);
}

// The slot of a key: its own, or the free one where it goes.
IntPendingEntry* count_slot(IntCounts* t, const IntPendingKey& k) {
    for (uint64 i = count_hash(k) & t->mask;; i = (i + 1) & t->mask) {
        IntPendingEntry* e = &t->slots[i];
        if (e->count == 0 || memcmp(&e->key, &k, sizeof k) == 0) return e;
    }
}

// A table twice the size (1,024 slots to begin with) holding what t held.
IntCounts* grow_counts(IntCounts* t) {
    uint64 cap = t ? (t->mask + 1) * 2 : 1024;
    IntCounts* n = static_cast<IntCounts*>(MemoryContextAlloc(TopTransactionContext, sizeof(IntCounts)));
    n->slots = static_cast<IntPendingEntry*>(MemoryContextAllocExtended(
        TopTransactionContext, sizeof(IntPendingEntry) * cap, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO));
    n->mask = cap - 1;
    n->used = t ? t->used : 0;
    for (uint64 i = 0; t && i <= t->mask; i++)
        if (t->slots[i].count != 0) *count_slot(n, t->slots[i].key) = t->slots[i];
    if (t) pfree(t->slots);
    return n;
}

// The name of an attachment's table, copied once a transaction.
const char* table_of(int32 attachment, const char* table) {
    for (int i = 0; i < ntable_names; i++)
        if (table_names[i].attachment == attachment) return table_names[i].name;
    Size size = sizeof(TableOf) * (ntable_names + 1);
    table_names = static_cast<TableOf*>(table_names ? repalloc(table_names, size)
                                                    : MemoryContextAlloc(TopTransactionContext, size));
    table_names[ntable_names] = TableOf{attachment, MemoryContextStrdup(TopTransactionContext, table)};
    return table_names[ntable_names++].name;
}

}  // namespace

namespace optout_pg {

// One pair of transaction callbacks for the send path and the collected
// stops, so that their order at commit is fixed.
void ensure_xact_callbacks() {
    if (callbacks_registered) return;
    RegisterXactCallback(xact_callback, nullptr);
    RegisterSubXactCallback(subxact_callback, nullptr);
    callbacks_registered = true;
}

void send_cache_reset() { forget(); }

bool send_blocked(const char* contact, const char* channel) {
    ensure_xact_callbacks();
    lock_contact_for_send(contact);
    char key[kKeyLen];
    bool escalated = contact_locks_escalated();
    if (escalated && !ledger_keys && read_whole_ledger()) ledger_keys = load_ledger_keys();
    if (escalated && ledger_keys) {
        bool found = false;
        if (make_key(key, sizeof key, contact, nullptr)) {
            hash_search(ledger_keys, key, HASH_FIND, &found);
            if (!found && channel && ledger_has_channels && make_key(key, sizeof key, contact, channel))
                hash_search(ledger_keys, key, HASH_FIND, &found);
            return found;
        }
        return ledger_is_stopped(contact, channel, nullptr, nullptr);
    }
    if (!make_key(key, sizeof key, contact, channel)) return ledger_is_stopped(contact, channel, nullptr, nullptr);
    if (!answers) answers = make_table("optout answers", kKeyLen, sizeof(CacheEntry));
    bool found;
    CacheEntry* e = static_cast<CacheEntry*>(hash_search(answers, key, HASH_FIND, &found));
    if (found) return e->stopped;
    if (escalated && lookups_left > 0) lookups_left--;
    bool stopped = ledger_is_stopped(contact, channel, nullptr, nullptr);
    e = static_cast<CacheEntry*>(hash_search(answers, key, HASH_ENTER, &found));
    e->stopped = stopped;
    return stopped;
}

bool send_blocked_datum(Datum contact, Oid type, const Datum* channel, Oid channel_type) {
    // An integer key once the whole ledger is read (a bulk send): one lookup
    // by value, no text. Per-channel stops need the text path.
    if (is_integer_type(type) && contact_locks_escalated() && ledger_keys && !ledger_has_channels) {
        if (!ledger_ints) ledger_ints = load_ledger_ints();
        return int_set_has(ledger_ints, integer_value(contact, type));
    }
    return send_blocked(datum_text(contact, type), channel ? datum_text(*channel, channel_type) : nullptr);
}

void note_blocked(const char* contact, const char* channel, const char* table, const char* rule) {
    ensure_xact_callbacks();
    add_blocked(contact, channel, table, rule, 1);
}

void note_blocked_int(int64 contact, const int64* channel, int attachment, const char* table, bool skip) {
    ensure_xact_callbacks();
    if (!pending_ints || (pending_ints->used + 1) * 2 > pending_ints->mask + 1) pending_ints = grow_counts(pending_ints);
    IntPendingKey key;
    memset(&key, 0, sizeof key);
    key.contact = contact;
    key.channel = channel ? *channel : 0;
    key.attachment = attachment;
    key.flags = (channel ? 0 : 1) | (skip ? 2 : 0);
    IntPendingEntry* e = count_slot(pending_ints, key);
    if (e->count == 0) {
        e->key = key;
        e->table = table_of(attachment, table);
        pending_ints->used++;
    }
    e->count++;
}

}  // namespace optout_pg
