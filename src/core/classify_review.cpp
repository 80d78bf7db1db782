// optout core: the review rules (Intent::Review; docs/classifier.md, "The
// review queue"): a lone negative word (Rule::LoneNegative), a lone letter
// that begins an opt-out keyword (Rule::LoneLetter); and the end of the
// first sentence, which the sentence and keyword-aside rules of classify()
// read.
#include "rules.hpp"

#include <cstddef>
#include <string>

namespace optout::rules {

using detail::Scratch;
using detail::Span;
using detail::Tokenizer;

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

namespace {

constexpr struct {
    const char* word;
    const char* language;
} kLoneNegatives[] = {
    {"no", "en"}, {"nope", "en"}, {"nah", "en"}, {"non", "fr"}, {"nein", "de"}, {"nao", "pt"},
};

}  // namespace

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

}  // namespace optout::rules
