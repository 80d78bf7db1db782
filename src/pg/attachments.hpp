// The cache of optout.attachments (attachments.cpp): what each attachment
// says, the statements it runs on its table (prepared once per backend), and
// per relation its triggers fire on (the attached table or one of its
// partitions) the column numbers and converted values. Plain data in a memory
// context of its own under CacheMemoryContext.
#pragma once

#include "glue.hpp"
#include "spi.hpp"

namespace optout_pg {

enum AttachmentKind { kInbound, kOutbound, kContacts, kGroups, kDeliveryErrors, kOptouts };
enum OnBlocked { kError, kSkip, kMark };

// The statements an attachment runs on its table, prepared from
// optout._action_sql() by name (NULL: the attachment has none of that name).
struct ActionPlans {
    SPIPlanPtr contacts_stop;         // contacts: status becomes stopped_value
    SPIPlanPtr contacts_start;        // contacts: status back to active_value
    SPIPlanPtr groups_leave;          // groups: leave every group but the Stopped group
    SPIPlanPtr groups_join_stopped;   // groups: join the Stopped group
    SPIPlanPtr groups_start;          // groups: leave the Stopped group
    SPIPlanPtr outbound_fail_queued;  // outbound: fail the queued messages
    SPIPlanPtr optouts_stop;          // optouts: write the platform's opt-out row
    SPIPlanPtr optouts_start;         // optouts: remove the platform's opt-out rows
};
// Column numbers and converted values for one relation (an attached table or
// one of its partitions: their column numbers may differ).
struct RelInfo {
    Oid relid;
    AttrNumber contact, channel, body, status, code, provider, event;
    AttrNumber organization;  // keyed attachments: the organization column
    Oid contact_type, channel_type, status_type;
    int nmark;
    int* mark_cols;  // heap_modify_tuple_by_cols wants int
    Datum* mark_values;
    bool* mark_nulls;
    Datum stopped_value, active_value;
    RelInfo* next;
};

struct Attachment {
    int id;
    Oid relid;
    AttachmentKind kind;
    char* table_name;  // quoted, schema-qualified
    char* contact_col;
    char* channel_col;
    char* body_col;
    int mode;  // fixed at attach; -1 (never stored for inbound): standard
    bool channel_scope;
    OnBlocked on_blocked;
    int nmark;
    char** mark_cols;
    char** mark_values;
    char* status_col;
    char* stopped_value;
    char* active_value;
    char* code_col;
    char* provider;
    char* provider_col;
    char* event_col;
    int nstop_events;
    char** stop_events;
    char* stopped_group;
    char* stopped_group_query;
    SPIPlanPtr group_plan;  // the stopped_group_query, $1 one contact key
    // The same planned once (generic), when first needed, and watched as
    // few's plans are (apply.cpp, stopped_groups()).
    SPIPlanPtr group_plan_once;
    mutable PlanWatch group_watch;
    // inbound: does a review-intent reply record a review (review => false:
    // never); review_unless_plan, when given, is a query ($1 the contact key)
    // that returns a row when the contact is answering a question: no review.
    bool review;
    SPIPlanPtr review_unless_plan;
    SPIPlanPtr lock_plan;                 // contacts: locks the contacts' rows (apply.cpp), prepared when first needed
    SPIPlanPtr lock_plan_nowait;          // the same, NOWAIT
    SPIPlanPtr lock_one_plan;             // the same for one contact, planned once (generic), as few's plans
    SPIPlanPtr lock_one_plan_nowait;      // ... NOWAIT
    mutable PlanWatch lock_one_watch[2];  // the tables of lock_one_plan, lock_one_plan_nowait
    ActionPlans plans;                    // planned at every execution (custom plans)
    ActionPlans few;                      // the same for one contact, planned once (generic): see plan_for()
    mutable PlanWatch few_watch[8];       // the tables of each of few's plans (in kActionNames' order)
    RelInfo* rels;
    Oid owner;  // of the table: its statements run as this role
    // A contact known by phone number and/or organization (docs/spoke.md):
    // the ledger's key of a row is optout._row_key(), not the contact column.
    bool keyed;
    char* organization_col;
};

// The attachment with this id (NULL: none), from the cache (rebuilt first
// when stale, unless pinned).
Attachment* find_attachment(int id);
// Every attachment, in id order, from the cache (rebuilt first when stale,
// unless pinned); *n gets their number.
Attachment* all_attachments(int* n);
// While apply_changes walks the attachments, the statements it runs may fire
// optout's triggers again: the cache is pinned then and not rebuilt under it
// (that would free what it walks); a stale cache is rebuilt at the next call
// after. Unpin in PG_FINALLY: an error must unpin it on the way out.
void pin_attachments();
void unpin_attachments();
// Runs a query of an attachment that takes one contact key ($1, text), as
// the table's owner with search_path pinned, read-only, on the latest
// committed state: does it return a row? (apply.cpp)
bool contact_query_finds(const Attachment* a, SPIPlanPtr plan, const char* contact);
// Applies the contact-wide stops already in the ledger to a contacts or
// groups attachment (status; groups left, Stopped group joined), as a stop
// would: returns the number of the table's rows it changed. (apply.cpp)
int64 apply_existing_stops(Attachment* a);
// The plan to run one of a's statements (a field of a->plans) with for a
// batch of n contacts: the statement as prepared (planned afresh at every
// execution, for the size of its batch) or, for one contact, its twin in
// a->few (the statement for a single contact, attachments.cpp), planned once
// for the backend and again when a table it reads has grown (*watch then
// gets the twin's PlanWatch, for generic_plan_usable() and
// generic_plan_ran(); else NULL). Planning every statement afresh was 44% of
// a stop's instructions (bench/profile.sh).
SPIPlanPtr plan_for(const Attachment* a, SPIPlanPtr plan, int n, PlanWatch** watch);
// The contact key type of the first attachment (InvalidOid: none).
Oid attached_contact_type();
// The relation's column numbers for the attachment, cached; errors when the
// relation is neither the attached table nor one of its partitions.
RelInfo* rel_info(Attachment* a, Relation rel);

}  // namespace optout_pg
