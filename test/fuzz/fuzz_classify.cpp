// libFuzzer target for the classifier core.
//
//   cmake -S . -B build-fuzz -DOPTOUT_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++
//   cmake --build build-fuzz -j2 --target fuzz-run      # 120 s, seeds in test/fuzz/corpus
//
// Every input is classified in every mode, normalised and keyed; the
// invariants below hold by design (see src/core/classify.cpp) and abort()
// when violated. ASan/UBSan catch memory errors and undefined behaviour.
#include "optout/classifier.hpp"
#include "text.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using optout::Intent;
using optout::KeywordSet;
using optout::Match;
using optout::Mode;
using optout::Rule;

[[noreturn]] void fail(const char* what, std::string_view input) {
    std::fprintf(stderr, "\ninvariant violated: %s\ninput (%zu bytes):", what, input.size());
    for (unsigned char c : input) std::fprintf(stderr, " %02x", c);
    std::fprintf(stderr, "\n");
    std::abort();
}

#define CHECK(cond, what)               \
    do {                                \
        if (!(cond)) fail(what, input); \
    } while (0)

const KeywordSet& defaults() {
    static const KeywordSet k = KeywordSet::defaults();  // built once
    return k;
}

bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        std::size_t n = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= s.size()) return false;  // truncated sequence
        for (std::size_t k = 1; k <= n; ++k) {
            const unsigned char t = static_cast<unsigned char>(s[i + k]);
            if ((t & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (t & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

bool consistent(const Match& m) {
    if (m.intent == Intent::None) return m.rule == Rule::None && m.keyword.empty() && m.language.empty();
    return m.rule != Rule::None && !m.keyword.empty() && !m.language.empty();
}

bool same(const Match& a, const Match& b) {
    return a.intent == b.intent && a.rule == b.rule && a.keyword == b.keyword && a.language == b.language;
}

// Pieces for the structured mode: random bytes rarely form interesting
// Unicode, so every input is also read as a sequence of indexes into this
// table (keywords, phrase words, negators, quotes, apostrophes, spaces,
// ignorables, marks of every kind, jamo, case-folding oddities, invalid
// bytes, ...), and the invariants are checked on that text too.
using namespace std::string_view_literals;
constexpr std::string_view kPieces[] = {
    "stop",
    "STOP",
    "Stop",
    "all",
    "opt",
    "out",
    "un",
    "sub",
    "scribe",
    "cancel",
    "end",
    "quit",
    "arret",
    "Arr\u00EAt",
    "alto",
    "start",
    "yes",
    "help",
    "info",
    "me",
    "texting",
    "text",
    "please",
    "thank",
    "you",
    "ok",
    "now",
    "don't",
    "dont",
    "do",
    "not",
    "never",
    "can't",
    "leave",
    "alone",
    "remove",
    "take",
    "off",
    "my",
    "number",
    "no",
    "more",
    "messages",
    "i",
    "want",
    "wanna",
    "to",
    "by",
    "the",
    "office",
    "s",
    "t",
    "o",
    "p",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    ".",
    ",",
    "-",
    "_",
    "!",
    "?",
    "\"",
    "'",
    "`",
    "\u2019",
    "\u2018",
    "\u02BC",
    "\u201C",
    "\u201D",
    "\u00AB",
    "\u00BB",
    "\u201E",
    "\u300C",
    "\u300D",
    "\u2039",
    "\uFF02",
    "\uFF07",
    "\u200B",
    "\u200D",
    "\u00AD",
    "\uFE0F",
    "\u200F",
    "\u202B",
    "\u061C",
    "\u034F",
    "\u2060",
    "\u3000",
    "\u00A0",
    "\u2028",
    "\u0085",
    "\u0301",
    "\u0316",
    "\u0308",
    "\u20DD",
    "\u0345",
    "\u0344",
    "\u0F73",
    "\uFF9E",
    "\U0001D165",
    "\U0001D16D",
    "\u0941",
    "\u093E",
    "\u0BC6",
    "\u0BBE",
    "\u1100",
    "\u1161",
    "\u11A8",
    "\uAC00",
    "\u00DF",
    "\u017F",
    "\u0130",
    "\u0131",
    "\u03A3",
    "\u03C2",
    "\u01C5",
    "\uFB01",
    "\uFDFA",
    "\u212A",
    "\uFF33",
    "\uFF54",
    "\U0001D412",
    "\u24C8",
    "\u05E9",
    "\u05B8",
    "\u062A",
    "\u064E",
    "\U0001F6D1",
    "\U0001F44D",
    "\U0001F3FD",
    "\uFFFD",
    "\xFF",
    "\xC0\xAF",
    "\xED\xA0\x80",
    "\xE2\x80",
    "\xF0\x9F",
    "\x00"sv,
    "\x1F",
    "e",
    "E\u0301",
    "\u00E9",
    "\u1E9E",
    "\u0149",
    "\u1FB3",
    "\u0390",
    "\u2126",
    "\u00C5",
    // 0.2: look-alike letters, typos, other languages, legal phrases, review.
    "\u0421",
    "\u0395",
    "\u0405",
    "\u0406",
    "\u0441",
    "\u043F",
    "\u03B5",
    "ANCEL",
    "ND",
    "cnacel",
    "usnubscribe",
    "stpo",
    "merci",
    "gracias",
    "por",
    "favor",
    "bitte",
    "quiero",
    "recibir",
    "ya",
    "ne",
    "m'",
    "veux",
    "plus",
    "recevoir",
    "envoyer",
    "parem",
    "de",
    "enviar",
    "nicht",
    "mehr",
    "schreiben",
    "sie",
    "mir",
    "keine",
    "wrong",
    "consent",
    "withdraw",
    "longer",
    "cease",
    "nope",
    "S",
    "n\u00E3o",
    "Arr\u00EAtez",
    "\u00BF",
};
constexpr std::size_t kNumPieces = sizeof(kPieces) / sizeof(kPieces[0]);

std::string spelled(std::string_view raw) {
    std::string out;
    for (unsigned char c : raw) out += kPieces[c % kNumPieces];
    return out;
}

void check(std::string_view input);

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view raw(reinterpret_cast<const char*>(data), size);
    check(raw);
    if (size <= 512) check(spelled(raw));
    return 0;
}

namespace {

void check(std::string_view input) {
    const std::size_t size = input.size();
    const KeywordSet& k = defaults();

    const Match ex = optout::classify(input, Mode::Exact, k, true);
    const Match st = optout::classify(input, Mode::Standard, k, true);
    const Match re = optout::classify(input, Mode::Reasonable, k, true);
    const std::string norm = optout::normalize(input);
    const std::string key = optout::keyword_key(input);

    // Results are well-formed.
    CHECK(consistent(ex) && consistent(st) && consistent(re), "match fields inconsistent");
    CHECK(ex.intent == Intent::None || ex.rule == Rule::Exact, "exact mode used another rule");
    CHECK(
        st.rule != Rule::Phrase && st.rule != Rule::Typo && st.rule != Rule::Sentence && st.rule != Rule::KeywordAside,
        "standard mode used a rule of reasonable mode");
    // The rules that stop give opt_out, the review rules give review, and
    // nothing else gives review (a review is never a stop).
    for (const Match* m : {&st, &re}) {
        const bool stop_rule =
            m->rule == Rule::Phrase || m->rule == Rule::Typo || m->rule == Rule::Sentence || m->rule == Rule::Lookalike;
        const bool review_rule =
            m->rule == Rule::LoneNegative || m->rule == Rule::LoneLetter || m->rule == Rule::KeywordAside;
        CHECK(!stop_rule || m->intent == Intent::OptOut,
              "a phrase, typo, sentence or look-alike that is not an opt-out");
        CHECK(review_rule == (m->intent == Intent::Review), "review and its rules disagree");
    }

    // Each mode accepts what the previous one accepts, with the same intent.
    // (With the defaults, no help/opt-in keyword is made of opt-out and
    // courtesy keys, so standard's opt-out precedence cannot override an
    // exact help/opt-in match.) A review of standard may become an opt-out
    // in reasonable, never the reverse.
    CHECK(ex.intent == Intent::None || st.intent == ex.intent, "exact accepted, standard differs");
    CHECK(st.intent == Intent::None || st.intent == Intent::Review || same(st, re),
          "standard accepted, reasonable differs");
    CHECK(st.intent != Intent::Review || re.intent == Intent::Review || re.intent == Intent::OptOut,
          "standard's review lost in reasonable");
    // Reasonable adds opt-outs and reviews only.
    CHECK(re.intent == st.intent || ((st.intent == Intent::None || st.intent == Intent::Review) &&
                                     (re.intent == Intent::OptOut || re.intent == Intent::Review)),
          "reasonable added an opt-in or help");

    // normalize(): the same text as Match::normalized, valid UTF-8, idempotent.
    CHECK(ex.normalized == norm && st.normalized == norm && re.normalized == norm,
          "Match::normalized differs from normalize()");
    CHECK(valid_utf8(norm), "normalize() produced invalid UTF-8");
    CHECK(valid_utf8(key), "keyword_key() produced invalid UTF-8");
    CHECK(optout::normalize(norm) == norm, "normalize() is not idempotent");
    CHECK(norm.empty() == key.empty(), "normalize() and keyword_key() disagree on emptiness");
    CHECK(optout::keyword_key(norm) == key, "keyword_key(normalize(x)) != keyword_key(x)");
    if (norm.size() > 0) {
        const char first = norm.front();
        const char last = norm.back();
        CHECK(first != ' ' && last != ' ', "normalize() left white space at an end");
    }
    CHECK(norm.find("  ") == std::string::npos, "normalize() left a double space");

    // The ASCII fast path equals the ICU path.
    if (optout::detail::all_ascii(input))
        CHECK(optout::detail::normalize_via_icu(input) == norm, "ASCII fast path != ICU path");

    // Any usable keyword matches itself: in exact mode as typed, in
    // standard mode also through its normalised form.
    if (!key.empty() && size <= 256) {
        KeywordSet own;
        bool added = true;
        try {
            own.add(input, Intent::OptOut, "xx");
        } catch (const optout::Error& e) {
            CHECK(e.kind() == optout::Error::Kind::InvalidKeyword, "unexpected error kind");
            added = false;  // too long
        }
        if (added) {
            CHECK(own.size() == 1, "size() after one add");
            CHECK(optout::classify(input, Mode::Exact, own).intent == Intent::OptOut,
                  "a keyword does not match itself in exact mode");
            const Match self = optout::classify(norm, Mode::Standard, own);
            CHECK(self.intent == Intent::OptOut && self.keyword == input,
                  "a keyword's normalised form does not match it in standard mode");
            // The same keyword with another intent is a conflict. (Not
            // keyword_key(x) itself: joining words may let NFC compose
            // across the former separator, e.g. Hangul L + V jamo, so a key
            // is not always its own key.)
            bool conflict = false;
            try {
                own.add(input, Intent::Help, "xx");
            } catch (const optout::Error& e) {
                conflict = e.kind() == optout::Error::Kind::KeywordConflict;
            }
            CHECK(conflict, "same key, other intent: no conflict");
        }
    }
}

}  // namespace
