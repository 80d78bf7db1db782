// The trigger functions optout attaches to the platform's tables, and the
// functions of their WHEN clauses: the inbound trigger (keywords), the
// outbound trigger (blocked sends), the sticky status of a contacts table,
// the delivery-error trigger, and the statement trigger that applies what
// the row triggers collected (collect.cpp).
#include "apply.hpp"
#include "attachments.hpp"
#include "collect.hpp"
#include "guard.hpp"
#include "ledger.hpp"
#include "reply.hpp"
#include "send_cache.hpp"
#include "spi.hpp"

#include <string>
#include <string_view>

extern "C" {
#include "catalog/partition.h"
}

extern "C" {
PG_FUNCTION_INFO_V1(optout_inbound_trigger);
PG_FUNCTION_INFO_V1(optout_outbound_trigger);
PG_FUNCTION_INFO_V1(optout_contacts_trigger);
PG_FUNCTION_INFO_V1(optout_delivery_trigger);
PG_FUNCTION_INFO_V1(optout_inbound_when);
PG_FUNCTION_INFO_V1(optout_outbound_when);
PG_FUNCTION_INFO_V1(optout_reply_when);
PG_FUNCTION_INFO_V1(optout_flush);
PG_FUNCTION_INFO_V1(optout_optouts_trigger);
}

using optout::ChangeKind;
using optout_pg::Attachment;
using optout_pg::ChangeRequest;
using optout_pg::EventInfo;
using optout_pg::find_attachment;
using optout_pg::rel_info;
using optout_pg::RelInfo;

namespace {

// Results that cross the guard (static: never unwound by a longjmp).
optout::Match inbound_match;
bool inbound_stopall = false;

// What a row trigger function works with: its attachment, the trigger data,
// the relation it fires on and that relation's columns.
struct TriggerCall {
    Attachment* a;
    TriggerData* td;
    Relation rel;
    RelInfo* r;
};

Attachment* trigger_attachment(FunctionCallInfo fcinfo, const char* fname) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR,
                (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED), errmsg("%s must be called as a trigger", fname)));
    TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    if (!TRIGGER_FIRED_FOR_ROW(td->tg_event) || td->tg_trigger->tgnargs < 1)
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("%s must be a row trigger created by optout.attach_*()", fname)));
    int id = pg_strtoint32(td->tg_trigger->tgargs[0]);
    Attachment* a = find_attachment(id);
    if (!a)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("trigger \"%s\" on table \"%s\" refers to optout attachment %d, which does not exist",
                               td->tg_trigger->tgname, RelationGetRelationName(td->tg_relation), id),
                        errhint("Drop the trigger, or attach the table again.")));
    return a;
}

TriggerCall trigger_call(FunctionCallInfo fcinfo, const char* fname) {
    Attachment* a = trigger_attachment(fcinfo, fname);
    TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    return TriggerCall{a, td, td->tg_relation, rel_info(a, td->tg_relation)};
}

char* column_text(HeapTuple tup, Relation rel, AttrNumber att) {
    if (att == InvalidAttrNumber) return nullptr;
    bool isnull;
    Datum d = heap_getattr(tup, att, RelationGetDescr(rel), &isnull);
    if (isnull) return nullptr;
    return optout_pg::datum_text(d, TupleDescAttr(RelationGetDescr(rel), att - 1)->atttypid);
}

// The ledger key of a row of a keyed attachment (a contact known by phone
// number within an organization): optout._row_key(), run as the role that
// writes the row. strict: a row without a key is an error (there); otherwise
// it has key NULL.
char* row_key(const Attachment* a, const RelInfo* r, HeapTuple tup, Relation rel, bool strict) {
    static SPIPlanPtr plan = nullptr;  // kept for the backend; revalidated by the plan cache
    char* phone = column_text(tup, rel, r->contact);
    char* org = column_text(tup, rel, r->organization);
    MemoryContext caller = CurrentMemoryContext;
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "optout: SPI_connect failed");
    if (!plan) {
        Oid types[4] = {INT4OID, TEXTOID, TEXTOID, BOOLOID};
        plan = optout_pg::prepare_kept("SELECT optout._row_key($1, $2, $3, $4)", 4, types, 0, "optout._row_key()");
    }
    Datum values[4] = {Int32GetDatum(a->id), phone ? CStringGetTextDatum(phone) : (Datum)0,
                       org ? CStringGetTextDatum(org) : (Datum)0, BoolGetDatum(strict)};
    const char nulls[5] = {' ', phone ? ' ' : 'n', org ? ' ' : 'n', ' ', '\0'};
    int rc = SPI_execute_plan(plan, values, nulls, false, 1);
    if (rc != SPI_OK_SELECT || SPI_processed != 1) elog(ERROR, "optout: optout._row_key() failed");
    char* key = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    key = key ? MemoryContextStrdup(caller, key) : nullptr;
    SPI_finish();
    return key;
}

// The contact of a row as the ledger knows it (NULL: none).
char* row_contact(const Attachment* a, const RelInfo* r, HeapTuple tup, Relation rel, bool strict) {
    return a->keyed ? row_key(a, r, tup, rel, strict) : column_text(tup, rel, r->contact);
}

// The error a blocked send gets under the rule 'error'.
[[noreturn]] void refuse(const char* contact, const char* channel, Relation rel) {
    char* since = nullptr;
    char* keyword = nullptr;
    (void)optout_pg::ledger_is_stopped(contact, channel, &since, &keyword);
    if (channel == optout_pg::kAnyChannel) channel = nullptr;  // no channel to name
    ereport(ERROR,
            (errcode(ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION),
             errmsg("contact \"%s\" has opted out%s%s%s: message refused", contact, channel ? " of channel \"" : "",
                    channel ? channel : "", channel ? "\"" : ""),
             errdetail("The contact is stopped since %s%s%s%s.", since ? since : "?", keyword ? " (keyword \"" : "",
                       keyword ? keyword : "", keyword ? "\")" : ""),
             errhint("The contact must send START (or another opt-in keyword) before messages can be sent again."),
             errtable(rel)));
}

char* server_string(const std::string& utf8) {
    return text_to_cstring(optout_pg::utf8_to_text(utf8.data(), utf8.size()));
}

// The attachment a WHEN function names (its first argument).
Attachment* when_attachment(FunctionCallInfo fcinfo) {
    int id = PG_GETARG_INT32(0);
    Attachment* a = find_attachment(id);
    if (!a)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("optout attachment %d does not exist", id),
                        errhint("Drop the trigger, or attach the table again.")));
    return a;
}

bool classify_row(Attachment* a, text* body_t) {
    optout_pg::Utf8 body = optout_pg::text_to_utf8(body_t);
    // The attachment's mode, fixed at attach; never the session's
    // optout.match_mode, which any role may set (a row without one, which the
    // table's CHECK refuses, reads as the default, standard).
    optout::Mode mode = a->mode < 0 ? optout::Mode::Standard : static_cast<optout::Mode>(a->mode);
    const optout::KeywordSet& kw = optout_pg::keywords();
    OPTOUT_GUARD({
        inbound_match = optout::classify(std::string_view(body.data, body.size), mode, kw);
        inbound_stopall =
            inbound_match.intent == optout::Intent::OptOut && optout::keyword_key(inbound_match.keyword) == "stopall";
    });
    return inbound_match.intent != optout::Intent::None;
}

// What a BEFORE trigger returns for a blocked row: nothing ('skip'), the row
// with the mark values ('mark'), or the row as it is.
Datum mark_row(const Attachment* a, const RelInfo* r, Relation rel, HeapTuple tup) {
    if (a->on_blocked == optout_pg::kSkip) return PointerGetDatum(nullptr);
    if (r->nmark == 0) return PointerGetDatum(tup);
    return PointerGetDatum(
        heap_modify_tuple_by_cols(tup, RelationGetDescr(rel), r->nmark, r->mark_cols, r->mark_values, r->mark_nulls));
}

}  // namespace

// optout._inbound_when(attachment, body) -> boolean: does the body classify
// as a keyword (the WHEN of the inbound trigger).
extern "C" Datum optout_inbound_when(PG_FUNCTION_ARGS) {
    Attachment* a = when_attachment(fcinfo);
    PG_RETURN_BOOL(classify_row(a, PG_GETARG_TEXT_PP(1)));
}

// Is the send of a WHEN call blocked? Arguments from `first` on: contact,
// channel (absent: a table with no channel column, where a stop on any
// channel blocks). Takes the contact's send lock. A blocked send that is a
// confirmation or a help reply (kind; or armed by optout.confirm_next()) is
// let through when claim_reply() records it.
static bool when_blocked(FunctionCallInfo fcinfo, int first, const char* fname, const optout_pg::ReplyKind* kind) {
    if (PG_ARGISNULL(first)) return false;  // documented: a row without a contact is not enforced
    bool any_channel = PG_NARGS() < first + 2;
    // The argument types of this call site, looked up once.
    Oid* types = static_cast<Oid*>(fcinfo->flinfo->fn_extra);
    if (!types) {
        types = static_cast<Oid*>(MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(Oid) * 2));
        types[0] = get_fn_expr_argtype(fcinfo->flinfo, first);
        types[1] = any_channel ? TEXTOID : get_fn_expr_argtype(fcinfo->flinfo, first + 1);
        if (!OidIsValid(types[0]) || !OidIsValid(types[1]))
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s needs arguments of known types", fname)));
        fcinfo->flinfo->fn_extra = types;
    }
    bool no_channel = any_channel || PG_ARGISNULL(first + 1);
    Datum channel = no_channel ? (Datum)0 : PG_GETARG_DATUM(first + 1);
    Datum contact = PG_GETARG_DATUM(first);
    if (!optout_pg::send_blocked_datum(contact, types[0], no_channel ? nullptr : &channel, types[1], any_channel))
        return false;
    if (!kind && !optout_pg::any_armed()) return true;
    // A blocked send that may be a reply: the keys as text.
    char* contact_text = optout_pg::datum_text(contact, types[0]);
    const char* channel_text = any_channel  ? optout_pg::kAnyChannel
                               : no_channel ? nullptr
                                            : optout_pg::datum_text(channel, types[1]);
    Attachment* a = when_attachment(fcinfo);
    if (kind && optout_pg::claim_reply(*kind, contact_text, channel_text, a->table_name)) return false;
    if (!kind || *kind != optout_pg::ReplyKind::Confirmation) {
        if (optout_pg::take_armed(contact_text, channel_text) &&
            optout_pg::claim_reply(optout_pg::ReplyKind::Confirmation, contact_text, channel_text, a->table_name))
            return false;
    }
    return true;
}

// optout._outbound_when(attachment, contact, channel) -> boolean: is this
// send blocked (the WHEN of the outbound trigger: only a blocked row calls
// the trigger function). Takes the contact's send lock. Without a channel
// argument (a table with no channel column), a stop on any channel blocks.
extern "C" Datum optout_outbound_when(PG_FUNCTION_ARGS) {
    PG_RETURN_BOOL(when_blocked(fcinfo, 1, "optout._outbound_when()", nullptr));
}

// optout._reply_when(attachment, reply, contact, channel) -> boolean: the
// same for a row that matches the attachment's confirmation ('c') or
// help_reply ('h') filter: blocked unless it is the one reply allowed.
extern "C" Datum optout_reply_when(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("optout._reply_when() needs a reply kind")));
    char k = PG_GETARG_CHAR(1);
    if (k != 'c' && k != 'h')
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("optout._reply_when(): unknown reply kind")));
    optout_pg::ReplyKind kind = k == 'c' ? optout_pg::ReplyKind::Confirmation : optout_pg::ReplyKind::HelpReply;
    PG_RETURN_BOOL(when_blocked(fcinfo, 2, "optout._reply_when()", &kind));
}

// AFTER INSERT FOR EACH STATEMENT: applies what the statement's row
// triggers collected.
extern "C" Datum optout_flush(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("optout._flush() must be called as a trigger")));
    optout_pg::apply_collected_changes();
    return PointerGetDatum(nullptr);
}

// AFTER INSERT FOR EACH ROW on an inbound table, fired only for rows whose
// body classifies as a keyword (its WHEN): the stop, start or help request
// is collected and applied at the end of the statement, with the others.
extern "C" Datum optout_inbound_trigger(PG_FUNCTION_ARGS) {
    auto [a, td, rel, r] = trigger_call(fcinfo, "optout._inbound_trigger()");
    HeapTuple tup = td->tg_trigtuple;

    bool isnull;
    Datum body_d = heap_getattr(tup, r->body, RelationGetDescr(rel), &isnull);
    if (isnull) return PointerGetDatum(nullptr);
    char* contact = row_contact(a, r, tup, rel, false);
    // A keyed row without a key (no organization, a number optout cannot
    // read): its stop or start cannot be placed, so a person decides (the
    // review queue, under the number as written); never a silent miss.
    bool unplaced = false;
    if (!contact && a->keyed) {
        contact = column_text(tup, rel, r->contact);
        if (!contact) contact = pstrdup("");  // no number: on record under ''
        unplaced = true;
    }
    if (!contact) return PointerGetDatum(nullptr);  // documented: a row without a contact is not enforced
    char* channel = column_text(tup, rel, r->channel);

    // The body is classified again, not taken from the WHEN that let this
    // call through. The WHEN of an AFTER ROW trigger runs as the row is
    // written, and only queues the call: the calls run at the end of the
    // statement, after every row's WHEN. So the last WHEN's result (the one
    // entry inbound_match holds) belongs to the statement's last keyword row,
    // not to this one, and this tuple is read back from the table (another
    // datum than the WHEN's). Reusing it would take a cache of every keyword
    // row's result for the statement, keyed by attachment and body bytes,
    // growing with a bulk load's distinct keyword bodies and made stale by a
    // change of the keyword set or the attachment in between; and the WHEN
    // already kept every other row away: only keyword rows are classified
    // twice. (docs/design.md, "The send path and bulk loads".)
    text* body_t = DatumGetTextPP(body_d);
    if (!classify_row(a, body_t)) return PointerGetDatum(nullptr);
    if (unplaced && inbound_match.intent != optout::Intent::OptOut && inbound_match.intent != optout::Intent::OptIn &&
        inbound_match.intent != optout::Intent::Review)
        return PointerGetDatum(nullptr);  // a help request: nothing to place

    ChangeRequest req{};
    EventInfo& info = req.info;
    info.source = "keyword";
    info.body = text_to_cstring(body_t);
    info.keyword = server_string(inbound_match.keyword);
    info.language = server_string(inbound_match.language);
    info.rule = optout::to_string(inbound_match.rule);
    info.table_name = a->table_name;
    info.arrived_on = channel;
    req.contact = contact;
    if (unplaced) {
        req.type = ChangeKind::Review;
        req.channel = channel;
        info.reason =
            !*contact ? "no number in this message: its stop or start cannot be applied"
            : a->organization_col
                ? "no number optout can read or no organization for this message: its stop or start cannot be applied"
                : "a number optout cannot read: its stop or start cannot be applied";
        optout_pg::collect_change(req);
        return PointerGetDatum(nullptr);
    }
    switch (inbound_match.intent) {
        case optout::Intent::OptOut:
            req.type = ChangeKind::Stop;
            req.channel = (a->channel_scope && !inbound_stopall) ? channel : nullptr;
            break;
        case optout::Intent::OptIn:
            req.type = ChangeKind::Start;
            req.channel = a->channel_scope ? channel : nullptr;
            break;
        case optout::Intent::Review:  // a person decides (optout.open_reviews)
            // Unless the attachment records no reviews, or its review_unless
            // query says the contact is answering a question (RapidPro: a
            // waiting flow session): then "No" or "A" is an answer. Only a
            // review is ever suppressed, never a stop.
            if (!a->review) return PointerGetDatum(nullptr);
            if (a->review_unless_plan && optout_pg::contact_query_finds(a, a->review_unless_plan, contact))
                return PointerGetDatum(nullptr);
            req.type = ChangeKind::Review;
            req.channel = channel;
            break;
        default:
            req.type = ChangeKind::Help;
            req.channel = channel;
            break;
    }
    optout_pg::collect_change(req);
    return PointerGetDatum(nullptr);
}

// BEFORE INSERT OR UPDATE FOR EACH ROW on an outbound table: a row for a
// stopped contact is refused, dropped or marked.
extern "C" Datum optout_outbound_trigger(PG_FUNCTION_ARGS) {
    auto [a, td, rel, r] = trigger_call(fcinfo, "optout._outbound_trigger()");
    bool is_update = TRIGGER_FIRED_BY_UPDATE(td->tg_event);
    HeapTuple tup = is_update ? td->tg_newtuple : td->tg_trigtuple;

    // A blocked row of a bulk send with integer keys: counted and marked
    // without turning the keys into text (its WHEN found it blocked).
    if (!is_update && !a->keyed && td->tg_trigger->tgqual && a->on_blocked != optout_pg::kError &&
        optout_pg::is_integer_type(r->contact_type) && (!r->channel || optout_pg::is_integer_type(r->channel_type))) {
        bool cnull, chnull = true;
        Datum c = heap_getattr(tup, r->contact, RelationGetDescr(rel), &cnull);
        Datum ch = r->channel ? heap_getattr(tup, r->channel, RelationGetDescr(rel), &chnull) : (Datum)0;
        if (cnull) return PointerGetDatum(tup);
        int64 channel_value = chnull ? 0 : optout_pg::integer_value(ch, r->channel_type);
        optout_pg::note_blocked_int(optout_pg::integer_value(c, r->contact_type), chnull ? nullptr : &channel_value,
                                    a->id, a->table_name, a->on_blocked == optout_pg::kSkip);
        return mark_row(a, r, rel, tup);
    }

    char* contact = row_contact(a, r, tup, rel, true);
    if (!contact) return PointerGetDatum(tup);
    char* channel = column_text(tup, rel, r->channel);
    // An UPDATE gets here as an INSERT does: it set the contact or channel
    // column (changed or not: optout_outbound), or it made the row sendable
    // again (optout_outbound_requeue), and the WHEN found the contact stopped.

    // The trigger's WHEN (optout._outbound_when) has found the row blocked,
    // under the contact's send lock; a trigger without it asks here.
    // (A table with no channel column: a stop on any channel blocks.)
    const char* ask = channel ? channel : r->channel ? nullptr : optout_pg::kAnyChannel;
    if (!td->tg_trigger->tgqual && !optout_pg::send_blocked(contact, ask)) return PointerGetDatum(tup);

    if (a->on_blocked == optout_pg::kError) refuse(contact, ask, rel);

    optout_pg::note_blocked(contact, channel, a->table_name, a->on_blocked == optout_pg::kSkip ? "skip" : "mark");
    return mark_row(a, r, rel, tup);
}

// BEFORE UPDATE OF <status> FOR EACH ROW on a contacts table: the sticky
// stop. Setting a stopped contact back to active outside an opt-in keeps it
// stopped, and the attempt is recorded.
extern "C" Datum optout_contacts_trigger(PG_FUNCTION_ARGS) {
    auto [a, td, rel, r] = trigger_call(fcinfo, "optout._contacts_trigger()");
    // BEFORE INSERT (keyed contacts, optout_contacts_insert): a row added for
    // a stopped number starts stopped.
    if (TRIGGER_FIRED_BY_INSERT(td->tg_event)) {
        HeapTuple tup = td->tg_trigtuple;
        if (!a->keyed) return PointerGetDatum(tup);
        char* contact = row_contact(a, r, tup, rel, false);
        // Under the contact's send lock, as a send: a stop committing at the
        // same time either is seen here or sees this row (its statement
        // runs after this transaction commits).
        if (!contact || !optout_pg::send_blocked(contact, nullptr)) return PointerGetDatum(tup);
        char* status = column_text(tup, rel, r->status);
        if (status && strcmp(status, a->stopped_value) == 0) return PointerGetDatum(tup);
        EventInfo info;
        info.source = "update";
        info.table_name = a->table_name;
        info.detail = psprintf("{\"inserted\": %s, \"kept\": \"%s\"}", status ? psprintf("\"%s\"", status) : "null",
                               a->stopped_value);
        optout_pg::record_event("status_kept", contact, nullptr, info);
        int col = r->status;
        bool nul = false;
        return PointerGetDatum(heap_modify_tuple_by_cols(tup, RelationGetDescr(rel), 1, &col, &r->stopped_value, &nul));
    }
    HeapTuple newtup = td->tg_newtuple;
    if (!TRIGGER_FIRED_BY_UPDATE(td->tg_event) || optout_pg::lifting_stop()) return PointerGetDatum(newtup);

    char* new_status = column_text(newtup, rel, r->status);
    if (!new_status || !a->active_value || strcmp(new_status, a->active_value) != 0) return PointerGetDatum(newtup);
    char* old_status = column_text(td->tg_trigtuple, rel, r->status);
    if (old_status && strcmp(old_status, a->active_value) == 0) return PointerGetDatum(newtup);
    char* contact = row_contact(a, r, newtup, rel, false);
    if (!contact || !optout_pg::ledger_is_stopped(contact, nullptr, nullptr, nullptr)) return PointerGetDatum(newtup);

    EventInfo info;
    info.source = "update";
    info.table_name = a->table_name;
    info.detail = psprintf("{\"attempted\": \"%s\", \"kept\": \"%s\"}", a->active_value, a->stopped_value);
    optout_pg::record_event("status_kept", contact, nullptr, info);
    int col = r->status;
    bool nul = false;
    return PointerGetDatum(heap_modify_tuple_by_cols(newtup, RelationGetDescr(rel), 1, &col, &r->stopped_value, &nul));
}

// AFTER INSERT FOR EACH ROW on a delivery-error table: a provider error that
// means "recipient opted out" (or an event such as RapidPro's stop_contact)
// stops the contact.
extern "C" Datum optout_delivery_trigger(PG_FUNCTION_ARGS) {
    auto [a, td, rel, r] = trigger_call(fcinfo, "optout._delivery_trigger()");
    HeapTuple tup = td->tg_trigtuple;
    char* contact = column_text(tup, rel, r->contact);
    if (!contact) return PointerGetDatum(nullptr);
    char* channel = column_text(tup, rel, r->channel);

    EventInfo info;
    info.source = "provider";
    info.table_name = a->table_name;
    info.arrived_on = channel;
    info.provider = r->provider ? column_text(tup, rel, r->provider) : a->provider;
    bool stops = false;
    if (r->event) {
        char* ev = column_text(tup, rel, r->event);
        for (int i = 0; ev && i < a->nstop_events; i++)
            if (a->stop_events[i] && strcmp(a->stop_events[i], ev) == 0) stops = true;
        if (stops) {
            info.code = ev;
            info.detail = "{\"stops\": true}";
            optout_pg::record_event("provider_error", contact, channel, info);
            info.detail = nullptr;
        }
    }
    if (!stops && r->code) {
        char* code = column_text(tup, rel, r->code);
        if (!code) return PointerGetDatum(nullptr);
        info.code = code;
        if (!info.provider || !optout_pg::delivery_code_lookup(info.provider, code, &stops))
            return PointerGetDatum(nullptr);
        info.detail = stops ? "{\"stops\": true}" : "{\"stops\": false}";
        optout_pg::record_event("provider_error", contact, channel, info);
        info.detail = nullptr;
    }
    // Applied at the end of the statement with the statement's other stops
    // (a bulk load of receipts stops its contacts together).
    if (stops)
        optout_pg::collect_change(
            ChangeRequest{ChangeKind::Stop, contact, a->channel_scope ? channel : nullptr, true, info});
    return PointerGetDatum(nullptr);
}

// AFTER INSERT FOR EACH ROW on a platform's own opt-out table (kind
// 'optouts'): a row the platform writes itself is a stop, on record with
// source 'platform'. optout's own rows (written when it applies a stop) are
// not stops again. A row without a key goes to the review queue.
extern "C" Datum optout_optouts_trigger(PG_FUNCTION_ARGS) {
    auto [a, td, rel, r] = trigger_call(fcinfo, "optout._optouts_trigger()");
    if (!TRIGGER_FIRED_BY_INSERT(td->tg_event) || optout_pg::lifting_stop()) return PointerGetDatum(nullptr);
    HeapTuple tup = td->tg_trigtuple;
    char* contact = row_contact(a, r, tup, rel, false);
    EventInfo info;
    info.source = "platform";
    info.table_name = a->table_name;
    if (!contact) {
        contact = column_text(tup, rel, r->contact);
        if (!contact) contact = pstrdup("");
        info.reason = "a row of the platform's opt-out table without a number or organization optout can read";
        optout_pg::collect_change(ChangeRequest{ChangeKind::Review, contact, nullptr, false, info});
        return PointerGetDatum(nullptr);
    }
    optout_pg::collect_change(ChangeRequest{ChangeKind::Stop, contact, nullptr, true, info});
    return PointerGetDatum(nullptr);
}
