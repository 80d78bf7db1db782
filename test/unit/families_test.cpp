// The families of 0.2 (docs/classifier.md): look-alike letters, typos, other
// languages, legal-style revocations, a keyword sentence first, the review
// queue. test/data/families.jsonl holds many more cases (corpus_test.cpp);
// these are the rules' edges.
#include "classify_support.hpp"
#include "optout/classifier.hpp"

#include <gtest/gtest.h>

#include <string>

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

void expect(std::string_view body, Mode mode, Intent intent, Rule rule, const char* keyword = nullptr) {
    const Match m = run(body, mode);
    EXPECT_EQ(m.intent, intent) << body << " in " << optout::to_string(mode);
    EXPECT_EQ(m.rule, rule) << body << " in " << optout::to_string(mode);
    if (keyword) {
        EXPECT_EQ(m.keyword, keyword) << body;
    }
}

TEST(Lookalike, MixedAndWholeScriptConfusables) {
    // Cyrillic С (U+0421), Greek Ε (U+0395), Cyrillic Ѕ (U+0405), Cyrillic І (U+0406).
    for (Mode mode : {Mode::Standard, Mode::Reasonable}) {
        expect("\u0421ANCEL", mode, Intent::OptOut, Rule::Lookalike, "cancel");
        expect("\u0395ND", mode, Intent::OptOut, Rule::Lookalike, "end");
        expect("\u0405TOP!", mode, Intent::OptOut, Rule::Lookalike, "stop");
        expect("QU\u0406T", mode, Intent::OptOut, Rule::Lookalike, "quit");
        expect("\u0405top please", mode, Intent::OptOut, Rule::Lookalike, "stop");
    }
    // Not in exact mode: providers compare code points.
    expect("\u0421ANCEL", Mode::Exact, Intent::None, Rule::None);
    // A real word of another language is not a look-alike.
    for (const char* b : {"\u0441\u0442\u043e\u043f", "\u0421\u0422\u041e\u041f", "\u03a3\u03a4\u039f\u03a0",
                          "\u0395\u039d\u0394", "\u043e\u043a"})
        for (Mode mode : {Mode::Standard, Mode::Reasonable}) expect(b, mode, Intent::None, Rule::None);
    // ... and may be a keyword of its own.
    KeywordSet ru = KeywordSet::defaults();
    ru.add("\u0441\u0442\u043e\u043f", Intent::OptOut, "ru");
    const Match m = classify("\u0421\u0422\u041e\u041f", Mode::Standard, ru);
    EXPECT_EQ(m.intent, Intent::OptOut);
    EXPECT_EQ(m.rule, Rule::Exact);
    EXPECT_EQ(m.language, "ru");
    // Only opt-out keywords: a look-alike opt-in is not read as one.
    expect("\u0405TART", Mode::Standard, Intent::None, Rule::None);
}

TEST(Typo, OneSlipByKeywordLength) {
    for (const char* b : {"usnubscribe", "cnacel", "stpo", "qiut", "unsubscibe", "cancell", "remvoe", "cancek",
                          "Stpo texting me", "please cnacel"})
        expect(b, Mode::Reasonable, Intent::OptOut, Rule::Typo);
    for (const char* b : {"usnubscribe", "cnacel", "stpo"}) {
        expect(b, Mode::Standard, Intent::None, Rule::None);
        expect(b, Mode::Exact, Intent::None, Rule::None);
    }
    // Real words and slips the rule does not take: short keys, the first
    // letter, a missing or doubled letter in a 4-letter key, non-neighbours.
    for (const char* b : {"stomp", "quiet", "send", "bend", "cancer", "stoop", "spot", "tsop", "anmelden", "remote",
                          "ned", "edn", "stopt", "sop", "cancel my appointment"})
        for (Mode mode : {Mode::Exact, Mode::Standard, Mode::Reasonable})
            EXPECT_NE(run(b, mode).intent, Intent::OptOut) << b;
    // Only the first word that is not a courtesy word is read with a typo.
    expect("I want to cnacel", Mode::Reasonable, Intent::None, Rule::None);
}

TEST(MoreLanguages, PhrasesAndNegation) {
    expect("ya no quiero recibir mensajes", Mode::Reasonable, Intent::OptOut, Rule::Phrase, "no quiero recibir");
    expect("je ne veux plus recevoir vos SMS", Mode::Reasonable, Intent::OptOut, Rule::Phrase);
    expect("parem de me enviar mensagens", Mode::Reasonable, Intent::OptOut, Rule::Phrase);
    expect("schreiben Sie mir nicht mehr", Mode::Reasonable, Intent::OptOut, Rule::Phrase);
    EXPECT_EQ(run("Arrêtez de m’envoyer des SMS", Mode::Reasonable).language, "fr");
    EXPECT_EQ(run("Não quero receber mensagens", Mode::Reasonable).language, "pt");
    // The same negation and quote guards as English.
    for (const char* b :
         {"no dejen de enviarme ofertas", "n'arrêtez pas de m'envoyer des messages", "não parem de me enviar mensagens",
          "Le client a dit «ne m'envoyez plus»", "je ne veux plus de pizza"})
        for (Mode mode : {Mode::Exact, Mode::Standard, Mode::Reasonable}) expect(b, mode, Intent::None, Rule::None);
    for (const char* b : {"ya no quiero recibir mensajes", "schreiben Sie mir nicht mehr"})
        expect(b, Mode::Standard, Intent::None, Rule::None);
    // At most 50 words, like the English phrases.
    expect(repeat("hola ", 60) + "no quiero recibir mensajes", Mode::Reasonable, Intent::None, Rule::None);
}

TEST(Legal, RevocationsWithoutAKeyword) {
    for (const char* b : {"please withdraw my consent", "I no longer consent to these texts", "cease all communication",
                          "delete my number from your system", "wrong number"})
        expect(b, Mode::Reasonable, Intent::OptOut, Rule::Phrase);
    for (const char* b : {"I don't withdraw my consent", "Don't delete my number", "I consent"})
        expect(b, Mode::Reasonable, Intent::None, Rule::None);
}

TEST(Sentence, KeywordSentenceFirst) {
    expect("END. Not interested", Mode::Reasonable, Intent::OptOut, Rule::Sentence, "end");
    expect("Stop. Who is this?", Mode::Reasonable, Intent::OptOut, Rule::Sentence, "stop");
    expect("END. Not interested", Mode::Standard, Intent::None, Rule::None);
    for (const char* b : {"Stop by. The office is open", "End of story. Bye", "Cancel my appointment. Thanks"})
        expect(b, Mode::Reasonable, Intent::None, Rule::None);
}

TEST(Review, NeverAStop) {
    for (Mode mode : {Mode::Standard, Mode::Reasonable}) {
        expect("no", mode, Intent::Review, Rule::LoneNegative, "no");
        expect("No, thank you", mode, Intent::Review, Rule::LoneNegative, "no");
        expect("nein", mode, Intent::Review, Rule::LoneNegative, "nein");
        expect("S", mode, Intent::Review, Rule::LoneLetter, "s");
        // stop? and end? stay opt-outs (the public corpus, and the principle).
        expect("stop?", mode, Intent::OptOut, Rule::Normalized);
        expect("end?", mode, Intent::OptOut, Rule::Normalized);
        // Not review: a letter that begins no opt-out keyword, longer replies.
        for (const char* b : {"Y", "K", "no problem", "Nope, I'll be there"}) expect(b, mode, Intent::None, Rule::None);
    }
    expect("Stop, you're killing me \U0001F602", Mode::Reasonable, Intent::Review, Rule::KeywordAside, "stop");
    expect("Stop, you're killing me \U0001F602", Mode::Standard, Intent::None, Rule::None);
    expect("no", Mode::Exact, Intent::None, Rule::None);
    // parse_intent() never accepts review: no keyword can have it.
    Intent out;
    EXPECT_FALSE(optout::parse_intent("review", out));
    EXPECT_STREQ(optout::to_string(Intent::Review), "review");
    KeywordSet set;
    EXPECT_THROW(set.add("maybe", Intent::Review, "en"), optout::Error);
}

// Issue #25, "the replies still missed": each family in reasonable only,
// with its traps (a real word, a question, a negation, a quote, a reaction).
void reasonable_only(const char* b) {
    expect(b, Mode::Reasonable, Intent::OptOut, Rule::Phrase);
    expect(b, Mode::Standard, Intent::None, Rule::None);
    expect(b, Mode::Exact, Intent::None, Rule::None);
}
void never(const char* b) {
    for (Mode mode : {Mode::Exact, Mode::Standard, Mode::Reasonable})
        EXPECT_NE(run(b, mode).intent, Intent::OptOut) << b;
}

TEST(StillMissed, NoContactWithoutKeyword) {
    for (const char* b :
         {"I don't want to hear from you again", "do not want to hear from you anymore", "never contact me again",
          "Never text me again!", "don't ever text me again", "quit bugging me", "leave me be"})
        reasonable_only(b);
    expect("I don't want to hear from you again", Mode::Reasonable, Intent::OptOut, Rule::Phrase,
           "i don't want to hear from you");
    for (const char* b :
         {"If you don't want to hear from us reply STOP", "I can't wait to hear from you", "you never text me anymore",
          "Why would I not want to hear from you?", "Liked \u201cI don't want to hear from you\u201d"})
        never(b);
}

TEST(StillMissed, LeaveVerbAsTheWholeMessage) {
    for (const char* b : {"leave", "Leave.", "leave please", "EXIT", "delete me", "go away", "please, delete",
                          "bórrame", "sácame por favor", "quitter", "remova-me", "lösch mich", "\"Leave\""})
        reasonable_only(b);
    // A question alone is the word, as "stop?" is.
    expect("leave?", Mode::Reasonable, Intent::OptOut, Rule::Phrase, "leave");
    for (const char* b : {"should I leave?", "I won't leave", "don't leave", "leave it there", "exit 12",
                          "Liked \u201cLeave\u201d", "leave \"the keys\"", "drop me off at 5"})
        never(b);
}

TEST(StillMissed, DiscardTheNumber) {
    for (const char* b : {"forget my number", "lose this number", "please lose my number", "delete me from your list",
                          "discard my phone number", "olvida mi número", "oubliez mon numéro", "esqueçam meu número",
                          "vergessen Sie meine Nummer"})
        reasonable_only(b);
    // A request put as a question is a request (as "can you stop texting
    // me?" is); a question about the past is not.
    reasonable_only("can you delete my number?");
    for (const char* b :
         {"Did you lose my number?", "did you delete my number?", "I always forget my number", "don't lose my number",
          "I might lose my number", "can you wipe my phone", "He said \"delete my number\""})
        never(b);
}

TEST(StillMissed, PronounForms) {
    for (const char* b : {"me desuscribo", "desuscríbeme", "quiero darme de baja", "je veux me désinscrire",
                          "veuillez me retirer de la liste", "radiez-moi", "me descadastre", "quero me descadastrar",
                          "tire-me da lista", "melde mich ab", "melden Sie mich bitte ab", "ich möchte mich abmelden",
                          "entfernen Sie mich bitte"})
        reasonable_only(b);
    for (const char* b :
         {"no me desuscribo", "je ne veux pas me désinscrire", "não quero me descadastrar", "ich melde mich",
          "melde mich an", "melde mich nicht ab", "ich will mich nicht abmelden", "me tire uma dúvida"})
        never(b);
}

TEST(StillMissed, AskingHowToUnsubscribe) {
    // As "wie kann ich mich abmelden?" is read in German: the asker named,
    // or the bare question as the whole message.
    for (const char* b :
         {"how do I unsubscribe?", "How can I unsubscribe", "how do i opt out?", "how can we opt-out of this",
          "How do I stop these texts?", "how can I stop getting your messages", "how do I stop receiving texts??",
          "hi, how do I unsubscribe from these?", "How to unsubscribe?", "how to opt out please"})
        reasonable_only(b);
    expect("how do I unsubscribe?", Mode::Reasonable, Intent::OptOut, Rule::Phrase, "how do i unsubscribe");
    expect("How to unsubscribe?", Mode::Reasonable, Intent::OptOut, Rule::Phrase, "how to unsubscribe");
    for (const char* b :
         {"how do I subscribe?", "how did I unsubscribe?", "how do I stop the car?", "how do I end the call",
          "how do I cancel my appointment?", "I know how to unsubscribe", "how to unsubscribe is in the FAQ",
          "I asked how do I unsubscribe and nobody answered", "if you wonder how can I stop these texts, call us",
          "how do i sign out of the app", "Liked \u201chow do I unsubscribe?\u201d"})
        never(b);
}

TEST(StillMissed, FourLetterSlips) {
    for (const char* b : {"stip", "Srop", "stoo", "stip texting me", "quot", "baua", "sakr", "pafe"})
        if (std::string(b) != "quot") {
            expect(b, Mode::Reasonable, Intent::OptOut, Rule::Typo);
            expect(b, Mode::Standard, Intent::None, Rule::None);
        }
    // Real words one key (or a few) away stay words, in every mode.
    for (const char* b : {"step", "shop", "stow", "atop", "slop", "algo", "apto", "said", "sait", "pate", "pars",
                          "parr", "baia", "quot", "saur"})
        never(b);
}

TEST(Robustness, NewPathsOnLongInputs) {
    // Look-alike words, typos, sentences and phrases on megabyte bodies:
    // linear time, no error.
    const std::string lookalikes = repeat("\u0421ANCEL ", 150000);
    expect(lookalikes, Mode::Standard, Intent::OptOut, Rule::Lookalike, "cancel");
    const std::string cyrillic = repeat("\u0421\u0422\u041e\u041f \u043f\u0440\u0438\u0432\u0435\u0442 ", 60000);
    expect(cyrillic, Mode::Reasonable, Intent::None, Rule::None);
    const std::string typo_then_prose = "cnacel " + repeat("and more words here ", 50000);
    expect(typo_then_prose, Mode::Reasonable, Intent::None, Rule::None);
    const std::string sentence = "Stop. " + repeat("Who is this? ", 80000);
    expect(sentence, Mode::Reasonable, Intent::OptOut, Rule::Sentence);
    const std::string commas = repeat("stop, ", 150000) + "lol";
    expect(commas, Mode::Reasonable, Intent::Review, Rule::KeywordAside);
    const std::string mixed = repeat("a\u0421", 300000);
    expect(mixed, Mode::Reasonable, Intent::None, Rule::None);
}

}  // namespace
