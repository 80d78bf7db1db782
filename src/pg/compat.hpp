// What differs between the PostgreSQL major versions optout supports (15 to
// 18), in one place. The glue calls these wrappers, never an API whose
// signature changed; every PG_VERSION_NUM test of the code is here.
//
// Included by pg.hpp, after PostgreSQL's own headers.
#pragma once

#if PG_VERSION_NUM < 150000
#error "optout needs PostgreSQL 15 or later"
#endif

extern "C" {
#include "access/genam.h"
#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
}

namespace optout_pg::compat {

// Index entries for a tuple just inserted into the heap. With conflict, the
// tuple was inserted speculatively (INSERT ... ON CONFLICT): a conflict in
// one of the arbiter indexes is reported in *conflict instead of raised.
// PostgreSQL 16 added the last argument, onlySummarizing, which only HOT
// updates set.
inline List* insert_index_tuples(ResultRelInfo* rri, TupleTableSlot* slot, EState* estate, List* arbiters = NIL,
                                 bool* conflict = nullptr) {
#if PG_VERSION_NUM >= 160000
    return ExecInsertIndexTuples(rri, slot, estate, false, conflict != nullptr, conflict, arbiters, false);
#else
    return ExecInsertIndexTuples(rri, slot, estate, false, conflict != nullptr, conflict, arbiters);
#endif
}

// True when no row with the slot's key is in the arbiter indexes (a
// committed one, or one in progress: then waited for first), as INSERT ...
// ON CONFLICT looks before it inserts; the result relation's indexes opened
// with their speculative-insertion information. PostgreSQL 18 added the
// argument tupleid (a row an update may find, for logical replication).
inline bool no_conflict(ResultRelInfo* rri, TupleTableSlot* slot, EState* estate, List* arbiters) {
    ItemPointerData conflict;
#if PG_VERSION_NUM >= 180000
    return ExecCheckIndexConstraints(rri, slot, estate, &conflict, nullptr, arbiters);
#else
    return ExecCheckIndexConstraints(rri, slot, estate, &conflict, arbiters);
#endif
}

// The CHECK constraints' expression states of a result relation, which
// ExecConstraints builds on its first row when they are NULL (one for each
// of the relation's constraints, in order; NULL: not checked). PostgreSQL 18
// renamed the field, skips the constraints declared NOT ENFORCED, and expands
// virtual generated columns in them.
inline ExprState**& check_constraint_states(ResultRelInfo* rri) {
#if PG_VERSION_NUM >= 180000
    return rri->ri_CheckConstraintExprs;
#else
    return rri->ri_ConstraintExprs;
#endif
}
inline bool check_constraint_enforced(const ConstrCheck& check) {
#if PG_VERSION_NUM >= 180000
    return check.ccenforced;
#else
    (void)check;
    return true;
#endif
}
inline bool has_virtual_generated(const TupleConstr* constr) {
#if PG_VERSION_NUM >= 180000
    return constr->has_generated_virtual;
#else
    (void)constr;
    return false;
#endif
}

// An index scan. PostgreSQL 18 added the instrumentation argument (for
// EXPLAIN ANALYZE's index searches count; none here).
inline IndexScanDesc index_beginscan(Relation heap, Relation index, Snapshot snapshot, int nkeys, int norderbys) {
#if PG_VERSION_NUM >= 180000
    return ::index_beginscan(heap, index, snapshot, nullptr, nkeys, norderbys);
#else
    return ::index_beginscan(heap, index, snapshot, nkeys, norderbys);
#endif
}

// Walkers over a parse tree (optout._check_statement). PostgreSQL 15
// declares the walker as bool (*)(), which C++ reads as taking no argument;
// PostgreSQL 16 made them macros over a typed callback.
using TreeWalker = bool (*)(Node*, void*);
inline bool query_walk(Query* q, TreeWalker walker, void* context) {
#if PG_VERSION_NUM >= 160000
    return query_tree_walker(q, walker, context, 0);
#else
    return ::query_tree_walker(q, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(walker)), context, 0);
#endif
}
inline bool expression_walk(Node* node, TreeWalker walker, void* context) {
#if PG_VERSION_NUM >= 160000
    return expression_tree_walker(node, walker, context);
#else
    return ::expression_tree_walker(node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(walker)), context);
#endif
}

// The current role may do what a query asks of the relations of its range
// table (not of its subqueries'), or an error. PostgreSQL 16 moved the
// privileges asked from the range table entries to rteperminfos.
inline void check_query_permissions(Query* q) {
#if PG_VERSION_NUM >= 160000
    (void)ExecCheckPermissions(q->rtable, q->rteperminfos, true);
#else
    (void)ExecCheckRTPerms(q->rtable, true);
#endif
}

}  // namespace optout_pg::compat
