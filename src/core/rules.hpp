// optout core, private: what the classifier's pipeline (classify.cpp) and
// its rule families (classify_lookalike.cpp, classify_typo.cpp,
// classify_phrases.cpp, classify_review.cpp) share.
//
// Pure C++17. Never include a PostgreSQL header here.
#pragma once

#include "keywords_impl.hpp"
#include "optout/classifier.hpp"
#include "text.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace optout::rules {

using Impl = KeywordSet::Impl;

// Reasonable mode (B): request phrases count only in messages of at most
// this many words (the sender's own words, quoted spans excluded).
constexpr std::size_t kMaxPhraseWords = 50;

// Whether word w of t is the ASCII literal lit.
inline bool word_is(const std::u16string& t, const detail::Span& w, const char* lit) noexcept {
    const std::size_t len = w.end - w.begin;
    for (std::size_t i = 0; i < len; ++i) {
        const unsigned char l = static_cast<unsigned char>(lit[i]);
        if (l == 0 || t[w.begin + i] != l) return false;
    }
    return lit[len] == 0;
}

// classify_phrases.cpp. (B): a non-negated English request phrase among
// words (at most kMaxPhraseWords); true with the canonical phrase.
bool request_phrase(const std::u16string& t, const std::vector<detail::Span>& words, std::string& phrase);
// The phrases of other languages and legal-style English in s.words; true
// with m filled in (Rule::Phrase).
bool more_phrases(detail::Scratch& s, Match& m);
// A leave-type request that is the whole message ("leave", "exit", "delete
// me", "go away", "bórrame"), with courtesy words only around it (k may be
// null: then none); true with m filled in (Rule::Phrase).
bool whole_request(const Impl* k, const detail::Scratch& s, Match& m);

// classify_lookalike.cpp: raw (the body as typed) with every look-alike word
// replaced by its ASCII spelling, into out (UTF-8); false when none was.
bool lookalike_body(const Impl& k, const std::u16string& raw, std::string& out);

// classify_typo.cpp: s.text with the first non-courtesy word corrected to an
// opt-out key one slip away, into out (UTF-8); false when there is none.
bool typo_body(const Impl& k, const detail::Scratch& s, std::string& out);

// classify_review.cpp: the end of the first sentence of s.text (see there),
// and the review rules on a body nothing else matched (true with m filled in).
std::size_t first_sentence_end(const detail::Scratch& s, char16_t* term) noexcept;
bool review(const Impl& k, detail::Scratch& s, Match& m);

}  // namespace optout::rules
