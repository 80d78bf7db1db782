// The changes the inbound row triggers collect (collect.cpp), applied per
// statement or before commit.
#pragma once

#include "apply.hpp"

namespace optout_pg {

// The stops, starts and help requests collected by the inbound trigger:
// applied by the statement trigger, or before commit (flush); forgotten at
// the end of the transaction; dropped with a rolled-back subtransaction of
// this nesting level or deeper.
void collect_change(const ChangeRequest& req);
void apply_collected_changes();  // by the statement trigger (a snapshot is active)
// (flush_collected_changes, forget_collected_changes and
// drop_collected_changes: the end-of-transaction hooks, xact.hpp.)

}  // namespace optout_pg
