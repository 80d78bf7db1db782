// optout core: the typo rule (Rule::Typo, reasonable mode; docs/classifier.md,
// "Typos"). One slip (a QWERTY neighbour, a transposition, a letter too
// many or too few) in the first word that is not a courtesy word, never a
// real word (kRealWords), spelling an opt-out key.
#include "rules.hpp"

#include <cstddef>
#include <string>

namespace optout::rules {

using detail::Scratch;
using detail::Span;

namespace {

// Words a typo rule must never correct: real words one slip away from a
// keyword (the traps of test/data/families.jsonl).
constexpr const char* kRealWords[] = {
    "stomp", "stoop", "steep", "spot",  "quiet", "quite", "send",  "bend",     "cancer",
    "alot",  "sari",  "arete", "parra", "para",  "aire",  "canal", "anmelden", "anmelde",
};

// Four-letter keys take no QWERTY-neighbour slip in general (too many real
// words lie one key away: "step", "shop", "slop" are no neighbour slips of
// "stop", but "algo", "apto", "said", "sait", "pate", "pars" are of "alto",
// "sair", "pare"). Instead, this closed list: every neighbour slip (never
// the first letter) of the four-letter default opt-out keys that is not a
// word of en/es/fr/pt/de, checked one by one. A slip counts only while its
// key is an opt-out key of the set.
constexpr struct {
    const char* slip;
    const char* key;
} kFourLetterSlips[] = {
    {"srop", "stop"}, {"syop", "stop"}, {"sfop", "stop"}, {"sgop", "stop"}, {"stip", "stop"}, {"stpp", "stop"},
    {"stkp", "stop"}, {"stlp", "stop"}, {"stoo", "stop"}, {"stol", "stop"}, {"qyit", "quit"}, {"qiit", "quit"},
    {"qhit", "quit"}, {"qjit", "quit"}, {"quut", "quit"}, {"qujt", "quit"}, {"qukt", "quit"}, {"quir", "quit"},
    {"quiy", "quit"}, {"quif", "quit"}, {"quig", "quit"}, {"akto", "alto"}, {"aoto", "alto"}, {"alro", "alto"},
    {"alyo", "alto"}, {"altp", "alto"}, {"altk", "alto"}, {"altl", "alto"}, {"bqja", "baja"}, {"bwja", "baja"},
    {"bsja", "baja"}, {"bzja", "baja"}, {"baua", "baja"}, {"bajq", "baja"}, {"bajw", "baja"}, {"bajz", "baja"},
    {"sqir", "sair"}, {"swir", "sair"}, {"ssir", "sair"}, {"szir", "sair"}, {"sajr", "sair"}, {"sakr", "sair"},
    {"pqre", "pare"}, {"pwre", "pare"}, {"psre", "pare"}, {"pzre", "pare"}, {"paee", "pare"}, {"pafe", "pare"},
    {"parw", "pare"},
};

// QWERTY neighbours of each letter a-z.
constexpr const char* kNeighbours[26] = {
    "qwsz", "vghn", "xdfv", "serfcx", "wrsd", "drtgvc", "ftyhbv", "gyujnb", "uojk", "huikmn", "jiolm", "kop",  "njk",
    "bhjm", "ipkl", "ol",   "wa",     "etdf", "awedxz", "ryfg",   "yihj",   "cfgb", "qeas",   "zsdc",  "tugh", "asx",
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

}  // namespace

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
    const std::u16string* slip_key = nullptr;
    if (wn == 4) {
        for (const auto& sl : kFourLetterSlips) {
            if (!word_is(t, w, sl.slip)) continue;
            for (const std::u16string& key : k.typo_keys[t[w.begin] - u'a'])
                if (key.size() == 4 && key[0] == static_cast<unsigned char>(sl.key[0]) &&
                    key[1] == static_cast<unsigned char>(sl.key[1]) &&
                    key[2] == static_cast<unsigned char>(sl.key[2]) && key[3] == static_cast<unsigned char>(sl.key[3]))
                    slip_key = &key;
            break;
        }
    }
    for (const std::u16string& key : k.typo_keys[t[w.begin] - u'a']) {
        if (&key != slip_key && !one_slip(t.data() + w.begin, wn, key)) continue;
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

}  // namespace optout::rules
