// classify(): one test per rule of docs/classifier.md, in every mode,
// with positive and negative cases; precedence; quotes; Unicode; robustness.
#include "classify_support.hpp"
#include "optout/classifier.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using optout::classify;
using optout::Intent;
using optout::KeywordSet;
using optout::Match;
using optout::Mode;
using optout::Rule;

using optout_test::defaults;
using optout_test::repeat;
using optout_test::run;

std::string show(const Match& m) {
    const char* i = optout::to_string(m.intent);
    const char* r = optout::to_string(m.rule);
    return std::string(i ? i : "null") + "/" + (r ? r : "none") + " keyword=\"" + m.keyword + "\" normalized=\"" +
           m.normalized + "\"";
}

// Expects intent and rule (Rule::None for Intent::None) in one mode.
#define EXPECT_CLASSIFY(body, mode, intent_, rule_)                                                  \
    do {                                                                                             \
        const Match m_ = run(body, mode);                                                            \
        EXPECT_TRUE(m_.intent == (intent_) && m_.rule == (rule_))                                    \
            << "body \"" << (body) << "\" mode " << optout::to_string(mode) << ": got " << show(m_); \
    } while (0)

// Same intent and rule in standard and reasonable; exact gives exact_intent.
void expect_std(std::string_view body, Intent exact_intent, Intent intent, Rule rule) {
    const Rule exact_rule = exact_intent == Intent::None ? Rule::None : Rule::Exact;
    EXPECT_CLASSIFY(body, Mode::Exact, exact_intent, exact_rule);
    EXPECT_CLASSIFY(body, Mode::Standard, intent, rule);
    EXPECT_CLASSIFY(body, Mode::Reasonable, intent, rule);
}

void expect_none(std::string_view body) { expect_std(body, Intent::None, Intent::None, Rule::None); }

void expect_reasonable_only(std::string_view body, const char* keyword = nullptr) {
    EXPECT_CLASSIFY(body, Mode::Exact, Intent::None, Rule::None);
    EXPECT_CLASSIFY(body, Mode::Standard, Intent::None, Rule::None);
    EXPECT_CLASSIFY(body, Mode::Reasonable, Intent::OptOut, Rule::Phrase);
    if (keyword) {
        const Match m = run(body, Mode::Reasonable);
        EXPECT_EQ(m.keyword, keyword) << body;
        EXPECT_EQ(m.language, "en") << body;
    }
}

// ------------------------------------------------------------------- exact

TEST(RuleExact, TrimmedCaseInsensitive) {
    for (const char* b : {"STOP", "stop", "sToP", " sToP\n", "\tSTOP\r\n", "Stop All", "STOPALL", "OPT OUT",
                          "unsubscribe", "\u3000STOP\u3000", "\u00A0stop\u2028"}) {
        EXPECT_CLASSIFY(b, Mode::Exact, Intent::OptOut, Rule::Exact);
        EXPECT_CLASSIFY(b, Mode::Standard, Intent::OptOut, Rule::Exact);
        EXPECT_CLASSIFY(b, Mode::Reasonable, Intent::OptOut, Rule::Exact);
    }
    EXPECT_CLASSIFY("START", Mode::Exact, Intent::OptIn, Rule::Exact);
    EXPECT_CLASSIFY("Help", Mode::Exact, Intent::Help, Rule::Exact);
    EXPECT_EQ(run("Stop All", Mode::Exact).keyword, "stop all");
    EXPECT_EQ(run("STOPALL", Mode::Exact).keyword, "stopall");
    EXPECT_EQ(run("ARRET", Mode::Exact).language, "fr");
}

TEST(RuleExact, NothingElse) {
    for (const char* b : {"STOP.", "Stop!", "stop please", "ＳＴＯＰ", "Arrêt", "\"STOP\"", "S\u200BTOP", "opt-out",
                          "stop  all", "stop stop", "s t o p", "stops", "sto", ""})
        EXPECT_CLASSIFY(b, Mode::Exact, Intent::None, Rule::None);
}

TEST(RuleExact, FullCaseFoldingNotNfkc) {
    KeywordSet set;
    set.add("strasse", Intent::OptOut, "de");
    EXPECT_EQ(classify("STRASSE", Mode::Exact, set).intent, Intent::OptOut);
    EXPECT_EQ(classify("Straße", Mode::Exact, set).intent, Intent::OptOut);  // ß folds to ss
    EXPECT_EQ(classify("ＳＴＲＡＳＳＥ", Mode::Exact, set).intent, Intent::None);
    EXPECT_EQ(classify("ＳＴＲＡＳＳＥ", Mode::Standard, set).intent, Intent::OptOut);
}

// -------------------------------------------------------------- normalized

TEST(RuleNormalized, PunctuationWidthDiacriticsIgnorables) {
    for (const char* b : {"STOP.", "Stop!", "STOP!!!", "stop?", "ＳＴＯＰ", "S\u200BTOP", "ST\u00ADOP", "Stop 🛑",
                          "🛑 STOP 🛑", "Arrêt", "ARRÊTE", "\"STOP\"", "«STOP»", "'stop'", "stop  all", "Stop\nAll",
                          "(stop)", "STOP\uFE0F", "\u200FSTOP"})
        expect_std(b, Intent::None, Intent::OptOut, Rule::Normalized);
    expect_std("Start!", Intent::None, Intent::OptIn, Rule::Normalized);
    expect_std("ＳＴＡＲＴ", Intent::None, Intent::OptIn, Rule::Normalized);
    expect_std("Help?", Intent::None, Intent::Help, Rule::Normalized);
    expect_std("¿Ayúda?", Intent::None, Intent::Help, Rule::Normalized);
    EXPECT_EQ(run("Arrêt", Mode::Standard).keyword, "arret");
    EXPECT_EQ(run("Arrêt", Mode::Standard).normalized, "arret");
}

TEST(RuleNormalized, Negatives) {
    for (const char* b :
         {"stopping", "stopped!", "st0p", "arrest", "start time?", "help me", "🛑", "!!!", "   ", "info desk"})
        EXPECT_CLASSIFY(b, Mode::Standard, Intent::None, Rule::None);
}

// --------------------------------------------------------------- separator

TEST(RuleSeparator, WordsJoinedSpellAKey) {
    for (const char* b : {"opt-out", "Opt_Out", "OPT.OUT", "stop-all", "stop_all", "S.T.O.P", "s t o p", "S-T-O-P!",
                          "un.sub", "opt - out", "STOP \"thanks\""})
        expect_std(b, Intent::None, Intent::OptOut, Rule::Separator);
    expect_std("UN-STOP", Intent::None, Intent::OptIn, Rule::Separator);
    expect_std("re-sume", Intent::None, Intent::OptIn, Rule::Separator);
    expect_std("H.E.L.P", Intent::None, Intent::Help, Rule::Separator);
    EXPECT_EQ(run("UN-STOP", Mode::Standard).keyword, "unstop");
    EXPECT_EQ(run("stop-all", Mode::Standard).keyword, "stopall");  // first spelling of the key
}

TEST(RuleSeparator, Negatives) {
    for (const char* b : {"s t o p p i n g", "opt-in", "o-p-t", "un-subscribed", "s.t.o.p.s"})
        EXPECT_CLASSIFY(b, Mode::Standard, Intent::None, Rule::None);
}

// ------------------------------------------------------------------ repeat

TEST(RuleRepeat, SeveralOptOutKeywordsOnly) {
    for (const char* b : {"stop stop", "stop stop STOP", "Cancel. Unsubscribe.", "STOP STOPALL", "stop, end, quit",
                          "stop opt out", "stop s.t.o.p", "arret stop", "alto parar"})
        expect_std(b, Intent::None, Intent::OptOut, Rule::Repeat);
    EXPECT_EQ(run("Cancel. Unsubscribe.", Mode::Standard).keyword, "cancel");
}

TEST(RuleRepeat, Negatives) {
    // Other words in between, or a non-opt-out keyword.
    for (const char* b : {"stop and stop", "stop help", "stop start", "stop yes", "stop stop me"})
        EXPECT_CLASSIFY(b, Mode::Standard, Intent::None, Rule::None);
    // Opt-in and help never repeat.
    for (const char* b : {"start start", "help help", "yes yes", "info help"}) expect_none(b);
}

// ---------------------------------------------------------------- courtesy

TEST(RuleCourtesy, KeywordsWithCourtesyWords) {
    for (const char* b : {"Stop please", "please STOP!!", "STOP. Thank you", "ok stop", "Stop now", "stop pls",
                          "plz stop", "stop thanks", "stop thx", "stop ty", "okay, stop", "stop, thank you!",
                          "thank-you stop", "stop stop please", "please unsubscribe now thanks"})
        expect_std(b, Intent::None, Intent::OptOut, Rule::Courtesy);
    EXPECT_EQ(run("please STOP!!", Mode::Standard).keyword, "stop");
}

TEST(RuleCourtesy, CourtesyWordsPerLanguage) {
    for (const char* b : {"Arrêt merci", "Arrêt, merci", "ARRET svp", "arret s'il vous plaît", "Arrêt s’il vous plait",
                          "Salir gracias", "Baja, muchas gracias", "Sair por favor", "Parar obrigado", "sair obrigada",
                          "Stopp bitte", "bitte stopp", "Stopp danke", "Stopp, danke schön", "Stopp vielen Dank"})
        expect_std(b, Intent::None, Intent::OptOut, Rule::Courtesy);
    // Courtesy words alone, or with an opt-in or help keyword, are nothing.
    for (const char* b : {"merci", "gracias", "por favor", "bitte", "danke", "obrigado", "Start por favor",
                          "Ayuda por favor", "aide svp"})
        expect_none(b);
}

TEST(RuleCourtesy, Negatives) {
    // Courtesy words alone, other words, opt-in/help with courtesy.
    for (const char* b : {"ok", "please", "thank you", "ok thanks", "stop it", "stop kindly", "yes please",
                          "start please", "help please", "info pls"})
        EXPECT_CLASSIFY(b, Mode::Standard, Intent::None, Rule::None);
}

// ------------------------------------------------- reasonable: keyword-led

TEST(RulePhraseKeywordLed, KeywordThenMessagingWords) {
    expect_reasonable_only("Stop it", "stop");
    expect_reasonable_only("stop texting me", "stop");
    expect_reasonable_only("STOP IT!", "stop");
    expect_reasonable_only("unsubscribe me please", "unsubscribe");
    expect_reasonable_only("quit sending me messages", "quit");
    expect_reasonable_only("please remove me from your list", "remove");
    expect_reasonable_only("Cancel all texts", "cancel");
    expect_reasonable_only("ok stop sending these", "stop");
    expect_reasonable_only("End this now", "end");
    expect_reasonable_only("Stop. Stop texting me", "stop");
}

TEST(RulePhraseKeywordLed, Negatives) {
    for (const char* b :
         {"Stop by the office at 5", "Cancel my appointment", "I quit my job", "The end of the month", "End of story",
          "stop me if you can see", "Remove the stain", "quit smoking", "stopping texts", "start texting me", "help me",
          "yes please send it", "Stop it or I call the police", "Arrêt des messages"})
        EXPECT_CLASSIFY(b, Mode::Reasonable, Intent::None, Rule::None);
}

// ------------------------------------------------ reasonable: request phrases

TEST(RulePhraseRequest, EachPhrase) {
    expect_reasonable_only("leave me alone", "leave me alone");
    expect_reasonable_only("Please just LEAVE ME ALONE!!", "leave me alone");
    expect_reasonable_only("can you remove me", "remove me");
    expect_reasonable_only("Remove my number from this", "remove my number");
    expect_reasonable_only("Take me off this list", "take me off");
    expect_reasonable_only("kindly take my number off your system", "take my number off");
    expect_reasonable_only("opt me out", "opt me out");
    expect_reasonable_only("Don't text me again", "don't text me");
    expect_reasonable_only("Don’t message me", "don't message me");
    expect_reasonable_only("dont call", "don't call");
    expect_reasonable_only("do not contact me", "don't contact me");
    expect_reasonable_only("Please do NOT email me", "don't email me");
    expect_reasonable_only("no more messages please", "no more messages");
    expect_reasonable_only("NO MORE TEXTS", "no more texts");
    expect_reasonable_only("Hey, can you stop texting me?", "stop texting");
    expect_reasonable_only("I said cease contacting", "cease contacting");
    expect_reasonable_only("ugh, quit messaging me", "quit messaging");
    expect_reasonable_only("please quit messaging", "quit");  // (A) comes first
    expect_reasonable_only("I want to unsubscribe", "i want to unsubscribe");
    expect_reasonable_only("want to opt out", "want to opt out");
    expect_reasonable_only("i wanna unsub", "i wanna unsub");
    expect_reasonable_only("I would like to opt-out", "i would like to opt out");
    expect_reasonable_only("I need to stop these", "i need to stop");
}

TEST(RulePhraseRequest, Negations) {
    for (const char* b :
         {"Don't stop", "please never stop sending these", "I can't stop laughing", "I don't want to stop",
          "I do not want to unsubscribe", "never leave me alone", "you can't remove me", "I didn't say stop texting",
          "won't you take me off", "Don’t stop texting me", "not leave me alone"})
        EXPECT_CLASSIFY(b, Mode::Reasonable, Intent::None, Rule::None);
    // A negator more than 3 words before does not count.
    expect_reasonable_only("never mind all that, leave me alone", "leave me alone");
    // A non-negated occurrence later in the message counts.
    expect_reasonable_only("don't stop texting, I mean stop texting", "stop texting");
}

TEST(RulePhraseRequest, Negatives) {
    for (const char* b : {"leave me a message", "remove the old one", "take me to the game", "opt in", "do text me",
                          "more texts please", "stop laughing", "I want to start", "I want 2 unsubscribe",
                          "texting is fine", "Thanks for the reminder!", "See you at the start", "Yes I'll be there"})
        EXPECT_CLASSIFY(b, Mode::Reasonable, Intent::None, Rule::None);
}

TEST(RulePhraseRequest, ShortMessagesOnly) {
    const std::string filler = repeat("blah ", 47);                                            // 47 words
    expect_reasonable_only(filler + "leave me alone");                                         // 50 words
    EXPECT_CLASSIFY(filler + "x leave me alone", Mode::Reasonable, Intent::None, Rule::None);  // 51
    EXPECT_CLASSIFY(repeat("blah ", 200) + "leave me alone", Mode::Reasonable, Intent::None, Rule::None);
    // The limit is (B)'s alone: (A) reads a long keyword-led message whole.
    expect_reasonable_only("stop " + repeat("texting ", 60) + "me", "stop");
    expect_reasonable_only("ok stop " + repeat("texting ", 60) + "me", "stop");
}

TEST(RulePhrase, NeverOptInOrHelp) {
    for (const char* b : {"yes please", "help me", "I want to start again", "start texting me", "yes send me texts",
                          "info please", "please resume"})
        EXPECT_CLASSIFY(b, Mode::Reasonable, Intent::None, Rule::None);
}

// --------------------------------------------------------------- precedence

TEST(Precedence, OptOutOverHelpOverOptIn) {
    // Rule (b) and (c) can point at different keys when a keyword contains a
    // quoted part: `a "b"` normalises to `a "b` (keyword `a "b"`), while its
    // words with the quoted span dropped are [a] (keyword "a").
    {
        KeywordSet set;
        set.add("a \"b\"", Intent::Help, "en");
        set.add("a", Intent::OptOut, "en");
        const Match m = classify("a \"b\"", Mode::Standard, set);
        EXPECT_EQ(m.intent, Intent::OptOut) << show(m);  // although help matched first (exact)
        EXPECT_EQ(m.rule, Rule::Separator);
        EXPECT_EQ(classify("a \"b\"", Mode::Exact, set).intent, Intent::Help);
    }
    {
        // Help over opt-in is in the code but cannot be observed: the only
        // way for one body to match both is a dropped quoted word, and then
        // the help key is not "the whole message" (see classify.cpp).
        KeywordSet set;
        set.add("a \"b\"", Intent::OptIn, "en");
        set.add("a", Intent::Help, "en");
        const Match m = classify("a \"b\"", Mode::Standard, set);
        EXPECT_EQ(m.intent, Intent::OptIn) << show(m);
        EXPECT_EQ(m.rule, Rule::Exact);
        EXPECT_EQ(classify("a", Mode::Standard, set).intent, Intent::Help);
    }
    {
        KeywordSet set;
        set.add("a \"b\"", Intent::OptIn, "en");
        set.add("a", Intent::OptOut, "en");
        EXPECT_EQ(classify("a \"b\"", Mode::Reasonable, set).intent, Intent::OptOut);
    }
    {
        // Negative: without a competing opt-out key, the opt-in stands.
        KeywordSet set;
        set.add("a \"b\"", Intent::OptIn, "en");
        EXPECT_EQ(classify("a \"b\"", Mode::Standard, set).intent, Intent::OptIn);
    }
    {
        // Segmentation (opt_out) beats an exact help keyword.
        KeywordSet set;
        set.add("stop", Intent::OptOut, "en");
        set.add("stop stop", Intent::Help, "en");
        EXPECT_EQ(classify("stop stop", Mode::Exact, set).intent, Intent::Help);
        EXPECT_EQ(classify("stop stop", Mode::Standard, set).intent, Intent::OptOut);
        EXPECT_EQ(classify("stop stop", Mode::Standard, set).rule, Rule::Repeat);
    }
}

// ------------------------------------------------------------------- quotes

TEST(Quotes, QuotedTextAfterWordsIsNotTheSenders) {
    for (const char* b : {"Liked “Reply STOP to unsubscribe”", "Reacted 👍 to \"Text STOP to opt out\"", "Loved «STOP»",
                          "Emphasized ‘STOP’", "He said 'stop'", "Liked „STOP“", "Liked \"STOP", "Laughed at 「STOP」",
                          "Questioned ‹stop›", "Liked “Don’t text me” lol", "Liked 'Reply STOP, it’s free'"}) {
        for (Mode mode : {Mode::Exact, Mode::Standard, Mode::Reasonable})
            EXPECT_CLASSIFY(b, mode, Intent::None, Rule::None);
    }
}

TEST(Quotes, LeadingQuoteIsPunctuation) {
    for (const char* b :
         {"\"STOP\"", "«STOP»", "“Stop”", "'STOP'", "‘stop’", "\"stop", "「STOP」", "„Stop“", "\"\"stop"})
        EXPECT_CLASSIFY(b, Mode::Standard, Intent::OptOut, Rule::Normalized);
    EXPECT_CLASSIFY("\"Stop\" please", Mode::Standard, Intent::OptOut, Rule::Courtesy);
    EXPECT_CLASSIFY("\"Stop\" by the office", Mode::Reasonable, Intent::None, Rule::None);
    EXPECT_CLASSIFY("\"Stop\" texting me", Mode::Reasonable, Intent::OptOut, Rule::Phrase);
}

TEST(Quotes, OptOutWinsOverTheQuotedPart) {
    EXPECT_CLASSIFY("STOP \"thanks\"", Mode::Standard, Intent::OptOut, Rule::Separator);
    EXPECT_CLASSIFY("stop “start”", Mode::Standard, Intent::OptOut, Rule::Separator);
    EXPECT_CLASSIFY("Stop texting me \"please\"", Mode::Reasonable, Intent::OptOut, Rule::Phrase);
    // Opt-in must be unmistakable: quoted opt-in words after other words do not count.
    EXPECT_CLASSIFY("Liked \"START\"", Mode::Standard, Intent::None, Rule::None);
}

TEST(Quotes, OptInAndHelpMustBeTheWholeMessage) {
    // A dropped quoted span makes the rest not "the whole message".
    for (const char* b : {"Yes \"I'll be there\"", "START \"now\"", "Help \"me\"", "yes ‘please’", "Start «the car»"}) {
        for (Mode mode : {Mode::Exact, Mode::Standard, Mode::Reasonable})
            EXPECT_CLASSIFY(b, mode, Intent::None, Rule::None);
    }
    // Quotation marks that drop no word do not matter.
    EXPECT_CLASSIFY("START \"!\"", Mode::Standard, Intent::OptIn, Rule::Normalized);
    EXPECT_CLASSIFY("ST\"!\"ART", Mode::Standard, Intent::OptIn, Rule::Separator);  // span without words
    EXPECT_CLASSIFY("\"Yes\"", Mode::Standard, Intent::OptIn, Rule::Normalized);
    EXPECT_CLASSIFY("Help \"", Mode::Standard, Intent::Help, Rule::Normalized);
    // Opt-out is not held to it.
    EXPECT_CLASSIFY("Stop \"now\"", Mode::Standard, Intent::OptOut, Rule::Separator);
}

TEST(Quotes, ApostrophesInWords) {
    expect_reasonable_only("don't text me", "don't text me");
    expect_reasonable_only("Don`t text me", "don't text me");
    // An apostrophe after a word that is not in-word opens a quoted span.
    EXPECT_CLASSIFY("stop 'til tomorrow", Mode::Standard, Intent::OptOut, Rule::Separator);
    EXPECT_CLASSIFY("Yes I'll be there", Mode::Reasonable, Intent::None, Rule::None);
}

// ----------------------------------------------- whitespace and Unicode text

TEST(Unicode, WhitespaceIgnorablesWidthDiacritics) {
    for (const char* b : {"\u2003STOP\u2003", "S\u200DT\u200CO\u2060P", "ＳＴＯＰ　ＡＬＬ", "ｓｔｏｐ！", "ST\u00ADOP",
                          "stop\u00A0all", "s\u0336t\u0336o\u0336p\u0336", "Ｏｐｔ－Ｏｕｔ", "𝐬𝐭𝐨𝐩", "Ⓢⓣⓞⓟ", "ŜŤÖP"})
        EXPECT_EQ(run(b, Mode::Standard).intent, Intent::OptOut) << b;
    // Negative: letters that merely look alike are other letters (ŧ, þ, Cyrillic с/т/о/р).
    for (const char* b : {"ŝŧöþ", "\u0441\u0442\u043E\u0440"})
        EXPECT_EQ(run(b, Mode::Standard).intent, Intent::None) << b;
    EXPECT_EQ(run("Ｓｔａｒｔ", Mode::Standard).intent, Intent::OptIn);
    EXPECT_EQ(run("ÁYÚDÁ", Mode::Standard).intent, Intent::Help);
}

TEST(Unicode, RightToLeftText) {
    EXPECT_CLASSIFY("\u200FSTOP\u200F", Mode::Standard, Intent::OptOut, Rule::Normalized);
    EXPECT_CLASSIFY("\u202BSTOP\u202C", Mode::Standard, Intent::OptOut, Rule::Normalized);
    EXPECT_CLASSIFY("\u061CSTOP", Mode::Standard, Intent::OptOut, Rule::Normalized);  // Arabic letter mark
    EXPECT_CLASSIFY("מספיק STOP", Mode::Standard, Intent::None, Rule::None);
    EXPECT_CLASSIFY("STOP שלום", Mode::Reasonable, Intent::None, Rule::None);
    EXPECT_CLASSIFY("توقف", Mode::Standard, Intent::None, Rule::None);  // not a default keyword
    KeywordSet set = KeywordSet::defaults();
    set.add("توقف", Intent::OptOut, "ar");
    set.add("הפסק", Intent::OptOut, "he");
    EXPECT_EQ(classify("تَوَقَّفْ!", Mode::Standard, set).intent, Intent::OptOut);
    EXPECT_EQ(classify("\u200Fהֲפְסֵק\u200F", Mode::Standard, set).intent, Intent::OptOut);
    EXPECT_EQ(classify("توقف توقف", Mode::Standard, set).rule, Rule::Repeat);
    EXPECT_EQ(classify("توقف من فضلك", Mode::Standard, set).intent, Intent::None);
}

TEST(Unicode, LoneCombiningMarks) {
    for (const char* b : {"\u0301", "\u0301\u0301\u0301", "\u20DD", "\u0345", "\u0F73"}) expect_none(b);
    EXPECT_EQ(run(repeat("\u0301", 100000), Mode::Reasonable).intent, Intent::None);
    EXPECT_EQ(run(repeat("\u0301\u0316", 100000), Mode::Reasonable).intent, Intent::None);
    EXPECT_EQ(run("\u0301STOP", Mode::Standard).intent, Intent::OptOut);
    EXPECT_EQ(run("S" + repeat("\u0301\u0316", 5000) + "TOP", Mode::Standard).intent, Intent::OptOut);
}

// --------------------------------------------------------------- robustness

TEST(Robustness, EmptyAndNoWords) {
    for (const char* b :
         {"", " ", "   ", "\t\r\n", "🛑", "🛑🛑🛑", "!!!", "...", "\u200B", "👍🏽", "❤️", "\"\"", "«»"})
        expect_none(b);
}

TEST(Robustness, InvalidUtf8) {
    EXPECT_CLASSIFY("STOP\xFF", Mode::Standard, Intent::OptOut, Rule::Normalized);
    EXPECT_CLASSIFY("STOP\xFF", Mode::Exact, Intent::None, Rule::None);
    EXPECT_CLASSIFY("\xC0\xAFSTOP", Mode::Standard, Intent::OptOut, Rule::Normalized);
    EXPECT_CLASSIFY("ST\xFFOP", Mode::Standard, Intent::OptOut, Rule::Separator);  // U+FFFD separates
    EXPECT_CLASSIFY("\xED\xA0\x80", Mode::Reasonable, Intent::None, Rule::None);
    EXPECT_CLASSIFY("\xF0\x9F\x9B", Mode::Reasonable, Intent::None, Rule::None);  // truncated emoji
    EXPECT_CLASSIFY("Stop\xE2\x80", Mode::Standard, Intent::OptOut, Rule::Normalized);
    std::string all_bytes;
    for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
    for (Mode mode : {Mode::Exact, Mode::Standard, Mode::Reasonable})
        EXPECT_EQ(run(all_bytes, mode).intent, Intent::None);
}

TEST(Robustness, EmbeddedNul) {
    const std::string a("STOP\0", 5);
    EXPECT_CLASSIFY(a, Mode::Exact, Intent::None, Rule::None);  // NUL is not white space
    EXPECT_CLASSIFY(a, Mode::Standard, Intent::OptOut, Rule::Normalized);
    const std::string b("ST\0OP", 5);
    EXPECT_CLASSIFY(b, Mode::Standard, Intent::OptOut, Rule::Separator);
    const std::string c("\0\0\0", 3);
    EXPECT_CLASSIFY(c, Mode::Reasonable, Intent::None, Rule::None);
    const std::string d("leave\0me\0alone", 14);
    EXPECT_CLASSIFY(d, Mode::Reasonable, Intent::OptOut, Rule::Phrase);
}

TEST(Robustness, OneMegabyteBodies) {
    const std::string prose = repeat("Thanks for the reminder, see you at the office tomorrow. ", 18000);
    ASSERT_GE(prose.size(), 1000000u);
    for (Mode mode : {Mode::Exact, Mode::Standard, Mode::Reasonable}) EXPECT_EQ(run(prose, mode).intent, Intent::None);

    const std::string stops = repeat("stop ", 210000);
    EXPECT_EQ(run(stops, Mode::Exact).intent, Intent::None);
    EXPECT_CLASSIFY(stops, Mode::Standard, Intent::OptOut, Rule::Repeat);
    EXPECT_CLASSIFY(stops, Mode::Reasonable, Intent::OptOut, Rule::Repeat);

    const std::string stops_please = repeat("STOP please ", 90000);
    EXPECT_CLASSIFY(stops_please, Mode::Standard, Intent::OptOut, Rule::Courtesy);

    const std::string french = repeat("Merci, à demain au bureau. ", 40000);
    EXPECT_EQ(run(french, Mode::Reasonable).intent, Intent::None);

    const std::string marks = repeat("\u0301", 500000);
    EXPECT_EQ(run(marks, Mode::Reasonable).intent, Intent::None);

    const std::string spaced = "stop" + std::string(1000000, ' ') + "all";
    EXPECT_CLASSIFY(spaced, Mode::Standard, Intent::OptOut, Rule::Normalized);

    const std::string expanding = repeat("\uFDFA", 100000);  // NFKC expands it 18-fold
    EXPECT_EQ(run(expanding, Mode::Reasonable).intent, Intent::None);
}

TEST(Robustness, TenThousandEmoji) {
    const std::string emoji = repeat("🛑", 10000);
    expect_none(emoji);
    const std::string zwj = repeat("👨\u200D👩\u200D👧\uFE0F", 10000);
    expect_none(zwj);
    EXPECT_CLASSIFY(emoji + " STOP " + emoji, Mode::Standard, Intent::OptOut, Rule::Normalized);
}

TEST(Robustness, UnknownModeReadsAsStandard) {
    const Match m = classify("Stop!", static_cast<Mode>(99), defaults());
    EXPECT_EQ(m.intent, Intent::OptOut);
    EXPECT_EQ(classify("Stop it", static_cast<Mode>(-1), defaults()).intent, Intent::None);
}

TEST(Robustness, MatchFields) {
    const Match none = classify("hello", Mode::Reasonable, defaults(), false);
    EXPECT_EQ(none.intent, Intent::None);
    EXPECT_EQ(none.rule, Rule::None);
    EXPECT_TRUE(none.keyword.empty());
    EXPECT_TRUE(none.language.empty());
    EXPECT_TRUE(none.normalized.empty());  // not asked for
    const Match asked = classify("  Hello, World!  ", Mode::Exact, defaults(), true);
    EXPECT_EQ(asked.normalized, "hello, world");
    const Match hit = classify("ARRÊT!", Mode::Standard, defaults(), true);
    EXPECT_EQ(hit.keyword, "arret");
    EXPECT_EQ(hit.language, "fr");
    EXPECT_EQ(hit.normalized, "arret");
    EXPECT_TRUE(classify("ARRÊT!", Mode::Standard, defaults(), false).normalized.empty());
}

// Regression inputs. Any input on which test/fuzz/fuzz_classify fails goes
// here (so far the fuzzer has found none); the ones below are hand-picked
// corner cases of the tokenizer and of the stream-safe pass.
TEST(FuzzRegressions, KnownInputs) {
    const std::vector<std::string> inputs = {
        std::string("\"\0'", 3),
        "a'''b",
        "'a'b'c'",
        "\xCC\x81\xE2\x80\x8B\xCC\x96",
        "\xE1\x84\x80 \xE1\x85\xA1",         // L jamo, space, V jamo: joining would compose
        "\xE0\xAF\x86\xCC\x81\xE0\xAE\xBE",  // Tamil vowel signs around a removed mark
    };
    for (const std::string& in : inputs) {
        for (Mode mode : {Mode::Exact, Mode::Standard, Mode::Reasonable}) (void)run(in, mode);
        const std::string n = optout::normalize(in);
        EXPECT_EQ(optout::normalize(n), n);
    }
}

}  // namespace
