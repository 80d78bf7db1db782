// OIDs of the extension's enum labels, per call site.
#include "glue.hpp"

namespace {

Oid type_oid(Oid nsp, const char* name) {
    Oid typ = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum(name), ObjectIdGetDatum(nsp));
    if (!OidIsValid(typ))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("type \"optout.%s\" does not exist", name),
                        errhint("Reinstall the extension.")));
    return typ;
}

Oid label_oid(Oid typ, const char* type_name, const char* label) {
    Oid oid = GetSysCacheOid2(ENUMTYPOIDNAME, Anum_pg_enum_oid, ObjectIdGetDatum(typ), CStringGetDatum(label));
    if (!OidIsValid(oid))
        ereport(ERROR,
                (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("enum optout.%s has no label \"%s\"", type_name, label)));
    return oid;
}

}  // namespace

namespace optout_pg {

const EnumOids& enum_oids(FmgrInfo* flinfo) {
    if (flinfo->fn_extra) return *static_cast<EnumOids*>(flinfo->fn_extra);
    Oid nsp = optout_namespace();
    Oid intent_t = type_oid(nsp, "intent");
    Oid mode_t = type_oid(nsp, "match_mode");
    EnumOids* oids = static_cast<EnumOids*>(MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(EnumOids)));
    const optout::Intent intents[] = {optout::Intent::OptOut, optout::Intent::OptIn, optout::Intent::Help,
                                      optout::Intent::Review};
    for (optout::Intent i : intents)
        oids->intent[static_cast<int>(i)] = label_oid(intent_t, "intent", optout::to_string(i));
    const optout::Mode modes[] = {optout::Mode::Exact, optout::Mode::Standard, optout::Mode::Reasonable};
    for (optout::Mode m : modes)
        oids->mode[static_cast<int>(m)] = label_oid(mode_t, "match_mode", optout::to_string(m));
    flinfo->fn_extra = oids;
    return *oids;
}

optout::Mode mode_from_oid(const EnumOids& oids, Oid label) {
    for (int m = 0; m < 3; m++)
        if (oids.mode[m] == label) return static_cast<optout::Mode>(m);
    ereport(ERROR,
            (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid optout.match_mode value (OID %u)", label)));
    pg_unreachable();
}

}  // namespace optout_pg
