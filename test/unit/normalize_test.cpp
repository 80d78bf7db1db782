// normalize() and keyword_key(): docs/classifier.md, "Normalisation" and
// "Words".
#include "optout/classifier.hpp"
#include "text.hpp"  // detail::normalize_via_icu (the ICU path, for the ASCII fast path)

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using optout::keyword_key;
using optout::normalize;

std::string repeat(const std::string& unit, std::size_t times) {
    std::string s;
    s.reserve(unit.size() * times);
    for (std::size_t i = 0; i < times; ++i) s += unit;
    return s;
}

TEST(Normalize, CaseFolding) {
    EXPECT_EQ(normalize("STOP"), "stop");
    EXPECT_EQ(normalize("sToP"), "stop");
    EXPECT_EQ(normalize("STRASSE"), "strasse");
    EXPECT_EQ(normalize("Straße"), "strasse");       // full case folding: ß -> ss
    EXPECT_EQ(normalize("ΣΤΟΠ"), "στοπ");            // Greek capital letters
    EXPECT_NE(normalize("stop"), normalize("stp"));  // negative
}

TEST(Normalize, FullWidthAndCompatibility) {
    EXPECT_EQ(normalize("ＳＴＯＰ"), "stop");
    EXPECT_EQ(normalize("ｓｔｏｐ"), "stop");
    EXPECT_EQ(normalize("𝐒𝐓𝐎𝐏"), "stop");  // mathematical bold
    EXPECT_EQ(normalize("ﬁn"), "fin");     // ligature
    EXPECT_EQ(normalize("①"), "1");
    EXPECT_NE(normalize("ＳＴＯＰ"), "ＳＴＯＰ");
}

TEST(Normalize, DefaultIgnorablesRemoved) {
    EXPECT_EQ(normalize("S\u200BTOP"), "stop");        // zero-width space
    EXPECT_EQ(normalize("S\u200DTOP"), "stop");        // zero-width joiner
    EXPECT_EQ(normalize("S\u200CTOP"), "stop");        // zero-width non-joiner
    EXPECT_EQ(normalize("ST\u00ADOP"), "stop");        // soft hyphen
    EXPECT_EQ(normalize("STOP\uFE0F"), "stop");        // variation selector
    EXPECT_EQ(normalize("\u200FSTOP\u200E"), "stop");  // bidi marks
    EXPECT_EQ(normalize("\u2066STOP\u2069"), "stop");  // bidi isolates
    EXPECT_EQ(normalize("S\u2060TOP"), "stop");        // word joiner
    EXPECT_EQ(normalize("\uFEFFSTOP"), "stop");        // BOM / ZWNBSP
    EXPECT_EQ(normalize("S\u034FTOP"), "stop");        // combining grapheme joiner
    // A visible separator is not ignorable.
    EXPECT_EQ(normalize("S-TOP"), "s-top");
}

TEST(Normalize, DiacriticsRemoved) {
    EXPECT_EQ(normalize("Arrêt"), "arret");
    EXPECT_EQ(normalize("ARRÊT"), "arret");
    EXPECT_EQ(normalize("Arre\u0302t"), "arret");  // decomposed input
    EXPECT_EQ(normalize("Ñandú"), "nandu");
    EXPECT_EQ(normalize("Ærø"), "ærø");          // letters without decomposition stay
    EXPECT_EQ(normalize("s\u20DDtop"), "stop");  // enclosing mark (Me)
    EXPECT_NE(normalize("arret"), normalize("arrest"));
}

TEST(Normalize, ApostropheVariants) {
    const std::string want = "don't";
    EXPECT_EQ(normalize("don't"), want);
    EXPECT_EQ(normalize("don\u2019t"), want);
    EXPECT_EQ(normalize("don\u2018t"), want);
    EXPECT_EQ(normalize("don\u02BCt"), want);
    EXPECT_EQ(normalize("don\u02BBt"), want);
    EXPECT_EQ(normalize("don\u201Bt"), want);
    EXPECT_EQ(normalize("don`t"), want);
    EXPECT_EQ(normalize("DON\uFF07T"), want);  // full-width apostrophe, via NFKC
    EXPECT_NE(normalize("don\"t"), want);      // a double quote is not an apostrophe
}

TEST(Normalize, WhiteSpaceCollapsed) {
    EXPECT_EQ(normalize("stop  all"), "stop all");
    EXPECT_EQ(normalize("stop\t\r\n all"), "stop all");
    EXPECT_EQ(normalize("stop\u00A0all"), "stop all");  // no-break space
    EXPECT_EQ(normalize("stop\u3000all"), "stop all");  // ideographic space
    EXPECT_EQ(normalize("stop\u2028all"), "stop all");  // line separator
    EXPECT_EQ(normalize("stop\u0085all"), "stop all");  // next line
    EXPECT_EQ(normalize("stop \u2003\u2009 all"), "stop all");
    EXPECT_EQ(normalize("a , b"), "a , b");  // only white space is collapsed
}

TEST(Normalize, EndsTrimmed) {
    EXPECT_EQ(normalize("  STOP  "), "stop");
    EXPECT_EQ(normalize("Stop!"), "stop");
    EXPECT_EQ(normalize("STOP!!!"), "stop");
    EXPECT_EQ(normalize("...stop?"), "stop");
    EXPECT_EQ(normalize("🛑 STOP 🛑"), "stop");
    EXPECT_EQ(normalize("\"STOP\""), "stop");
    EXPECT_EQ(normalize("«STOP»"), "stop");
    EXPECT_EQ(normalize("(stop)"), "stop");
    EXPECT_EQ(normalize("Stop. Thanks!"), "stop. thanks");            // inner punctuation stays
    EXPECT_EQ(normalize("Liked “Reply STOP”"), "liked “reply stop");  // quotes are kept inside
    EXPECT_EQ(normalize(""), "");
    EXPECT_EQ(normalize("   \t\n"), "");
    EXPECT_EQ(normalize("🛑🛑"), "");
    EXPECT_EQ(normalize("!?"), "");
}

TEST(Normalize, InvalidUtf8AndNul) {
    EXPECT_EQ(normalize("STOP\xFF"), "stop");              // U+FFFD is a symbol: trimmed
    EXPECT_EQ(normalize("\xC3(stop)"), "stop");            // truncated lead byte, then ASCII
    EXPECT_EQ(normalize("ST\xFFOP"), "st\xEF\xBF\xBDop");  // inner U+FFFD kept
    EXPECT_EQ(normalize("\xED\xA0\x80stop"), "stop");      // encoded surrogate: invalid
    EXPECT_EQ(normalize("\xC0\xAFstop"), "stop");          // overlong: invalid
    EXPECT_EQ(normalize("\xF4\x90\x80\x80stop"), "stop");  // beyond U+10FFFF: invalid
    EXPECT_EQ(normalize("stop\xE2\x82"), "stop");          // truncated sequence
    EXPECT_EQ(normalize(std::string("\0STOP\0", 6)), "stop");
    EXPECT_EQ(normalize(std::string("ST\0OP", 5)), std::string("st\0op", 5));
}

TEST(Normalize, LoneCombiningMarks) {
    EXPECT_EQ(normalize("\u0301"), "");
    EXPECT_EQ(normalize(repeat("\u0301", 1000)), "");
    EXPECT_EQ(normalize("\u0301stop"), "stop");
    EXPECT_EQ(normalize("stop" + repeat("\u0301\u0316", 500)), "stop");  // Zalgo
    EXPECT_EQ(normalize("\u20DD"), "");
}

TEST(Normalize, StreamSafeCap) {
    // Spacing marks with a non-zero combining class are kept, at most 30 in a row.
    const std::string mc = "\U0001D165";  // MUSICAL SYMBOL COMBINING STEM (Mc, ccc 216)
    EXPECT_EQ(normalize("a" + repeat(mc, 5)), "a" + repeat(mc, 5));
    EXPECT_EQ(normalize("a" + repeat(mc, 100)), "a" + repeat(mc, 30));
    // Removed marks (Mn) between them do not reset the run.
    EXPECT_EQ(normalize("a" + repeat(mc + "\u0301", 100)), "a" + repeat(mc, 30));
}

TEST(Normalize, RightToLeft) {
    EXPECT_EQ(normalize("שָׁלוֹם"), "שלום");              // Hebrew points removed
    EXPECT_EQ(normalize("تَوَقَّفْ"), "توقف");              // Arabic harakat removed
    EXPECT_EQ(normalize("\u202BSTOP\u202C"), "stop");  // embedding controls
    EXPECT_EQ(normalize("مرحبا  STOP"), "مرحبا stop");
}

TEST(Normalize, Idempotent) {
    const std::vector<std::string> samples = {
        "STOP",
        " Stop! ",
        "Arrêt",
        "ＳＴＯＰ",
        "S\u200BTOP",
        "don’t text me",
        "Liked “Reply STOP”",
        "stop\u2028\u2029all",
        "ß",
        "ﬁ",
        "가",
        "\u1100\u1161",
        "ᾳ",
        "\u0345",
        "İstanbul",
        "a" + repeat("\U0001D165\U0001D16D", 40),
        "\xFF\xFE",
        std::string("a\0b", 3),
        "`quoted`",
        "e\u0301\u0316\u0301",
        "\u0F73\u0F73",
        "\uFF9E",
        "ǅ",
        "𝐒𝐓𝐎𝐏",
        "x\u0335\u0335y",
    };
    for (const std::string& s : samples) {
        const std::string once = normalize(s);
        EXPECT_EQ(normalize(once), once) << "input: " << s;
    }
}

TEST(Normalize, AsciiFastPathEqualsIcuPath) {
    std::string all;
    for (int c = 0; c < 128; ++c) all.push_back(static_cast<char>(c));
    const std::vector<std::string> samples = {
        all,
        "STOP",
        "  Stop All!! ",
        "don`t",
        "\"STOP\"",
        "a\tb\nc\rd\fe\vf",
        "A-B_C.D,E!F",
        std::string("x\0y", 3),
        "\x1C\x1D stop \x1F",
        "'quoted' `x`",
        "Mixed CASE 123",
    };
    for (const std::string& s : samples)
        EXPECT_EQ(normalize(s), optout::detail::normalize_via_icu(s)) << "input: " << s;
}

TEST(Normalize, LargeInputs) {
    const std::string big = repeat("Thanks for the reminder, see you tomorrow. ", 25000);  // ~1 MB
    EXPECT_EQ(normalize(big).substr(0, 10), "thanks for");
    const std::string emoji = repeat("🛑", 10000);
    EXPECT_EQ(normalize(emoji), "");
    const std::string marks = repeat("\u0301\u0316", 250000);  // 1 MB of alternating marks
    EXPECT_EQ(normalize(marks), "");
}

TEST(KeywordKey, WordsJoined) {
    EXPECT_EQ(keyword_key("stop"), "stop");
    EXPECT_EQ(keyword_key("STOP ALL"), "stopall");
    EXPECT_EQ(keyword_key("Opt-Out"), "optout");
    EXPECT_EQ(keyword_key("opt_out"), "optout");
    EXPECT_EQ(keyword_key("S.T.O.P"), "stop");
    EXPECT_EQ(keyword_key("  Arrêt!  "), "arret");
    EXPECT_EQ(keyword_key("ＳＴＯＰ"), "stop");
    EXPECT_EQ(keyword_key("S\u200BTOP"), "stop");
    EXPECT_EQ(keyword_key("don’t"), "don't");           // in-word apostrophe kept
    EXPECT_EQ(keyword_key("'stop'"), "stop");           // quotes are separators
    EXPECT_EQ(keyword_key("\"stop\" now"), "stopnow");  // ... not dropped spans
    EXPECT_EQ(keyword_key("!!!"), "");
    EXPECT_EQ(keyword_key(""), "");
    EXPECT_EQ(keyword_key("   "), "");
    EXPECT_EQ(keyword_key("🛑"), "");
    EXPECT_EQ(keyword_key("\u0301"), "");
    EXPECT_NE(keyword_key("stop"), keyword_key("stopp"));
}

TEST(KeywordKey, StableUnderNormalize) {
    for (const char* s : {"Stop All", "Opt-Out", "don’t text", "Arrêt!", "\"x\" y", "a.b.c"})
        EXPECT_EQ(keyword_key(normalize(s)), keyword_key(s)) << s;
}

}  // namespace
