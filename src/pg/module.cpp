// Module initialisation: the magic block, the optout.match_mode setting, and
// the error side of the exception guard.
#include "citus.hpp"
#include "glue.hpp"
#include "guard.hpp"
#include "xact.hpp"

extern "C" {
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"
}

extern "C" {
PG_MODULE_MAGIC;
void _PG_init(void);
}

namespace {

int match_mode_setting = static_cast<int>(optout::Mode::Standard);
// optout.fault_injection: a test hook (superuser only, hidden). "POINT" raises
// an error at that point of optout's work, "POINT:cancel" acts as if the
// statement were cancelled there, "POINT:wait" waits there for the advisory
// lock kFaultWaitKey (taken shared, to the end of the transaction), so that
// an isolation spec holding it can act between two steps of optout's work.
// Empty: no fault (the default).
char* fault_setting = nullptr;
constexpr int64 kFaultWaitKey = 1869640815;  // "opto"

// The workflow the rules expect around a stop (reply.cpp, apply.cpp).
int confirmation_window_setting = 300;  // seconds
int help_reply_window_setting = 300;    // seconds
bool confirm_manual_stops_setting = false;
char* revoke_all_setting = nullptr;
// optout.revoke_all_from as a time (midnight UTC of the date); DT_NOEND: off.
TimestampTz revoke_all_at = DT_NOEND;

// A date as YYYY-MM-DD, a real one; its midnight UTC in *at.
bool parse_revoke_date(const char* s, TimestampTz* at) {
    int y, m, d;
    char tail;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || strlen(s) != 10) return false;
    if (y < 2000 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31) return false;
    int jd = date2j(y, m, d);
    int y2, m2, d2;
    j2date(jd, &y2, &m2, &d2);
    if (y2 != y || m2 != m || d2 != d) return false;  // 2027-02-30
    *at = static_cast<TimestampTz>(jd - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY;
    return true;
}

bool check_revoke_all(char** newval, void**, GucSource) {
    TimestampTz at;
    if (!*newval || (*newval)[0] == '\0' || parse_revoke_date(*newval, &at)) return true;
    GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
    GUC_check_errmsg("invalid value for optout.revoke_all_from: \"%s\"", *newval);
    GUC_check_errhint("Give a date as YYYY-MM-DD (for the FCC rule: 2027-01-31), or an empty string for none.");
    return false;
}

void assign_revoke_all(const char* newval, void*) {
    TimestampTz at;
    revoke_all_at = (newval && newval[0] != '\0' && parse_revoke_date(newval, &at)) ? at : DT_NOEND;
}

const struct config_enum_entry match_mode_options[] = {
    {"exact", static_cast<int>(optout::Mode::Exact), false},
    {"standard", static_cast<int>(optout::Mode::Standard), false},
    {"reasonable", static_cast<int>(optout::Mode::Reasonable), false},
    {nullptr, 0, false},
};

}  // namespace

// The core's interrupt check (optout::set_should_stop), called from its long
// loops: is a cancel or termination pending that CHECK_FOR_INTERRUPTS()
// would act on now? It only reads flags: it never ereports (a longjmp
// through C++ frames). The test hook 'classify:cancel' cancels there.
namespace {
bool should_stop() {
    if (fault_setting && strcmp(fault_setting, "classify:cancel") == 0) {
        QueryCancelPending = true;
        InterruptPending = true;
    }
    return InterruptPending && (QueryCancelPending || ProcDiePending) && INTERRUPTS_CAN_BE_PROCESSED();
}
}  // namespace

void _PG_init(void) {
    optout::set_should_stop(&should_stop);
    DefineCustomEnumVariable(
        "optout.match_mode", "How strictly inbound messages are read as opt-out, opt-in or help requests.",
        "exact: the trimmed body is a keyword (how Twilio matches); standard: Unicode-normalised "
        "keywords, separators, repeats and courtesy words; reasonable: standard plus natural-language "
        "opt-out requests.",
        &match_mode_setting, static_cast<int>(optout::Mode::Standard), match_mode_options, PGC_USERSET, 0, nullptr,
        nullptr, nullptr);
    DefineCustomStringVariable(
        "optout.fault_injection", "Test hook: fail optout's work at a named point.",
        "POINT raises an error there, POINT:cancel cancels the statement there. Points: cache_load, "
        "keywords_load, apply_events, apply_ledger, apply_platform, send_ledger_read, reply_claim.",
        &fault_setting, "", PGC_SUSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "optout.confirmation_window", "How long after a stop the one confirmation message is accepted.",
        "FCC rule 47 CFR 64.1200(a)(12) presumes a confirmation sent within 5 minutes compliant. 0: none.",
        &confirmation_window_setting, 300, 0, 86400, PGC_SUSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "optout.help_reply_window",
        "How long after a help request the one reply to it is accepted, when the contact is stopped.", nullptr,
        &help_reply_window_setting, 300, 0, 86400, PGC_SUSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable("optout.confirm_manual_stops",
                             "Whether a manual or backfill stop also allows a confirmation message.",
                             "Off: only a stop the contact sent (a keyword) or the provider reported allows one.",
                             &confirm_manual_stops_setting, false, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "optout.revoke_all_from",
        "From this date (YYYY-MM-DD, midnight UTC) every channel-scoped stop covers every channel.",
        "The FCC's revoke-all rule (47 CFR 64.1200(a)(10)), due 31 January 2027. Empty: never.", &revoke_all_setting,
        "", PGC_SUSET, 0, check_revoke_all, assign_revoke_all, nullptr);
    MarkGUCPrefixReserved("optout");
    // The end of every transaction, in one stated order (xact.cpp).
    optout_pg::register_xact_callbacks();
}

namespace optout_pg {

optout::Mode default_mode() { return static_cast<optout::Mode>(match_mode_setting); }

int confirmation_window() { return confirmation_window_setting; }
int help_reply_window() { return help_reply_window_setting; }
bool confirm_manual_stops() { return confirm_manual_stops_setting; }
TimestampTz revoke_all_from(const char** text) {
    if (text) *text = revoke_all_setting;
    return revoke_all_at;
}

void report_failure(const GuardFailure& failure) {
    if (failure.interrupted) {
        CHECK_FOR_INTERRUPTS();
        ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED), errmsg("canceling statement: optout was interrupted")));
    }
    ereport(ERROR, (errcode(failure.sqlstate), errmsg("optout: %s", failure.message)));
    pg_unreachable();
}

void fault_point(const char* point) {
    if (!fault_setting || fault_setting[0] == '\0') return;
    size_t len = strlen(point);
    if (strncmp(fault_setting, point, len) != 0) return;
    if (fault_setting[len] == '\0')
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("optout: fault injected at %s", point)));
    if (strcmp(fault_setting + len, ":cancel") == 0) {
        QueryCancelPending = true;
        InterruptPending = true;
        CHECK_FOR_INTERRUPTS();
    }
    if (strcmp(fault_setting + len, ":wait") == 0)
        (void)DirectFunctionCall1(pg_advisory_xact_lock_shared_int8, Int64GetDatum(kFaultWaitKey));
}

int pin_search_path() {
    int level = NewGUCNestLevel();
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                            false);
    citus_allow_nested();  // on Citus only (citus.hpp)
    return level;
}

void unpin_search_path(int level) { AtEOXact_GUC(true, level); }

Oid optout_namespace() {
    Oid nsp = get_namespace_oid("optout", true);
    if (!OidIsValid(nsp))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_SCHEMA), errmsg("schema \"optout\" does not exist"),
                        errhint("Run CREATE EXTENSION optout.")));
    return nsp;
}

Oid optout_table(const char* name) {
    Oid relid = get_relname_relid(name, optout_namespace());
    if (!OidIsValid(relid))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("table \"optout.%s\" does not exist", name),
                        errhint("Update the extension: ALTER EXTENSION optout UPDATE.")));
    return relid;
}

}  // namespace optout_pg
