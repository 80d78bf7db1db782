// The one confirmation after a stop and the one reply to a help request
// (reply.cpp): when a blocked send may go out as one.
#pragma once

#include "pg.hpp"

namespace optout_pg {

enum class ReplyKind { Confirmation, HelpReply };
// A blocked send that is a confirmation (or a help reply): accepted when the
// contact's latest stop (latest help request) allows one and none was sent
// for it yet; then recorded (kind 'confirmation' or 'help_reply', detail
// {"for_event": id}) and true. Race-free: one per stop or help request (a
// unique index; a concurrent second one waits and gets none).
bool claim_reply(ReplyKind kind, const char* contact, const char* channel, const char* table);
// optout.confirm_next(): the next blocked send to this contact (on this
// channel; NULL: any) in this transaction is the confirmation.
void arm_confirmation(const char* contact, const char* channel);
// Consumes the arming that matches this send, if any.
bool take_armed(const char* contact, const char* channel);
bool any_armed();
// Would a confirmation to this contact (and channel) be accepted now?
bool confirmation_allowed(const char* contact, const char* channel);

}  // namespace optout_pg
