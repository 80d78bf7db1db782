// plan_changes: a batch of stops, starts and help requests planned with the
// same outcome as applying them one by one in order (optout/changes.hpp).
#include "optout/changes.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using optout::Change;
using optout::ChangeKind;
using optout::ChangeOutcome;
using optout::ChangePlan;
using optout::ContactPlan;
using optout::FinalState;
using optout::LedgerRow;
using optout::plan_changes;

using Channel = std::optional<std::string_view>;
using Idx = std::vector<std::size_t>;

constexpr Channel kAll = std::nullopt;

Change stop(std::string_view contact, Channel channel = kAll) {
    return Change{ChangeKind::Stop, contact, channel, false};
}
Change provider_stop(std::string_view contact, Channel channel = kAll) {
    return Change{ChangeKind::Stop, contact, channel, true};
}
Change start(std::string_view contact, Channel channel = kAll) {
    return Change{ChangeKind::Start, contact, channel, false};
}
Change help(std::string_view contact, Channel channel = kAll) {
    return Change{ChangeKind::Help, contact, channel, false};
}

const ContactPlan* find_contact(const ChangePlan& p, std::string_view contact) {
    for (const ContactPlan& c : p.contacts)
        if (c.contact == contact) return &c;
    return nullptr;
}

void expect_outcome(const ChangeOutcome& o, bool event, bool result, bool contact_wide) {
    EXPECT_EQ(o.event, event);
    EXPECT_EQ(o.result, result);
    EXPECT_EQ(o.contact_wide, contact_wide);
}

// ------------------------------------------------------------- stops

TEST(PlanChanges, ContactWideStopOnEmptyLedger) {
    ChangePlan p = plan_changes({stop("c1")}, {});
    ASSERT_EQ(p.outcomes.size(), 1u);
    expect_outcome(p.outcomes[0], true, true, false);
    EXPECT_EQ(p.ledger_insert, Idx({0}));
    EXPECT_TRUE(p.ledger_delete.empty());
    ASSERT_EQ(p.contacts.size(), 1u);
    EXPECT_EQ(p.contacts[0].contact, "c1");
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Stopped);
    EXPECT_TRUE(p.contacts[0].left_groups);
    EXPECT_EQ(p.stopped_scopes, Idx({0}));
}

TEST(PlanChanges, StopWhenAlreadyStoppedContactWide) {
    ChangePlan p = plan_changes({stop("c1")}, {{"c1", kAll}});
    ASSERT_EQ(p.outcomes.size(), 1u);
    expect_outcome(p.outcomes[0], true, false, false);
    EXPECT_TRUE(p.ledger_insert.empty());
    EXPECT_TRUE(p.ledger_delete.empty());
    ASSERT_EQ(p.contacts.size(), 1u);
    // The platform actions still run.
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Stopped);
    EXPECT_TRUE(p.contacts[0].left_groups);
    EXPECT_EQ(p.stopped_scopes, Idx({0}));
}

TEST(PlanChanges, ChannelStopWhenStoppedContactWideAddsChannelRow) {
    // The ledger is unique on (contact, channel): a channel row is a new row
    // even when a contact-wide one exists.
    ChangePlan p = plan_changes({stop("c1", "sms")}, {{"c1", kAll}});
    expect_outcome(p.outcomes[0], true, true, false);
    EXPECT_EQ(p.ledger_insert, Idx({0}));
    EXPECT_TRUE(p.ledger_delete.empty());
    ASSERT_EQ(p.contacts.size(), 1u);
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Untouched);
    EXPECT_FALSE(p.contacts[0].left_groups);
}

TEST(PlanChanges, ProviderStopWhenStoppedContactWideIsNotNew) {
    // Contact-wide provider stop, and one on a channel: a contact-wide stop
    // covers every channel.
    ChangePlan p = plan_changes({provider_stop("c1"), provider_stop("c2", "sms")}, {{"c1", kAll}, {"c2", kAll}});
    ASSERT_EQ(p.outcomes.size(), 2u);
    expect_outcome(p.outcomes[0], false, false, false);
    expect_outcome(p.outcomes[1], false, false, false);
    EXPECT_TRUE(p.ledger_insert.empty());
    EXPECT_TRUE(p.ledger_delete.empty());
    // apply_stop runs the platform actions either way.
    ASSERT_EQ(p.contacts.size(), 2u);
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Stopped);
    EXPECT_TRUE(p.contacts[0].left_groups);
    EXPECT_EQ(p.contacts[1].final_state, FinalState::Untouched);
    EXPECT_FALSE(p.contacts[1].left_groups);
    EXPECT_EQ(p.stopped_scopes, Idx({0, 1}));
}

TEST(PlanChanges, ProviderStopWhenStoppedOnSameChannelIsNotNew) {
    ChangePlan p = plan_changes({provider_stop("c1", "sms")}, {{"c1", "sms"}});
    expect_outcome(p.outcomes[0], false, false, false);
    EXPECT_TRUE(p.ledger_insert.empty());
    EXPECT_TRUE(p.ledger_delete.empty());
}

TEST(PlanChanges, ProviderStopWhenStoppedOnAnotherChannelIsNew) {
    ChangePlan p = plan_changes({provider_stop("c1", "sms")}, {{"c1", "whatsapp"}});
    expect_outcome(p.outcomes[0], true, true, false);
    EXPECT_EQ(p.ledger_insert, Idx({0}));
    EXPECT_TRUE(p.ledger_delete.empty());
    EXPECT_EQ(p.stopped_scopes, Idx({0}));
}

TEST(PlanChanges, ContactWideProviderStopWhenStoppedOnlyOnAChannelIsNew) {
    // Not stopped for every channel: the contact-wide stop is new.
    ChangePlan p = plan_changes({provider_stop("c1")}, {{"c1", "sms"}});
    expect_outcome(p.outcomes[0], true, true, false);
    EXPECT_EQ(p.ledger_insert, Idx({0}));
    EXPECT_TRUE(p.ledger_delete.empty());
    ASSERT_EQ(p.contacts.size(), 1u);
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Stopped);
    EXPECT_TRUE(p.contacts[0].left_groups);
}

TEST(PlanChanges, ProviderStopAfterStopInSameBatchIsNotNew) {
    ChangePlan p = plan_changes({stop("c1"), provider_stop("c1", "sms")}, {});
    expect_outcome(p.outcomes[0], true, true, false);
    expect_outcome(p.outcomes[1], false, false, false);
    EXPECT_EQ(p.ledger_insert, Idx({0}));
    EXPECT_EQ(p.stopped_scopes, Idx({0, 1}));
}

TEST(PlanChanges, ProviderStopAfterStartInSameBatchIsNew) {
    ChangePlan p = plan_changes({start("c1"), provider_stop("c1")}, {{"c1", kAll}});
    expect_outcome(p.outcomes[0], true, true, true);
    expect_outcome(p.outcomes[1], true, true, false);
    EXPECT_EQ(p.ledger_delete, Idx({0}));
    EXPECT_EQ(p.ledger_insert, Idx({1}));
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Stopped);
}

TEST(PlanChanges, RepeatedStopInBatchAddsOneRow) {
    ChangePlan p = plan_changes({stop("c1"), stop("c1")}, {});
    expect_outcome(p.outcomes[0], true, true, false);
    expect_outcome(p.outcomes[1], true, false, false);
    EXPECT_EQ(p.ledger_insert, Idx({0}));
    EXPECT_EQ(p.stopped_scopes, Idx({0}));
    ASSERT_EQ(p.contacts.size(), 1u);
}

// ------------------------------------------------------------- starts

TEST(PlanChanges, StartLiftsContactWideStopFromLedger) {
    ChangePlan p = plan_changes({start("c1")}, {{"other", kAll}, {"c1", kAll}});
    ASSERT_EQ(p.outcomes.size(), 1u);
    expect_outcome(p.outcomes[0], true, true, true);
    EXPECT_EQ(p.ledger_delete, Idx({1}));
    EXPECT_TRUE(p.ledger_insert.empty());
    ASSERT_EQ(p.contacts.size(), 1u);
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Started);
    EXPECT_FALSE(p.contacts[0].left_groups);
    EXPECT_TRUE(p.stopped_scopes.empty());
}

TEST(PlanChanges, StartWithChannelLiftsThatChannelAndContactWideOnly) {
    std::vector<LedgerRow> ledger = {{"c1", "whatsapp"}, {"c1", kAll}, {"c1", "sms"}};
    ChangePlan p = plan_changes({start("c1", "sms")}, ledger);
    expect_outcome(p.outcomes[0], true, true, true);
    EXPECT_EQ(p.ledger_delete, Idx({1, 2}));
    EXPECT_TRUE(p.ledger_insert.empty());
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Started);
}

TEST(PlanChanges, StartWithChannelLiftsOnlyThatChannel) {
    std::vector<LedgerRow> ledger = {{"c1", "sms"}, {"c1", "whatsapp"}};
    ChangePlan p = plan_changes({start("c1", "sms")}, ledger);
    // A stop was lifted, but not a contact-wide one.
    expect_outcome(p.outcomes[0], true, true, false);
    EXPECT_EQ(p.ledger_delete, Idx({0}));
    ASSERT_EQ(p.contacts.size(), 1u);
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Untouched);
}

TEST(PlanChanges, StartWithChannelNotStoppedThereLiftsNothing) {
    ChangePlan p = plan_changes({start("c1", "sms")}, {{"c1", "whatsapp"}});
    expect_outcome(p.outcomes[0], false, false, false);  // lifted nothing: no event
    EXPECT_TRUE(p.ledger_delete.empty());
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Untouched);
}

TEST(PlanChanges, StartWithoutChannelLiftsEveryRowOfTheContact) {
    std::vector<LedgerRow> ledger = {{"c1", "sms"}, {"c2", kAll}, {"c1", kAll}, {"c1", "whatsapp"}};
    ChangePlan p = plan_changes({start("c1")}, ledger);
    expect_outcome(p.outcomes[0], true, true, true);
    EXPECT_EQ(p.ledger_delete, Idx({0, 2, 3}));
    EXPECT_TRUE(p.ledger_insert.empty());
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Started);
}

TEST(PlanChanges, StartWithoutChannelLiftsChannelRowsOnly) {
    ChangePlan p = plan_changes({start("c1")}, {{"c1", "sms"}, {"c1", "whatsapp"}});
    expect_outcome(p.outcomes[0], true, true, false);
    EXPECT_EQ(p.ledger_delete, Idx({0, 1}));
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Untouched);
}

TEST(PlanChanges, StartWhenNothingStopped) {
    ChangePlan p = plan_changes({start("c1")}, {{"c2", kAll}});
    ASSERT_EQ(p.outcomes.size(), 1u);
    expect_outcome(p.outcomes[0], false, false, false);  // a no-op start records nothing
    EXPECT_TRUE(p.ledger_delete.empty());
    EXPECT_TRUE(p.ledger_insert.empty());
    ASSERT_EQ(p.contacts.size(), 1u);
    EXPECT_EQ(p.contacts[0].contact, "c1");
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Untouched);
    EXPECT_FALSE(p.contacts[0].left_groups);
    EXPECT_FALSE(p.contacts[0].lifted);
    EXPECT_TRUE(p.stopped_scopes.empty());
}

TEST(PlanChanges, SecondStartLiftsNothing) {
    ChangePlan p = plan_changes({start("c1"), start("c1")}, {{"c1", kAll}});
    expect_outcome(p.outcomes[0], true, true, true);
    expect_outcome(p.outcomes[1], false, false, false);  // lifted nothing: no event
    EXPECT_EQ(p.ledger_delete, Idx({0}));
    // The second start lifted nothing: the last contact-wide action stays
    // the first start.
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Started);
    // Lifted, but never stopped in the batch: one state's statements only.
    EXPECT_TRUE(p.contacts[0].lifted);
    EXPECT_FALSE(p.contacts[0].left_groups);
}

// ------------------------------------------------------------- sequences

TEST(PlanChanges, StopThenStartNewContact) {
    ChangePlan p = plan_changes({stop("c1"), start("c1")}, {});
    expect_outcome(p.outcomes[0], true, true, false);
    expect_outcome(p.outcomes[1], true, true, true);
    EXPECT_TRUE(p.ledger_insert.empty());
    EXPECT_TRUE(p.ledger_delete.empty());
    ASSERT_EQ(p.contacts.size(), 1u);
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Started);
    EXPECT_TRUE(p.contacts[0].left_groups);
    // Stopped and started: the platform's statements of both states run.
    EXPECT_TRUE(p.contacts[0].lifted);
    EXPECT_EQ(p.stopped_scopes, Idx({0}));
}

TEST(PlanChanges, StartThenStopWithLedgerRow) {
    ChangePlan p = plan_changes({start("c1"), stop("c1")}, {{"c1", kAll}});
    expect_outcome(p.outcomes[0], true, true, true);
    expect_outcome(p.outcomes[1], true, true, false);
    EXPECT_EQ(p.ledger_delete, Idx({0}));
    EXPECT_EQ(p.ledger_insert, Idx({1}));
    ASSERT_EQ(p.contacts.size(), 1u);
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Stopped);
    EXPECT_TRUE(p.contacts[0].left_groups);
    EXPECT_TRUE(p.contacts[0].lifted);
    EXPECT_EQ(p.stopped_scopes, Idx({1}));
}

TEST(PlanChanges, StopStartStopKeepsLastStopsRow) {
    ChangePlan p = plan_changes({stop("c1"), start("c1"), stop("c1")}, {});
    expect_outcome(p.outcomes[0], true, true, false);
    expect_outcome(p.outcomes[1], true, true, true);
    expect_outcome(p.outcomes[2], true, true, false);
    EXPECT_EQ(p.ledger_insert, Idx({2}));
    EXPECT_TRUE(p.ledger_delete.empty());
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Stopped);
    EXPECT_TRUE(p.contacts[0].lifted);
    // One scope: the index of its first stop.
    EXPECT_EQ(p.stopped_scopes, Idx({0}));
}

TEST(PlanChanges, ChannelStartLiftsInBatchContactWideStop) {
    ChangePlan p = plan_changes({stop("c1"), stop("c1", "sms"), stop("c1", "wa"), start("c1", "sms")}, {});
    expect_outcome(p.outcomes[3], true, true, true);
    EXPECT_EQ(p.ledger_insert, Idx({2}));
    EXPECT_TRUE(p.ledger_delete.empty());
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Started);
    EXPECT_TRUE(p.contacts[0].left_groups);
    EXPECT_EQ(p.stopped_scopes, Idx({0, 1, 2}));
}

// ------------------------------------------------------------- channels, help, contacts

TEST(PlanChanges, ChannelScopedStops) {
    std::vector<Change> changes = {stop("c1", "sms"), stop("c1", "sms"), stop("c1", "wa"), stop("c2", "sms")};
    ChangePlan p = plan_changes(changes, {});
    expect_outcome(p.outcomes[0], true, true, false);
    expect_outcome(p.outcomes[1], true, false, false);
    expect_outcome(p.outcomes[2], true, true, false);
    expect_outcome(p.outcomes[3], true, true, false);
    EXPECT_EQ(p.ledger_insert, Idx({0, 2, 3}));
    EXPECT_TRUE(p.ledger_delete.empty());
    ASSERT_EQ(p.contacts.size(), 2u);
    for (const ContactPlan& c : p.contacts) {
        EXPECT_EQ(c.final_state, FinalState::Untouched) << c.contact;
        EXPECT_FALSE(c.left_groups) << c.contact;
    }
    EXPECT_EQ(p.stopped_scopes, Idx({0, 2, 3}));
}

TEST(PlanChanges, ChannelsComparedByContentNotAddress) {
    std::string sms1 = "sms", sms2 = "sms", c1 = "c1", c1b = "c1";
    ChangePlan p = plan_changes({stop(c1, std::string_view(sms1)), stop(c1b, std::string_view(sms2))},
                                {{std::string_view(c1b), std::string_view(sms2)}});
    expect_outcome(p.outcomes[0], true, false, false);
    expect_outcome(p.outcomes[1], true, false, false);
    EXPECT_TRUE(p.ledger_insert.empty());
    ASSERT_EQ(p.contacts.size(), 1u);
    EXPECT_EQ(p.stopped_scopes, Idx({0}));
}

TEST(PlanChanges, HelpRequests) {
    ChangePlan p = plan_changes({help("c1"), help("c2", "sms")}, {{"c1", kAll}});
    ASSERT_EQ(p.outcomes.size(), 2u);
    expect_outcome(p.outcomes[0], true, false, false);
    expect_outcome(p.outcomes[1], true, false, false);
    EXPECT_TRUE(p.contacts.empty());
    EXPECT_TRUE(p.ledger_insert.empty());
    EXPECT_TRUE(p.ledger_delete.empty());
    EXPECT_TRUE(p.stopped_scopes.empty());
}

TEST(PlanChanges, ReviewsRecordAnEventAndChangeNothing) {
    const Change review{ChangeKind::Review, "c1", std::nullopt, false};
    const Change review_sms{ChangeKind::Review, "c2", std::string_view("sms"), false};
    ChangePlan p = plan_changes({review, review_sms, stop("c3")}, {{"c1", kAll}});
    ASSERT_EQ(p.outcomes.size(), 3u);
    expect_outcome(p.outcomes[0], true, false, false);
    expect_outcome(p.outcomes[1], true, false, false);
    ASSERT_EQ(p.contacts.size(), 1u);  // only the stop's contact
    EXPECT_EQ(p.contacts[0].contact, "c3");
    EXPECT_TRUE(p.ledger_delete.empty());  // c1 stays stopped, nothing lifted
    EXPECT_EQ(p.ledger_insert, Idx({2}));
    EXPECT_EQ(p.stopped_scopes, Idx({2}));
}

TEST(PlanChanges, HelpDoesNotCountAsFirstSeen) {
    ChangePlan p = plan_changes({help("c1"), stop("c2"), start("c1")}, {{"c1", kAll}});
    expect_outcome(p.outcomes[0], true, false, false);
    ASSERT_EQ(p.contacts.size(), 2u);
    EXPECT_EQ(p.contacts[0].contact, "c2");
    EXPECT_EQ(p.contacts[1].contact, "c1");
    EXPECT_EQ(p.ledger_delete, Idx({0}));
    EXPECT_EQ(p.ledger_insert, Idx({1}));
}

TEST(PlanChanges, EmptyBatch) {
    ChangePlan p = plan_changes({}, {{"c1", kAll}});
    EXPECT_TRUE(p.outcomes.empty());
    EXPECT_TRUE(p.ledger_delete.empty());
    EXPECT_TRUE(p.ledger_insert.empty());
    EXPECT_TRUE(p.contacts.empty());
    EXPECT_TRUE(p.stopped_scopes.empty());
}

TEST(PlanChanges, LedgerRowsOfOtherContactsIgnoredAndInsertInRequestOrder) {
    std::vector<LedgerRow> ledger = {{"x", kAll}, {"y", "sms"}, {"z", kAll}};
    std::vector<Change> changes = {stop("c3"), stop("c1", "sms"), stop("c2"), start("c9"), stop("c1")};
    ChangePlan p = plan_changes(changes, ledger);
    EXPECT_EQ(p.ledger_insert, Idx({0, 1, 2, 4}));
    EXPECT_TRUE(p.ledger_delete.empty());
    expect_outcome(p.outcomes[3], false, false, false);  // c9 was not stopped: no event
    ASSERT_EQ(p.contacts.size(), 4u);
    EXPECT_EQ(find_contact(p, "x"), nullptr);
    EXPECT_EQ(find_contact(p, "y"), nullptr);
    EXPECT_EQ(find_contact(p, "z"), nullptr);
}

TEST(PlanChanges, InterleavedContactsFirstSeenFirst) {
    std::vector<Change> changes = {stop("b"),  start("a"), stop("c", "sms"), stop("a"),
                                   start("b"), help("d"),  stop("c"),        start("a", "sms")};
    std::vector<LedgerRow> ledger = {{"a", kAll}, {"b", "sms"}};
    ChangePlan p = plan_changes(changes, ledger);
    ASSERT_EQ(p.contacts.size(), 3u);
    EXPECT_EQ(p.contacts[0].contact, "b");
    EXPECT_EQ(p.contacts[1].contact, "a");
    EXPECT_EQ(p.contacts[2].contact, "c");

    expect_outcome(p.outcomes[0], true, true, false);   // b: new contact-wide row
    expect_outcome(p.outcomes[1], true, true, true);    // a: lifts ledger row 0
    expect_outcome(p.outcomes[2], true, true, false);   // c/sms
    expect_outcome(p.outcomes[3], true, true, false);   // a: stopped again
    expect_outcome(p.outcomes[4], true, true, true);    // b: lifts its in-batch row and ledger row 1
    expect_outcome(p.outcomes[5], true, false, false);  // help
    expect_outcome(p.outcomes[6], true, true, false);   // c: contact-wide
    expect_outcome(p.outcomes[7], true, true, true);    // a/sms: lifts a's contact-wide row from 3

    EXPECT_EQ(p.ledger_delete, Idx({0, 1}));
    EXPECT_EQ(p.ledger_insert, Idx({2, 6}));
    EXPECT_EQ(p.contacts[0].final_state, FinalState::Started);
    EXPECT_TRUE(p.contacts[0].left_groups);
    EXPECT_EQ(p.contacts[1].final_state, FinalState::Started);
    EXPECT_TRUE(p.contacts[1].left_groups);
    EXPECT_EQ(p.contacts[2].final_state, FinalState::Stopped);
    EXPECT_TRUE(p.contacts[2].left_groups);
    EXPECT_EQ(p.stopped_scopes, Idx({0, 2, 3, 6}));
}

// ------------------------------------------------------------- against a one-by-one model

// Applies the requests one by one to a ledger, as optout's apply_stop and
// apply_start do (ledger_is_stopped, ledger_add ON CONFLICT DO NOTHING,
// ledger_remove), and derives the plan from the result.
struct Model {
    using Key = std::pair<std::string, std::optional<std::string>>;
    struct Origin {
        bool initial;
        std::size_t index;
    };

    static Key key(std::string_view contact, Channel channel) {
        return {std::string(contact), channel ? std::optional<std::string>(std::string(*channel)) : std::nullopt};
    }

    static ChangePlan run(const std::vector<Change>& changes, const std::vector<LedgerRow>& ledger) {
        std::map<Key, Origin> rows;
        for (std::size_t i = 0; i < ledger.size(); i++)
            rows.emplace(key(ledger[i].contact, ledger[i].channel), Origin{true, i});
        ChangePlan plan;
        std::map<std::string, std::size_t> seen;
        std::set<Key> stopped_scopes;
        for (std::size_t i = 0; i < changes.size(); i++) {
            const Change& ch = changes[i];
            ChangeOutcome out;
            if (ch.kind == ChangeKind::Help) {
                plan.outcomes.push_back(out);
                continue;
            }
            std::string contact(ch.contact);
            auto [it, fresh] = seen.emplace(contact, plan.contacts.size());
            if (fresh) plan.contacts.push_back(ContactPlan{ch.contact});
            ContactPlan& cp = plan.contacts[it->second];
            if (ch.kind == ChangeKind::Stop) {
                bool already =
                    rows.count(key(contact, kAll)) > 0 || (ch.channel && rows.count(key(contact, ch.channel)) > 0);
                if (ch.only_if_new && already) {
                    out.event = false;
                } else {
                    out.result = rows.emplace(key(contact, ch.channel), Origin{false, i}).second;
                }
                if (stopped_scopes.insert(key(contact, ch.channel)).second) plan.stopped_scopes.push_back(i);
                if (!ch.channel) {
                    cp.left_groups = true;
                    cp.final_state = FinalState::Stopped;
                }
            } else {
                for (auto r = rows.begin(); r != rows.end();) {
                    bool match = r->first.first == contact &&
                                 (!ch.channel || !r->first.second || *r->first.second == *ch.channel);
                    if (!match) {
                        ++r;
                        continue;
                    }
                    out.result = true;
                    if (!r->first.second) out.contact_wide = true;
                    r = rows.erase(r);
                }
                if (out.result && out.contact_wide) cp.final_state = FinalState::Started;
                if (!out.result) out.event = false;
            }
            plan.outcomes.push_back(out);
        }
        std::set<std::size_t> kept;
        for (const auto& r : rows) {
            if (r.second.initial)
                kept.insert(r.second.index);
            else
                plan.ledger_insert.push_back(r.second.index);
        }
        for (std::size_t i = 0; i < ledger.size(); i++)
            if (!kept.count(i)) plan.ledger_delete.push_back(i);
        std::sort(plan.ledger_insert.begin(), plan.ledger_insert.end());
        return plan;
    }
};

std::string describe(const std::vector<Change>& changes, const std::vector<LedgerRow>& ledger) {
    std::string s = "ledger:";
    for (const LedgerRow& r : ledger)
        s += " (" + std::string(r.contact) + "," + std::string(r.channel.value_or("*")) + ")";
    s += "\nchanges:";
    for (const Change& c : changes) {
        s += c.kind == ChangeKind::Stop    ? (c.only_if_new ? " pstop(" : " stop(")
             : c.kind == ChangeKind::Start ? " start("
                                           : " help(";
        s += std::string(c.contact) + "," + std::string(c.channel.value_or("*")) + ")";
    }
    return s;
}

TEST(PlanChanges, MatchesOneByOneModelOnRandomBatches) {
    static constexpr std::string_view kContacts[] = {"a", "b", "c", "d"};
    static constexpr std::string_view kChannels[] = {"sms", "wa"};
    std::mt19937 rng(20260102);
    auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    auto channel = [&]() -> Channel {
        std::size_t k = pick(3);
        return k == 2 ? kAll : Channel(kChannels[k]);
    };

    for (int iter = 0; iter < 5000; iter++) {
        // A ledger unique on (contact, channel), with rows of a contact that
        // is not in the batch ("z").
        std::vector<LedgerRow> ledger;
        std::set<std::pair<std::string_view, Channel>> used;
        std::size_t nrows = pick(7);
        for (std::size_t r = 0; r < nrows; r++) {
            std::string_view c = pick(5) == 4 ? std::string_view("z") : kContacts[pick(4)];
            Channel ch = channel();
            if (used.emplace(c, ch).second) ledger.push_back(LedgerRow{c, ch});
        }
        std::vector<Change> changes;
        std::size_t n = pick(10);
        for (std::size_t i = 0; i < n; i++) {
            std::size_t k = pick(7);
            Change ch;
            ch.contact = kContacts[pick(4)];
            ch.channel = channel();
            ch.kind = k < 3 ? ChangeKind::Stop : k < 6 ? ChangeKind::Start : ChangeKind::Help;
            ch.only_if_new = ch.kind == ChangeKind::Stop && pick(2) == 0;
            changes.push_back(ch);
        }

        ChangePlan want = Model::run(changes, ledger);
        ChangePlan got = plan_changes(changes, ledger);
        SCOPED_TRACE(describe(changes, ledger));
        ASSERT_EQ(got.outcomes.size(), want.outcomes.size());
        for (std::size_t i = 0; i < want.outcomes.size(); i++) {
            SCOPED_TRACE("request " + std::to_string(i));
            EXPECT_EQ(got.outcomes[i].event, want.outcomes[i].event);
            EXPECT_EQ(got.outcomes[i].result, want.outcomes[i].result);
            EXPECT_EQ(got.outcomes[i].contact_wide, want.outcomes[i].contact_wide);
        }
        EXPECT_EQ(got.ledger_delete, want.ledger_delete);
        EXPECT_EQ(got.ledger_insert, want.ledger_insert);
        EXPECT_EQ(got.stopped_scopes, want.stopped_scopes);
        ASSERT_EQ(got.contacts.size(), want.contacts.size());
        for (std::size_t i = 0; i < want.contacts.size(); i++) {
            EXPECT_EQ(got.contacts[i].contact, want.contacts[i].contact);
            EXPECT_EQ(got.contacts[i].left_groups, want.contacts[i].left_groups);
            EXPECT_EQ(got.contacts[i].final_state, want.contacts[i].final_state);
        }
        if (HasFailure()) break;
    }
}

}  // namespace
