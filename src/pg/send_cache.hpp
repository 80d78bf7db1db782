// The send path (send_cache.cpp): is this send blocked, cached for the
// transaction; blocked sends counted and recorded just before commit.
#pragma once

#include "pg.hpp"

namespace optout_pg {

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

}  // namespace optout_pg
