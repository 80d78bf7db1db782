// Enforcement: the ledger, the event record, attachments and the actions a
// stop or start takes on the platform's tables. Plain C-style code: no C++
// object with a destructor lives in these functions, because nearly every
// call in them can ereport.
#pragma once

#include "glue.hpp"
#include "optout/changes.hpp"

extern "C" {
#include "storage/lock.h"
}

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

// --- locks (see locks.cpp for the protocol) --------------------------------
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

// --- the send path (send_cache.cpp) ------------------------------------------
// Takes the contact's send lock and says whether the contact is stopped for
// the channel; cached for the transaction (see send_cache.cpp for why that is sound).
bool send_blocked(const char* contact, const char* channel);
// The channel to ask about for a table with no channel column: a send there
// may go out on any channel, so any stop of the contact blocks it (compared
// by address; never recorded as a channel).
extern const char kAnyChannel[];
// The same for a key and channel of any type (the WHEN of the outbound trigger).
bool send_blocked_datum(Datum contact, Oid type, const Datum* channel, Oid channel_type, bool any_channel);
// Counts a blocked send, recorded as one event per contact, channel and table
// just before the transaction commits.
void note_blocked(const char* contact, const char* channel, const char* table, const char* rule);
// The same for an integer contact and channel (NULL: none), without text.
void note_blocked_int(int64 contact, const int64* channel, int attachment, const char* table, bool skip);
// Forgets cached answers (after this backend changed the ledger).
void send_cache_reset();

// --- the ledger and the event record (ledger.cpp); run as optout's owner ----
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

// --- actions (apply.cpp, collect.cpp) ----------------------------------------
// One stop (channel NULL: every channel), start, help request or review (an
// unclear reply a person decides on: an event, nothing else): the core's
// kinds (optout/changes.hpp), which plans the batch.
struct ChangeRequest {
    optout::ChangeKind type;
    const char* contact;
    const char* channel;  // the scope
    bool only_if_new;     // a provider error: no stop is recorded when already stopped
    EventInfo info;
};
// Applies requests in order, set-based: the event record, the ledger, every
// attachment (status, groups, queued messages), the notifications. The
// outcome is that of applying them one by one. results (may be null) gets,
// for each, whether a stop was new or a start lifted a stop.
void apply_changes(const ChangeRequest* reqs, int n, bool* results);
// The stops, starts and help requests collected by the inbound trigger:
// applied by the statement trigger, or before commit (flush); forgotten at
// the end of the transaction; dropped with a rolled-back subtransaction of
// this nesting level or deeper.
void collect_change(const ChangeRequest& req);
void apply_collected_changes();  // by the statement trigger (a snapshot is active)
// (flush_collected_changes, forget_collected_changes and
// drop_collected_changes: the end-of-transaction hooks, xact.hpp.)
bool apply_stop(const char* contact, const char* channel, const EventInfo& info);
bool apply_start(const char* contact, const char* channel, const EventInfo& info);
// True while optout itself lifts a stop (the sticky-status trigger lets that through).
bool lifting_stop();

// --- the workflow around a stop (reply.cpp; settings in module.cpp) ---------
// optout.confirmation_window and optout.help_reply_window, in seconds.
// On a hot standby or in a read-only transaction: a clear error (25006)
// naming what cannot be done and the function to call on the primary.
void require_writable(const char* what, const char* function);
int confirmation_window();
int help_reply_window();
// optout.confirm_manual_stops: a manual or backfill stop allows a confirmation too.
bool confirm_manual_stops();
// optout.revoke_all_from as midnight UTC of its date (DT_NOEND: not set);
// *text (may be null) gets the setting as written.
TimestampTz revoke_all_from(const char** text);
enum class ReplyKind { Confirmation, HelpReply };
// A blocked send that is a confirmation (or a help reply): accepted when the
// contact's latest stop (latest help request) allows one and none was sent
// for it yet; then recorded (kind 'confirmation' or 'help_reply', detail
// {"for_event": id}) and true. Race-free: one per stop or help request (a
// unique index; a concurrent second one waits and gets none).
bool claim_reply(ReplyKind kind, const char* contact, const char* channel, const char* table);
// The claim's event, written by ledger.cpp (window in seconds): true when
// recorded. reply_would_record: the same question for a confirmation,
// writing nothing.
bool record_reply(ReplyKind kind, const char* contact, const char* channel, const char* table, int window);
bool reply_would_record(const char* contact, const char* channel, int window);
// optout.confirm_next(): the next blocked send to this contact (on this
// channel; NULL: any) in this transaction is the confirmation.
void arm_confirmation(const char* contact, const char* channel);
// Consumes the arming that matches this send, if any.
bool take_armed(const char* contact, const char* channel);
bool any_armed();
// Would a confirmation to this contact (and channel) be accepted now?
bool confirmation_allowed(const char* contact, const char* channel);

}  // namespace optout_pg
