// optout core: classify() and the small public helpers.
//
// The rules are those of docs/classifier.md, the classifier's reference. This
// block records how they are implemented and the decisions taken where the
// original specification was silent (docs/classifier.md lists them at its end,
// "Differences from the original specification").
//
// PIPELINE (standard and reasonable; text.cpp)
//  1. UTF-8 -> UTF-16; each maximal ill-formed subsequence becomes U+FFFD, so
//     any byte string is accepted (embedded NUL bytes are ordinary controls).
//     ASCII fast path: when every byte is < 0x80, ICU is skipped: NFKC
//     Casefold of ASCII is ASCII lower-casing and ASCII has no diacritics.
//  2. NFKC_Casefold (removes default ignorables: ZWSP, ZWJ, soft hyphen,
//     variation selectors, bidi marks), computed in ICU's decompose mode of
//     the nfkc_cf data (== NFD(NFKC_Casefold), checked for every code point);
//     then Mn and Me dropped; then NFC. U+2019 U+2018 U+02BC U+02BB U+201B
//     U+0060 -> U+0027.
//     Stream-safe cap (UAX #15): ICU's canonical reordering is an insertion
//     sort, quadratic on long runs of combining marks (200k alternating
//     marks take ~10 s). Marks that step 2 removes anyway are dropped before
//     ICU sees them (this changes nothing in the result), and of the few
//     other non-starters (26 spacing marks with a non-zero combining class,
//     e.g. musical symbols) at most 30 in a row are kept. Only text with more
//     than 30 stacked spacing marks differs from the unbounded algorithm.
//  3. Quotes (Tokenizer): quotation marks are Quotation_Mark code points; a
//     U+0027 with a word character (letter, digit or mark -- the characters
//     words are made of) on both sides is an in-word apostrophe. A quote met
//     before any word is ordinary punctuation and so is the next quotation
//     mark (its closing partner): "STOP", «STOP», "Stop" by the office.
//     A quote met after a word opens a span to the next quotation mark (any
//     quotation mark closes; unclosed -> to the end) whose words are dropped.
//     So `STOP "thanks"` reads [stop] (an opt-out wins when in doubt).
//  4. Words: maximal runs of L*, N*, M* and in-word apostrophes; everything
//     else separates words.
//  normalize(): steps 1-2, White_Space runs -> one space, non-L/N/M dropped
//  at both ends; quoted spans are kept. It is idempotent (fuzzed).
//
// KEYS (keywords.cpp)
//  key = the keyword's words (steps 1, 2, 4; quotes are mere separators)
//  joined. Three indexes: key -> intent + keywords; exact form (trimmed of
//  White_Space, full case folding, nothing else) -> keyword; normalize()d
//  keyword -> keyword. A keyword whose key is empty is rejected ("has no
//  letter or digit"), so is one whose key exceeds kMaxKeyLength (100) code
//  units (decision: keeps segmentation linear with a small constant), so is
//  one whose key, exact form or normalised form already belongs to another
//  intent. Re-adding an identical (keyword, language) is a no-op; the same
//  key with another spelling or language adds an entry (size() counts
//  entries). Several keywords with one key report the first one added.
//
// MATCHING
//  exact: the exact form of the body equals a keyword's -> Rule::Exact.
//  standard, in this order, collecting at most one candidate per rule:
//   (a) the exact test -> Exact;
//   (b) normalize(body) equals a normalised keyword -> Normalized;
//   (c) the body's words (quoted spans dropped) joined equal a key ->
//       Separator ("opt-out", "S.T.O.P", "UN-STOP" -> opt_in). Decision:
//       for an opt-in or help key only when no quoted word was dropped --
//       opt-in/help must be "the whole message, nothing else" and an
//       opt-in unmistakable (docs/classifier.md, "Quotes"), so
//       `Yes "I'll be there"` and `START "now"` are not opt-ins (as
//       "Yes I'll be there" is not), while `STOP "thanks"` stays an opt-out.
//       Consequence: help and opt-in can never both match one body (their
//       keys differ, and NFKC_Casefold(fold(c)) == NFKC_Casefold(c) for
//       every code point),
//       so of the precedence only "opt_out first" is ever observable;
//   (d) opt_out only: the words split into segments, each joining to an
//       opt-out key or a courtesy key (please, pls, plz, now, thanks,
//       thank you, thx, ty, ok, okay), at least one opt-out -> Repeat, or
//       Courtesy when some segmentation needs a courtesy segment and none
//       without one exists. A dynamic programme over word positions walking
//       a trie of the keys: linear (a walk never goes deeper than the
//       longest key).
//   The result is the first opt_out candidate, else the first help one,
//   else the first opt_in one (precedence opt_out > help > opt_in). Opt-in
//   and help therefore only ever match the whole message.
//   Early exit: after (a), if the first word is not a prefix of some key or
//   courtesy key, (b)-(d) cannot match; the rest is not looked at.
//  reasonable: the standard result if there is one (so every mode accepts
//   what the previous accepts with the same intent -- decision: a custom
//   help/opt-in keyword that is also a request phrase stays help/opt-in),
//   else opt_out by Rule::Phrase:
//   (A) keyword-led: courtesy segments, then an opt-out key segment, then
//       only words of the closed "about the messaging" list (keywords.cpp),
//       courtesy segments or further opt-out key segments (decision: "Stop.
//       Stop texting me" counts). Reports the first opt-out keyword.
//   (B) a request phrase anywhere in a message of at most kMaxPhraseWords
//       (50) words, not negated by a negator among the 3 words before it.
//       Reports the canonical phrase ("don't text me", "stop texting", "i
//       want to unsubscribe"), language "en". Decisions: "wanna" may omit
//       "to"; "txts" is accepted after "no more"; negators also in their
//       apostrophe-less forms (didnt, doesnt, isnt, ...), like dont, cant
//       and wont (docs/classifier.md lists them all).
//   Reasonable never adds opt_in or help.
//   Cost: the early exit of standard holds for (A) too, so when the first
//   word begins no key, (b)-(d) and (A) are skipped and only the first
//   kMaxPhraseWords + 1 words are read (for (B)); (B) tries its phrase
//   tests only at words that can start a phrase (phrase_starter()).
//  An unknown Mode value is read as Standard (the default mode).
//  An empty KeywordSet (or a moved-from one) matches no keyword; reasonable
//  mode still recognises the built-in request phrases (B).
//  A body with no word (empty, white space, emoji) matches nothing in any
//  mode (every keyword has a letter or digit).
//
// 0.2 (extended(), below classify_base()): only when the rules above found
//  nothing. Standard and reasonable: look-alike letters (words holding a
//  letter of another script, mapped through ICU's confusable skeletons, that
//  spell an opt-out key; the body is read again) -> Rule::Lookalike.
//  Reasonable: request phrases of es/fr/pt/de and legal-style English
//  (kPhraseDefs, same 50-word limit, per-language negators); the first
//  sentence read by rules (c)/(d) on its words -> Rule::Sentence; one slip in
//  the first non-courtesy word (one_slip(), never a kRealWords word; the body
//  is read again) -> Rule::Typo. Then Intent::Review: a lone negative word
//  (with courtesy words), a lone letter that begins an opt-out key, and in
//  reasonable an opt-out first sentence ending with ',' or '?' and more text.
//  Each reads the body again at most once, so every mode stays linear.
// ERRORS: classify/normalize/keyword_key throw only std::bad_alloc (ICU's
//  out-of-memory becomes std::bad_alloc). If ICU's normalisation data were
//  unavailable, the pipeline falls back to simple case folding; a failure of
//  the exact fold means "no exact match".
// MEMORY: per-thread scratch buffers (text.hpp) make a short message
//  allocation-free once warm; buffers above 256k elements are released
//  after each call.
#include "keywords_impl.hpp"
#include "optout/classifier.hpp"
#include "text.hpp"

#include <unicode/uchar.h>
#include <unicode/uscript.h>
#include <unicode/uspoof.h>
#include <unicode/utf16.h>

#include <climits>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace optout {

namespace {

using detail::Scratch;
using detail::ScratchLease;
using detail::Span;
using detail::Tokenizer;
using Impl = KeywordSet::Impl;

// Reasonable mode (B): request phrases count only in messages of at most
// this many words (the sender's own words, quoted spans excluded).
constexpr std::size_t kMaxPhraseWords = 50;

constexpr const char* kNegators[] = {
    "don't",     "dont",     "never",    "not",       "can't",    "cant",      "cannot",
    "won't",     "wont",     "didn't",   "didnt",     "doesn't",  "doesnt",    "shouldn't",
    "shouldnt",  "wouldn't", "wouldnt",  "couldn't",  "couldnt",  "isn't",     "isnt",
};
constexpr const char* kDontVerbs[] = {"text", "txt",   "message", "msg", "contact",
                                      "call", "email", "sms",     "send"};
constexpr const char* kNoMoreNouns[] = {"texts", "text", "txts",   "messages", "message",
                                        "msgs",  "sms",  "emails", "calls"};
constexpr const char* kStopVerbs[] = {"stop", "quit", "cease"};
constexpr const char* kGerunds[] = {"texting", "txting",     "messaging", "sending",
                                    "contacting", "calling", "emailing"};
constexpr const char* kWantTargets[] = {"unsubscribe", "unsub", "optout", "stop"};

struct Candidate {
    std::int32_t entry;
    Rule rule;
};

// At most one candidate per rule, in rule order.
struct Candidates {
    Candidate c[4];
    int n = 0;
    void add(std::int32_t entry, Rule rule) noexcept {
        if (entry >= 0) c[n++] = Candidate{entry, rule};
    }
    // opt_out > help > opt_in; within an intent, the earlier rule.
    const Candidate* pick(const Impl& k) const noexcept {
        if (n == 0) return nullptr;  // the common case: nothing matched
        for (Intent want : {Intent::OptOut, Intent::Help, Intent::OptIn})
            for (int i = 0; i < n; ++i)
                if (k.entries[static_cast<std::size_t>(c[i].entry)].intent == want) return &c[i];
        return nullptr;
    }
};

void fill(Match& m, const Impl& k, std::int32_t entry, Rule rule) {
    const Impl::Entry& e = k.entries[static_cast<std::size_t>(entry)];
    m.intent = e.intent;
    m.rule = rule;
    m.keyword = e.keyword;
    m.language = e.language;
}

// ------------------------------------------------------------ word helpers

bool word_is(const std::u16string& t, const Span& w, const char* lit) noexcept {
    const std::size_t len = w.end - w.begin;
    for (std::size_t i = 0; i < len; ++i) {
        const unsigned char l = static_cast<unsigned char>(lit[i]);
        if (l == 0 || t[w.begin + i] != l) return false;
    }
    return lit[len] == 0;
}

// ----------------------------------------------------- standard rule (c), (d)

// (c): the words joined spell a key. Returns the key, or -1.
std::int32_t joined_key(const Impl& k, const std::u16string& t, const std::vector<Span>& words,
                        std::size_t n = SIZE_MAX) {
    std::int32_t node = 0;
    if (n > words.size()) n = words.size();
    for (std::size_t i = 0; i < n; ++i) {
        const Span& w = words[i];
        node = k.walk(node, t.data() + w.begin, w.end - w.begin);
        if (node < 0) return -1;
    }
    return k.node(node).key;
}

// (d): segmentation into opt-out and courtesy keys. State bits: 1 = an
// opt-out segment seen, 2 = a courtesy segment seen. Returns the first
// opt-out key of the chosen segmentation, or -1.
std::int32_t segment_optout(const Impl& k, Scratch& s, Rule& rule, std::size_t n = SIZE_MAX) {
    const std::u16string& t = s.text;
    const std::vector<Span>& words = s.words;
    if (n > words.size()) n = words.size();
    s.reach.assign(n + 1, 0);
    s.first.assign((n + 1) * 4, -1);
    s.reach[0] = 1u << 0;
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned r = s.reach[i];
        if (r == 0) continue;
        std::int32_t node = 0;
        for (std::size_t j = i; j < n; ++j) {
            node = k.walk(node, t.data() + words[j].begin, words[j].end - words[j].begin);
            if (node < 0) break;
            const Impl::Node& nd = k.node(node);
            const bool opt = nd.key >= 0 && k.key_intent(nd.key) == Intent::OptOut;
            const bool courtesy = !opt && (nd.flags & Impl::kCourtesy);
            if (!opt && !courtesy) continue;
            for (unsigned st = 0; st < 4; ++st) {
                if (!(r & (1u << st))) continue;
                const unsigned nst = st | (opt ? 1u : 2u);
                const std::int32_t f = (st & 1u) ? s.first[i * 4 + st] : (opt ? nd.key : -1);
                if (!(s.reach[j + 1] & (1u << nst))) {
                    s.reach[j + 1] = static_cast<std::uint8_t>(s.reach[j + 1] | (1u << nst));
                    s.first[(j + 1) * 4 + nst] = f;
                }
            }
        }
    }
    const unsigned r = s.reach[n];
    if (r & (1u << 1)) {
        rule = Rule::Repeat;
        return s.first[n * 4 + 1];
    }
    if (r & (1u << 3)) {
        rule = Rule::Courtesy;
        return s.first[n * 4 + 3];
    }
    return -1;
}

// -------------------------------------------------------- reasonable (A), (B)

// (A): courtesy* optout (messaging word | courtesy | optout)*. Phase bits:
// 1 = before the first opt-out keyword, 2 = after it. Returns the first
// opt-out key, or -1.
std::int32_t keyword_led(const Impl& k, Scratch& s) {
    const std::u16string& t = s.text;
    const std::vector<Span>& words = s.words;
    const std::size_t n = words.size();
    s.reach.assign(n + 1, 0);
    s.first.assign(n + 1, -1);
    s.reach[0] = 1;
    auto reach = [&](std::size_t pos, unsigned phase, std::int32_t first) {
        if (!(s.reach[pos] & phase)) {
            s.reach[pos] = static_cast<std::uint8_t>(s.reach[pos] | phase);
            if (phase == 2) s.first[pos] = first;
        }
    };
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned r = s.reach[i];
        if (r == 0) continue;
        std::int32_t node = 0;
        for (std::size_t j = i; j < n; ++j) {
            node = k.walk(node, t.data() + words[j].begin, words[j].end - words[j].begin);
            if (node < 0) break;
            const Impl::Node& nd = k.node(node);
            const bool opt = nd.key >= 0 && k.key_intent(nd.key) == Intent::OptOut;
            const bool courtesy = (nd.flags & Impl::kCourtesy) != 0;
            const bool messaging = j == i && (nd.flags & Impl::kMessaging) != 0;
            if (r & 1u) {
                if (opt) reach(j + 1, 2, nd.key);
                if (courtesy) reach(j + 1, 1, -1);
            }
            if ((r & 2u) && (opt || courtesy || messaging)) reach(j + 1, 2, s.first[i]);
        }
    }
    return (s.reach[n] & 2u) ? s.first[n] : -1;
}

// (B): the first word of every phrase test in request_phrase() below, the
// kStopVerbs aside. Keep the two in step.
constexpr const char* kPhraseStarters[] = {"leave", "remove", "take", "opt", "don't", "dont",
                                           "do",    "no",     "want", "wanna", "would", "need"};

// The phrase starters (kPhraseStarters and kStopVerbs) by length: the set
// of their first letters (bit c - 'a') and the starters themselves as
// numbers, 8 bits a code unit, the first unit highest (distinct for distinct
// ASCII words of one length). A starter must be ASCII, begin with a-z and be
// shorter than kMaxLen (anything else does not compile: the constant
// evaluation would shift or index out of range).
struct StarterTable {
    static constexpr std::size_t kMaxLen = 8;  // longer words start no phrase
    static constexpr std::size_t kMaxPerLen = std::size(kPhraseStarters) + std::size(kStopVerbs);
    std::uint32_t first[kMaxLen] = {};
    std::uint64_t packed[kMaxLen][kMaxPerLen] = {};
    std::size_t count[kMaxLen] = {};
    constexpr void add(const char* lit) {
        std::size_t len = 0;
        std::uint64_t v = 0;
        for (; lit[len] != 0; ++len) v = v << 8 | static_cast<unsigned char>(lit[len]);
        first[len] |= std::uint32_t{1} << (lit[0] - 'a');
        packed[len][count[len]++] = v;
    }
    constexpr StarterTable() {
        for (const char* lit : kPhraseStarters) add(lit);
        for (const char* lit : kStopVerbs) add(lit);
    }
};
constexpr StarterTable kStarters{};

// Whether word w is a phrase starter, i.e. whether any phrase test can
// succeed at its position. Length and first letter reject nearly every word
// of ordinary conversation in a few instructions.
bool phrase_starter(const std::u16string& t, const Span& w) noexcept {
    const std::size_t len = w.end - w.begin;
    const char16_t* s = t.data() + w.begin;
    const unsigned letter = static_cast<unsigned>(s[0]) - u'a';
    if (len >= StarterTable::kMaxLen || letter >= 26) return false;
    if (((kStarters.first[len] >> letter) & 1u) == 0) return false;
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < len; ++i) {
        if (s[i] >= 0x80) return false;
        v = v << 8 | s[i];
    }
    for (std::size_t i = 0; i < kStarters.count[len]; ++i)
        if (v == kStarters.packed[len][i]) return true;
    return false;
}

// (B): a non-negated request phrase. Returns true and the canonical phrase.
bool request_phrase(const std::u16string& t, const std::vector<Span>& words, std::string& phrase) {
    const std::size_t n = words.size();
    if (n > kMaxPhraseWords) return false;
    auto is = [&](std::size_t i, const char* lit) { return i < n && word_is(t, words[i], lit); };
    auto one_of = [&](std::size_t i, const auto& list) -> const char* {
        if (i >= n) return nullptr;
        for (const char* lit : list)
            if (word_is(t, words[i], lit)) return lit;
        return nullptr;
    };
    // The index after "don't" / "dont" / "do not" starting at p, or 0.
    auto after_dont = [&](std::size_t p) -> std::size_t {
        if (is(p, "don't") || is(p, "dont")) return p + 1;
        if (is(p, "do") && is(p + 1, "not")) return p + 2;
        return 0;
    };
    for (std::size_t p = 0; p < n; ++p) {
        // Every test below starts with is(p, <a phrase starter>).
        if (!phrase_starter(t, words[p])) continue;
        std::string found;
        const char* a = nullptr;
        const char* b = nullptr;
        std::size_t q = 0;
        if (is(p, "leave") && is(p + 1, "me") && is(p + 2, "alone")) {
            found = "leave me alone";
        } else if (is(p, "remove") && is(p + 1, "me")) {
            found = "remove me";
        } else if (is(p, "remove") && is(p + 1, "my") && is(p + 2, "number")) {
            found = "remove my number";
        } else if (is(p, "take") && is(p + 1, "me") && is(p + 2, "off")) {
            found = "take me off";
        } else if (is(p, "take") && is(p + 1, "my") && is(p + 2, "number") && is(p + 3, "off")) {
            found = "take my number off";
        } else if (is(p, "opt") && is(p + 1, "me") && is(p + 2, "out")) {
            found = "opt me out";
        } else if ((q = after_dont(p)) != 0 && (a = one_of(q, kDontVerbs)) != nullptr) {
            found = std::string("don't ") + a + (is(q + 1, "me") ? " me" : "");
        } else if (is(p, "no") && is(p + 1, "more") && (a = one_of(p + 2, kNoMoreNouns)) != nullptr) {
            found = std::string("no more ") + a;
        } else if ((a = one_of(p, kStopVerbs)) != nullptr && (b = one_of(p + 1, kGerunds)) != nullptr) {
            found = std::string(a) + " " + b;
        } else {
            const char* lead = nullptr;
            if (is(p, "want") && is(p + 1, "to")) {
                lead = "want to";
                q = p + 2;
            } else if (is(p, "wanna")) {
                lead = "wanna";
                q = is(p + 1, "to") ? p + 2 : p + 1;
            } else if (is(p, "would") && is(p + 1, "like") && is(p + 2, "to")) {
                lead = "would like to";
                q = p + 3;
            } else if (is(p, "need") && is(p + 1, "to")) {
                lead = "need to";
                q = p + 2;
            }
            if (lead != nullptr) {
                const char* target = one_of(q, kWantTargets);
                if (target == nullptr && is(q, "opt") && is(q + 1, "out")) target = "opt out";
                if (target != nullptr)
                    found = std::string(p > 0 && is(p - 1, "i") ? "i " : "") + lead + " " + target;
            }
        }
        if (found.empty()) continue;
        bool negated = false;
        for (std::size_t w = p >= 3 ? p - 3 : 0; w < p && !negated; ++w)
            negated = one_of(w, kNegators) != nullptr;
        if (negated) continue;
        phrase = std::move(found);
        return true;
    }
    return false;
}

void set_normalized(Match& m, Scratch& s) {
    detail::collapse_trim(s.text, s.tmp, SIZE_MAX);
    m.normalized = detail::to_utf8(s.tmp);
}

}  // namespace

// ------------------------------------------------------------------ labels

Error::Error(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

namespace {
ShouldStop should_stop_fn = nullptr;
}  // namespace

void set_should_stop(ShouldStop fn) noexcept { should_stop_fn = fn; }

void detail::poll_interrupt() {
    if (should_stop_fn != nullptr && should_stop_fn()) throw Error(Error::Kind::Interrupted, "interrupted");
}

const char* to_string(Intent intent) noexcept {
    switch (intent) {
        case Intent::OptOut: return "opt_out";
        case Intent::OptIn: return "opt_in";
        case Intent::Help: return "help";
        case Intent::Review: return "review";
        default: return nullptr;
    }
}

const char* to_string(Mode mode) noexcept {
    switch (mode) {
        case Mode::Exact: return "exact";
        case Mode::Standard: return "standard";
        case Mode::Reasonable: return "reasonable";
        default: return nullptr;
    }
}

const char* to_string(Rule rule) noexcept {
    switch (rule) {
        case Rule::Exact: return "exact";
        case Rule::Normalized: return "normalized";
        case Rule::Separator: return "separator";
        case Rule::Repeat: return "repeat";
        case Rule::Courtesy: return "courtesy";
        case Rule::Phrase: return "phrase";
        case Rule::Lookalike: return "lookalike";
        case Rule::Typo: return "typo";
        case Rule::Sentence: return "sentence";
        case Rule::LoneNegative: return "lone_negative";
        case Rule::LoneLetter: return "lone_letter";
        case Rule::KeywordAside: return "keyword_aside";
        default: return nullptr;
    }
}

namespace {
bool label_is(std::string_view label, const char* want) noexcept {
    std::size_t i = 0;
    for (; i < label.size(); ++i) {
        char c = label[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (want[i] == 0 || c != want[i]) return false;
    }
    return want[i] == 0;
}
}  // namespace

// Labels are matched ASCII-case-insensitively ("OPT_OUT" works too).
bool parse_intent(std::string_view label, Intent& out) noexcept {
    for (Intent i : {Intent::OptOut, Intent::OptIn, Intent::Help}) {
        if (label_is(label, to_string(i))) {
            out = i;
            return true;
        }
    }
    return false;
}

bool parse_mode(std::string_view label, Mode& out) noexcept {
    for (Mode m : {Mode::Exact, Mode::Standard, Mode::Reasonable}) {
        if (label_is(label, to_string(m))) {
            out = m;
            return true;
        }
    }
    return false;
}

// --------------------------------------------------------------- normalize

std::string normalize(std::string_view utf8) {
    ScratchLease lease;
    Scratch& s = lease.get();
    detail::normalize_text(utf8, detail::all_ascii(utf8), false, s, s.text);
    detail::collapse_trim(s.text, s.tmp, SIZE_MAX);
    return detail::to_utf8(s.tmp);
}

// ---------------------------------------------------------------- classify

namespace {

// The rules of 0.1 (exact, normalized, separator, repeat, courtesy, phrase):
// fills m, and leaves the body's normalised text in s.text (and its words in
// s.words, see below) for the rules of extended().
void classify_base(std::string_view body, Mode mode, const Impl* k, Scratch& s, bool want_normalized,
                   Match& m) {
    const bool ascii = detail::all_ascii(body);
    bool raw_ready = false;
    Candidates cands;

    // (a) exact. A fold is never shorter than half its input, so a trimmed
    // body longer than twice the longest keyword cannot match.
    if (k != nullptr) {
        const std::size_t limit = 2 * k->max_exact_len;
        if (ascii) {
            detail::exact_fold_ascii(body, limit, s.tmp);
        } else {
            detail::decode_utf8(body, s.raw);
            raw_ready = true;
            detail::exact_fold(s.raw.data(), s.raw.size(), limit, s.tmp);
        }
        if (!s.tmp.empty()) {
            const auto it = k->exact_index.find(s.tmp);
            if (it != k->exact_index.end()) cands.add(it->second, Rule::Exact);
        }
    }
    if (mode == Mode::Exact || (k == nullptr && mode == Mode::Standard)) {
        if (k != nullptr) {
            if (const Candidate* c = cands.pick(*k)) fill(m, *k, c->entry, c->rule);
        }
        if (want_normalized) {
            detail::normalize_text(body, ascii, raw_ready, s, s.text);
            set_normalized(m, s);
        }
        return;
    }

    detail::normalize_text(body, ascii, raw_ready, s, s.text);
    const std::u16string& t = s.text;
    s.words.clear();
    Tokenizer tk(t, /*drop_quotes=*/true);
    Span w{0, 0};
    const bool any_word = tk.next(w);
    // Early exit: every rule (b)-(d), and reasonable (A), needs the first
    // word to begin a key or a courtesy key (the quotes before the first
    // word never drop it, and normalize()'s trimming keeps it whole).
    bool keyed = any_word && k != nullptr;
    if (keyed) {
        const std::int32_t node = k->walk(0, t.data() + w.begin, w.end - w.begin);
        keyed = node >= 0 && (k->node(node).flags & Impl::kStdPrefix) != 0;
    }
    if (keyed) {
        detail::Poller poll;
        do {
            s.words.push_back(w);
            poll.at(w.end);
        } while (tk.next(w));
    } else if (mode == Mode::Reasonable && any_word) {
        // Only (B) reads these words, and of a message longer than
        // kMaxPhraseWords words only that it is longer.
        do s.words.push_back(w);
        while (s.words.size() <= kMaxPhraseWords && tk.next(w));
    } else if (any_word) {
        s.words.push_back(w);  // the first word, for the review rules (extended())
    }
    if (keyed) {
        // (b) normalised text equals a normalised keyword
        if (detail::collapse_trim(t, s.tmp, k->max_norm_len)) {
            const auto it = k->norm_index.find(s.tmp);
            if (it != k->norm_index.end()) cands.add(it->second, Rule::Normalized);
        }
        // (c) words joined spell a key. Opt-in and help must be the whole
        // message: not when quoted words were dropped (`Yes "I'll be there"`).
        const std::int32_t key = joined_key(*k, t, s.words);
        if (key >= 0 && (k->key_intent(key) == Intent::OptOut || !tk.dropped_words()))
            cands.add(k->key_entry(key), Rule::Separator);
        // (d) opt-out keywords and courtesy words only
        Rule seg_rule = Rule::None;
        const std::int32_t seg = segment_optout(*k, s, seg_rule);
        if (seg >= 0) cands.add(k->key_entry(seg), seg_rule);
    }
    const Candidate* c = k != nullptr ? cands.pick(*k) : nullptr;
    if (c != nullptr) {
        fill(m, *k, c->entry, c->rule);
    } else if (mode == Mode::Reasonable && !s.words.empty()) {
        const std::int32_t led = keyed ? keyword_led(*k, s) : -1;
        std::string phrase;
        if (led >= 0) {
            fill(m, *k, k->key_entry(led), Rule::Phrase);
        } else if (request_phrase(t, s.words, phrase)) {
            m.intent = Intent::OptOut;
            m.rule = Rule::Phrase;
            m.keyword = std::move(phrase);
            m.language = "en";
        }
    }
    if (want_normalized) set_normalized(m, s);
}

// ====================================================================== 0.2
// The families added in 0.2 (docs/classifier.md, "Look-alike letters",
// "Typos", "Other languages", "Legal-style revocations", "A keyword
// sentence first", "The review queue"). They run only when the rules above
// found nothing, so every earlier result stands.

// ------------------------------------------------------- look-alike letters

// ICU's spoof checker, opened once per thread (closed at thread exit).
struct SpoofChecker {
    USpoofChecker* sc = nullptr;
    bool tried = false;
    ~SpoofChecker() {
        if (sc != nullptr) uspoof_close(sc);
    }
    USpoofChecker* get() noexcept {
        if (!tried) {
            tried = true;
            UErrorCode st = U_ZERO_ERROR;
            sc = uspoof_open(&st);
            if (U_FAILURE(st)) {
                if (sc != nullptr) uspoof_close(sc);
                sc = nullptr;
            }
        }
        return sc;
    }
};

SpoofChecker& spoof_checker() noexcept {
    static thread_local SpoofChecker checker;
    return checker;
}

// A letter of a script other than Latin (Common and Inherited are no
// script of their own).
bool foreign_letter(char32_t c) noexcept {
    if (c < 0x370) return false;  // ASCII, Latin-1, Latin Extended, IPA, spacing modifiers
    UErrorCode st = U_ZERO_ERROR;
    const UScriptCode sc = uscript_getScript(static_cast<UChar32>(c), &st);
    return U_SUCCESS(st) && sc != USCRIPT_LATIN && sc != USCRIPT_COMMON && sc != USCRIPT_INHERITED &&
           sc != USCRIPT_UNKNOWN;
}

// The raw body (s.raw, as typed: case matters to the confusables data, a
// Greek capital Epsilon looks like E, its small letter does not) with every
// word that reads as an opt-out key through ICU's confusable skeletons
// replaced by that key. A word qualifies only if it holds a letter of
// another script than Latin, every such letter's skeleton is ASCII letters
// (the rest of the word being ASCII letters), and the skeleton spelling,
// lower-cased, is the key of an opt-out keyword. So "СANCEL" (Cyrillic С)
// and "ΕND" (Greek Ε) read as cancel and end; Russian "стоп" stays itself
// (п's skeleton is π). Returns false when no word was replaced.
bool lookalike_body(const Impl& k, const std::u16string& raw, std::string& out) {
    // Most bodies have no letter of another script: accents (Latin-1),
    // punctuation, symbols and emoji (surrogate pairs) are below U+0370, in
    // U+2000-U+2BFF or beyond U+FFFF. Letters beyond U+FFFF (Deseret,
    // Osage, ...) are not read as look-alikes.
    bool maybe = false;
    for (char16_t c : raw) {
        if (c >= 0x370 && (c < 0x2000 || (c >= 0x2C00 && c < 0xD800) || (c >= 0xF900 && c < 0xFE00))) {
            maybe = true;
            break;
        }
    }
    if (!maybe) return false;
    USpoofChecker* sc = nullptr;
    std::u16string text, word;
    bool changed = false;
    std::size_t copied = 0;  // raw[0..copied) is in text
    std::size_t i = 0;
    const std::size_t n = raw.size();
    while (i < n) {
        // Find the next run of word characters.
        std::size_t b = i;
        UChar32 c;
        U16_NEXT(raw.data(), i, n, c);
        if (detail::char_class(static_cast<char32_t>(c)) != detail::CharClass::Word) continue;
        bool foreign = foreign_letter(static_cast<char32_t>(c));
        std::size_t e = i;
        while (e < n) {
            std::size_t j = e;
            UChar32 d;
            U16_NEXT(raw.data(), j, n, d);
            if (detail::char_class(static_cast<char32_t>(d)) != detail::CharClass::Word) break;
            foreign = foreign || foreign_letter(static_cast<char32_t>(d));
            e = j;
        }
        i = e;
        if (!foreign || e - b > kMaxKeyLength) continue;
        if (sc == nullptr && (sc = spoof_checker().get()) == nullptr) return false;
        // Map the word; each foreign letter through its own skeleton, or
        // that of its small or capital form (Cyrillic І's skeleton is l,
        // that of its small letter і is i).
        bool found = false;
        for (int variant = 0; variant < 3 && !found; ++variant) {
            word.clear();
            bool ok = true;
            for (std::size_t j = b; j < e && ok;) {
                UChar32 d;
                U16_NEXT(raw.data(), j, e, d);
                if (d < 0x80) {
                    ok = (d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z');
                    word.push_back(static_cast<char16_t>(d | 0x20));
                    continue;
                }
                if (!foreign_letter(static_cast<char32_t>(d))) {
                    ok = false;
                    break;
                }
                if (variant == 1) d = u_tolower(d);
                if (variant == 2) d = u_toupper(d);
                UChar in[2];
                int32_t len = 0;
                U16_APPEND_UNSAFE(in, len, d);
                UChar sk[8];
                UErrorCode st = U_ZERO_ERROR;
                const int32_t m = uspoof_getSkeleton(sc, 0, in, len, sk, 8, &st);
                if (U_FAILURE(st) || m <= 0 || m > 8) {
                    ok = false;
                    break;
                }
                for (int32_t q = 0; q < m && ok; ++q) {
                    const char16_t u = sk[q];
                    ok = (u >= u'a' && u <= u'z') || (u >= u'A' && u <= u'Z');
                    word.push_back(static_cast<char16_t>(u | 0x20));
                }
            }
            if (!ok) continue;
            const auto it = k.key_index.find(word);
            found = it != k.key_index.end() && k.key_intent(it->second) == Intent::OptOut;
        }
        if (!found) continue;
        text.append(raw, copied, b - copied);
        text.append(word);
        copied = e;
        changed = true;
    }
    if (!changed) return false;
    text.append(raw, copied, std::u16string::npos);
    out = detail::to_utf8(text);
    return true;
}

// -------------------------------------------------------------------- typos

// Words a typo rule must never correct: real words one slip away from a
// keyword (the traps of test/data/families.jsonl).
constexpr const char* kRealWords[] = {
    "stomp", "stoop", "steep", "spot",  "quiet", "quite", "send",  "bend",   "cancer",
    "alot",  "sari",  "arete", "parra", "para",  "aire",  "canal", "anmelden", "anmelde",
};

// QWERTY neighbours of each letter a-z.
constexpr const char* kNeighbours[26] = {
    "qwsz", "vghn", "xdfv", "serfcx", "wrsd", "drtgvc", "ftyhbv", "gyujnb", "uojk",
    "huikmn", "jiolm", "kop", "njk", "bhjm", "ipkl", "ol", "wa", "etdf", "awedxz",
    "ryfg", "yihj", "cfgb", "qeas", "zsdc", "tugh", "asx",
};

bool neighbours(char16_t a, char16_t b) noexcept {
    if (a < u'a' || a > u'z') return false;
    for (const char* p = kNeighbours[a - u'a']; *p != 0; ++p)
        if (static_cast<char16_t>(*p) == b) return true;
    return false;
}

// Is w (a-z letters) one slip away from key? The rule depends on the key's
// length: from 4 letters, two adjacent letters swapped; from 6 letters also
// one letter missing, one letter doubled, or one letter replaced by a
// neighbour on a QWERTY keyboard. Never the first letter (a different first
// letter is a different word: "bend", "send" are not "end"), and keys of 3
// letters or fewer have no typos.
bool one_slip(const char16_t* w, std::size_t wn, const std::u16string& key) noexcept {
    const std::size_t kn = key.size();
    if (wn == 0 || w[0] != key[0] || wn + 1 < kn || wn > kn + 1 || kn < 4) return false;
    std::size_t i = 0;
    if (wn == kn) {
        while (i < kn && w[i] == key[i]) ++i;
        if (i == kn) return false;  // the key itself
        // a swap of i and i + 1
        if (i + 1 < kn && w[i] == key[i + 1] && w[i + 1] == key[i]) {
            std::size_t j = i + 2;
            while (j < kn && w[j] == key[j]) ++j;
            if (j == kn) return true;
        }
        if (kn < 6 || !neighbours(key[i], w[i])) return false;
        for (std::size_t j = i + 1; j < kn; ++j)
            if (w[j] != key[j]) return false;
        return true;
    }
    if (kn < 6) return false;
    if (wn + 1 == kn) {  // one letter missing
        while (i < wn && w[i] == key[i]) ++i;
        for (std::size_t j = i; j < wn; ++j)
            if (w[j] != key[j + 1]) return false;
        return true;
    }
    if (wn == kn + 1) {  // one letter doubled
        while (i < kn && w[i] == key[i]) ++i;
        if (i == 0 || w[i] != w[i - 1]) return false;
        for (std::size_t j = i; j < kn; ++j)
            if (w[j + 1] != key[j]) return false;
        return true;
    }
    return false;
}

// The typo rule reads only the first word that is not a courtesy word (the
// place of the keyword in a keyword-led message). Returns the corrected
// normalised text, or false.
bool typo_body(const Impl& k, const Scratch& s, std::string& out) {
    const std::u16string& t = s.text;
    std::size_t f = 0;
    for (; f < s.words.size(); ++f) {
        const Span& w = s.words[f];
        const std::int32_t node = k.walk(0, t.data() + w.begin, w.end - w.begin);
        if (node < 0 || !(k.node(node).flags & Impl::kCourtesy)) break;
    }
    if (f == s.words.size()) return false;
    const Span& w = s.words[f];
    const std::size_t wn = w.end - w.begin;
    if (wn < 3 || wn > kMaxTypoKey + 1) return false;
    for (std::size_t i = w.begin; i < w.end; ++i)
        if (t[i] < u'a' || t[i] > u'z') return false;
    for (const std::u16string& key : k.typo_keys[t[w.begin] - u'a']) {
        if (!one_slip(t.data() + w.begin, wn, key)) continue;
        for (const char* real : kRealWords)
            if (word_is(t, w, real)) return false;
        std::u16string fixed;
        fixed.reserve(t.size() + 1);
        fixed.append(t, 0, w.begin);
        fixed.append(key);
        fixed.append(t, w.end, std::u16string::npos);
        out = detail::to_utf8(fixed);
        return true;
    }
    return false;
}

// ------------------------------------------------- phrases in more languages

// A pattern is a sequence of slots separated by spaces; a slot lists
// alternatives separated by '|'; a slot starting with '?' may be absent (the
// first may not). Words are as normalised (lower case, no diacritics); a
// French elided article or pronoun is a word of its own ("m'envoyer" is
// "m'" "envoyer"). A guarded phrase is not an opt-out when one of the three
// words before it is a negator of its language; the phrases that are
// negative themselves ("no quiero recibir", "keine Nachrichten mehr") are
// not guarded.
struct PhraseDef {
    const char* language;
    const char* canonical;  // reported as explain()'s keyword
    bool guarded;
    const char* pattern;
};

constexpr PhraseDef kPhraseDefs[] = {
    // ---- en: legal-style revocations without a keyword
    {"en", "withdraw my consent", true,
     "withdraw|withdrawing|revoke|revoking|rescind|rescinding|retract|retracting ?my|all|any|the|this|our "
     "consent|permission|authorization|authorisation"},
    {"en", "i no longer consent", true, "no longer consent|authorize|authorise|agree"},
    {"en", "no longer wish to receive", true, "no longer wish|want|need to receive|get"},
    {"en", "no longer wish to be contacted", true,
     "no longer wish|want to be contacted|texted|messaged|called|emailed|on"},
    {"en", "no longer want these messages", true,
     "no longer want|wish|need these|your|any|the|those texts|messages|sms|emails|calls|notifications|alerts"},
    {"en", "cease all communication", true,
     "cease|halt|discontinue|terminate|stop|end ?all|any|further|future communication|communications|"
     "correspondence|contact"},
    {"en", "cease and desist", true, "cease and desist"},
    {"en", "delete my number", true,
     "delete|erase|purge|remove my|this|our number|info|information|data|details|contact|phone"},
    {"en", "wrong number", true, "wrong number|person|recipient|phone"},
    // ---- es
    {"es", "no quiero recibir", false, "no quiero|deseo|queremos recibir|seguir"},
    {"es", "no quiero mas mensajes", false,
     "no quiero|deseo|queremos mas mensajes|sms|textos|correos|llamadas|publicidad|promociones|notificaciones"},
    {"es", "no me envien", false,
     "no me|nos envien|envies|envie|manden|mandes|mande|escriban|escribas|escriba|contacten|contactes|"
     "llamen|llames|molesten|molestes"},
    {"es", "dejen de enviarme", true,
     "dejen|deja|deje|dejar|dejad|paren|para|pare|parar de enviarme|mandarme|escribirme|enviar|mandar|"
     "escribir|contactarme|llamarme|molestarme|enviarnos|mandarnos"},
    {"es", "no mas mensajes", false, "no mas mensajes|sms|textos|correos|llamadas|publicidad|promociones|spam"},
    {"es", "darme de baja", true, "darme|dar|denme|dame|den|deme|darnos de baja"},
    {"es", "borren mi numero", true,
     "borren|borra|borrar|borre|eliminen|elimina|eliminar|elimine|quiten|quita|quitar|quite|saquen|saca|"
     "sacar|saque mi|este numero|telefono|contacto|datos"},
    {"es", "sacame de la lista", true,
     "sacame|saquenme|quitame|quitenme|borrame|borrenme|eliminame|eliminenme|sacarme|quitarme|borrarme|"
     "eliminarme de|del"},
    {"es", "retiro mi consentimiento", true,
     "retiro|revoco|retirar|revocar mi|el consentimiento|autorizacion|permiso"},
    {"es", "numero equivocado", true, "numero|persona equivocado|equivocada|incorrecto|incorrecta"},
    // ---- fr
    {"fr", "je ne veux plus recevoir", false,
     "ne|n' veux|souhaite|desire|voulons|souhaitons plus recevoir"},
    {"fr", "je ne veux plus de messages", false,
     "ne|n' veux|souhaite|desire|voulons|souhaitons plus de|d' vos|ces|messages|sms|textos|notifications|"
     "publicites|appels|mails|courriels|offres"},
    {"fr", "je veux plus recevoir", true, "veux|souhaite|desire plus recevoir"},
    {"fr", "ne m'envoyez plus", false,
     "ne|n' m'|me|nous envoyez|envoie|envoyer|ecrivez|ecris|contactez|contacte|appelez|appelle|harcelez|"
     "derangez plus|pas|jamais"},
    {"fr", "arretez de m'envoyer", true,
     "arretez|arrete|arreter|cessez|cesse|cesser|stoppez de|d' ?m'|me|nous envoyer|ecrire|contacter|appeler|"
     "spammer|harceler|deranger|envoyez"},
    {"fr", "desabonnez-moi", true,
     "desabonnez|desinscrivez|retirez|supprimez|enlevez|rayez|effacez|desabonne|desinscris|retire|supprime|"
     "enleve moi|nous"},
    {"fr", "supprimez mon numero", true,
     "retirez|supprimez|enlevez|effacez|retire|supprime|enleve|efface mon|ce numero|contact|telephone"},
    {"fr", "je retire mon consentement", true,
     "retire|retirer|revoque|revoquer|retirons mon|le consentement|accord|autorisation"},
    {"fr", "mauvais numero", true, "mauvais|mauvaise numero|destinataire|personne"},
    // ---- pt
    {"pt", "parem de me enviar", true,
     "parem|pare|para|parar|deixem|deixe|deixa|deixar|chega de|com ?me|mim|nos enviar|mandar|ligar|"
     "escrever|contatar|contactar|incomodar|enviarem|mandarem|perturbar"},
    {"pt", "nao quero receber", false, "nao quero|desejo|queremos receber"},
    {"pt", "nao quero mais mensagens", false,
     "nao quero|desejo|queremos mais receber|mensagens|mensagem|sms|textos|nada|propaganda|promocoes|"
     "notificacoes|contato|ligacoes"},
    {"pt", "nao me enviem", false,
     "nao me|nos envie|enviem|envia|mande|mandem|manda|ligue|liguem|liga|escreva|escrevam|contate|"
     "contatem|incomode|incomodem|perturbe"},
    {"pt", "chega de mensagens", true, "chega|basta de mensagens|mensagem|sms|textos|propaganda|ligacoes|spam"},
    {"pt", "me tire da lista", true,
     "me|nos tire|tirem|tira|remova|removam|remove|retire|retirem|exclua|excluam|exclui|descadastre|"
     "descadastrem da|de|dessa|desta|do|deste|desse"},
    {"pt", "remova meu numero", true,
     "tire|tirem|tira|remova|removam|remove|retire|retirem|exclua|excluam|exclui|apague|apaguem|apaga|"
     "delete|deletem meu|esse|este numero|contato|telefone|cadastro|dados"},
    {"pt", "retiro meu consentimento", true, "retiro|revogo|retirar|revogar meu|o consentimento|autorizacao"},
    {"pt", "numero errado", true, "numero|pessoa errado|errada"},
    // ---- de
    {"de", "schreiben sie mir nicht mehr", false,
     "schreiben|schreibt|schreib|schicken|schickt|schick|senden|sendet|kontaktieren|kontaktiert|nerven|"
     "nervt|belastigen|belastigt|anrufen|simsen ?sie|du|ihr ?bitte mir|mich|uns nicht|nie mehr"},
    {"de", "schicken sie mir keine nachrichten", false,
     "schreiben|schreibt|schreib|schicken|schickt|schick|senden|sendet ?sie|du|ihr ?bitte mir|uns keine "
     "nachrichten|sms|werbung|mails|emails|textnachrichten|nachricht"},
    {"de", "ich mochte keine nachrichten", false,
     "will|mochte|moechte|wollen|mochten|brauche keine nachrichten|sms|werbung|mails|emails|"
     "textnachrichten|nachricht|mehr"},
    {"de", "keine nachrichten mehr", false, "keine nachrichten|sms|werbung|mails|emails|textnachrichten mehr"},
    {"de", "horen sie auf", true,
     "horen|hort|hor|hoeren|hoert|hoer ?sie|du|ihr ?bitte auf mir|mich|uns|damit|zu"},
    {"de", "loschen sie meine nummer", true,
     "loschen|losche|entfernen|entferne|streichen|streiche ?sie|du ?bitte meine|meinen|diese|mich "
     "nummer|daten|kontakt|telefonnummer|handynummer|aus|von"},
    {"de", "tragen sie mich aus", true, "tragen|tragt|trag ?sie|du|ihr mich|uns aus"},
    {"de", "ich widerrufe meine einwilligung", true,
     "widerrufe|widerrufen|ziehe|entziehe meine|die einwilligung|zustimmung|erlaubnis"},
    {"de", "falsche nummer", true, "falsche nummer|person"},
};

struct PhraseLanguage {
    const char* language;
    const char* negators;  // space-separated
};
constexpr PhraseLanguage kPhraseNegators[] = {
    // en: the negators of the English request phrases (kNegators) are used.
    {"es", "no nunca jamas tampoco ni"},
    {"fr", "ne n' pas jamais"},
    {"pt", "nao nunca jamais nem"},
    {"de", "nicht nie niemals kein keine keinen"},
};

struct PhraseTable {
    struct Slot {
        std::vector<std::u16string> alternatives;
        bool optional = false;
    };
    struct Phrase {
        const PhraseDef* def;
        std::vector<Slot> slots;
        std::vector<std::u16string> negators;
    };
    std::vector<Phrase> phrases;
    // First word -> the phrases it can start.
    // (Views of the strings in phrases[i].slots[0]: their addresses never
    // change once a phrase is built, the vectors holding them only move.)
    std::unordered_map<std::u16string_view, std::vector<std::size_t>> by_first;
    // A filter before by_first: bit bloom_bit(w) is set for every first word.
    std::uint64_t bloom[64] = {};
    static std::size_t bloom_bit(std::u16string_view w) noexcept {
        return (w.size() * 131u + static_cast<std::size_t>(w[0]) * 31u + w[w.size() - 1] * 7u +
                (w.size() > 2 ? static_cast<std::size_t>(w[1]) * 17u : 0u)) &
               4095u;
    }
    bool maybe_first(std::u16string_view w) const noexcept {
        const std::size_t b = bloom_bit(w);
        return (bloom[b >> 6] >> (b & 63)) & 1u;
    }

    static std::vector<std::u16string> split(const char* s, char sep) {
        std::vector<std::u16string> out(1);
        for (; *s != 0; ++s) {
            if (*s == sep) out.emplace_back();
            else out.back().push_back(static_cast<char16_t>(static_cast<unsigned char>(*s)));
        }
        return out;
    }

    PhraseTable() {
        phrases.reserve(std::size(kPhraseDefs));
        for (const PhraseDef& d : kPhraseDefs) {
            Phrase p{&d, {}, {}};
            for (const std::u16string& slot : split(d.pattern, ' ')) {
                Slot sl;
                std::u16string body = slot;
                if (!body.empty() && body[0] == u'?') {
                    sl.optional = true;
                    body.erase(0, 1);
                }
                std::string narrow(body.begin(), body.end());
                sl.alternatives = split(narrow.c_str(), '|');
                p.slots.push_back(std::move(sl));
            }
            if (std::string_view(d.language) == "en") {
                for (const char* neg : kNegators) p.negators.push_back(split(neg, ' ').front());
            } else {
                for (const PhraseLanguage& l : kPhraseNegators)
                    if (std::string_view(l.language) == d.language) p.negators = split(l.negators, ' ');
            }
            phrases.push_back(std::move(p));
            for (const std::u16string& first : phrases.back().slots.front().alternatives) {
                by_first[std::u16string_view(first)].push_back(phrases.size() - 1);
                const std::size_t b = bloom_bit(first);
                bloom[b >> 6] |= std::uint64_t{1} << (b & 63);
            }
        }
    }
};

const PhraseTable& phrase_table() {
    static const PhraseTable table;
    return table;
}

using Tokens = std::vector<std::u16string_view>;

bool in_slot(const PhraseTable::Slot& slot, std::u16string_view w) noexcept {
    for (const std::u16string& a : slot.alternatives)
        if (w == a) return true;
    return false;
}

// Slots [si..] from token ti. Optional slots make this a small search:
// patterns have at most 7 slots.
bool match_slots(const PhraseTable::Phrase& p, std::size_t si, const Tokens& toks, std::size_t ti) noexcept {
    if (si == p.slots.size()) return true;
    const PhraseTable::Slot& slot = p.slots[si];
    if (ti < toks.size() && in_slot(slot, toks[ti]) && match_slots(p, si + 1, toks, ti + 1)) return true;
    return slot.optional && match_slots(p, si + 1, toks, ti);
}

// Phrases of kPhraseDefs in the words of s (at most kMaxPhraseWords).
bool more_phrases(Scratch& s, Match& m) {
    const std::vector<Span>& words = s.words;
    if (words.empty() || words.size() > kMaxPhraseWords) return false;
    const std::u16string& t = s.text;
    const PhraseTable& table = phrase_table();
    Tokens& toks = s.tokens;  // reused: no allocation once warm
    toks.clear();
    for (const Span& w : words) {
        std::u16string_view v(t.data() + w.begin, w.end - w.begin);
        // French elision: l' d' j' m' n' s' t' c' qu' are words of their own.
        const std::size_t ap = v.find(u'\'');
        if ((ap == 1 || (ap == 2 && v[0] == u'q' && v[1] == u'u')) && v.size() > ap + 1) {
            toks.push_back(v.substr(0, ap + 1));
            toks.push_back(v.substr(ap + 1));
        } else {
            toks.push_back(v);
        }
    }
    for (std::size_t p = 0; p < toks.size(); ++p) {
        if (!table.maybe_first(toks[p])) continue;
        const auto it = table.by_first.find(toks[p]);
        if (it == table.by_first.end()) continue;
        for (std::size_t idx : it->second) {
            const PhraseTable::Phrase& ph = table.phrases[idx];
            if (!match_slots(ph, 0, toks, p)) continue;
            bool negated = false;
            if (ph.def->guarded)
                for (std::size_t w = p >= 3 ? p - 3 : 0; w < p && !negated; ++w)
                    for (const std::u16string& neg : ph.negators)
                        if (toks[w] == neg) negated = true;
            if (negated) continue;
            m.intent = Intent::OptOut;
            m.rule = Rule::Phrase;
            m.keyword = ph.def->canonical;
            m.language = ph.def->language;
            return true;
        }
    }
    return false;
}

// --------------------------------------------------------- sentences, review

// The end of the first sentence of s.text: the index of the first '.', '!',
// ';', line break (or their full-width and ideographic forms) after the
// first word, with its terminator in *term; or npos.
std::size_t first_sentence_end(const Scratch& s, char16_t* term) noexcept {
    const std::u16string& t = s.text;
    for (std::size_t i = s.words.front().end; i < t.size(); ++i) {
        const char16_t c = t[i];
        if (c == u'.' || c == u'!' || c == u';' || c == u'\n' || c == u'\r' || c == u'?' || c == u',' ||
            c == u'\u3002' || c == u'\u2026' || c == u'\u061F') {
            *term = c;
            return i;
        }
    }
    return std::u16string::npos;
}

constexpr struct {
    const char* word;
    const char* language;
} kLoneNegatives[] = {
    {"no", "en"}, {"nope", "en"}, {"nah", "en"}, {"non", "fr"}, {"nein", "de"}, {"nao", "pt"},
};

// The review rules on a body nothing else matched.
bool review(const Impl& k, Scratch& s, Match& m) {
    const std::u16string& t = s.text;
    // The sender's words (quoted spans dropped); at most 8 are needed, and
    // none unless the first is a letter or a negative word.
    // (classify_base() left at least the first word in s.words.)
    if (s.words.empty()) return false;
    {
        const Span& w = s.words.front();
        const std::size_t len = w.end - w.begin;
        if (len > 4) return false;  // the longest negative word has 4 letters
        bool candidate = len == 1;
        for (const auto& neg : kLoneNegatives) candidate = candidate || word_is(t, w, neg.word);
        if (!candidate) return false;
    }
    Span words_buf[8];
    std::size_t nwords = 0;
    {
        Tokenizer tk(t, /*drop_quotes=*/true);
        Span w{0, 0};
        while (nwords < 8 && tk.next(w)) words_buf[nwords++] = w;
    }
    struct {
        const Span* p;
        std::size_t n;
        std::size_t size() const noexcept { return n; }
        const Span& operator[](std::size_t i) const noexcept { return p[i]; }
    } words{words_buf, nwords};
    // A negative word alone, or with courtesy words after it ("no thanks",
    // "No, thank you"): the words after the first cut into courtesy keys.
    bool reach[9] = {true, false, false, false, false, false, false, false, false};
    for (std::size_t i = 1; i < words.size(); ++i) {
        if (!reach[i - 1]) continue;
        std::int32_t node = 0;
        for (std::size_t j = i; j < words.size() && node >= 0; ++j) {
            node = k.walk(node, t.data() + words[j].begin, words[j].end - words[j].begin);
            if (node >= 0 && (k.node(node).flags & Impl::kCourtesy)) reach[j] = true;
        }
    }
    const bool rest_courtesy = reach[words.size() - 1];
    if (words.size() < 8 && rest_courtesy) {
        for (const auto& neg : kLoneNegatives) {
            if (!word_is(t, words[0], neg.word)) continue;
            m.intent = Intent::Review;
            m.rule = Rule::LoneNegative;
            m.keyword = neg.word;
            m.language = neg.language;
            return true;
        }
    }
    // One letter, the first of an opt-out keyword.
    if (words.size() == 1 && words[0].end - words[0].begin == 1) {
        const char16_t c = t[words[0].begin];
        if (c >= u'a' && c <= u'z' && k.optout_initial[c - u'a'] >= 0) {
            // Which keyword it begins is anyone's guess ("s": stop, salir,
            // sair, stopp): the language is "und" (BCP 47: undetermined).
            m.intent = Intent::Review;
            m.rule = Rule::LoneLetter;
            m.keyword.assign(1, static_cast<char>(c));
            m.language = "und";
            return true;
        }
    }
    return false;
}

// Everything after the rules of classify_base(), on a body they did not
// match (m.intent == None). s holds what classify_base() left.
void extended(std::string_view body, Mode mode, const Impl* k, Scratch& s, Match& m) {
    const bool reasonable = mode == Mode::Reasonable;
    // Phrases of other languages and legal-style phrases: built in, like
    // the English request phrases; s.words holds the first words.
    if (reasonable && more_phrases(s, m)) return;
    if (k == nullptr) return;
    if (!reasonable && detail::all_ascii(body)) {
        // The common case of standard: only the review rules can apply.
        review(*k, s, m);
        return;
    }

    // Derived bodies, computed before any of them is classified (a nested
    // classify_base() reuses the scratch buffers).
    std::string lookalike, typo;
    const bool any_lookalike = !detail::all_ascii(body) && lookalike_body(*k, s.raw, lookalike);
    const bool words = !s.words.empty();
    // The sentence and aside rules need a first word that begins a key or a
    // courtesy word (else the first sentence cannot be an opt-out). The
    // first sentence is read by standard's rules on its words (words
    // joined, opt-out keywords and courtesy words), without reading the
    // body again.
    bool first_keyed = false;
    if (reasonable && words) {
        const Span& w = s.words.front();
        const std::int32_t node = k->walk(0, s.text.data() + w.begin, w.end - w.begin);
        first_keyed = node >= 0 && (k->node(node).flags & Impl::kStdPrefix) != 0;
    }
    std::int32_t sentence_entry = -1;
    bool aside_term = false;
    if (first_keyed) {
        char16_t term = 0;
        const std::size_t end = first_sentence_end(s, &term);
        std::size_t n = 0;
        while (n < s.words.size() && s.words[n].end <= end) ++n;
        // More words after the terminator (a word, not only punctuation).
        if (end != std::u16string::npos && n < s.words.size()) {
            const std::int32_t key = joined_key(*k, s.text, s.words, n);
            if (key >= 0 && k->key_intent(key) == Intent::OptOut) {
                sentence_entry = k->key_entry(key);
            } else {
                Rule seg_rule = Rule::None;
                const std::int32_t seg = segment_optout(*k, s, seg_rule, n);
                if (seg >= 0) sentence_entry = k->key_entry(seg);
            }
            aside_term = term == u',' || term == u'?' || term == u'\u061F';
        }
    }
    const bool any_typo = reasonable && words && typo_body(*k, s, typo);
    Match r;
    if (!review(*k, s, r)) r = Match{};
    std::string normalized = std::move(m.normalized);
    auto take = [&](const std::string& derived, Mode how, Rule rule) {
        Match d;
        classify_base(derived, how, k, s, false, d);
        if (d.intent != Intent::OptOut) return false;
        m.intent = Intent::OptOut;
        m.rule = rule;
        m.keyword = std::move(d.keyword);
        m.language = std::move(d.language);
        return true;
    };
    auto take_entry = [&](std::int32_t entry, Intent intent, Rule rule) {
        fill(m, *k, entry, rule);
        m.intent = intent;
        return true;
    };
    bool done = (any_lookalike && take(lookalike, mode, Rule::Lookalike)) ||
                (sentence_entry >= 0 && !aside_term && take_entry(sentence_entry, Intent::OptOut, Rule::Sentence)) ||
                (any_typo && take(typo, Mode::Reasonable, Rule::Typo)) ||
                (sentence_entry >= 0 && aside_term && take_entry(sentence_entry, Intent::Review, Rule::KeywordAside));
    if (!done && r.intent == Intent::Review) {
        m.intent = r.intent;
        m.rule = r.rule;
        m.keyword = std::move(r.keyword);
        m.language = std::move(r.language);
    }
    m.normalized = std::move(normalized);
}

}  // namespace

Match classify(std::string_view body, Mode mode, const KeywordSet& keywords, bool want_normalized) {
    Match m;
    if (mode != Mode::Exact && mode != Mode::Reasonable) mode = Mode::Standard;
    ScratchLease lease;
    Scratch& s = lease.get();
    // An empty (or moved-from) set has no keywords; only the built-in
    // request phrases of reasonable mode can then match.
    const Impl* k = keywords.size() != 0 ? &keywords.impl() : nullptr;
    classify_base(body, mode, k, s, want_normalized, m);
    if (m.intent == Intent::None && mode != Mode::Exact) extended(body, mode, k, s, m);
    return m;
}

}  // namespace optout
