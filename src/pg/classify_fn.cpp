// SQL entry points of the classifier: optout.classify, optout.explain,
// optout.normalize, optout.keyword_key.
#include <string>

#include "glue.hpp"
#include "guard.hpp"

extern "C" {
PG_FUNCTION_INFO_V1(optout_classify);
PG_FUNCTION_INFO_V1(optout_explain);
PG_FUNCTION_INFO_V1(optout_normalize);
PG_FUNCTION_INFO_V1(optout_keyword_key);
}

namespace {

// Results that cross the guard. Static: never unwound by a longjmp.
optout::Match last_match;
std::string last_string;

optout::Mode mode_arg(FunctionCallInfo fcinfo, const optout_pg::EnumOids& oids, int argno) {
    if (PG_NARGS() <= argno || PG_ARGISNULL(argno)) return optout_pg::default_mode();
    return optout_pg::mode_from_oid(oids, PG_GETARG_OID(argno));
}

}  // namespace

// optout.classify(body text, mode optout.match_mode DEFAULT NULL) -> optout.intent
extern "C" Datum optout_classify(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    const optout_pg::EnumOids& oids = optout_pg::enum_oids(fcinfo->flinfo);
    optout::Mode mode = mode_arg(fcinfo, oids, 1);
    optout_pg::Utf8 body = optout_pg::text_to_utf8(PG_GETARG_TEXT_PP(0));
    const optout::KeywordSet& kw = optout_pg::keywords();

    optout::Intent intent = optout::Intent::None;
    OPTOUT_GUARD(intent = optout::classify(std::string_view(body.data, body.size), mode, kw).intent);
    if (intent == optout::Intent::None) PG_RETURN_NULL();
    PG_RETURN_OID(oids.intent[static_cast<int>(intent)]);
}

// optout.explain(body text, mode DEFAULT NULL,
//                OUT intent, OUT keyword, OUT language, OUT rule, OUT normalized)
extern "C" Datum optout_explain(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    const optout_pg::EnumOids& oids = optout_pg::enum_oids(fcinfo->flinfo);
    optout::Mode mode = mode_arg(fcinfo, oids, 1);
    optout_pg::Utf8 body = optout_pg::text_to_utf8(PG_GETARG_TEXT_PP(0));
    const optout::KeywordSet& kw = optout_pg::keywords();

    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("optout.explain must return a record")));
    desc = BlessTupleDesc(desc);

    OPTOUT_GUARD(last_match = optout::classify(std::string_view(body.data, body.size), mode, kw, true));

    Datum values[5];
    bool nulls[5] = {true, true, true, true, false};
    const optout::Match& m = last_match;
    if (m.intent != optout::Intent::None) {
        values[0] = ObjectIdGetDatum(oids.intent[static_cast<int>(m.intent)]);
        values[1] = PointerGetDatum(optout_pg::utf8_to_text(m.keyword.data(), m.keyword.size()));
        values[2] = PointerGetDatum(optout_pg::utf8_to_text(m.language.data(), m.language.size()));
        values[3] = PointerGetDatum(cstring_to_text(optout::to_string(m.rule)));
        nulls[0] = nulls[1] = nulls[2] = nulls[3] = false;
    }
    values[4] = PointerGetDatum(optout_pg::utf8_to_text(m.normalized.data(), m.normalized.size()));
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

// optout.normalize(body text) -> text
extern "C" Datum optout_normalize(PG_FUNCTION_ARGS) {
    optout_pg::Utf8 body = optout_pg::text_to_utf8(PG_GETARG_TEXT_PP(0));
    OPTOUT_GUARD(last_string = optout::normalize(std::string_view(body.data, body.size)));
    PG_RETURN_TEXT_P(optout_pg::utf8_to_text(last_string.data(), last_string.size()));
}

// optout.keyword_key(keyword text) -> text
extern "C" Datum optout_keyword_key(PG_FUNCTION_ARGS) {
    optout_pg::Utf8 body = optout_pg::text_to_utf8(PG_GETARG_TEXT_PP(0));
    OPTOUT_GUARD(last_string = optout::keyword_key(std::string_view(body.data, body.size)));
    PG_RETURN_TEXT_P(optout_pg::utf8_to_text(last_string.data(), last_string.size()));
}
