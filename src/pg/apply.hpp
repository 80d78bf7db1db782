// Applying stops, starts, help requests and reviews (apply.cpp): the event
// record, the ledger, every attachment's platform tables, the notifications.
#pragma once

#include "ledger.hpp"
#include "optout/changes.hpp"

namespace optout_pg {

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
bool apply_stop(const char* contact, const char* channel, const EventInfo& info);
bool apply_start(const char* contact, const char* channel, const EventInfo& info);
// True while optout itself lifts a stop (the sticky-status trigger lets that through).
bool lifting_stop();

}  // namespace optout_pg
