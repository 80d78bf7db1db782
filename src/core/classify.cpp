// optout core: the classifier's pipeline, classify(), and the small public
// helpers (labels, normalize()). The rule families it calls after the base
// rules are in classify_lookalike.cpp, classify_typo.cpp,
// classify_phrases.cpp (with the English request phrases) and
// classify_review.cpp; what they share is in rules.hpp.
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
// EXTENDED RULES (extended(), after classify_base()): only when the rules
//  above found nothing. Standard and reasonable: look-alike letters (words holding a
//  letter of another script, mapped through ICU's confusable skeletons, that
//  spell an opt-out key; the body is read again) -> Rule::Lookalike.
//  Reasonable: request phrases of es/fr/pt/de (with their reflexive and
//  attached-pronoun forms) and legal-style English, wishes not to be
//  contacted without a keyword, asking to discard or forget the number, and
//  asking how to unsubscribe ("how do I opt out?")
//  (kPhraseDefs, same 50-word limit, per-language negators); a leave-type
//  request that is the whole message with only courtesy words around it
//  (whole_request(): "leave", "delete me") -> Rule::Phrase; the first
//  sentence read by rules (c)/(d) on its words -> Rule::Sentence; one slip in
//  the first non-courtesy word (one_slip(), never a kRealWords word), or one
//  QWERTY slip of a four-letter key from the closed list kFourLetterSlips
//  (the body is read again) -> Rule::Typo. Then Intent::Review: a lone negative word
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
#include "rules.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace optout {

namespace {

using detail::Scratch;
using detail::ScratchLease;
using detail::Span;
using detail::Tokenizer;
using rules::first_sentence_end;
using rules::Impl;
using rules::kMaxPhraseWords;
using rules::lookalike_body;
using rules::more_phrases;
using rules::request_phrase;
using rules::review;
using rules::typo_body;
using rules::whole_request;

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

// ------------------------------------------------------------ reasonable (A)

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

// The base rules (exact, normalized, separator, repeat, courtesy, phrase):
// fills m, and leaves the body's normalised text in s.text (and its words in
// s.words, see below) for the rules of extended().
void classify_base(std::string_view body, Mode mode, const Impl* k, Scratch& s, bool want_normalized, Match& m) {
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
    s.dropped_quotes = tk.dropped_words();
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

// ---------------------------------------------------------- extended rules
// The rule families of docs/classifier.md ("Look-alike letters", "Typos",
// "Other languages", "Legal-style revocations", "A keyword sentence first",
// "The review queue"). They run only when the base rules found nothing, so
// every base result stands.

// Everything after the rules of classify_base(), on a body they did not
// match (m.intent == None). s holds what classify_base() left.
void extended(std::string_view body, Mode mode, const Impl* k, Scratch& s, Match& m) {
    const bool reasonable = mode == Mode::Reasonable;
    // Phrases of other languages and legal-style phrases: built in, like
    // the English request phrases; s.words holds the first words.
    if (reasonable && (more_phrases(s, m) || whole_request(k, s, m))) return;
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
