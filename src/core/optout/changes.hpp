// Planning a batch of stops, starts, help requests and reviews (a review, like
// a help request, records an event and changes nothing else).
//
// A statement can carry many opt-outs and opt-ins (a COPY of inbound
// messages). optout applies them once per statement, set-based, with the
// same outcome as applying them one by one in order. This is the pure part of
// that: given the ledger rows of the batch's contacts and the requests in
// order, it says what each request records, which ledger rows go and come,
// and what each contact's platform rows end as. No database access here.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

namespace optout {

enum class ChangeKind { Stop, Start, Help, Review };

struct Change {
    ChangeKind kind = ChangeKind::Help;
    std::string_view contact;
    // The scope: nullopt is every channel (contact-wide).
    std::optional<std::string_view> channel;
    // A provider error: recorded as a stop only if the contact is not already
    // stopped for the scope (a contact-wide stop covers every channel).
    bool only_if_new = false;
};

struct LedgerRow {
    std::string_view contact;
    std::optional<std::string_view> channel;
};

struct ChangeOutcome {
    bool event = true;          // the request records an event (not a start that lifted nothing)
    bool result = false;        // stop: the ledger gained the row; start: a stop was lifted
    bool contact_wide = false;  // start: a contact-wide stop was among those lifted
};

enum class FinalState { Untouched, Stopped, Started };

struct ContactPlan {
    std::string_view contact;
    bool left_groups = false;  // a contact-wide stop: the contact leaves every other group
    // The last contact-wide action: a stop (status stopped, in the Stopped
    // group) or a start that lifted a contact-wide stop (status active, out
    // of the Stopped group).
    FinalState final_state = FinalState::Untouched;
    // A start of the batch lifted a contact-wide stop. With left_groups, the
    // batch both stopped and started the contact: one request at a time, its
    // status would have changed (and changed back), so the platform's
    // statements for the other state run too (the touch column moves).
    bool lifted = false;
};

struct ChangePlan {
    std::vector<ChangeOutcome> outcomes;     // one per request, in order
    std::vector<std::size_t> ledger_delete;  // indexes of the given ledger rows that go
    std::vector<std::size_t> ledger_insert;  // stops (request indexes) whose row the ledger gains, in order
    std::vector<ContactPlan> contacts;       // every contact of a stop or start, first seen first
    // Each distinct (contact, scope) that was stopped, as the index of its
    // first stop: their queued messages fail.
    std::vector<std::size_t> stopped_scopes;
};

// `ledger` holds every row of optout.stops for the batch's contacts (others
// may be there too). Throws std::bad_alloc only.
ChangePlan plan_changes(const std::vector<Change>& changes, const std::vector<LedgerRow>& ledger);

}  // namespace optout
