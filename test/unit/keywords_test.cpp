// KeywordSet: defaults, add(), conflicts, invalid keywords; the labels.
#include "optout/classifier.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using optout::classify;
using optout::Error;
using optout::Intent;
using optout::KeywordSet;
using optout::Match;
using optout::Mode;
using optout::Rule;

struct Def {
    const char* keyword;
    Intent intent;
    const char* language;
};

// The default keywords have one source, kDefaults in src/core/keywords.cpp
// (KeywordSet::defaults()). The two other places that list them are read
// here and checked against it: the INSERT of src/sql/classifier.sql (what
// CREATE EXTENSION loads into optout.keywords) and the table of
// docs/classifier.md, "Default keywords".
std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in.good()) << "cannot read " << path;
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

Intent intent_of(const std::string& label) {
    Intent i = Intent::None;
    EXPECT_TRUE(optout::parse_intent(label, i)) << label;
    return i;
}

// The rows of the INSERT INTO optout.keywords in src/sql/classifier.sql, in order.
std::vector<Def> sql_defaults() {
    static std::deque<std::string> keep;  // the strings Def points into (a deque: they never move)
    static std::vector<Def> rows;
    if (!rows.empty()) return rows;
    const std::string sql = read_file(std::string(OPTOUT_SOURCE_DIR) + "/src/sql/classifier.sql");
    const std::string head = "INSERT INTO optout.keywords (keyword, intent, language, is_default, note) VALUES";
    const std::size_t from = sql.find(head);
    EXPECT_NE(from, std::string::npos) << "classifier.sql has no INSERT of the defaults";
    if (from == std::string::npos) return rows;
    const std::string values = sql.substr(from + head.size(), sql.find(";\n", from) - from - head.size());
    const std::regex row(R"(\(\s*'([^']*)',\s*'(\w+)',\s*'(\w+)',\s*true,)");
    for (std::sregex_iterator it(values.begin(), values.end(), row), end; it != end; ++it) {
        keep.push_back((*it)[1]);
        const char* keyword = keep.back().c_str();
        const Intent intent = intent_of((*it)[2]);
        keep.push_back((*it)[3]);
        rows.push_back(Def{keyword, intent, keep.back().c_str()});
    }
    return rows;
}

// The rows of the table under "## Default keywords" in docs/classifier.md:
// (intent, language) -> keywords, in the order written.
std::vector<std::pair<std::string, std::string>> doc_defaults() {
    std::vector<std::pair<std::string, std::string>> out;  // (keyword, "intent/language")
    const std::string doc = read_file(std::string(OPTOUT_SOURCE_DIR) + "/docs/classifier.md");
    std::size_t pos = doc.find("\n## Default keywords\n");
    EXPECT_NE(pos, std::string::npos) << "docs/classifier.md has no \"Default keywords\" section";
    if (pos == std::string::npos) return out;
    const std::size_t stop = doc.find("\n## ", pos + 1);
    const std::regex line(R"(\n\| (opt_out|opt_in|help) \| (\w+) \| ([^|\n]+) \|)");
    const std::string section = doc.substr(pos, stop == std::string::npos ? std::string::npos : stop - pos);
    for (std::sregex_iterator it(section.begin(), section.end(), line), end; it != end; ++it) {
        std::stringstream words((*it)[3].str());
        std::string w;
        while (std::getline(words, w, ',')) {
            w.erase(0, w.find_first_not_of(' '));
            w.erase(w.find_last_not_of(' ') + 1);
            out.emplace_back(w, (*it)[1].str() + "/" + (*it)[2].str());
        }
    }
    return out;
}

std::string error_of(KeywordSet& set, const char* keyword, Intent intent, Error::Kind* kind = nullptr) {
    try {
        set.add(keyword, intent, "en");
    } catch (const Error& e) {
        if (kind) *kind = e.kind();
        return e.what();
    }
    return "";
}

TEST(KeywordSet, DefaultsAreTheInstallScriptsRows) {
    // classifier.sql's INSERT holds exactly defaults(): as many rows, each
    // read back as itself (keyword, intent, language).
    const KeywordSet set = KeywordSet::defaults();
    const std::vector<Def> rows = sql_defaults();
    EXPECT_EQ(set.size(), rows.size());
    for (const Def& d : rows) {
        const Match m = classify(d.keyword, Mode::Exact, set);
        EXPECT_EQ(m.intent, d.intent) << d.keyword;
        EXPECT_EQ(m.rule, Rule::Exact) << d.keyword;
        EXPECT_EQ(m.keyword, d.keyword);
        EXPECT_EQ(m.language, d.language) << d.keyword;
    }
    // Not defaults.
    for (const char* other : {"stops", "go", "arr", "hilfe", "ja", "anmelden", "abonner"})
        EXPECT_EQ(classify(other, Mode::Standard, set).intent, Intent::None) << other;
    // A lone "no" is not a keyword: it goes to review, never a stop.
    EXPECT_EQ(classify("no", Mode::Standard, set).intent, Intent::Review);
}

TEST(KeywordSet, DefaultsAreTheDocumentedList) {
    // docs/classifier.md's table lists exactly defaults().
    const KeywordSet set = KeywordSet::defaults();
    const auto documented = doc_defaults();
    EXPECT_EQ(documented.size(), set.size());
    for (const auto& [keyword, where] : documented) {
        const Match m = classify(keyword, Mode::Exact, set);
        EXPECT_EQ(std::string(optout::to_string(m.intent) ? optout::to_string(m.intent) : "none") + "/" + m.language,
                  where)
            << keyword;
        EXPECT_EQ(m.keyword, keyword);
    }
}

// What the SQL side does: the INSERT's rows added one at a time.
TEST(KeywordSet, AddingOneByOneEqualsDefaults) {
    KeywordSet mine;
    EXPECT_EQ(mine.size(), 0u);
    for (const Def& d : sql_defaults()) mine.add(d.keyword, d.intent, d.language);
    const KeywordSet defaults = KeywordSet::defaults();
    ASSERT_EQ(mine.size(), defaults.size());
    const std::vector<std::string> bodies = {
        "STOP",
        "stop all",
        "Stop-All",
        "ＳＴＯＰ",
        "Arrêt",
        "UN-STOP",
        "stop please",
        "stop it",
        "help",
        "info?",
        "Ayuda",
        "yes",
        "yes please",
        "remove me",
        "opt out",
        "opt-out",
        "nonarret",
        "I want to unsubscribe",
        "Cancel my appointment",
        "",
    };
    for (const std::string& b : bodies) {
        for (Mode mode : {Mode::Exact, Mode::Standard, Mode::Reasonable}) {
            const Match a = classify(b, mode, mine, true);
            const Match c = classify(b, mode, defaults, true);
            EXPECT_EQ(a.intent, c.intent) << b;
            EXPECT_EQ(a.rule, c.rule) << b;
            EXPECT_EQ(a.keyword, c.keyword) << b;
            EXPECT_EQ(a.language, c.language) << b;
            EXPECT_EQ(a.normalized, c.normalized) << b;
        }
    }
}

TEST(KeywordSet, AddCustomKeyword) {
    KeywordSet set = KeywordSet::defaults();
    set.add("Basta", Intent::OptOut, "it");
    EXPECT_EQ(set.size(), KeywordSet::defaults().size() + 1);
    Match m = classify("BASTA", Mode::Exact, set);
    EXPECT_EQ(m.intent, Intent::OptOut);
    EXPECT_EQ(m.keyword, "Basta");
    EXPECT_EQ(m.language, "it");
    EXPECT_EQ(classify("basta!", Mode::Standard, set).intent, Intent::OptOut);
    EXPECT_EQ(classify("basta grazie", Mode::Standard, set).intent, Intent::None);  // not a courtesy word
    EXPECT_EQ(classify("basta please", Mode::Standard, set).intent, Intent::OptOut);
    // Non-Latin keyword, matched through the same normalisation.
    set.add("توقف", Intent::OptOut, "ar");
    EXPECT_EQ(classify("تَوَقَّفْ", Mode::Standard, set).intent, Intent::OptOut);
    EXPECT_EQ(classify("تَوَقَّفْ", Mode::Exact, set).intent, Intent::None);  // exact keeps harakat
    EXPECT_EQ(classify("توقف", Mode::Exact, set).language, "ar");
}

TEST(KeywordSet, SameKeySameIntentIsAnotherSpelling) {
    KeywordSet set;
    set.add("opt out", Intent::OptOut, "en");
    EXPECT_NO_THROW(set.add("OPT-OUT", Intent::OptOut, "en"));
    EXPECT_NO_THROW(set.add("optout", Intent::OptOut, "en"));
    EXPECT_EQ(set.size(), 3u);
    // Re-adding an identical keyword is a no-op.
    EXPECT_NO_THROW(set.add("optout", Intent::OptOut, "en"));
    EXPECT_EQ(set.size(), 3u);
    // Each spelling is known to exact mode; the key reports the first.
    EXPECT_EQ(classify("opt-out", Mode::Exact, set).keyword, "OPT-OUT");
    EXPECT_EQ(classify("OPTOUT", Mode::Exact, set).keyword, "optout");
    EXPECT_EQ(classify("opt_out", Mode::Standard, set).keyword, "opt out");
}

TEST(KeywordSet, ConflictsAreErrors) {
    KeywordSet set = KeywordSet::defaults();
    Error::Kind kind = Error::Kind::Icu;
    EXPECT_EQ(error_of(set, "start", Intent::OptOut, &kind),
              "keyword \"start\" conflicts with keyword \"start\" (intent opt_in): a keyword "
              "belongs to exactly one intent");
    EXPECT_EQ(kind, Error::Kind::KeywordConflict);
    // The conflict is on the key, whatever the spelling.
    EXPECT_EQ(error_of(set, "S-T-O-P", Intent::Help),
              "keyword \"S-T-O-P\" conflicts with keyword \"stop\" (intent opt_out): a keyword "
              "belongs to exactly one intent");
    EXPECT_EQ(error_of(set, "ＨＥＬＰ", Intent::OptIn),
              "keyword \"ＨＥＬＰ\" conflicts with keyword \"help\" (intent help): a keyword "
              "belongs to exactly one intent");
    EXPECT_NE(error_of(set, "Stop All", Intent::OptIn), "");
    // A failed add leaves the set unchanged.
    EXPECT_EQ(set.size(), KeywordSet::defaults().size());
    EXPECT_EQ(classify("start", Mode::Standard, set).intent, Intent::OptIn);
    EXPECT_EQ(classify("stop", Mode::Standard, set).intent, Intent::OptOut);
    // Negative: no conflict for a different key or the same intent.
    EXPECT_EQ(error_of(set, "stopnow", Intent::OptIn), "");
    EXPECT_EQ(error_of(set, "STOP", Intent::OptOut), "");
}

TEST(KeywordSet, InvalidKeywords) {
    KeywordSet set;
    Error::Kind kind = Error::Kind::Icu;
    EXPECT_EQ(error_of(set, "!!!", Intent::OptOut, &kind), "keyword \"!!!\" has no letter or digit");
    EXPECT_EQ(kind, Error::Kind::InvalidKeyword);
    EXPECT_EQ(error_of(set, "", Intent::OptOut), "keyword \"\" has no letter or digit");
    EXPECT_EQ(error_of(set, "   ", Intent::OptOut), "keyword \"   \" has no letter or digit");
    EXPECT_EQ(error_of(set, "🛑", Intent::OptOut), "keyword \"🛑\" has no letter or digit");
    EXPECT_EQ(error_of(set, "\u200B", Intent::OptOut), "keyword \"\u200B\" has no letter or digit");
    EXPECT_EQ(error_of(set, "\u0301", Intent::OptOut), "keyword \"\u0301\" has no letter or digit");
    kind = Error::Kind::Icu;
    EXPECT_EQ(error_of(set, "stop", Intent::None, &kind),
              "keyword \"stop\" has no intent: it must be opt_out, opt_in or help");
    EXPECT_EQ(kind, Error::Kind::InvalidKeyword);
    EXPECT_NE(error_of(set, "stop", static_cast<Intent>(42)), "");
    const std::string long_kw(101, 'x');
    EXPECT_NE(error_of(set, long_kw.c_str(), Intent::OptOut).find("is too long"), std::string::npos);
    EXPECT_EQ(set.size(), 0u);
    // Negative: valid odd keywords are accepted.
    EXPECT_EQ(error_of(set, std::string(100, 'y').c_str(), Intent::OptOut), "");
    EXPECT_EQ(error_of(set, "7", Intent::Help), "");
    EXPECT_EQ(error_of(set, "  x  ", Intent::OptIn), "");
    EXPECT_EQ(set.size(), 3u);
}

TEST(KeywordSet, InvalidUtf8Keyword) {
    KeywordSet set;
    EXPECT_NO_THROW(set.add("st\xFFop", Intent::OptOut, "en"));
    EXPECT_EQ(classify("st\xFFop", Mode::Exact, set).intent, Intent::OptOut);
    EXPECT_EQ(classify("ST\xFEOP", Mode::Exact, set).intent, Intent::OptOut);  // both read as U+FFFD
}

TEST(KeywordSet, MoveOnly) {
    KeywordSet a = KeywordSet::defaults();
    KeywordSet b = std::move(a);
    EXPECT_EQ(b.size(), KeywordSet::defaults().size());
    EXPECT_EQ(classify("stop", Mode::Standard, b).intent, Intent::OptOut);
    KeywordSet c;
    c = std::move(b);
    EXPECT_EQ(classify("stop", Mode::Standard, c).intent, Intent::OptOut);
    // A moved-from set is empty but usable.
    EXPECT_EQ(a.size(), 0u);                                              // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(classify("stop", Mode::Standard, a).intent, Intent::None);  // NOLINT
    EXPECT_EQ(classify("leave me alone", Mode::Reasonable, a).intent, Intent::OptOut);  // NOLINT
    a.add("halt", Intent::OptOut, "en");                                                // NOLINT
    EXPECT_EQ(classify("HALT", Mode::Standard, a).intent, Intent::OptOut);
    static_assert(!std::is_copy_constructible_v<KeywordSet>);
    static_assert(std::is_nothrow_move_constructible_v<KeywordSet>);
}

TEST(KeywordSet, EmptySetMatchesNothing) {
    const KeywordSet empty;
    for (Mode mode : {Mode::Exact, Mode::Standard, Mode::Reasonable}) {
        const Match m = classify("STOP", mode, empty, true);
        EXPECT_EQ(m.intent, Intent::None);
        EXPECT_EQ(m.normalized, "stop");
    }
    // The request phrases of reasonable mode are built in, not keywords.
    const Match p = classify("leave me alone", Mode::Reasonable, empty);
    EXPECT_EQ(p.intent, Intent::OptOut);
    EXPECT_EQ(p.rule, Rule::Phrase);
    EXPECT_EQ(classify("leave me alone", Mode::Standard, empty).intent, Intent::None);
    EXPECT_EQ(classify("stop texting me", Mode::Reasonable, empty).intent, Intent::OptOut);
    EXPECT_EQ(classify("stop it", Mode::Reasonable, empty).intent, Intent::None);
}

TEST(Labels, ToStringAndParse) {
    EXPECT_STREQ(optout::to_string(Intent::OptOut), "opt_out");
    EXPECT_STREQ(optout::to_string(Intent::OptIn), "opt_in");
    EXPECT_STREQ(optout::to_string(Intent::Help), "help");
    EXPECT_EQ(optout::to_string(Intent::None), nullptr);
    EXPECT_STREQ(optout::to_string(Mode::Exact), "exact");
    EXPECT_STREQ(optout::to_string(Mode::Standard), "standard");
    EXPECT_STREQ(optout::to_string(Mode::Reasonable), "reasonable");
    EXPECT_STREQ(optout::to_string(Rule::Exact), "exact");
    EXPECT_STREQ(optout::to_string(Rule::Normalized), "normalized");
    EXPECT_STREQ(optout::to_string(Rule::Separator), "separator");
    EXPECT_STREQ(optout::to_string(Rule::Repeat), "repeat");
    EXPECT_STREQ(optout::to_string(Rule::Courtesy), "courtesy");
    EXPECT_STREQ(optout::to_string(Rule::Phrase), "phrase");
    EXPECT_EQ(optout::to_string(Rule::None), nullptr);

    Intent i = Intent::None;
    EXPECT_TRUE(optout::parse_intent("opt_out", i));
    EXPECT_EQ(i, Intent::OptOut);
    EXPECT_TRUE(optout::parse_intent("OPT_IN", i));
    EXPECT_EQ(i, Intent::OptIn);
    EXPECT_TRUE(optout::parse_intent("help", i));
    EXPECT_EQ(i, Intent::Help);
    EXPECT_FALSE(optout::parse_intent("optout", i));
    EXPECT_FALSE(optout::parse_intent("opt_out ", i));
    EXPECT_FALSE(optout::parse_intent("", i));
    EXPECT_FALSE(optout::parse_intent(std::string_view("help\0", 5), i));
    Mode m = Mode::Exact;
    EXPECT_TRUE(optout::parse_mode("reasonable", m));
    EXPECT_EQ(m, Mode::Reasonable);
    EXPECT_TRUE(optout::parse_mode("Standard", m));
    EXPECT_EQ(m, Mode::Standard);
    EXPECT_TRUE(optout::parse_mode("exact", m));
    EXPECT_EQ(m, Mode::Exact);
    EXPECT_FALSE(optout::parse_mode("strict", m));
    EXPECT_FALSE(optout::parse_mode("exac", m));
    EXPECT_FALSE(optout::parse_mode("exactly", m));
}

}  // namespace
