// The messages the rules expect a sender to send to a stopped contact: one
// confirmation after a stop (FCC 47 CFR 64.1200(a)(12); CTIA), one reply to
// a help request. Both are sends the ledger blocks; an attachment names what
// they look like (a row filter in the WHEN of its trigger) or the platform
// arms the next send with optout.confirm_next(). claim_reply() decides.
//
// Why it is race-free: the claim is an INSERT of the 'confirmation' (or
// 'help_reply') event with {"for_event": <the stop's or help request's
// event id>}, under a unique index on that key (ledger.sql), with ON
// CONFLICT DO NOTHING. A second claim for the same stop, in this or any
// other transaction, finds the first (waiting for it to commit or roll back
// when it is in flight) and inserts nothing: that send stays blocked. A send
// that is not a confirmation never gets here (it does not match the filter
// and was not armed), so a broadcast in the window is blocked as before.
#include "spi.hpp"
#include "enforce.hpp"
#include "xact.hpp"

extern "C" {
#include "access/xact.h"
#include "utils/snapmgr.h"
}

namespace {

SPIPlanPtr confirmation_plan = nullptr;
SPIPlanPtr help_reply_plan = nullptr;
SPIPlanPtr peek_plan = nullptr;

SPIPlanPtr keep(const char* sql, int nargs, const Oid* types) { return optout_pg::prepare_kept(sql, nargs, types, 0); }

// $1 contact, $2 channel of the send (NULL: none), $3 any channel (a table
// without a channel column), $4 table, $5 actor, $6 window in seconds,
// $7 manual and backfill stops allow one (keyword, provider and platform
// stops always do).
// The stop a confirmation answers: the contact's latest stop that blocks
// this send (by when it took effect).
#define OPTOUT_LATEST_STOP                                                  \
    "SELECT s.event_id, s.source, s.channel, e.at FROM optout.stops s "     \
    "JOIN optout.events e ON e.id OPERATOR(pg_catalog.=) s.event_id "       \
    "WHERE s.contact OPERATOR(pg_catalog.=) $1 "                            \
    "AND (s.channel IS NULL OR s.channel OPERATOR(pg_catalog.=) $2 OR $3) " \
    "ORDER BY e.at DESC, s.event_id DESC LIMIT 1"
#define OPTOUT_STOP_ALLOWS                                                                            \
    "(s.source OPERATOR(pg_catalog.=) ANY ('{keyword,provider,platform}'::pg_catalog.text[]) OR $7) " \
    "AND s.at OPERATOR(pg_catalog.>=) (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) "          \
    "pg_catalog.make_interval(secs => $6)) "

const char kConfirmationSql[] =
    "WITH s AS (" OPTOUT_LATEST_STOP
    ") "
    "INSERT INTO optout.events AS x (kind, contact, channel, source, table_name, actor, detail) "
    "SELECT 'confirmation', $1, $2, 'send', $4, $5::pg_catalog.name, pg_catalog.jsonb_build_object("
    "'for_event', s.event_id, 'stop_source', s.source, 'stop_channel', s.channel, "
    "'seconds_after_stop', pg_catalog.round(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() "
    "OPERATOR(pg_catalog.-) s.at)::pg_catalog.numeric, 3)) "
    "FROM s WHERE " OPTOUT_STOP_ALLOWS
    "ON CONFLICT (contact, ((detail OPERATOR(pg_catalog.->>) 'for_event')::pg_catalog.int8)) "
    "WHERE kind IN ('confirmation', 'help_reply') DO NOTHING "
    "RETURNING x.id";

// The help request a reply answers: the contact's latest one (on this
// channel, when both have one).
const char kHelpReplySql[] =
    "WITH h AS (SELECT e.id, e.at, e.channel FROM optout.events e "
    "WHERE e.contact OPERATOR(pg_catalog.=) $1 AND e.kind OPERATOR(pg_catalog.=) 'help' "
    "AND (e.channel IS NULL OR $2 IS NULL OR $3 OR e.channel OPERATOR(pg_catalog.=) $2) "
    "ORDER BY e.id DESC LIMIT 1) "
    "INSERT INTO optout.events AS x (kind, contact, channel, source, table_name, actor, detail) "
    "SELECT 'help_reply', $1, $2, 'send', $4, $5::pg_catalog.name, pg_catalog.jsonb_build_object("
    "'for_event', h.id, "
    "'seconds_after_help', pg_catalog.round(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() "
    "OPERATOR(pg_catalog.-) h.at)::pg_catalog.numeric, 3)) "
    "FROM h WHERE h.at OPERATOR(pg_catalog.>=) (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) "
    "pg_catalog.make_interval(secs => $6)) AND $7 IS NOT NULL "
    "ON CONFLICT (contact, ((detail OPERATOR(pg_catalog.->>) 'for_event')::pg_catalog.int8)) "
    "WHERE kind IN ('confirmation', 'help_reply') DO NOTHING "
    "RETURNING x.id";

// Would a confirmation be accepted now (optout.confirm_next's answer)?
const char kPeekSql[] =
    "WITH s AS (" OPTOUT_LATEST_STOP
    ") "
    "SELECT 1 FROM s WHERE " OPTOUT_STOP_ALLOWS
    "AND $4 IS NULL AND $5 IS NULL AND NOT EXISTS (SELECT 1 FROM optout.events c "
    "WHERE (c.detail OPERATOR(pg_catalog.->>) 'for_event')::pg_catalog.int8 OPERATOR(pg_catalog.=) s.event_id "
    "AND c.kind OPERATOR(pg_catalog.=) ANY ('{confirmation,help_reply}'::pg_catalog.text[]))";

// Runs one of the statements above as optout's owner, on the latest
// committed state; returns whether it produced a row.
bool run(SPIPlanPtr* plan, const char* sql, const char* contact, const char* channel, const char* table, int window,
         bool read_only) {
    const char* actor = GetUserNameFromId(GetUserId(), false);
    optout_pg::OwnerScope scope = optout_pg::enter_owner();
    if (!*plan) {
        static const Oid types[7] = {TEXTOID, TEXTOID, BOOLOID, TEXTOID, TEXTOID, INT4OID, BOOLOID};
        *plan = keep(sql, 7, types);
    }
    bool any = channel == optout_pg::kAnyChannel;
    Datum values[7];
    char nulls[8] = "       ";
    values[0] = CStringGetTextDatum(contact);
    if (any || !channel) {
        nulls[1] = 'n';
        values[1] = (Datum)0;
    } else {
        values[1] = CStringGetTextDatum(channel);
    }
    values[2] = BoolGetDatum(any);
    values[3] = table ? CStringGetTextDatum(table) : (Datum)0;
    if (!table) nulls[3] = 'n';
    values[4] = read_only ? (Datum)0 : CStringGetTextDatum(actor);
    if (read_only) nulls[4] = 'n';
    values[5] = Int32GetDatum(window);
    values[6] = BoolGetDatum(optout_pg::confirm_manual_stops());
    if (!read_only) {
        optout_pg::fault_point("reply_claim");
        CommandCounterIncrement();
    }
    int rc = SPI_execute_snapshot(*plan, values, nulls, GetLatestSnapshot(), InvalidSnapshot, read_only, false, 1);
    if (rc < 0) elog(ERROR, "optout: recording a reply failed: %s", SPI_result_code_string(rc));
    bool done = SPI_processed > 0;
    optout_pg::leave_owner(scope);
    if (!read_only) CommandCounterIncrement();
    return done;
}

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
        return run(&confirmation_plan, kConfirmationSql, contact, channel, table, confirmation_window(), false);
    }
    if (help_reply_window() <= 0) return false;
    return run(&help_reply_plan, kHelpReplySql, contact, channel, table, help_reply_window(), false);
}

bool confirmation_allowed(const char* contact, const char* channel) {
    if (confirmation_window() <= 0) return false;
    return run(&peek_plan, kPeekSql, contact, channel, nullptr, confirmation_window(), true);
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
