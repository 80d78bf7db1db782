// Enforcement: the ledger, the event record, attachments and the actions a
// stop or start takes on the platform's tables. Plain C-style code: no C++
// object with a destructor lives in these functions, because nearly every
// call in them can ereport.
#pragma once

#include "glue.hpp"

namespace optout_pg {

// What an event says beyond its contact and channel. Every pointer may be
// null. Strings are NUL-terminated, in the database encoding.
struct EventInfo {
    const char* source = nullptr;   // keyword, provider, manual, backfill, send, update
    const char* body = nullptr;
    const char* keyword = nullptr;
    const char* language = nullptr;
    const char* rule = nullptr;
    const char* provider = nullptr;
    const char* code = nullptr;
    const char* table_name = nullptr;
    const char* reason = nullptr;
    const char* detail = nullptr;   // JSON object text
    // The channel the message or error came on, recorded in the event even
    // when the stop it causes covers every channel.
    const char* arrived_on = nullptr;
};

// --- locks (see locks.cpp for the protocol) --------------------------------
void lock_contact_for_send(const char* contact);
void lock_contact_for_change(const char* contact);
// Has this transaction's send path escalated to the database-wide lock?
bool contact_locks_escalated();

// --- the send path (send_cache.cpp) ------------------------------------------
// Takes the contact's send lock and says whether the contact is stopped for
// the channel; cached for the transaction (see send_cache.cpp for why that is sound).
bool send_blocked(const char* contact, const char* channel);
// Counts a blocked send, recorded as one event per contact, channel and table
// just before the transaction commits.
void note_blocked(const char* contact, const char* channel, const char* table, const char* rule);
// Forgets cached answers (after this backend changed the ledger).
void send_cache_reset();

// --- the ledger and the event record (ledger.cpp); run as optout's owner ----
int64 record_event(const char* kind, const char* contact, const char* channel, const EventInfo& info);
bool ledger_add(const char* contact, const char* channel, const EventInfo& info, int64 event_id);
// Removes the stops a start on `channel` lifts: that channel's and the
// contact-wide one (all of them for a NULL channel). Sets *contact_wide when
// a contact-wide stop was among them. Returns whether anything was lifted.
bool ledger_remove(const char* contact, const char* channel, bool* contact_wide);
// Is the contact stopped for `channel` (contact-wide, or on that channel; a
// NULL channel asks about a contact-wide stop only)? Reads the latest
// committed state, whatever the isolation level. On true, *since and
// *keyword (palloc'd, may be null) describe the stop when asked for.
bool ledger_is_stopped(const char* contact, const char* channel, char** since, char** keyword);
void notify_change(const char* kind, const char* contact, const char* channel, const EventInfo& info,
                   int64 event_id);
// Looks up a provider error code. Returns whether it is known; *stops says
// whether it means "recipient opted out".
bool delivery_code_lookup(const char* provider, const char* code, bool* stops);
Oid optout_owner();

// SPI as the owner of optout's tables: enter_owner() switches the user and
// connects SPI; leave_owner() finishes SPI and switches back. On error the
// transaction abort restores the user.
struct OwnerScope {
    Oid saved_user;
    int saved_context;
};
OwnerScope enter_owner();
void leave_owner(const OwnerScope& scope);

// --- actions (actions.cpp) ---------------------------------------------------
// Stops a contact (channel NULL: every channel) and applies every attachment:
// status, groups, queued messages. Records the event and notifies. Returns
// true when the stop is new.
bool apply_stop(const char* contact, const char* channel, const EventInfo& info);
// Lifts a stop (an opt-in or an audited call). Returns true when a stop was lifted.
bool apply_start(const char* contact, const char* channel, const EventInfo& info);
// True while optout itself lifts a stop (the sticky-status trigger lets that through).
bool lifting_stop();

// Text of a datum through its type's output function.
char* datum_text(Datum value, Oid type);

}  // namespace optout_pg
