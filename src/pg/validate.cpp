// Attach-time checks of the statements an attachment will run: each is
// parsed and analysed as the role that will run it (the table's owner),
// never planned or run. optout._check_statement() is called by
// optout._attach_verify (src/sql/statements.sql).
//
// Plain C-style code: everything here may ereport, and no C++ object with
// a destructor is alive.
#include "glue.hpp"

extern "C" {
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parse_coerce.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
}

extern "C" {
PG_FUNCTION_INFO_V1(optout_check_statement);
PG_FUNCTION_INFO_V1(optout_check_value_input);
}

namespace {

struct CheckContext {
    const char* what;  // the argument's name for a user's query; NULL: optout's own statement
};

// Every Query of the tree (subqueries, CTEs, sublinks): the role may do
// what it asks of each relation; a user's query only reads.
bool check_walker(Node* node, void* arg) {
    if (!node) return false;
    CheckContext* cx = static_cast<CheckContext*>(arg);
    if (IsA(node, Query)) {
        Query* q = reinterpret_cast<Query*>(node);
        if (cx->what) {
            if (q->commandType != CMD_SELECT || q->utilityStmt)
                ereport(ERROR,
                        (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s must be a read-only SELECT", cx->what)));
            if (q->hasModifyingCTE)
                ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                                errmsg("%s must not modify data (it has a data-modifying WITH)", cx->what)));
            if (q->rowMarks != NIL || q->hasForUpdate)
                ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                                errmsg("%s must not lock rows (FOR UPDATE or FOR SHARE)", cx->what)));
        }
        optout_pg::compat::check_query_permissions(q);
        return optout_pg::compat::query_walk(q, check_walker, arg);
    }
    return optout_pg::compat::expression_walk(node, check_walker, arg);
}

}  // namespace

// optout._check_statement(sql text, params regtype[], run_as regrole,
//                         query_name text DEFAULT NULL, returns regtype DEFAULT NULL) -> void
//
// Parses and analyses sql (exactly one statement, with params as the types
// of $1, $2...) as run_as, and checks run_as's privileges on every table it
// names. With query_name (a query a user gave, named so in errors): it must
// be one read-only SELECT (no data-modifying WITH, no FOR UPDATE/SHARE, no
// volatile function) of one column whose type is `returns` or implicitly
// coerces to it. Nothing is planned or run.
extern "C" Datum optout_check_statement(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("the statement, its parameters and its role must be given")));
    char* sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
    ArrayType* params = PG_GETARG_ARRAYTYPE_P(1);
    Oid run_as = PG_GETARG_OID(2);
    CheckContext cx{PG_ARGISNULL(3) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(3))};
    Oid returns = PG_ARGISNULL(4) ? InvalidOid : PG_GETARG_OID(4);

    Datum* elems;
    bool* nulls;
    int nparams;
    deconstruct_array(params, REGTYPEOID, sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &nparams);
    Oid* types = static_cast<Oid*>(palloc(sizeof(Oid) * (nparams ? nparams : 1)));
    for (int i = 0; i < nparams; i++) types[i] = nulls[i] ? InvalidOid : DatumGetObjectId(elems[i]);

    // Names resolve as they will when optout prepares the statement: with
    // search_path = pg_catalog, pg_temp, whatever the caller's.
    int guc_level = optout_pg::pin_search_path();
    List* raw = pg_parse_query(sql);
    if (list_length(raw) != 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("%s must be exactly one statement, not %d", cx.what ? cx.what : "an optout statement",
                               list_length(raw))));
    RawStmt* stmt = linitial_node(RawStmt, raw);
    if (cx.what && (!IsA(stmt->stmt, SelectStmt) || reinterpret_cast<SelectStmt*>(stmt->stmt)->intoClause))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s must be a read-only SELECT", cx.what)));

    // As the role that will run it: schema lookups check its USAGE, and the
    // table privileges below are its. Undone on the way out, and by
    // (sub)transaction abort on error.
    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(run_as, saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    Query* q = parse_analyze_fixedparams(stmt, sql, types, nparams, nullptr);
    (void)check_walker(reinterpret_cast<Node*>(q), &cx);
    if (cx.what) {
        if (contain_volatile_functions(reinterpret_cast<Node*>(q)))
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s must not call volatile functions", cx.what),
                     errdetail("A volatile function may write; the query must only read.")));
        int ncols = 0;
        Oid type = InvalidOid;
        ListCell* lc;
        foreach (lc, q->targetList) {
            TargetEntry* te = lfirst_node(TargetEntry, lc);
            if (te->resjunk) continue;
            ncols++;
            type = exprType(reinterpret_cast<Node*>(te->expr));
        }
        if (ncols != 1)
            ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                            errmsg("%s must return exactly one column, not %d", cx.what, ncols)));
        if (OidIsValid(returns) && type != returns && !can_coerce_type(1, &type, &returns, COERCION_IMPLICIT))
            ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                            errmsg("%s returns %s, not %s", cx.what, format_type_be(type), format_type_be(returns))));
    }
    SetUserIdAndSecContext(saved_user, saved_context);
    optout_pg::unpin_search_path(guc_level);
    PG_RETURN_VOID();
}

// optout._check_value_input(tbl regclass, col name, val text) -> void
//
// Reads val as a value of the column, the way an assignment to it would:
// the type's input function with the column's type modifier ('FAILED' does
// not fit varchar(1): an error, where a cast would truncate). A domain's
// constraints are checked too. It runs as the table's owner, as optout's
// statements that write the value will: a domain's CHECK that calls a
// function of the table owner's never runs with the attaching role's rights.
extern "C" Datum optout_check_value_input(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2)) PG_RETURN_VOID();
    Oid relid = PG_GETARG_OID(0);
    Name col = PG_GETARG_NAME(1);
    char* val = text_to_cstring(PG_GETARG_TEXT_PP(2));
    HeapTuple tup = SearchSysCacheAttName(relid, NameStr(*col));
    if (!HeapTupleIsValid(tup))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("column \"%s\" of table %s does not exist", NameStr(*col), get_rel_name(relid))));
    Form_pg_attribute att = reinterpret_cast<Form_pg_attribute>(GETSTRUCT(tup));
    Oid type = att->atttypid;
    int32 typmod = att->atttypmod;
    ReleaseSysCache(tup);
    HeapTuple rel = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(rel)) elog(ERROR, "optout: cache lookup failed for relation %u", relid);
    Oid owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(rel))->relowner;
    ReleaseSysCache(rel);
    Oid in, ioparam;
    getTypeInputInfo(type, &in, &ioparam);
    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(owner, saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    (void)OidInputFunctionCall(in, val, ioparam, typmod);
    SetUserIdAndSecContext(saved_user, saved_context);
    PG_RETURN_VOID();
}
