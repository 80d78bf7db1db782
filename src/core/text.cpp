// optout core, private: the Unicode text pipeline. See text.hpp.
#include "text.hpp"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>
#include <unicode/utf8.h>

#include <climits>
#include <cstring>
#include <new>

namespace optout::detail {

namespace {

// Buffers larger than this (in elements) are freed after a public call.
constexpr std::size_t kKeepCapacity = std::size_t{1} << 18;

template <class Buffer>
void release_if_large(Buffer& b) noexcept {
    if (b.capacity() > kKeepCapacity) Buffer().swap(b);
}

// An ICU allocation failure is the one ICU error that becomes an exception
// (std::bad_alloc, the only exception the classifier may throw).
void throw_if_oom(UErrorCode e) {
    if (e == U_MEMORY_ALLOCATION_ERROR) throw std::bad_alloc();
}

inline void append_cp(std::u16string& out, char32_t c) {
    if (c <= 0xFFFF) {
        out.push_back(static_cast<char16_t>(c));
    } else {
        out.push_back(static_cast<char16_t>(U16_LEAD(c)));
        out.push_back(static_cast<char16_t>(U16_TRAIL(c)));
    }
}

inline bool is_mn_me(UChar32 c) noexcept { return (U_GET_GC_MASK(c) & (U_GC_MN_MASK | U_GC_ME_MASK)) != 0; }

// Apostrophe variants read as U+0027 (docs/classifier.md, "Normalisation").
inline UChar32 unify_apostrophe(UChar32 c) noexcept {
    switch (c) {
        case 0x2019:  // RIGHT SINGLE QUOTATION MARK
        case 0x2018:  // LEFT SINGLE QUOTATION MARK
        case 0x02BC:  // MODIFIER LETTER APOSTROPHE
        case 0x02BB:  // MODIFIER LETTER TURNED COMMA
        case 0x201B:  // SINGLE HIGH-REVERSED-9 QUOTATION MARK
        case 0x0060:  // GRAVE ACCENT
            return 0x27;
        default: return c;
    }
}

// Runs `norm` over `in`, appending to `out`. The input is cut into chunks
// of about kIcuChunk code units, each cut placed before a code point that
// has a normalisation boundary before it, so that the concatenated results
// equal the normalisation of the whole (ICU's documented property of
// hasBoundaryBefore) while every ICU call stays within int32_t lengths.
// Returns false on an ICU failure other than out-of-memory.
bool run_normalizer(const UNormalizer2* norm, const std::u16string& in, std::u16string& out) {
    out.clear();
    const std::size_t n = in.size();
    std::size_t pos = 0;
    Poller poll;
    while (pos < n) {
        poll.at(pos);
        std::size_t end = n;
        if (n - pos > kIcuChunk) {
            end = pos + kIcuChunk;
            while (end < n) {
                if (U16_IS_TRAIL(in[end])) {
                    ++end;
                    continue;
                }
                UChar32 c;
                U16_GET(in.data(), 0, end, n, c);
                if (unorm2_hasBoundaryBefore(norm, c)) break;
                ++end;
            }
        }
        const std::size_t len = end - pos;
        // NFKC_Casefold can expand a code point up to 18 times: guess small,
        // retry with the exact size ICU reports.
        if (len > static_cast<std::size_t>(INT32_MAX) / 4) return false;
        const std::size_t old = out.size();
        std::size_t cap = len + len / 2 + 16;
        out.resize(old + cap);
        UErrorCode e = U_ZERO_ERROR;
        int32_t got = unorm2_normalize(norm, in.data() + pos, static_cast<int32_t>(len), out.data() + old,
                                       static_cast<int32_t>(cap), &e);
        if (e == U_BUFFER_OVERFLOW_ERROR) {
            cap = static_cast<std::size_t>(got);
            out.resize(old + cap);
            e = U_ZERO_ERROR;
            got = unorm2_normalize(norm, in.data() + pos, static_cast<int32_t>(len), out.data() + old,
                                   static_cast<int32_t>(cap), &e);
        }
        throw_if_oom(e);
        if (U_FAILURE(e) || got < 0) {
            out.clear();
            return false;
        }
        out.resize(old + static_cast<std::size_t>(got));
        pos = end;
    }
    return true;
}

// Stream-safe pre-pass over the decoded body, before NFKC_Casefold. A code
// point with a decomposition boundary before it is kept and ends any run.
// Of the others (which reorder with, or attach to, what precedes):
//  - those that map to nothing (default ignorables) are dropped: NFKC_Casefold
//    removes them anyway;
//  - those whose mapping is nothing but Mn/Me marks are dropped: step 2
//    removes those marks anyway, and removing an element from a stable sort
//    leaves the others' order unchanged, so the final text is identical;
//  - the rest (in Unicode 15: 26 spacing marks with a non-zero combining
//    class, e.g. U+1D165) count towards the run by the number of
//    non-starters they decompose to; beyond kMaxNonStarters they are
//    dropped. Only pathological text (more than 30 stacked marks) changes.
void stream_safe(const UNormalizer2* cfd, const std::u16string& raw, std::u16string& out) {
    out.clear();
    out.reserve(raw.size());
    const char16_t* s = raw.data();
    const std::size_t n = raw.size();
    std::size_t i = 0;
    std::size_t run = 0;
    Poller poll;
    while (i < n) {
        poll.at(i);
        UChar32 c;
        U16_NEXT(s, i, n, c);
        if (c < 0x80 || unorm2_hasBoundaryBefore(cfd, c)) {
            run = 0;
            append_cp(out, static_cast<char32_t>(c));
            continue;
        }
        UChar mapping[32];
        UErrorCode e = U_ZERO_ERROR;
        int32_t len = unorm2_getDecomposition(cfd, c, mapping, 32, &e);
        if (U_FAILURE(e)) len = -1;  // cannot happen (mappings are <= 18 units): read c as itself
        if (len == 0) continue;
        bool all_marks = true;
        std::size_t weight = 0;
        if (len < 0) {
            all_marks = is_mn_me(c);
            weight = u_getCombiningClass(c) != 0 ? 1 : 0;
        } else {
            for (int32_t k = 0; k < len;) {
                UChar32 m;
                U16_NEXT(mapping, k, len, m);
                if (!is_mn_me(m)) all_marks = false;
                if (u_getCombiningClass(m) != 0) ++weight;
            }
        }
        if (all_marks) continue;
        run += weight;
        if (run > kMaxNonStarters) continue;
        append_cp(out, static_cast<char32_t>(c));
    }
}

// Step 2 between NFD and NFC: drop Mn/Me, cap runs of non-starters (the
// removal of a ccc=0 mark can join two runs), unify apostrophes.
void strip_marks(const std::u16string& dec, std::u16string& out) {
    out.clear();
    out.reserve(dec.size());
    const char16_t* s = dec.data();
    const std::size_t n = dec.size();
    std::size_t i = 0;
    std::size_t run = 0;
    Poller poll;
    while (i < n) {
        poll.at(i);
        UChar32 c;
        U16_NEXT(s, i, n, c);
        if (c < 0x80) {
            run = 0;
            if (c == 0x60) c = 0x27;
            out.push_back(static_cast<char16_t>(c));
            continue;
        }
        if (is_mn_me(c)) continue;
        if (u_getCombiningClass(c) != 0) {
            if (++run > kMaxNonStarters) continue;
        } else {
            run = 0;
        }
        append_cp(out, static_cast<char32_t>(unify_apostrophe(c)));
    }
}

// Used only if ICU's normalisation data cannot be loaded (not expected: it
// is part of libicudata): simple case folding, default ignorables removed,
// apostrophes unified. Plain keywords still match.
void fallback_normalize(const std::u16string& raw, std::u16string& out) {
    out.clear();
    out.reserve(raw.size());
    const char16_t* s = raw.data();
    const std::size_t n = raw.size();
    std::size_t i = 0;
    Poller poll;
    while (i < n) {
        poll.at(i);
        UChar32 c;
        U16_NEXT(s, i, n, c);
        if (c >= 0x80 && u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT)) continue;
        c = unify_apostrophe(u_foldCase(c, U_FOLD_CASE_DEFAULT));
        append_cp(out, static_cast<char32_t>(c));
    }
}

void normalize_icu(Scratch& s, std::u16string& out) {
    UErrorCode e = U_ZERO_ERROR;
    const UNormalizer2* cfd = unorm2_getInstance(nullptr, "nfkc_cf", UNORM2_DECOMPOSE, &e);
    throw_if_oom(e);
    if (U_FAILURE(e) || cfd == nullptr) {
        fallback_normalize(s.raw, out);
        return;
    }
    e = U_ZERO_ERROR;
    const UNormalizer2* nfc = unorm2_getNFCInstance(&e);
    throw_if_oom(e);
    if (U_FAILURE(e) || nfc == nullptr) {
        fallback_normalize(s.raw, out);
        return;
    }
    stream_safe(cfd, s.raw, s.pre);
    // NFKC_Casefold in decompose mode == NFD(NFKC_Casefold(x)) (verified
    // for every code point of ICU 72), saving one pass.
    if (!run_normalizer(cfd, s.pre, s.dec)) {
        fallback_normalize(s.raw, out);
        return;
    }
    strip_marks(s.dec, s.filt);
    if (!run_normalizer(nfc, s.filt, out)) {
        // Should not happen; the decomposed form matches just as well.
        out = s.filt;
    }
}

}  // namespace

// ------------------------------------------------------------------ scratch

void Scratch::release_large() noexcept {
    release_if_large(raw);
    release_if_large(pre);
    release_if_large(dec);
    release_if_large(filt);
    release_if_large(text);
    release_if_large(tmp);
    release_if_large(words);
    release_if_large(reach);
    release_if_large(first);
    release_if_large(tokens);
}

Scratch& scratch() noexcept {
    thread_local Scratch s;
    return s;
}

// --------------------------------------------------------------- characters

CharClass char_class_icu(char32_t c) noexcept {
    const UChar32 u = static_cast<UChar32>(c);
    if (U_GET_GC_MASK(u) & (U_GC_L_MASK | U_GC_N_MASK | U_GC_M_MASK)) return CharClass::Word;
    if (u_isUWhiteSpace(u)) return CharClass::Space;
    if (u_hasBinaryProperty(u, UCHAR_QUOTATION_MARK)) return CharClass::Quote;
    return CharClass::Other;
}

bool is_white_space_icu(char32_t c) noexcept { return u_isUWhiteSpace(static_cast<UChar32>(c)) != 0; }

// ----------------------------------------------------------------- pipeline

bool all_ascii(std::string_view bytes) noexcept {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(bytes.data());
    std::size_t n = bytes.size();
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ULL) return false;
    }
    for (; i < n; ++i)
        if (p[i] & 0x80) return false;
    return true;
}

void decode_utf8(std::string_view utf8, std::u16string& out) {
    out.clear();
    out.reserve(utf8.size());
    const std::uint8_t* s = reinterpret_cast<const std::uint8_t*>(utf8.data());
    const std::size_t n = utf8.size();
    std::size_t i = 0;
    Poller poll;
    while (i < n) {
        poll.at(i);
        UChar32 c;
        U8_NEXT(s, i, n, c);
        if (c < 0) c = 0xFFFD;
        append_cp(out, static_cast<char32_t>(c));
    }
}

void append_utf8(const char16_t* s, std::size_t n, std::string& out) {
    const std::size_t old = out.size();
    out.resize(old + 3 * n);
    char* d = out.data() + old;
    std::size_t j = 0;
    std::size_t i = 0;
    while (i < n) {
        UChar32 c;
        U16_NEXT(s, i, n, c);
        if (U_IS_SURROGATE(c)) c = 0xFFFD;
        U8_APPEND_UNSAFE(d, j, c);
    }
    out.resize(old + j);
}

std::string to_utf8(const std::u16string& s) {
    std::string out;
    append_utf8(s.data(), s.size(), out);
    return out;
}

void exact_fold(const char16_t* s, std::size_t n, std::size_t max_len, std::u16string& out) {
    out.clear();
    std::size_t b = 0;
    std::size_t e = n;
    while (b < e) {
        std::size_t j = b;
        UChar32 c;
        U16_NEXT(s, j, e, c);
        if (!is_white_space(static_cast<char32_t>(c))) break;
        b = j;
    }
    while (e > b) {
        std::size_t j = e;
        UChar32 c;
        U16_PREV(s, b, j, c);
        if (!is_white_space(static_cast<char32_t>(c))) break;
        e = j;
    }
    const std::size_t len = e - b;
    if (len == 0 || len > max_len) return;
    if (len > static_cast<std::size_t>(INT32_MAX) / 4) return;
    std::size_t cap = len + 16;
    out.resize(cap);
    UErrorCode err = U_ZERO_ERROR;
    int32_t got = u_strFoldCase(out.data(), static_cast<int32_t>(cap), s + b, static_cast<int32_t>(len),
                                U_FOLD_CASE_DEFAULT, &err);
    if (err == U_BUFFER_OVERFLOW_ERROR) {
        cap = static_cast<std::size_t>(got);
        out.resize(cap);
        err = U_ZERO_ERROR;
        got = u_strFoldCase(out.data(), static_cast<int32_t>(cap), s + b, static_cast<int32_t>(len),
                            U_FOLD_CASE_DEFAULT, &err);
    }
    throw_if_oom(err);
    if (U_FAILURE(err) || got < 0) {
        out.clear();
        return;
    }
    out.resize(static_cast<std::size_t>(got));
}

void exact_fold_ascii(std::string_view ascii, std::size_t max_len, std::u16string& out) {
    out.clear();
    std::size_t b = 0;
    std::size_t e = ascii.size();
    while (b < e && kAscii.cls[static_cast<unsigned char>(ascii[b])] == CharClass::Space) ++b;
    while (e > b && kAscii.cls[static_cast<unsigned char>(ascii[e - 1])] == CharClass::Space) --e;
    if (e - b > max_len) return;
    out.resize(e - b);
    for (std::size_t i = b; i < e; ++i) {
        char c = ascii[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        out[i - b] = static_cast<char16_t>(c);
    }
}

void normalize_text(std::string_view utf8, bool ascii, bool raw_ready, Scratch& s, std::u16string& out) {
    if (ascii) {
        // NFKC_Casefold of ASCII is ASCII lower-casing (no ASCII character
        // is a default ignorable or has a compatibility mapping) and ASCII
        // has no diacritics; only the grave accent is an apostrophe variant.
        const std::size_t n = utf8.size();
        out.resize(n);
        Poller poll;
        for (std::size_t i = 0; i < n; ++i) {
            poll.at(i);
            char c = utf8[i];
            if (c >= 'A' && c <= 'Z')
                c = static_cast<char>(c - 'A' + 'a');
            else if (c == '`')
                c = '\'';
            out[i] = static_cast<char16_t>(c);
        }
        return;
    }
    if (!raw_ready) decode_utf8(utf8, s.raw);
    normalize_icu(s, out);
}

bool collapse_trim(const std::u16string& text, std::u16string& out, std::size_t limit) {
    out.clear();
    const char16_t* s = text.data();
    std::size_t b = 0;
    std::size_t e = text.size();
    // Drop everything but letters, digits and marks at both ends.
    while (b < e) {
        std::size_t j = b;
        UChar32 c;
        U16_NEXT(s, j, e, c);
        if (char_class(static_cast<char32_t>(c)) == CharClass::Word) break;
        b = j;
    }
    while (e > b) {
        std::size_t j = e;
        UChar32 c;
        U16_PREV(s, b, j, c);
        if (char_class(static_cast<char32_t>(c)) == CharClass::Word) break;
        e = j;
    }
    bool in_space = false;
    std::size_t i = b;
    while (i < e) {
        const std::size_t start = i;
        UChar32 c;
        U16_NEXT(s, i, e, c);
        if (is_white_space(static_cast<char32_t>(c))) {
            in_space = true;
            continue;
        }
        if (in_space) {
            if (out.size() >= limit) return false;
            out.push_back(u' ');
            in_space = false;
        }
        if (out.size() + (i - start) > limit) return false;
        out.append(s + start, i - start);
    }
    return true;
}

std::string normalize_via_icu(std::string_view utf8) {
    ScratchLease lease;
    Scratch& s = lease.get();
    normalize_text(utf8, /*ascii=*/false, /*raw_ready=*/false, s, s.text);
    collapse_trim(s.text, s.tmp, SIZE_MAX);
    return to_utf8(s.tmp);
}

// -------------------------------------------------------------------- words

bool Tokenizer::next(Span& word) noexcept {
    while (i_ < n_) {
        const std::size_t start = i_;
        UChar32 c;
        U16_NEXT(s_, i_, n_, c);
        const CharClass k = char_class(static_cast<char32_t>(c));
        if (k == CharClass::Word) {
            std::size_t end = i_;
            while (end < n_) {
                std::size_t j = end;
                UChar32 d;
                U16_NEXT(s_, j, n_, d);
                if (char_class(static_cast<char32_t>(d)) == CharClass::Word) {
                    end = j;
                    continue;
                }
                if (d == 0x27 && j < n_) {  // in-word apostrophe: "don't"
                    std::size_t j2 = j;
                    UChar32 after;
                    U16_NEXT(s_, j2, n_, after);
                    if (char_class(static_cast<char32_t>(after)) == CharClass::Word) {
                        end = j2;
                        continue;
                    }
                }
                break;
            }
            i_ = end;
            seen_word_ = true;
            word = Span{start, end};
            return true;
        }
        if (k == CharClass::Quote && drop_quotes_) {
            if (in_leading_quote_) {
                in_leading_quote_ = false;  // the leading quote's closing partner
            } else if (!seen_word_) {
                in_leading_quote_ = true;  // "STOP", «STOP»: ordinary punctuation
            } else {
                skip_quoted_span();  // Liked "Reply STOP ...": not the sender's words
            }
        }
    }
    return false;
}

void Tokenizer::skip_quoted_span() noexcept {
    bool prev_word = false;
    while (i_ < n_) {
        UChar32 c;
        U16_NEXT(s_, i_, n_, c);
        const CharClass k = char_class(static_cast<char32_t>(c));
        if (k == CharClass::Quote) {
            if (c == 0x27 && prev_word && i_ < n_) {
                std::size_t j = i_;
                UChar32 after;
                U16_NEXT(s_, j, n_, after);
                if (char_class(static_cast<char32_t>(after)) == CharClass::Word) {
                    prev_word = false;  // in-word apostrophe inside the span
                    continue;
                }
            }
            return;  // any quotation mark closes the span
        }
        prev_word = k == CharClass::Word;
        if (prev_word) dropped_words_ = true;
    }
}

}  // namespace optout::detail
