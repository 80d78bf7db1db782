// The one exception guard every entry point passes.
//
// C++ and PostgreSQL have two error worlds: ereport(ERROR) longjmps (skipping
// C++ destructors), and a C++ exception escaping into PostgreSQL's C frames
// kills the backend. The rule of this code base:
//
//   1. An entry point (extern "C", PG_FUNCTION_INFO_V1) holds only plain data
//      and palloc'd memory while it calls PostgreSQL.
//   2. C++ work runs inside OPTOUT_GUARD(...). The guarded code must not call
//      anything that can ereport. Every exception is caught and copied into a
//      plain struct; the catch block is left; only then is the error raised
//      with ereport, when no C++ object with a destructor is alive.
//   3. Results cross the boundary as plain values, or through static objects
//      (which a longjmp does not unwind).
#pragma once

#include "pg.hpp"

#include <cstring>
#include <new>
#include <stdexcept>

#include "optout/classifier.hpp"

namespace optout_pg {

struct GuardFailure {
    int sqlstate = 0;
    bool interrupted = false;  // the core stopped for a pending cancel (optout::set_should_stop)
    char message[512] = {0};
};

inline void set_failure(GuardFailure& f, int sqlstate, const char* message) noexcept {
    f.sqlstate = sqlstate;
    std::strncpy(f.message, message ? message : "", sizeof f.message - 1);
    f.message[sizeof f.message - 1] = '\0';
}

// Runs fn; returns false with `failure` filled in when it threw.
template <typename Fn>
bool run_guarded(GuardFailure& failure, Fn&& fn) noexcept {
    try {
        fn();
        return true;
    } catch (const optout::Error& e) {
        int code = ERRCODE_INTERNAL_ERROR;
        switch (e.kind()) {
            case optout::Error::Kind::InvalidKeyword: code = ERRCODE_INVALID_PARAMETER_VALUE; break;
            case optout::Error::Kind::KeywordConflict: code = ERRCODE_UNIQUE_VIOLATION; break;
            case optout::Error::Kind::Icu: code = ERRCODE_EXTERNAL_ROUTINE_EXCEPTION; break;
            case optout::Error::Kind::Interrupted:
                code = ERRCODE_QUERY_CANCELED;
                failure.interrupted = true;
                break;
        }
        set_failure(failure, code, e.what());
    } catch (const std::bad_alloc&) {
        set_failure(failure, ERRCODE_OUT_OF_MEMORY, "out of memory");
    } catch (const std::exception& e) {
        set_failure(failure, ERRCODE_INTERNAL_ERROR, e.what());
    } catch (...) {
        set_failure(failure, ERRCODE_INTERNAL_ERROR, "unknown C++ exception");
    }
    return false;
}

// Raises the failure as a PostgreSQL error. Called outside any catch block.
// An interrupted core: CHECK_FOR_INTERRUPTS() raises the pending cancel (or
// termination) as PostgreSQL would have.
[[noreturn]] void report_failure(const GuardFailure& failure);

}  // namespace optout_pg

// OPTOUT_GUARD(statements;) runs the statements as C++ behind the guard and
// ereports any exception once they are done.
#define OPTOUT_GUARD(...)                                                             \
    do {                                                                              \
        ::optout_pg::GuardFailure optout_guard_failure_;                              \
        if (!::optout_pg::run_guarded(optout_guard_failure_, [&]() { __VA_ARGS__; })) \
            ::optout_pg::report_failure(optout_guard_failure_);                       \
    } while (0)
