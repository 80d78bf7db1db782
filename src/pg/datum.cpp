// Datums and text (see datum.hpp).
#include "datum.hpp"

extern "C" {
#include "utils/array.h"
}

namespace optout_pg {

// Output functions of the key types seen, looked up once per backend (the
// send path turns a key into text for every row).
char* datum_text(Datum value, Oid type) {
    struct OutputFn {
        Oid type;
        FmgrInfo fn;
    };
    static OutputFn cache[16];
    static int ncached = 0;
    for (int i = 0; i < ncached; i++)
        if (cache[i].type == type) return OutputFunctionCall(&cache[i].fn, value);
    Oid out;
    bool varlena;
    getTypeOutputInfo(type, &out, &varlena);
    if (ncached == 16) return OidOutputFunctionCall(out, value);
    fmgr_info_cxt(out, &cache[ncached].fn, TopMemoryContext);
    cache[ncached].type = type;
    ncached++;
    return OutputFunctionCall(&cache[ncached - 1].fn, value);
}

Datum text_or_null(const char* s, char* null_flag) {
    if (!s) {
        *null_flag = 'n';
        return (Datum)0;
    }
    *null_flag = ' ';
    return CStringGetTextDatum(s);
}

void bind_texts(const char* const* args, int n, Datum* values, char* nulls) {
    for (int i = 0; i < n; i++) values[i] = text_or_null(args[i], &nulls[i]);
    nulls[n] = '\0';
}

Datum cstring_array(const char* const* items, int n) {
    Datum* elems = static_cast<Datum*>(palloc(sizeof(Datum) * (n ? n : 1)));
    bool* nulls = static_cast<bool*>(palloc(sizeof(bool) * (n ? n : 1)));
    for (int i = 0; i < n; i++) {
        nulls[i] = items[i] == nullptr;
        elems[i] = nulls[i] ? (Datum)0 : CStringGetTextDatum(items[i]);
    }
    int dims[1] = {n};
    int lbs[1] = {1};
    return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

Utf8 text_to_utf8(text* t) {
    const char* data = VARDATA_ANY(t);
    int size = VARSIZE_ANY_EXHDR(t);
    if (GetDatabaseEncoding() == PG_UTF8 || GetDatabaseEncoding() == PG_SQL_ASCII)
        return {data, static_cast<size_t>(size)};
    char* converted = pg_server_to_any(data, size, PG_UTF8);
    if (converted == data) return {data, static_cast<size_t>(size)};
    return {converted, strlen(converted)};
}

text* utf8_to_text(const char* data, size_t size) {
    if (GetDatabaseEncoding() == PG_UTF8 || GetDatabaseEncoding() == PG_SQL_ASCII)
        return cstring_to_text_with_len(data, static_cast<int>(size));
    char* copy = pnstrdup(data, size);
    char* converted = pg_any_to_server(copy, static_cast<int>(size), PG_UTF8);
    return cstring_to_text(converted);
}

}  // namespace optout_pg
