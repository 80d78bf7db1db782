// The guard of optout's triggers on attached tables (optout._trigger_guard,
// an event trigger on ddl_command_start): a statement that would drop,
// disable (ALTER TABLE ... DISABLE TRIGGER, ENABLE REPLICA TRIGGER), rename
// or replace (CREATE OR REPLACE TRIGGER) one of optout's triggers on a table
// that is attached (or a partition of one) is refused for a role that is not
// superuser, with a hint to detach; a superuser gets a WARNING and goes on.
// The parse tree says exactly which trigger and what is done to it, so the
// application role's other DDL (ADD COLUMN, CREATE INDEX, ENABLE TRIGGER...)
// is never looked at twice. optout.detach() removes the attachments before
// it drops the triggers, so it passes.
#include "glue.hpp"
#include "ledger.hpp"

extern "C" {
#include "commands/event_trigger.h"
#include "nodes/parsenodes.h"
#include "nodes/value.h"
#include "utils/regproc.h"
}

extern "C" {
PG_FUNCTION_INFO_V1(optout_trigger_guard);
}

namespace {

bool optout_trigger_name(const char* name) { return name && strncmp(name, "optout_", 7) == 0; }

// The attached table the relation is, or is a partition of (InvalidOid: none).
Oid attached(Oid relid) {
    if (!OidIsValid(relid)) return InvalidOid;
    if (!OidIsValid(get_namespace_oid("optout", true))) return InvalidOid;
    optout_pg::OwnerScope scope = optout_pg::enter_owner();
    Oid types[1] = {OIDOID};
    Datum values[1] = {ObjectIdGetDatum(relid)};
    int rc = SPI_execute_with_args(
        "SELECT a.tbl::pg_catalog.oid FROM optout.attachments a "
        "WHERE a.tbl::pg_catalog.oid OPERATOR(pg_catalog.=) $1 "
        "OR a.tbl::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (SELECT p.relid::pg_catalog.oid "
        "FROM pg_catalog.pg_partition_ancestors($1::pg_catalog.regclass) p) "
        "ORDER BY a.tbl::pg_catalog.oid OPERATOR(pg_catalog.=) $1 DESC LIMIT 1",
        1, types, values, nullptr, true, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "optout: reading optout.attachments failed: %s", SPI_result_code_string(rc));
    Oid found = InvalidOid;
    if (SPI_processed > 0) {
        bool isnull;
        found = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    }
    optout_pg::leave_owner(scope);
    return found;
}

// Does the relation have a trigger of optout's (by name)?
bool has_optout_trigger(Oid relid) {
    if (!OidIsValid(relid)) return false;
    optout_pg::OwnerScope scope = optout_pg::enter_owner();
    Oid types[1] = {OIDOID};
    Datum values[1] = {ObjectIdGetDatum(relid)};
    int rc = SPI_execute_with_args(
        "SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) $1 "
        "AND NOT t.tgisinternal AND t.tgname OPERATOR(pg_catalog.~~) 'optout\\_%'",
        1, types, values, nullptr, true, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "optout: reading pg_trigger failed: %s", SPI_result_code_string(rc));
    bool found = SPI_processed > 0;
    optout_pg::leave_owner(scope);
    return found;
}

Oid relation_of(RangeVar* rv) { return rv ? RangeVarGetRelid(rv, NoLock, true) : InvalidOid; }

char* table_name(Oid relid) {
    const char* rel = get_rel_name(relid);
    return rel ? quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), rel) : pstrdup("?");
}

enum Action { kDrop, kDisable, kReplica, kRename, kReplace };
const char* const kDo[] = {"drop", "disable", "set ENABLE REPLICA on", "rename", "replace"};
const char* const kDone[] = {"dropped", "disabled", "set to ENABLE REPLICA (it fires only on a replica)", "renamed",
                             "replaced"};

// Refuses (not superuser) or warns (superuser) about what is done to the
// trigger (NULL: every trigger) on the relation, which is the attached table
// `root` or a partition of it.
void guard(Oid relid, Oid root, const char* trigger, Action action) {
    char* table = table_name(relid);
    char* attached_table = table_name(root);
    char* what =
        trigger ? psprintf("trigger \"%s\" of table %s", trigger, table) : psprintf("the triggers of table %s", table);
    if (!superuser())
        ereport(ERROR,
                (errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
                 errmsg("optout: cannot %s %s: optout enforces opt-outs through it", kDo[action], what),
                 errdetail("The table %s is attached to optout.", attached_table),
                 errhint("To stop enforcing on it, detach it (as its administrator): SELECT optout.detach('%s');",
                         attached_table)));
    ereport(WARNING,
            (errcode(ERRCODE_WARNING),
             errmsg("optout: %s %s: opt-outs are not enforced through it until it is put back", what, kDone[action]),
             errdetail("The table %s is attached to optout.", attached_table),
             errhint("optout.health() and the view optout.attached report it; optout.detach('%s') "
                     "detaches the table instead.",
                     attached_table)));
}

// DROP TRIGGER name ON table: objects are lists of names, the trigger's last.
void check_drop(DropStmt* stmt) {
    if (stmt->removeType != OBJECT_TRIGGER) return;
    ListCell* lc;
    foreach (lc, stmt->objects) {
        List* names = static_cast<List*>(lfirst(lc));
        int n = list_length(names);
        if (n < 2) continue;
        const char* trigger = strVal(llast(names));
        if (!optout_trigger_name(trigger)) continue;
        List* relname = list_truncate(list_copy(names), n - 1);
        Oid relid = RangeVarGetRelid(makeRangeVarFromNameList(relname), NoLock, true);
        Oid root = attached(relid);
        if (OidIsValid(root)) guard(relid, root, trigger, kDrop);
    }
}

void check_alter_table(AlterTableStmt* stmt) {
    Oid relid = InvalidOid, root = InvalidOid;
    bool looked = false;
    ListCell* lc;
    foreach (lc, stmt->cmds) {
        AlterTableCmd* cmd = static_cast<AlterTableCmd*>(lfirst(lc));
        Action action;
        bool all = false;
        switch (cmd->subtype) {
            case AT_DisableTrig: action = kDisable; break;
            case AT_EnableReplicaTrig: action = kReplica; break;
            case AT_DisableTrigAll:
            case AT_DisableTrigUser:
                action = kDisable;
                all = true;
                break;
            default: continue;
        }
        if (!all && !optout_trigger_name(cmd->name)) continue;
        if (!looked) {
            relid = relation_of(stmt->relation);
            root = attached(relid);
            looked = true;
        }
        if (!OidIsValid(root)) continue;
        if (!all)
            guard(relid, root, cmd->name, action);
        else if (has_optout_trigger(relid))
            guard(relid, root, nullptr, action);
    }
}

}  // namespace

extern "C" Datum optout_trigger_guard(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("optout._trigger_guard() must be called as an event trigger")));
    EventTriggerData* data = reinterpret_cast<EventTriggerData*>(fcinfo->context);
    Node* tree = data->parsetree;
    if (!tree) PG_RETURN_VOID();
    switch (nodeTag(tree)) {
        case T_DropStmt: check_drop(reinterpret_cast<DropStmt*>(tree)); break;
        case T_AlterTableStmt: check_alter_table(reinterpret_cast<AlterTableStmt*>(tree)); break;
        case T_RenameStmt: {
            RenameStmt* stmt = reinterpret_cast<RenameStmt*>(tree);
            if (stmt->renameType == OBJECT_TRIGGER && optout_trigger_name(stmt->subname)) {
                Oid relid = relation_of(stmt->relation);
                Oid root = attached(relid);
                if (OidIsValid(root)) guard(relid, root, stmt->subname, kRename);
            }
            break;
        }
        case T_CreateTrigStmt: {
            CreateTrigStmt* stmt = reinterpret_cast<CreateTrigStmt*>(tree);
            if (stmt->replace && optout_trigger_name(stmt->trigname)) {
                Oid relid = relation_of(stmt->relation);
                Oid root = attached(relid);
                if (OidIsValid(root)) guard(relid, root, stmt->trigname, kReplace);
            }
            break;
        }
        default: break;
    }
    PG_RETURN_VOID();
}
