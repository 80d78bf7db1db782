// The queue of collected changes: what a statement's row triggers collect,
// applied by its statement-level trigger (optout._flush), or before commit
// for rows that no statement trigger covers: the stops, starts and help
// requests of keyword messages, and the stops of provider opt-out errors.
// Kept in a memory context of their own under TopTransactionContext, freed
// once they are applied. A rolled-back subtransaction takes what it
// collected with it.
#include "apply.hpp"
#include "collect.hpp"
#include "glue.hpp"
#include "ledger.hpp"
#include "xact.hpp"

extern "C" {
#include "access/xact.h"
#include "utils/snapmgr.h"
}

namespace optout_pg {
namespace {

struct PendingChange {
    ChangeRequest req;
    int level;  // transaction nesting level that collected it
};

// Static: the queue lives through the transaction, across trigger calls; the
// end-of-transaction hooks (xact.cpp) forget or trim it.
PendingChange* pending_changes = nullptr;
int npending_changes = 0, cap_changes = 0;
MemoryContext pending_cxt = nullptr;

}  // namespace

// Called before commit (xact.cpp), before the blocked
// sends are recorded: rows inserted into a partition made after the attach
// and named directly (no statement trigger there) are applied before commit.
void flush_collected_changes() {
    if (npending_changes == 0) return;
    PushActiveSnapshot(GetTransactionSnapshot());  // no portal is active at pre-commit
    apply_collected_changes();
    PopActiveSnapshot();
}

void forget_collected_changes() {
    pending_changes = nullptr;
    npending_changes = cap_changes = 0;
    pending_cxt = nullptr;  // went with TopTransactionContext
}

void drop_collected_changes(int level) {
    int k = 0;
    for (int i = 0; i < npending_changes; i++)
        if (pending_changes[i].level < level) pending_changes[k++] = pending_changes[i];
    npending_changes = k;
}

namespace {

template <typename T>
T* grow(T* arr, int* cap, int need) {
    if (need <= *cap) return arr;
    int ncap = *cap ? *cap * 2 : 64;
    while (ncap < need) ncap *= 2;
    T* bigger = static_cast<T*>(MemoryContextAlloc(pending_cxt, sizeof(T) * ncap));
    if (arr) memcpy(bigger, arr, sizeof(T) * (*cap));
    *cap = ncap;
    return bigger;
}

char* xact_strdup(const char* s) { return s ? MemoryContextStrdup(pending_cxt, s) : nullptr; }

}  // namespace

void collect_change(const ChangeRequest& r) {
    if (!pending_cxt)
        pending_cxt = AllocSetContextCreate(TopTransactionContext, "optout pending changes", ALLOCSET_DEFAULT_SIZES);
    pending_changes = grow(pending_changes, &cap_changes, npending_changes + 1);
    PendingChange& p = pending_changes[npending_changes++];
    p.level = GetCurrentTransactionNestLevel();
    p.req = r;
    p.req.contact = xact_strdup(r.contact);
    p.req.channel = xact_strdup(r.channel);
    EventInfo& i = p.req.info;
    i.source = xact_strdup(i.source);
    i.body = xact_strdup(i.body);
    i.keyword = xact_strdup(i.keyword);
    i.language = xact_strdup(i.language);
    i.rule = xact_strdup(i.rule);
    i.provider = xact_strdup(i.provider);
    i.code = xact_strdup(i.code);
    i.table_name = xact_strdup(i.table_name);
    i.reason = xact_strdup(i.reason);
    i.detail = xact_strdup(i.detail);
    i.arrived_on = xact_strdup(i.arrived_on);
}

void apply_collected_changes() {
    while (npending_changes > 0) {
        // Take them, with their memory: what the statements they run collect
        // goes to a new list.
        PendingChange* changes = pending_changes;
        int n = npending_changes;
        MemoryContext cxt = pending_cxt;
        pending_changes = nullptr;
        npending_changes = cap_changes = 0;
        pending_cxt = nullptr;
        ChangeRequest* reqs = static_cast<ChangeRequest*>(palloc(sizeof(ChangeRequest) * n));
        for (int i = 0; i < n; i++) reqs[i] = changes[i].req;
        apply_changes(reqs, n, nullptr);
        MemoryContextDelete(cxt);
    }
}

}  // namespace optout_pg
