// The review queue: optout.dismiss_review(review_id, reason). Reviews are
// recorded by the inbound trigger (triggers.cpp, kind 'review'), listed by
// the view optout.open_reviews (src/sql/review.sql), and closed by a stop of
// the contact or by this function.
#include "functions.hpp"
#include "glue.hpp"
#include "ledger.hpp"
#include "locks.hpp"
#include "spi.hpp"

extern "C" {
#include "utils/snapmgr.h"
}

extern "C" {
PG_FUNCTION_INFO_V1(optout_dismiss_review);
}

namespace {

// The review event's contact and channel (palloc'd in the caller's context);
// false when the id is no review event.
bool review_event(int64 id, char** contact, char** channel) {
    MemoryContext caller = CurrentMemoryContext;
    optout_pg::OwnerScope scope = optout_pg::enter_owner();
    Oid types[1] = {INT8OID};
    Datum values[1] = {Int64GetDatum(id)};
    int rc = SPI_execute_with_args(
        "SELECT e.contact, e.channel FROM optout.events e "
        "WHERE e.id OPERATOR(pg_catalog.=) $1 AND e.kind OPERATOR(pg_catalog.=) 'review'",
        1, types, values, nullptr, true, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "optout: reading the event record failed: %s", SPI_result_code_string(rc));
    bool found = SPI_processed > 0;
    if (found) {
        char* c = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        char* ch = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
        MemoryContext old = MemoryContextSwitchTo(caller);
        *contact = pstrdup(c);
        *channel = ch ? pstrdup(ch) : nullptr;
        MemoryContextSwitchTo(old);
    }
    optout_pg::leave_owner(scope);
    return found;
}

// Is the review still open? Read with the latest committed state: a stop or
// a dismissal committed by another transaction after this one began counts
// (the caller holds the contact's lock, so none can come in between).
bool review_open(int64 id) {
    optout_pg::OwnerScope scope = optout_pg::enter_owner();
    static SPIPlanPtr plan = nullptr;  // kept for the backend; revalidated by the plan cache
    if (!plan) {
        static const Oid types[1] = {INT8OID};
        plan =
            optout_pg::prepare_kept("SELECT 1 FROM optout.open_reviews r WHERE r.review_id OPERATOR(pg_catalog.=) $1",
                                    1, types, 0, "the review queue's read");
    }
    Datum values[1] = {Int64GetDatum(id)};
    int rc = SPI_execute_snapshot(plan, values, nullptr, GetLatestSnapshot(), InvalidSnapshot, true, false, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "optout: reading the review queue failed: %s", SPI_result_code_string(rc));
    bool open = SPI_processed > 0;
    optout_pg::leave_owner(scope);
    return open;
}

}  // namespace

// optout.dismiss_review(review_id bigint, reason text) -> boolean
extern "C" Datum optout_dismiss_review(PG_FUNCTION_ARGS) {
    optout_pg::require_writable("dismiss a review", "optout.dismiss_review()");
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("review_id must not be NULL")));
    int64 id = PG_GETARG_INT64(0);
    char* reason = PG_ARGISNULL(1) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(1));
    if (!reason || strspn(reason, " \t\r\n") == strlen(reason))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("optout.dismiss_review() requires a reason"),
                        errhint("Say why the reply is not a revocation, e.g. optout.dismiss_review(12, reason => "
                                "'answered a question about opening hours'); it is recorded in optout.events.")));
    char* contact = nullptr;
    char* channel = nullptr;
    if (!review_event(id, &contact, &channel))
        ereport(ERROR, (errcode(ERRCODE_NO_DATA_FOUND),
                        errmsg("optout event %lld is not a review", static_cast<long long>(id)),
                        errhint("The open reviews are listed in optout.open_reviews (column review_id).")));
    // Serialised with the stops of this contact and with other dismissals.
    const char* keys[1] = {contact};
    optout_pg::lock_contacts_for_change(keys, 1);
    if (!review_open(id)) PG_RETURN_BOOL(false);
    optout_pg::EventInfo info;
    info.source = "manual";
    info.reason = reason;
    info.detail = psprintf("{\"review\": %lld}", static_cast<long long>(id));
    optout_pg::record_event("review_dismissed", contact, channel, info);
    PG_RETURN_BOOL(true);
}
