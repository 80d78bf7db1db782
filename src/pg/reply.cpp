// The messages the rules expect a sender to send to a stopped contact: one
// confirmation after a stop (FCC 47 CFR 64.1200(a)(12); CTIA), one reply to
// a help request. Both are sends the ledger blocks; an attachment names what
// they look like (a row filter in the WHEN of its trigger) or the platform
// arms the next send with optout.confirm_next(). claim_reply() decides
// (the settings, the arming); the claim itself is an event, written where
// every event is (record_reply() in ledger.cpp, which says why it is
// race-free). A send that is not a confirmation never gets here (it does not
// match the filter and was not armed), so a broadcast in the window is
// blocked as before.
#include "glue.hpp"
#include "ledger.hpp"
#include "reply.hpp"
#include "send_cache.hpp"
#include "xact.hpp"

extern "C" {
#include "access/xact.h"
#include "utils/snapmgr.h"
}

namespace {

// The sends armed by optout.confirm_next() in this transaction.
struct Armed {
    char* contact;
    char* channel;  // NULL: any
    Armed* next;
};
Armed* armed = nullptr;  // in TopTransactionContext

bool same(const char* a, const char* b) { return a == b || (a && b && strcmp(a, b) == 0); }

}  // namespace

namespace optout_pg {

bool claim_reply(ReplyKind kind, const char* contact, const char* channel, const char* table) {
    if (kind == ReplyKind::Confirmation) {
        if (confirmation_window() <= 0) return false;
        return record_reply(kind, contact, channel, table, confirmation_window());
    }
    if (help_reply_window() <= 0) return false;
    return record_reply(kind, contact, channel, table, help_reply_window());
}

bool confirmation_allowed(const char* contact, const char* channel) {
    if (confirmation_window() <= 0) return false;
    return reply_would_record(contact, channel, confirmation_window());
}

void arm_confirmation(const char* contact, const char* channel) {
    MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
    Armed* a = static_cast<Armed*>(palloc(sizeof(Armed)));
    a->contact = pstrdup(contact);
    a->channel = channel ? pstrdup(channel) : nullptr;
    a->next = nullptr;
    MemoryContextSwitchTo(old);
    Armed** tail = &armed;
    while (*tail) tail = &(*tail)->next;
    *tail = a;
}

bool take_armed(const char* contact, const char* channel) {
    for (Armed** p = &armed; *p; p = &(*p)->next) {
        Armed* a = *p;
        if (strcmp(a->contact, contact) != 0) continue;
        // An arming for a channel matches a send on that channel; one for
        // any channel matches every send to the contact.
        if (a->channel && (channel == kAnyChannel || !same(a->channel, channel))) continue;
        *p = a->next;
        return true;
    }
    return false;
}

bool any_armed() { return armed != nullptr; }

void forget_armed() { armed = nullptr; }  // the memory goes with TopTransactionContext

}  // namespace optout_pg
