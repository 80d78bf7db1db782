// Every line of test/data/inbound.jsonl must pass in every mode.
//
// The file is JSON Lines: {"body": "...", "exact": "opt_out"|null,
// "standard": ..., "reasonable": ...}. A small hand-written parser reads it
// (objects of string/null values; strings with \" \\ \/ \b \f \n \r \t and
// \uXXXX escapes, surrogate pairs included).
#include "optout/classifier.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#ifndef OPTOUT_CORPUS
#error "OPTOUT_CORPUS must name test/data/inbound.jsonl"
#endif

namespace {

using optout::Intent;
using optout::Mode;

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

// A minimal JSON reader for one flat object per line.
class JsonLine {
public:
    explicit JsonLine(std::string s) : s_(std::move(s)) {}

    // Returns false (with error()) on malformed input.
    bool parse(std::map<std::string, std::optional<std::string>>& out) {
        ws();
        if (!eat('{')) return fail("expected {");
        ws();
        if (eat('}')) return end();
        for (;;) {
            std::string key;
            ws();
            if (!string(key)) return false;
            ws();
            if (!eat(':')) return fail("expected :");
            ws();
            if (s_.compare(i_, 4, "null") == 0) {
                i_ += 4;
                out[key] = std::nullopt;
            } else {
                std::string value;
                if (!string(value)) return false;
                out[key] = value;
            }
            ws();
            if (eat(',')) continue;
            if (eat('}')) return end();
            return fail("expected , or }");
        }
    }
    const std::string& error() const { return error_; }

    // Public for the parser's own test.
    bool string(std::string& out) {
        if (!eat('"')) return fail("expected string");
        while (i_ < s_.size()) {
            char c = s_[i_++];
            if (c == '"') return true;
            if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
            if (c != '\\') {
                out.push_back(c);
                continue;
            }
            if (i_ >= s_.size()) return fail("truncated escape");
            char e = s_[i_++];
            switch (e) {
                case '"': out.push_back('"'); break;
                case '\\': out.push_back('\\'); break;
                case '/': out.push_back('/'); break;
                case 'b': out.push_back('\b'); break;
                case 'f': out.push_back('\f'); break;
                case 'n': out.push_back('\n'); break;
                case 'r': out.push_back('\r'); break;
                case 't': out.push_back('\t'); break;
                case 'u': {
                    std::uint32_t u = 0;
                    if (!hex4(u)) return false;
                    if (u >= 0xD800 && u <= 0xDBFF) {
                        std::uint32_t lo = 0;
                        if (s_.compare(i_, 2, "\\u") != 0) return fail("lone high surrogate");
                        i_ += 2;
                        if (!hex4(lo)) return false;
                        if (lo < 0xDC00 || lo > 0xDFFF) return fail("bad low surrogate");
                        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                    } else if (u >= 0xDC00 && u <= 0xDFFF) {
                        return fail("lone low surrogate");
                    }
                    append_utf8(out, u);
                    break;
                }
                default: return fail(std::string("bad escape \\") + e);
            }
        }
        return fail("unterminated string");
    }

private:
    bool hex4(std::uint32_t& v) {
        if (i_ + 4 > s_.size()) return fail("truncated \\u escape");
        v = 0;
        for (int k = 0; k < 4; ++k) {
            char c = s_[i_++];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= static_cast<std::uint32_t>(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= static_cast<std::uint32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                v |= static_cast<std::uint32_t>(c - 'A' + 10);
            else
                return fail("bad hex digit");
        }
        return true;
    }
    void ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
    }
    bool eat(char c) {
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }
    bool end() {
        ws();
        return i_ == s_.size() ? true : fail("trailing characters");
    }
    bool fail(const std::string& why) {
        error_ = why + " at offset " + std::to_string(i_);
        return false;
    }

    std::string s_;
    std::size_t i_ = 0;
    std::string error_;
};

std::string parse_string(const std::string& json) {
    std::string out;
    JsonLine p(json);
    EXPECT_TRUE(p.string(out)) << p.error();
    return out;
}

std::string printable(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (c == '\n')
            out += "\\n";
        else if (c == '\r')
            out += "\\r";
        else if (c == '\t')
            out += "\\t";
        else if (c < 0x20)
            out += "\\x" + std::string(1, "0123456789abcdef"[c >> 4]) + "0123456789abcdef"[c & 15];
        else
            out.push_back(static_cast<char>(c));
    }
    return out;
}

TEST(CorpusParser, Escapes) {
    EXPECT_EQ(parse_string(R"("a\"b\\c\/d")"), "a\"b\\c/d");
    EXPECT_EQ(parse_string(R"("\n\t\r\b\f")"), "\n\t\r\b\f");
    EXPECT_EQ(parse_string(R"("\u0041\u00e9\u20AC")"), "A\xC3\xA9\xE2\x82\xAC");
    EXPECT_EQ(parse_string(R"("\ud83d\uded1")"), "\xF0\x9F\x9B\x91");  // U+1F6D1
    EXPECT_EQ(parse_string(R"("\u0000")"), std::string(1, '\0'));
    EXPECT_EQ(parse_string("\"S\xE2\x80\x8BTOP\""), "S\xE2\x80\x8BTOP");  // raw UTF-8 kept
    std::string out;
    JsonLine bad(R"("\ud83d")");
    EXPECT_FALSE(bad.string(out));
    JsonLine bad2(R"("\q")");
    EXPECT_FALSE(bad2.string(out));
}

TEST(Corpus, EveryLineInEveryMode) {
    std::ifstream in(OPTOUT_CORPUS, std::ios::binary);
    ASSERT_TRUE(in) << "cannot open " << OPTOUT_CORPUS;
    const optout::KeywordSet keywords = optout::KeywordSet::defaults();
    std::string line;
    int lineno = 0;
    int checked = 0;
    std::ostringstream failures;
    int nfail = 0;
    while (std::getline(in, line)) {
        ++lineno;
        if (line.empty() || line.find_first_not_of(" \t\r") == std::string::npos) continue;
        std::map<std::string, std::optional<std::string>> obj;
        JsonLine parser(line);
        ASSERT_TRUE(parser.parse(obj)) << "line " << lineno << ": " << parser.error();
        ASSERT_TRUE(obj.count("body") && obj["body"]) << "line " << lineno << ": no body";
        const std::string body = *obj["body"];
        for (Mode mode : {Mode::Exact, Mode::Standard, Mode::Reasonable}) {
            const char* label = optout::to_string(mode);
            ASSERT_TRUE(obj.count(label)) << "line " << lineno << ": no label " << label;
            Intent expected = Intent::None;
            if (obj[label]) {
                ASSERT_TRUE(optout::parse_intent(*obj[label], expected))
                    << "line " << lineno << ": bad intent " << *obj[label];
            }
            const optout::Match m = optout::classify(body, mode, keywords, true);
            ++checked;
            if (m.intent != expected) {
                ++nfail;
                const char* got = optout::to_string(m.intent);
                const char* exp = optout::to_string(expected);
                const char* rule = optout::to_string(m.rule);
                failures << "  line " << lineno << " body \"" << printable(body) << "\" mode " << label << ": expected "
                         << (exp ? exp : "null") << ", got " << (got ? got : "null") << " (rule "
                         << (rule ? rule : "none") << ", keyword \"" << m.keyword << "\", normalized \"" << m.normalized
                         << "\")\n";
            }
        }
    }
    EXPECT_GE(checked, 3 * 88);
    EXPECT_EQ(nfail, 0) << nfail << " mismatches:\n" << failures.str();
}

}  // namespace

// test/data/families.jsonl: the families of 0.2 (look-alike letters, typos,
// courtesy words per language, other languages, legal-style revocations, a
// keyword sentence first, the default verbs, the review queue), each with
// its traps. Every line must pass in every mode, and no trap may be read as
// an opt-out in any mode. Prints the per-family table of docs/classifier.md.
namespace {

std::string families_path() {
    std::string p = OPTOUT_CORPUS;
    const std::size_t slash = p.find_last_of('/');
    return p.substr(0, slash + 1) + "families.jsonl";
}

bool parse_label(const std::string& label, Intent& out) {
    if (label == "review") {
        out = Intent::Review;
        return true;
    }
    return optout::parse_intent(label, out);
}

}  // namespace

TEST(Corpus, FamiliesEveryLineInEveryMode) {
    std::ifstream in(families_path(), std::ios::binary);
    ASSERT_TRUE(in) << "cannot open " << families_path();
    const optout::KeywordSet keywords = optout::KeywordSet::defaults();
    struct Tally {
        int catches = 0, traps = 0;
        int caught[3] = {0, 0, 0};      // catch lines read as expected in that mode with a non-null intent
        int trap_stops[3] = {0, 0, 0};  // traps read as opt_out
    };
    std::map<std::string, Tally> tally;
    std::vector<std::string> order;
    std::string line;
    int lineno = 0, nfail = 0, checked = 0;
    std::ostringstream failures;
    while (std::getline(in, line)) {
        ++lineno;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        std::map<std::string, std::optional<std::string>> obj;
        JsonLine parser(line);
        ASSERT_TRUE(parser.parse(obj)) << "line " << lineno << ": " << parser.error();
        ASSERT_TRUE(obj["body"] && obj["family"] && obj["kind"]) << "line " << lineno;
        const std::string body = *obj["body"];
        const std::string family = *obj["family"];
        const bool trap = *obj["kind"] == "trap";
        ASSERT_TRUE(trap || *obj["kind"] == "catch") << "line " << lineno;
        if (!tally.count(family)) order.push_back(family);
        Tally& t = tally[family];
        (trap ? t.traps : t.catches)++;
        int mi = 0;
        for (Mode mode : {Mode::Exact, Mode::Standard, Mode::Reasonable}) {
            const char* label = optout::to_string(mode);
            ASSERT_TRUE(obj.count(label)) << "line " << lineno << ": no label " << label;
            Intent expected = Intent::None;
            if (obj[label]) {
                ASSERT_TRUE(parse_label(*obj[label], expected)) << "line " << lineno;
            }
            const optout::Match m = optout::classify(body, mode, keywords, true);
            ++checked;
            if (trap && m.intent == Intent::OptOut) t.trap_stops[mi]++;
            if (!trap && m.intent != Intent::None && m.intent == expected) t.caught[mi]++;
            if (m.intent != expected) {
                ++nfail;
                const char* got = optout::to_string(m.intent);
                const char* exp = optout::to_string(expected);
                const char* rule = optout::to_string(m.rule);
                failures << "  line " << lineno << " body \"" << printable(body) << "\" mode " << label << ": expected "
                         << (exp ? exp : "null") << ", got " << (got ? got : "null") << " (rule "
                         << (rule ? rule : "none") << ", keyword \"" << m.keyword << "\")\n";
            }
            ++mi;
        }
    }
    std::ostringstream table;
    table << "| family | caught exact | caught standard | caught reasonable | traps | traps stopped (e/s/r) |\n"
          << "|---|---|---|---|---|---|\n";
    for (const std::string& f : order) {
        const Tally& t = tally[f];
        table << "| " << f;
        for (int i = 0; i < 3; ++i) table << " | " << t.caught[i] << " / " << t.catches;
        table << " | " << t.traps << " | " << t.trap_stops[0] << " / " << t.trap_stops[1] << " / " << t.trap_stops[2]
              << " |\n";
        for (int i = 0; i < 3; ++i) EXPECT_EQ(t.trap_stops[i], 0) << "a trap of " << f << " stopped";
    }
    std::printf("%s", table.str().c_str());
    EXPECT_GE(checked, 3 * 200);
    EXPECT_EQ(nfail, 0) << nfail << " mismatches:\n" << failures.str();
}
