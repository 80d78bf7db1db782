// See optout/changes.hpp.
#include "optout/changes.hpp"

#include <algorithm>
#include <string>
#include <unordered_map>

namespace optout {

namespace {

constexpr std::size_t kNone = static_cast<std::size_t>(-1);

struct Scope {
    std::optional<std::string_view> channel;
    bool present = false;
    std::size_t initial = kNone;   // its row in the given ledger
    bool initial_gone = false;     // that row was lifted
    std::size_t added_by = kNone;  // the stop whose row it is now
    bool stopped_here = false;     // some stop of the batch had this scope
};

struct ContactState {
    std::vector<Scope> scopes;
    std::size_t plan = kNone;  // index in ChangePlan::contacts
};

Scope& scope_of(ContactState& c, const std::optional<std::string_view>& channel) {
    for (Scope& s : c.scopes)
        if (s.channel == channel) return s;
    c.scopes.push_back(Scope{channel});
    return c.scopes.back();
}

bool stopped_for(const ContactState& c, const std::optional<std::string_view>& channel) {
    for (const Scope& s : c.scopes)
        if (s.present && (!s.channel || s.channel == channel)) return true;
    return false;
}

}  // namespace

ChangePlan plan_changes(const std::vector<Change>& changes, const std::vector<LedgerRow>& ledger) {
    ChangePlan plan;
    plan.outcomes.resize(changes.size());
    std::unordered_map<std::string_view, ContactState> contacts;
    contacts.reserve(changes.size() * 2 + 1);
    for (const Change& ch : changes) contacts.try_emplace(ch.contact);
    for (std::size_t i = 0; i < ledger.size(); i++) {
        auto it = contacts.find(ledger[i].contact);
        if (it == contacts.end()) continue;
        Scope& s = scope_of(it->second, ledger[i].channel);
        if (s.initial != kNone) continue;  // the ledger is unique on (contact, channel)
        s.present = true;
        s.initial = i;
    }

    for (std::size_t i = 0; i < changes.size(); i++) {
        const Change& ch = changes[i];
        ChangeOutcome& out = plan.outcomes[i];
        if (ch.kind == ChangeKind::Help || ch.kind == ChangeKind::Review) continue;
        ContactState& c = contacts[ch.contact];
        if (c.plan == kNone) {
            c.plan = plan.contacts.size();
            plan.contacts.push_back(ContactPlan{ch.contact});
        }
        ContactPlan& cp = plan.contacts[c.plan];
        if (ch.kind == ChangeKind::Stop) {
            if (ch.only_if_new && stopped_for(c, ch.channel)) {
                out.event = false;
            } else {
                Scope& s = scope_of(c, ch.channel);
                if (!s.present) {
                    s.present = true;
                    s.added_by = i;
                    out.result = true;
                }
            }
            Scope& s = scope_of(c, ch.channel);
            if (!s.stopped_here) {
                s.stopped_here = true;
                plan.stopped_scopes.push_back(i);
            }
            if (!ch.channel) {
                cp.left_groups = true;
                cp.final_state = FinalState::Stopped;
            }
        } else {
            for (Scope& s : c.scopes) {
                if (!s.present || (ch.channel && s.channel && s.channel != ch.channel)) continue;
                s.present = false;
                s.added_by = kNone;
                if (s.initial != kNone) s.initial_gone = true;
                out.result = true;
                if (!s.channel) out.contact_wide = true;
            }
            if (out.result && out.contact_wide) {
                cp.final_state = FinalState::Started;
                cp.lifted = true;
            }
            // A start that lifts nothing (an opt-in keyword from a contact
            // never stopped, a second START) records nothing.
            if (!out.result) out.event = false;
        }
    }

    for (auto& entry : contacts) {
        for (const Scope& s : entry.second.scopes) {
            if (s.initial != kNone && s.initial_gone) plan.ledger_delete.push_back(s.initial);
            if (s.present && s.added_by != kNone) plan.ledger_insert.push_back(s.added_by);
        }
    }
    std::sort(plan.ledger_delete.begin(), plan.ledger_delete.end());
    std::sort(plan.ledger_insert.begin(), plan.ledger_insert.end());
    return plan;
}

}  // namespace optout
