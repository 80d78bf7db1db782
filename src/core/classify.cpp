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

#include <climits>
#include <cstdint>
#include <iterator>
#include <string>

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
std::int32_t joined_key(const Impl& k, const std::u16string& t, const std::vector<Span>& words) {
    std::int32_t node = 0;
    for (const Span& w : words) {
        node = k.walk(node, t.data() + w.begin, w.end - w.begin);
        if (node < 0) return -1;
    }
    return k.node(node).key;
}

// (d): segmentation into opt-out and courtesy keys. State bits: 1 = an
// opt-out segment seen, 2 = a courtesy segment seen. Returns the first
// opt-out key of the chosen segmentation, or -1.
std::int32_t segment_optout(const Impl& k, Scratch& s, Rule& rule) {
    const std::u16string& t = s.text;
    const std::vector<Span>& words = s.words;
    const std::size_t n = words.size();
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

const char* to_string(Intent intent) noexcept {
    switch (intent) {
        case Intent::OptOut: return "opt_out";
        case Intent::OptIn: return "opt_in";
        case Intent::Help: return "help";
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

Match classify(std::string_view body, Mode mode, const KeywordSet& keywords, bool want_normalized) {
    Match m;
    if (mode != Mode::Exact && mode != Mode::Reasonable) mode = Mode::Standard;
    ScratchLease lease;
    Scratch& s = lease.get();
    const bool ascii = detail::all_ascii(body);
    bool raw_ready = false;
    // An empty (or moved-from) set has no keywords; only the built-in
    // request phrases of reasonable mode can then match.
    const Impl* k = keywords.size() != 0 ? &keywords.impl() : nullptr;
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
        return m;
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
        do s.words.push_back(w);
        while (tk.next(w));
    } else if (mode == Mode::Reasonable && any_word) {
        // Only (B) reads these words, and of a message longer than
        // kMaxPhraseWords words only that it is longer.
        do s.words.push_back(w);
        while (s.words.size() <= kMaxPhraseWords && tk.next(w));
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
    return m;
}

}  // namespace optout
