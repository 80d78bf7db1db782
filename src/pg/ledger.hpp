// The ledger (optout.stops) and the event record (optout.events), written
// and read only by ledger.cpp, as optout's owner. Plain C-style code: no C++
// object with a destructor lives in these functions, because nearly every
// call in them can ereport.
#pragma once

#include "pg.hpp"
#include "reply.hpp"

namespace optout_pg {

// What an event says beyond its contact and channel. Every pointer may be
// null. Strings are NUL-terminated, in the database encoding.
struct EventInfo {
    const char* source = nullptr;  // keyword, provider, manual, backfill, send, update
    const char* body = nullptr;
    const char* keyword = nullptr;
    const char* language = nullptr;
    const char* rule = nullptr;
    const char* provider = nullptr;
    const char* code = nullptr;
    const char* table_name = nullptr;
    const char* reason = nullptr;
    const char* detail = nullptr;  // JSON object text
    // The channel the message or error came on, recorded in the event even
    // when the stop it causes covers every channel.
    const char* arrived_on = nullptr;
    // What classified a keyword message: optout's version and the identity
    // of the keyword set (the evidence pack).
    const char* optout_version = nullptr;
    const char* keyword_set = nullptr;
};

struct EventRow {
    const char* kind;
    const char* contact;
    const char* channel;
    EventInfo info;
};
// Records events in one statement, in order; ids (may be null) gets their ids.
void record_events(const EventRow* rows, int n, int64* ids);
int64 record_event(const char* kind, const char* contact, const char* channel, const EventInfo& info);
// The ledger rows of these contacts (latest committed state): returns their
// number, and their contacts and channels (NULL: contact-wide), palloc'd.
int ledger_load(const char* const* contacts, int n, char*** out_contacts, char*** out_channels);
struct LedgerInsert {
    const char* contact;
    const char* channel;
    const char* source;
    const char* keyword;
    const char* rule;
    int64 event_id;
};
// Deletes the (contact, channel) rows given, then inserts the new ones.
void ledger_apply(const char* const* del_contacts, const char* const* del_channels, int ndel, const LedgerInsert* ins,
                  int nins);
bool ledger_is_stopped(const char* contact, const char* channel, char** since, char** keyword);
// Calls fn for every row of the ledger (latest committed state; channel
// NULL: contact-wide); the strings live until fn returns.
void ledger_scan(void (*fn)(const char* contact, const char* channel, void* arg), void* arg);
// The contacts stopped contact-wide (the transaction's snapshot), in "C"
// order, palloc'd: returns their number.
int ledger_contact_wide(const char*** contacts);
// About how many rows the ledger holds (from its size on disk; no scan).
double ledger_rows_estimate();
void notify_change(const char* kind, const char* contact, const char* channel, const EventInfo& info, int64 event_id);
// Looks up a provider error code. Returns whether it is known; *stops says
// whether it means "recipient opted out".
bool delivery_code_lookup(const char* provider, const char* code, bool* stops);
Oid optout_owner();

// SPI as the owner of optout's tables: enter_owner() switches the user, pins
// search_path to pg_catalog, pg_temp and connects SPI; leave_owner() undoes
// all three. On error the (sub)transaction abort restores user and path.
// Every statement optout runs with the owner's rights runs inside one.
struct OwnerScope {
    Oid saved_user;
    int saved_context;
    int guc_level;
};
OwnerScope enter_owner();
void leave_owner(const OwnerScope& scope);

// The claim of a confirmation or a help reply (reply.cpp decides when):
// records its event (window in seconds) and says whether it did.
// reply_would_record: the same question for a confirmation, writing nothing.
bool record_reply(ReplyKind kind, const char* contact, const char* channel, const char* table, int window);
bool reply_would_record(const char* contact, const char* channel, int window);

}  // namespace optout_pg
