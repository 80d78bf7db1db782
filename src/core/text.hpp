// optout core, private: the Unicode text pipeline shared by classify(),
// normalize(), keyword_key() and KeywordSet.
//
// Pure C++17 + ICU C API. Never include a PostgreSQL header here.
// Everything works on UTF-16 (char16_t == UChar), with std::size_t offsets:
// only the ICU calls themselves are limited to int32_t lengths, and those
// are made chunk by chunk at normalisation boundaries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace optout::detail {

// Stream-safe limit (UAX #15 uses 30): at most this many consecutive
// non-starters (canonical combining class != 0, counted after decomposition)
// are kept; the excess of a longer run is dropped. Without it ICU's canonical
// reordering (an insertion sort) is quadratic in the length of the run.
constexpr std::size_t kMaxNonStarters = 30;

// Lengths in UTF-16 code units above which ICU is called chunk by chunk.
constexpr std::size_t kIcuChunk = std::size_t{1} << 16;

// Interrupts (classifier.hpp, set_should_stop): a loop over a body asks
// every kPollUnits units. Poller::at(i) is one comparison per iteration;
// it throws Error(Kind::Interrupted) when the installed callback says stop.
constexpr std::size_t kPollUnits = std::size_t{1} << 18;
void poll_interrupt();
struct Poller {
    std::size_t next = kPollUnits;
    void at(std::size_t i) {
        if (i >= next) {
            poll_interrupt();
            next = i + kPollUnits;
        }
    }
};

// A word: [begin, end) in UTF-16 code units of the normalised text.
struct Span {
    std::size_t begin;
    std::size_t end;
};

// Per-thread scratch buffers, reused between calls so that classifying a
// short message allocates nothing once the buffers have grown. The
// PostgreSQL backend is single-threaded; thread_local keeps the core safe in
// multi-threaded unit tests and fuzzers.
struct Scratch {
    std::u16string raw;   // the body decoded from UTF-8 (U+FFFD substitution)
    std::u16string pre;   // raw after the stream-safe pre-pass
    std::u16string dec;   // NFKC_Casefold, decomposed
    std::u16string filt;  // dec without Mn/Me, apostrophes unified
    std::u16string text;  // the normalised text (steps 1-2), NFC
    std::u16string tmp;   // exact-fold text, collapsed text, ...
    std::vector<Span> words;
    bool dropped_quotes = false;              // classify_base(): a quoted span after a word held words
    std::vector<std::u16string_view> tokens;  // words with French elisions split (classify_phrases.cpp)
    std::vector<std::uint8_t> reach;
    std::vector<std::int32_t> first;

    // Gives back buffers that grew large (a 1 MB body) so that a long-lived
    // backend does not keep megabytes of scratch after one huge message.
    void release_large() noexcept;
};

Scratch& scratch() noexcept;

// Scope guard for the public entry points: releases large buffers on exit.
class ScratchLease {
public:
    ScratchLease() noexcept : s_(scratch()) {}
    ~ScratchLease() { s_.release_large(); }
    ScratchLease(const ScratchLease&) = delete;
    ScratchLease& operator=(const ScratchLease&) = delete;
    Scratch& get() noexcept { return s_; }

private:
    Scratch& s_;
};

// ---------------------------------------------------------------- characters

enum class CharClass : std::uint8_t {
    Word,   // general category L*, N* or M*
    Quote,  // Quotation_Mark (incl. U+0027, which may be an in-word apostrophe)
    Space,  // White_Space
    Other   // punctuation, symbols, emoji, controls, U+FFFD ...
};

// ASCII character classes, indexed by byte (inline: the tokenizer asks for
// every character, and most messages are ASCII).
struct AsciiTable {
    CharClass cls[128];
    constexpr AsciiTable() : cls() {
        for (int c = 0; c < 128; ++c) {
            CharClass k = CharClass::Other;
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                k = CharClass::Word;
            else if (c == '"' || c == '\'')
                k = CharClass::Quote;
            else if (c == ' ' || (c >= 0x09 && c <= 0x0D))
                k = CharClass::Space;
            cls[c] = k;
        }
    }
};
inline constexpr AsciiTable kAscii{};

// The class of a non-ASCII character, and whether it is white space (ICU).
CharClass char_class_icu(char32_t c) noexcept;
bool is_white_space_icu(char32_t c) noexcept;

inline CharClass char_class(char32_t c) noexcept { return c < 0x80 ? kAscii.cls[c] : char_class_icu(c); }
inline bool is_white_space(char32_t c) noexcept {
    return c < 0x80 ? kAscii.cls[c] == CharClass::Space : is_white_space_icu(c);
}

// ------------------------------------------------------------------ pipeline

bool all_ascii(std::string_view bytes) noexcept;

// UTF-8 -> UTF-16; every maximal ill-formed subsequence becomes U+FFFD.
void decode_utf8(std::string_view utf8, std::u16string& out);

// UTF-16 -> UTF-8 (unpaired surrogates, which the pipeline never produces,
// become U+FFFD).
void append_utf8(const char16_t* s, std::size_t n, std::string& out);
std::string to_utf8(const std::u16string& s);

// Full case folding (no NFKC, no ignorable removal) of `s` trimmed of
// White_Space: the `exact` comparison form. The result is left empty when
// the trimmed text is longer than `max_len` code units (it cannot equal any
// keyword then: folding never shortens a string by more than half) or on an
// ICU failure.
void exact_fold(const char16_t* s, std::size_t n, std::size_t max_len, std::u16string& out);
// The same for an all-ASCII byte string.
void exact_fold_ascii(std::string_view ascii, std::size_t max_len, std::u16string& out);

// Steps 1-2 of the pipeline: NFKC_Casefold (removes default ignorables),
// diacritics removed (NFD, drop Mn/Me, NFC), apostrophe variants -> U+0027.
// Takes the ASCII fast path when `ascii` is true; otherwise decodes `utf8`
// into s.raw first unless `raw_ready` says s.raw already holds it.
// The result is left in `out` (which must not be one of s's other buffers).
void normalize_text(std::string_view utf8, bool ascii, bool raw_ready, Scratch& s, std::u16string& out);

// Normalised text -> normalize()'s form: every White_Space run becomes one
// U+0020, characters other than letters/digits/marks dropped at both ends.
// Returns false (leaving `out` partial) as soon as the result would be longer
// than `limit` code units.
bool collapse_trim(const std::u16string& text, std::u16string& out, std::size_t limit);

// Test/fuzz hook: normalize() forced through ICU even for ASCII input, so
// that the ASCII fast path can be checked against it.
std::string normalize_via_icu(std::string_view utf8);

// ------------------------------------------------------------------- words

// Splits a normalised text into words: maximal runs of letters, digits,
// marks and in-word apostrophes (U+0027 with a word character on both
// sides). With drop_quotes, the rule of docs/classifier.md, "Quotes",
// applies: a quotation mark met before any word opens a "leading" quote
// whose words count, and the next quotation mark closes it; a quotation mark
// met after a word opens a quoted span running to the next quotation mark
// (or the end) whose words are skipped. Without drop_quotes, quotation marks
// just separate words.
class Tokenizer {
public:
    Tokenizer(const std::u16string& text, bool drop_quotes) noexcept
        : s_(text.data()), n_(text.size()), drop_quotes_(drop_quotes) {}
    bool next(Span& word) noexcept;
    // True once a skipped quoted span contained a letter, digit or mark.
    bool dropped_words() const noexcept { return dropped_words_; }

private:
    void skip_quoted_span() noexcept;

    const char16_t* s_;
    std::size_t n_;
    std::size_t i_ = 0;
    bool drop_quotes_;
    bool seen_word_ = false;
    bool in_leading_quote_ = false;
    bool dropped_words_ = false;
};

}  // namespace optout::detail
