// A deliberately broken entry point, compiled in only with
// -DOPTOUT_VALGRIND_SELFTEST, never in a real build: it proves that
// test/scripts/valgrind.sh catches misuse of palloc'd memory in optout's own
// code. It reads one byte past a 10-byte palloc'd chunk (inside the 16 bytes
// that palloc really reserves, so only a server built with USE_VALGRIND, whose
// allocator marks the slack as inaccessible, can see it) and one byte of the
// chunk after pfree. Both reads are reported by valgrind as "Invalid read".
//
//   make OPTOUT_VALGRIND_SELFTEST=1 ...;  bash test/scripts/valgrind.sh --selftest
#ifdef OPTOUT_VALGRIND_SELFTEST
#include "pg.hpp"

extern "C" {
PG_FUNCTION_INFO_V1(optout_valgrind_selftest);
}

// optout_valgrind_selftest() -> bool (true: it returned)
extern "C" Datum optout_valgrind_selftest(PG_FUNCTION_ARGS) {
    volatile char* chunk = static_cast<volatile char*>(palloc(10));
    for (int i = 0; i < 10; i++) chunk[i] = 'x';
    char past_end = chunk[10];  // one byte past the chunk
    pfree(const_cast<char*>(chunk));
    char after_free = chunk[0];  // a byte of the freed chunk
    (void)past_end;
    (void)after_free;
    PG_RETURN_BOOL(true);
}
#endif
