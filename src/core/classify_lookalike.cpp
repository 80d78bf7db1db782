// optout core: the look-alike letters rule (Rule::Lookalike, standard and
// reasonable modes; docs/classifier.md, "Look-alike letters"). A word
// holding letters of another script that ICU's confusable skeletons map to
// ASCII letters is read as those letters; classify() then reads the body
// so derived with its other rules.
#include "rules.hpp"

#include <unicode/uchar.h>
#include <unicode/uscript.h>
#include <unicode/uspoof.h>
#include <unicode/utf16.h>

#include <string>

namespace optout::rules {

namespace {

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

}  // namespace

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

}  // namespace optout::rules
