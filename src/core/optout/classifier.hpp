// optout core: the opt-out classifier.
//
// Pure C++17 with ICU's C API. This header (and everything under src/core)
// must never include a PostgreSQL header: the PostgreSQL glue in src/pg calls
// it from behind an exception guard.
//
// The rules implemented here are those of docs/classifier.md, the
// classifier's reference.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace optout {

// What an inbound message asks for. None: not a keyword message (SQL NULL).
// Review: it may be a revocation but is too short or unclear to act on (a
// lone "no", "S", "Stop, you're killing me"): a person decides. Never a
// stop, never an intent a keyword can have.
enum class Intent : int { None = 0, OptOut = 1, OptIn = 2, Help = 3, Review = 4 };

// How strictly a body is read. Each mode accepts everything the previous one
// accepts.
enum class Mode : int { Exact = 0, Standard = 1, Reasonable = 2 };

// Which rule decided a match.
enum class Rule : int {
    None = 0,
    Exact,         // trimmed body equals a keyword, case-folded
    Normalized,    // normalised body equals a normalised keyword
    Separator,     // the body's words, joined, spell a keyword ("opt-out", "S.T.O.P")
    Repeat,        // several opt-out keywords and nothing else ("stop stop")
    Courtesy,      // opt-out keywords mixed with courtesy words ("Stop please")
    Phrase,        // reasonable mode: natural-language request ("leave me alone")
    Lookalike,     // a keyword spelled with look-alike letters of another script ("СANCEL")
    Typo,          // reasonable: a keyword with one slip ("usnubscribe", "cnacel")
    Sentence,      // reasonable: the first sentence is an opt-out ("END. Not interested")
    LoneNegative,  // review: the message is a bare "no" (nope, nah, non, nein, nao)
    LoneLetter,    // review: the message is one letter that begins an opt-out keyword ("S")
    KeywordAside   // review (reasonable): an opt-out keyword, then "," or "?" and more ("Stop, you're killing me")
};

// SQL labels: "opt_out", "opt_in", "help", "review"; "exact", "standard",
// "reasonable"; "exact", "normalized", "separator", "repeat", "courtesy",
// "phrase", "lookalike", "typo", "sentence", "lone_negative", "lone_letter",
// "keyword_aside". parse_intent() accepts only the three keyword intents.
// nullptr for Intent::None and Rule::None.
const char* to_string(Intent intent) noexcept;
const char* to_string(Mode mode) noexcept;
const char* to_string(Rule rule) noexcept;
bool parse_intent(std::string_view label, Intent& out) noexcept;
bool parse_mode(std::string_view label, Mode& out) noexcept;

// Bad input to the core: a keyword that cannot be used, or one whose key
// already belongs to another intent.
class Error : public std::runtime_error {
public:
    enum class Kind { InvalidKeyword, KeywordConflict, Icu, Interrupted };
    Error(Kind kind, const std::string& message);
    Kind kind() const noexcept { return kind_; }

private:
    Kind kind_;
};

// Interrupts. Long loops of the core (decoding, normalising, tokenising a
// large body) call `should_stop` every kPollUnits units of work; when it
// returns true the core throws Error(Kind::Interrupted). The PostgreSQL glue
// installs one that reports a pending cancel or termination, so a 100 MB
// body honours statement_timeout. Null (the default): never interrupted.
using ShouldStop = bool (*)();
void set_should_stop(ShouldStop fn) noexcept;

// The `standard` normalisation of a body (docs/classifier.md,
// "Normalisation"): NFKC with full case folding, default-ignorable code
// points removed, diacritics removed, apostrophe variants unified to U+0027,
// every run of white space collapsed to one space, and punctuation, symbols
// and emoji dropped at both ends. Invalid UTF-8 is read as U+FFFD. Linear in
// the input's length.
std::string normalize(std::string_view utf8);

// The match key of a keyword: its normalised words joined with no separator
// ("Opt-Out" -> "optout", "stop all" -> "stopall"). Empty when the keyword has
// no letter or digit.
std::string keyword_key(std::string_view utf8);

// The keywords a classifier matches. Move-only.
class KeywordSet {
public:
    KeywordSet();
    ~KeywordSet();
    KeywordSet(KeywordSet&&) noexcept;
    KeywordSet& operator=(KeywordSet&&) noexcept;
    KeywordSet(const KeywordSet&) = delete;
    KeywordSet& operator=(const KeywordSet&) = delete;

    // Adds a keyword. Throws Error(InvalidKeyword) when its key is empty or
    // the intent is None, Error(KeywordConflict) when its key already belongs
    // to another intent (the message names both keywords). The same key with
    // the same intent is accepted: both spellings are known ("stop all",
    // "stopall").
    void add(std::string_view keyword, Intent intent, std::string_view language);

    // The default keywords of docs/classifier.md.
    static KeywordSet defaults();

    std::size_t size() const noexcept;

    struct Impl;
    const Impl& impl() const noexcept { return *impl_; }

private:
    std::unique_ptr<Impl> impl_;
};

// The outcome of classifying one body.
struct Match {
    Intent intent = Intent::None;
    Rule rule = Rule::None;
    std::string keyword;     // the keyword as stored (or the request phrase, for Rule::Phrase); empty when None
    std::string language;    // the keyword's language ("en" for phrases); empty when None
    std::string normalized;  // normalize(body), filled only when asked for
};

// Classifies one body. Total: any byte string, valid UTF-8 or not, of any
// length, gives a result in time linear in its length. Throws nothing but
// std::bad_alloc.
Match classify(std::string_view utf8, Mode mode, const KeywordSet& keywords, bool want_normalized = false);

}  // namespace optout
