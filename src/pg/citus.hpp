// Citus (README "Citus", test/citus/run.sh): what the glue needs to know
// when optout's tables and the platform's are Citus tables. Without Citus
// every answer is "no" at the cost of one catalog name lookup.
#pragma once

#include "pg.hpp"

namespace optout_pg {

// Is Citus installed in this database (its catalog exists)? One name lookup.
bool citus_loaded();

// Is the table a Citus table (distributed or reference: its rows are in
// shards, which only a query through Citus reads)?
bool citus_table(Oid relid);

// When rel is a Citus shard (a table named <table>_<shardid> in the schema of
// a Citus table <table> that has that shard, with its owner), that table;
// else InvalidOid.
Oid citus_shard_parent(Relation rel);

// Inside enter_owner(): optout's own writes to its Citus tables from a
// trigger on a worker's shard (ledger to every node, events to the contact's
// shard) are nested distributed execution, which Citus refuses by default.
// Allows it at the current GUC nest level when Citus is loaded.
void citus_allow_nested();

}  // namespace optout_pg
