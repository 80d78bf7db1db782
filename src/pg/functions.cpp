// The SQL-callable functions: optout.stop / start / is_stopped /
// record_delivery_error, optout._apply_stop (for optout.backfill) and
// optout._apply_existing_stops (for attach_contacts and attach_groups).
#include "apply.hpp"
#include "attachments.hpp"
#include "functions.hpp"
#include "ledger.hpp"
#include "reply.hpp"
#include "send_cache.hpp"

extern "C" {
#include "access/xact.h"
#include "access/xlog.h"
}

extern "C" {
PG_FUNCTION_INFO_V1(optout_stop);
PG_FUNCTION_INFO_V1(optout_start);
PG_FUNCTION_INFO_V1(optout_is_stopped);
PG_FUNCTION_INFO_V1(optout_record_delivery_error);
PG_FUNCTION_INFO_V1(optout_apply_stop);
PG_FUNCTION_INFO_V1(optout_confirm_next);
PG_FUNCTION_INFO_V1(optout_apply_existing_stops);
}

using optout_pg::EventInfo;

namespace {

char* arg_string(FunctionCallInfo fcinfo, int n) {
    if (PG_NARGS() <= n || PG_ARGISNULL(n)) return nullptr;
    return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

// A contact key as the attached tables spell it: ' 42' is 42, an upper-case
// uuid is its canonical lower-case form. A key that is not of the platform's
// type is an error here, before anything changes.
struct ContactKeyContext {
    const char* contact;
    Oid type;
};

// An error reading a key says what optout was reading, and as what.
void contact_key_context(void* arg) {
    const ContactKeyContext* c = static_cast<const ContactKeyContext*>(arg);
    int len = static_cast<int>(strlen(c->contact));
    errcontext("optout reads contact key \"%.*s%s\" as %s, the type of the contact columns attached to it",
               len > 60 ? 57 : len, c->contact, len > 60 ? "..." : "", format_type_be(c->type));
}

char* canonical_contact(char* contact) {
    Oid contact_type = optout_pg::attached_contact_type();
    if (!OidIsValid(contact_type) || contact_type == TEXTOID) return contact;
    Oid in, ioparam;
    getTypeInputInfo(contact_type, &in, &ioparam);
    ContactKeyContext cx{contact, contact_type};
    ErrorContextCallback callback;
    callback.callback = contact_key_context;
    callback.arg = &cx;
    callback.previous = error_context_stack;
    error_context_stack = &callback;
    Datum d = OidInputFunctionCall(in, contact, ioparam, -1);
    error_context_stack = callback.previous;
    return optout_pg::datum_text(d, contact_type);
}

char* required_contact(FunctionCallInfo fcinfo) {
    char* contact = arg_string(fcinfo, 0);
    if (!contact || contact[0] == '\0')
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("contact must not be NULL or empty")));
    return canonical_contact(contact);
}

}  // namespace

namespace optout_pg {

// The functions that write the ledger (stop, start, record_delivery_error,
// dismiss_review) say so clearly on a hot standby, or in a read-only
// transaction, instead of failing on nextval() deep inside (SQLSTATE 25006).
void require_writable(const char* what, const char* function) {
    if (RecoveryInProgress())
        ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION), errmsg("optout: cannot %s on a hot standby", what),
                        errdetail("This server is a standby in recovery: optout's ledger is written on the primary "
                                  "and reaches the standby by replication. Reads (optout.is_stopped, classify, the "
                                  "reports) work here."),
                        errhint("Call %s on the primary.", function)));
    if (XactReadOnly)
        ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                        errmsg("optout: cannot %s in a read-only transaction", what),
                        errhint("Call %s in a read-write transaction.", function)));
}

}  // namespace optout_pg

// optout.stop(contact text, channel text DEFAULT NULL, reason text DEFAULT NULL) -> boolean
extern "C" Datum optout_stop(PG_FUNCTION_ARGS) {
    optout_pg::require_writable("stop a contact", "optout.stop()");
    char* contact = required_contact(fcinfo);
    EventInfo info;
    info.source = "manual";
    info.reason = arg_string(fcinfo, 2);
    PG_RETURN_BOOL(optout_pg::apply_stop(contact, arg_string(fcinfo, 1), info));
}

// optout.start(contact text, channel text DEFAULT NULL, reason text) -> boolean
extern "C" Datum optout_start(PG_FUNCTION_ARGS) {
    optout_pg::require_writable("lift a stop", "optout.start()");
    char* contact = required_contact(fcinfo);
    char* reason = arg_string(fcinfo, 2);
    if (!reason || strspn(reason, " \t\r\n") == strlen(reason))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("optout.start() requires a reason"),
                        errhint("Say why the stop is lifted, e.g. optout.start('42', reason => 'consent form signed "
                                "2026-11-02'); it is recorded in optout.events.")));
    EventInfo info;
    info.source = "manual";
    info.reason = reason;
    PG_RETURN_BOOL(optout_pg::apply_start(contact, arg_string(fcinfo, 1), info));
}

// optout.is_stopped(contact text, channel text DEFAULT NULL) -> boolean
extern "C" Datum optout_is_stopped(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    PG_RETURN_BOOL(optout_pg::ledger_is_stopped(canonical_contact(arg_string(fcinfo, 0)), arg_string(fcinfo, 1),
                                                nullptr, nullptr));
}

// optout.record_delivery_error(contact text, channel text, provider text, code text) -> boolean
extern "C" Datum optout_record_delivery_error(PG_FUNCTION_ARGS) {
    optout_pg::require_writable("record a delivery error", "optout.record_delivery_error()");
    char* contact = required_contact(fcinfo);
    EventInfo info;
    info.source = "provider";
    info.provider = arg_string(fcinfo, 2);
    info.code = arg_string(fcinfo, 3);
    if (!info.provider || !info.code)
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("provider and code must not be NULL")));
    char* channel = arg_string(fcinfo, 1);
    info.arrived_on = channel;
    bool stops = false;
    if (!optout_pg::delivery_code_lookup(info.provider, info.code, &stops)) PG_RETURN_BOOL(false);
    info.detail = stops ? "{\"stops\": true}" : "{\"stops\": false}";
    optout_pg::record_event("provider_error", contact, channel, info);
    info.detail = nullptr;
    if (!stops) PG_RETURN_BOOL(false);
    PG_RETURN_BOOL(optout_pg::apply_stop(contact, nullptr, info));
}

// optout._apply_stop(contact, channel, source, body, keyword, language, rule,
// table_name, detail jsonb) -> boolean: a stop with every field of its record
// given (used by optout.backfill). Not granted to PUBLIC.
extern "C" Datum optout_apply_stop(PG_FUNCTION_ARGS) {
    optout_pg::require_writable("stop a contact", "optout.backfill");
    char* contact = required_contact(fcinfo);
    EventInfo info;
    info.source = arg_string(fcinfo, 2);
    if (!info.source) info.source = "manual";
    info.body = arg_string(fcinfo, 3);
    info.keyword = arg_string(fcinfo, 4);
    info.language = arg_string(fcinfo, 5);
    info.rule = arg_string(fcinfo, 6);
    info.table_name = arg_string(fcinfo, 7);
    info.detail = arg_string(fcinfo, 8);
    PG_RETURN_BOOL(optout_pg::apply_stop(contact, arg_string(fcinfo, 1), info));
}

// optout.confirm_next(contact text, channel text DEFAULT NULL) -> boolean:
// the next blocked send to the contact (on the channel; NULL: any) in this
// transaction is its stop's confirmation. Returns whether a confirmation
// would be accepted now (a stop that allows one, in the window, none sent).
extern "C" Datum optout_confirm_next(PG_FUNCTION_ARGS) {
    char* contact = required_contact(fcinfo);
    char* channel = arg_string(fcinfo, 1);
    optout_pg::arm_confirmation(contact, channel);
    PG_RETURN_BOOL(optout_pg::confirmation_allowed(contact, channel ? channel : optout_pg::kAnyChannel));
}

// optout._apply_existing_stops(attachment integer) -> bigint: the contact-wide
// stops already on record, applied to a contacts or groups attachment just
// attached (status stopped; other groups left, Stopped group joined), with
// the statements a stop runs. Returns the number of the table's rows changed.
// Not granted to PUBLIC.
extern "C" Datum optout_apply_existing_stops(PG_FUNCTION_ARGS) {
    int id = PG_GETARG_INT32(0);
    optout_pg::Attachment* a = optout_pg::find_attachment(id);
    if (!a) ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("optout attachment %d does not exist", id)));
    PG_RETURN_INT64(optout_pg::apply_existing_stops(a));
}
