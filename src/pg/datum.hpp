// Datums and text: the conversions every part of the glue needs between
// PostgreSQL values and C strings (in the database encoding) or UTF-8 bytes
// (what the core reads). Plain C-style functions; each can ereport.
#pragma once

#include "pg.hpp"

namespace optout_pg {

// Text of a datum through its type's output function (palloc'd).
char* datum_text(Datum value, Oid type);

// A text datum of s, or a NULL (*null_flag 'n') when s is null: an SPI argument.
Datum text_or_null(const char* s, char* null_flag);
// SPI arguments from strings (NULL pointers are SQL NULLs); nulls gets n + 1 chars.
void bind_texts(const char* const* args, int n, Datum* values, char* nulls);

// A text[] datum of these strings (NULL pointers are NULL elements).
Datum cstring_array(const char* const* items, int n);

// Integer contact and channel keys are handled by value on the bulk paths.
inline bool is_integer_type(Oid type) { return type == INT2OID || type == INT4OID || type == INT8OID; }
inline int64 integer_value(Datum value, Oid type) {
    return type == INT8OID ? DatumGetInt64(value) : type == INT4OID ? DatumGetInt32(value) : DatumGetInt16(value);
}

// Text of a PostgreSQL text datum as UTF-8 (converted from the database
// encoding when that is not UTF-8). The bytes live in palloc'd memory or in
// the datum itself.
struct Utf8 {
    const char* data;
    size_t size;
};
Utf8 text_to_utf8(text* t);
// A palloc'd text in the database encoding from UTF-8 bytes.
text* utf8_to_text(const char* data, size_t size);

}  // namespace optout_pg
