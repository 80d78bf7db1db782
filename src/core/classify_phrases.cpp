// optout core: the request phrases of reasonable mode (Rule::Phrase) and
// their data. request_phrase(): English requests ("stop texting me", "i want
// to unsubscribe"), tested word by word, not when a negator is among the
// three words before. more_phrases(): the phrases of es/fr/pt/de and
// legal-style English (kPhraseDefs), patterns of word slots compiled once.
// docs/classifier.md, "Request phrases", "Other languages", "Legal-style
// revocations".
#include "rules.hpp"

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace optout::rules {

using detail::Scratch;
using detail::Span;

namespace {

// ------------------------------------------------------- English (B)

constexpr const char* kNegators[] = {
    "don't",    "dont",     "never",   "not",      "can't",   "cant",   "cannot",
    "won't",    "wont",     "didn't",  "didnt",    "doesn't", "doesnt", "shouldn't",
    "shouldnt", "wouldn't", "wouldnt", "couldn't", "couldnt", "isn't",  "isnt",
};
constexpr const char* kDontVerbs[] = {"text", "txt", "message", "msg", "contact", "call", "email", "sms", "send"};
constexpr const char* kNoMoreNouns[] = {"texts", "text", "txts",   "messages", "message",
                                        "msgs",  "sms",  "emails", "calls"};
constexpr const char* kStopVerbs[] = {"stop", "quit", "cease"};
constexpr const char* kGerunds[] = {"texting", "txting", "messaging", "sending", "contacting", "calling", "emailing"};
constexpr const char* kWantTargets[] = {"unsubscribe", "unsub", "optout", "stop"};

// (B): the first word of every phrase test in request_phrase() below, the
// kStopVerbs aside. Keep the two in step.
constexpr const char* kPhraseStarters[] = {"leave", "remove", "take", "opt",   "don't", "dont",
                                           "do",    "no",     "want", "wanna", "would", "need"};

// The phrase starters (kPhraseStarters and kStopVerbs) by length: the set
// of their first letters (bit c - 'a') and the starters themselves as
// numbers, 8 bits a code unit, the first unit highest (distinct for distinct
// ASCII words of one length). A starter must be ASCII, begin with a-z and be
// shorter than kMaxLen (anything else does not compile: the constant
// evaluation would shift or index out of range).
struct StarterTable {
    static constexpr std::size_t kMaxLen = 8;  // longer words start no phrase
    static constexpr std::size_t kMaxPerLen = std::size(kPhraseStarters) + std::size(kStopVerbs);
    std::uint32_t first[kMaxLen] = {};
    std::uint64_t packed[kMaxLen][kMaxPerLen] = {};
    std::size_t count[kMaxLen] = {};
    constexpr void add(const char* lit) {
        std::size_t len = 0;
        std::uint64_t v = 0;
        for (; lit[len] != 0; ++len) v = v << 8 | static_cast<unsigned char>(lit[len]);
        first[len] |= std::uint32_t{1} << (lit[0] - 'a');
        packed[len][count[len]++] = v;
    }
    constexpr StarterTable() {
        for (const char* lit : kPhraseStarters) add(lit);
        for (const char* lit : kStopVerbs) add(lit);
    }
};
constexpr StarterTable kStarters{};

// Whether word w is a phrase starter, i.e. whether any phrase test can
// succeed at its position. Length and first letter reject nearly every word
// of ordinary conversation in a few instructions.
bool phrase_starter(const std::u16string& t, const Span& w) noexcept {
    const std::size_t len = w.end - w.begin;
    const char16_t* s = t.data() + w.begin;
    const unsigned letter = static_cast<unsigned>(s[0]) - u'a';
    if (len >= StarterTable::kMaxLen || letter >= 26) return false;
    if (((kStarters.first[len] >> letter) & 1u) == 0) return false;
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < len; ++i) {
        if (s[i] >= 0x80) return false;
        v = v << 8 | s[i];
    }
    for (std::size_t i = 0; i < kStarters.count[len]; ++i)
        if (v == kStarters.packed[len][i]) return true;
    return false;
}

}  // namespace

// (B): a non-negated request phrase. Returns true and the canonical phrase.
bool request_phrase(const std::u16string& t, const std::vector<Span>& words, std::string& phrase) {
    const std::size_t n = words.size();
    if (n > kMaxPhraseWords) return false;
    auto is = [&](std::size_t i, const char* lit) { return i < n && word_is(t, words[i], lit); };
    auto one_of = [&](std::size_t i, const auto& list) -> const char* {
        if (i >= n) return nullptr;
        for (const char* lit : list)
            if (word_is(t, words[i], lit)) return lit;
        return nullptr;
    };
    // The index after "don't" / "dont" / "do not" starting at p, or 0.
    auto after_dont = [&](std::size_t p) -> std::size_t {
        if (is(p, "don't") || is(p, "dont")) return p + 1;
        if (is(p, "do") && is(p + 1, "not")) return p + 2;
        return 0;
    };
    for (std::size_t p = 0; p < n; ++p) {
        // Every test below starts with is(p, <a phrase starter>).
        if (!phrase_starter(t, words[p])) continue;
        std::string found;
        const char* a = nullptr;
        const char* b = nullptr;
        std::size_t q = 0;
        if (is(p, "leave") && is(p + 1, "me") && is(p + 2, "alone")) {
            found = "leave me alone";
        } else if (is(p, "remove") && is(p + 1, "me")) {
            found = "remove me";
        } else if (is(p, "remove") && is(p + 1, "my") && is(p + 2, "number")) {
            found = "remove my number";
        } else if (is(p, "take") && is(p + 1, "me") && is(p + 2, "off")) {
            found = "take me off";
        } else if (is(p, "take") && is(p + 1, "my") && is(p + 2, "number") && is(p + 3, "off")) {
            found = "take my number off";
        } else if (is(p, "opt") && is(p + 1, "me") && is(p + 2, "out")) {
            found = "opt me out";
        } else if ((q = after_dont(p)) != 0 && (a = one_of(q, kDontVerbs)) != nullptr) {
            found = std::string("don't ") + a + (is(q + 1, "me") ? " me" : "");
        } else if (is(p, "no") && is(p + 1, "more") && (a = one_of(p + 2, kNoMoreNouns)) != nullptr) {
            found = std::string("no more ") + a;
        } else if ((a = one_of(p, kStopVerbs)) != nullptr && (b = one_of(p + 1, kGerunds)) != nullptr) {
            found = std::string(a) + " " + b;
        } else {
            const char* lead = nullptr;
            if (is(p, "want") && is(p + 1, "to")) {
                lead = "want to";
                q = p + 2;
            } else if (is(p, "wanna")) {
                lead = "wanna";
                q = is(p + 1, "to") ? p + 2 : p + 1;
            } else if (is(p, "would") && is(p + 1, "like") && is(p + 2, "to")) {
                lead = "would like to";
                q = p + 3;
            } else if (is(p, "need") && is(p + 1, "to")) {
                lead = "need to";
                q = p + 2;
            }
            if (lead != nullptr) {
                const char* target = one_of(q, kWantTargets);
                if (target == nullptr && is(q, "opt") && is(q + 1, "out")) target = "opt out";
                if (target != nullptr) found = std::string(p > 0 && is(p - 1, "i") ? "i " : "") + lead + " " + target;
            }
        }
        if (found.empty()) continue;
        bool negated = false;
        for (std::size_t w = p >= 3 ? p - 3 : 0; w < p && !negated; ++w) negated = one_of(w, kNegators) != nullptr;
        if (negated) continue;
        phrase = std::move(found);
        return true;
    }
    return false;
}

namespace {

// ------------------------------------------------- other languages

// A pattern is a sequence of slots separated by spaces; a slot lists
// alternatives separated by '|'; a slot starting with '?' may be absent (the
// first may not). Words are as normalised (lower case, no diacritics); a
// French elided article or pronoun is a word of its own ("m'envoyer" is
// "m'" "envoyer"). A guarded phrase is not an opt-out when one of the three
// words before it is a negator of its language; the phrases that are
// negative themselves ("no quiero recibir", "keine Nachrichten mehr") are
// not guarded.
struct PhraseDef {
    const char* language;
    const char* canonical;  // reported as explain()'s keyword
    bool guarded;
    const char* pattern;
    // Words that void the phrase, guarded or not: among the three words
    // before it (a past or hypothetical: "did you lose my number?", "if you
    // don't want to hear from us"), or right before it (a statement about
    // oneself: "I always forget my number"). Space-separated; may be null.
    const char* not_after = nullptr;
    const char* not_right_after = nullptr;
};

// The guards of the phrases about the number (family "discard the number").
constexpr const char* kNumberNotAfter = "did why might gonna going if whenever ll we'll you'll";
constexpr const char* kNumberNotRightAfter = "i we they he she always sometimes often usually";
// The guard of the questions how to unsubscribe: a report, not a question
// ("I asked how do I unsubscribe", "if you wonder how can I stop these
// texts").
constexpr const char* kHowNotAfter = "asked ask asking wonder wondered wondering if";

constexpr PhraseDef kPhraseDefs[] = {
    // ---- en: legal-style revocations without a keyword
    {"en", "withdraw my consent", true,
     "withdraw|withdrawing|revoke|revoking|rescind|rescinding|retract|retracting ?my|all|any|the|this|our "
     "consent|permission|authorization|authorisation"},
    {"en", "i no longer consent", true, "no longer consent|authorize|authorise|agree"},
    {"en", "no longer wish to receive", true, "no longer wish|want|need to receive|get"},
    {"en", "no longer wish to be contacted", true,
     "no longer wish|want to be contacted|texted|messaged|called|emailed|on"},
    {"en", "no longer want these messages", true,
     "no longer want|wish|need these|your|any|the|those texts|messages|sms|emails|calls|notifications|alerts"},
    {"en", "cease all communication", true,
     "cease|halt|discontinue|terminate|stop|end ?all|any|further|future communication|communications|"
     "correspondence|contact"},
    {"en", "cease and desist", true, "cease and desist"},
    {"en", "delete my number", true,
     "delete|erase|purge|remove my|this|our number|info|information|data|details|contact|phone", kNumberNotAfter,
     kNumberNotRightAfter},
    // Discard or forget the number: verbs that take a phone as readily as a
    // number ("wipe my phone", "lose my phone") only with the number itself.
    {"en", "forget my number", true,
     "forget|lose|discard|scrub|wipe|trash|ditch|toss|shred|erase|delete|purge my|this|our ?phone|cell|mobile "
     "number|digits|contact|details|info|information|data",
     kNumberNotAfter, kNumberNotRightAfter},
    {"en", "delete me from your list", true, "delete|erase|purge|forget|scrub me|us from|off", kNumberNotAfter,
     kNumberNotRightAfter},
    // A wish not to be contacted, with neither a keyword nor "text" or
    // "message" (the English request phrases of request_phrase() hold the
    // plain "don't contact me").
    {"en", "i don't want to hear from you", false,
     "don't|dont|not|never want|wanna|wish ?to hear from you|u|ya|yall|this|your", "if unless who why"},
    {"en", "don't contact me", false,
     "don't|dont ?ever|again contact|text|txt|call|message|msg|email|sms|harass|pester|spam me|us", "if"},
    {"en", "don't contact me", false,
     "do not ?ever|again contact|text|txt|call|message|msg|email|sms|harass|pester|spam me|us", "if"},
    {"en", "don't contact me", false, "don't|dont write|bother|disturb|ring me|us again|anymore|ever", "if"},
    {"en", "don't contact me", false, "do not write|bother|disturb|ring me|us again|anymore|ever", "if"},
    {"en", "never contact me again", false,
     "never ?ever contact|text|txt|call|message|msg|email|sms|write|bother|harass|pester|spam|ring me|us again", "if"},
    {"en", "stop bothering me", true,
     "stop|quit|cease bothering|bugging|harassing|spamming|pestering|hassling|hounding|writing|disturbing me|us"},
    {"en", "leave me alone", true, "leave me|us be"},
    // Asking how to unsubscribe (as "wie kann ich mich abmelden?" is read in
    // German): the asker is named ("how do I", "how can we"); the bare "how
    // to unsubscribe" is one only as the whole message (kWholeRequests), as
    // "I know how to unsubscribe" states.
    {"en", "how do i unsubscribe", false,
     "how do|can|could|should|may|would ?i|we unsubscribe|unsub|optout|unenroll|unregister", kHowNotAfter},
    {"en", "how do i unsubscribe", false, "how do|can|could|should|may|would ?i|we opt out", kHowNotAfter},
    {"en", "how do i unsubscribe", false,
     "how do|can|could|should|may|would ?i|we stop|end|quit|cancel|block ?getting|receiving "
     "?these|your|those|the|all|this texts|text|txts|messages|message|msgs|sms|emails|notifications|alerts|calls",
     kHowNotAfter},
    {"en", "wrong number", true, "wrong number|person|recipient|phone"},
    // ---- es
    {"es", "no quiero recibir", false, "no quiero|deseo|queremos recibir|seguir"},
    {"es", "no quiero mas mensajes", false,
     "no quiero|deseo|queremos mas mensajes|sms|textos|correos|llamadas|publicidad|promociones|notificaciones"},
    {"es", "no me envien", false,
     "no me|nos envien|envies|envie|manden|mandes|mande|escriban|escribas|escriba|contacten|contactes|"
     "llamen|llames|molesten|molestes"},
    {"es", "dejen de enviarme", true,
     "dejen|deja|deje|dejar|dejad|paren|para|pare|parar de enviarme|mandarme|escribirme|enviar|mandar|"
     "escribir|contactarme|llamarme|molestarme|enviarnos|mandarnos"},
    {"es", "no mas mensajes", false, "no mas mensajes|sms|textos|correos|llamadas|publicidad|promociones|spam"},
    {"es", "darme de baja", true, "darme|dar|denme|dame|den|deme|darnos de baja"},
    {"es", "borren mi numero", true,
     "borren|borra|borrar|borre|eliminen|elimina|eliminar|elimine|quiten|quita|quitar|quite|saquen|saca|"
     "sacar|saque mi|este numero|telefono|contacto|datos"},
    {"es", "sacame de la lista", true,
     "sacame|saquenme|quitame|quitenme|borrame|borrenme|eliminame|eliminenme|sacarme|quitarme|borrarme|"
     "eliminarme de|del"},
    // Pronoun forms of the unsubscribing verbs: "me desuscribo", "quiero
    // desuscribirme" (a keyword), "desuscríbeme".
    {"es", "me desuscribo", true,
     "me|nos desuscribo|desuscribir|desuscriba|desuscriban|desuscribe|desuscribimos|desinscribo|desinscribir|"
     "desinscriba|desinscriban|desinscribe|desapunto|desapuntar"},
    {"es", "desuscribeme", true,
     "desuscribeme|desuscribame|desuscribanos|desuscribirnos|desinscribeme|desinscribame|desinscribanme|"
     "desinscribirme|desapuntame|desapuntenme|desapuntarme"},
    {"es", "borren mi numero", true,
     "olviden|olvida|olvidar|olvide|descarten|descarta|descartar mi|este numero|telefono|contacto", kNumberNotAfter},
    {"es", "retiro mi consentimiento", true, "retiro|revoco|retirar|revocar mi|el consentimiento|autorizacion|permiso"},
    {"es", "numero equivocado", true, "numero|persona equivocado|equivocada|incorrecto|incorrecta"},
    // ---- fr
    {"fr", "je ne veux plus recevoir", false, "ne|n' veux|souhaite|desire|voulons|souhaitons plus recevoir"},
    {"fr", "je ne veux plus de messages", false,
     "ne|n' veux|souhaite|desire|voulons|souhaitons plus de|d' vos|ces|messages|sms|textos|notifications|"
     "publicites|appels|mails|courriels|offres"},
    {"fr", "je veux plus recevoir", true, "veux|souhaite|desire plus recevoir"},
    {"fr", "ne m'envoyez plus", false,
     "ne|n' m'|me|nous envoyez|envoie|envoyer|ecrivez|ecris|contactez|contacte|appelez|appelle|harcelez|"
     "derangez plus|pas|jamais"},
    {"fr", "arretez de m'envoyer", true,
     "arretez|arrete|arreter|cessez|cesse|cesser|stoppez de|d' ?m'|me|nous envoyer|ecrire|contacter|appeler|"
     "spammer|harceler|deranger|envoyez"},
    {"fr", "desabonnez-moi", true,
     "desabonnez|desinscrivez|retirez|supprimez|enlevez|rayez|effacez|desabonne|desinscris|retire|supprime|"
     "enleve moi|nous"},
    {"fr", "supprimez mon numero", true,
     "retirez|supprimez|enlevez|effacez|retire|supprime|enleve|efface mon|ce numero|contact|telephone"},
    {"fr", "me desinscrire", true,
     "me|m'|nous desinscrire|desinscris|desinscrit|desinscrivez|desinscrive|desabonner|desabonne|desabonnes|"
     "desabonnez|radier|desinscrivons|desabonnons"},
    {"fr", "me retirer de la liste", true,
     "me|nous retirer|supprimer|enlever|effacer|rayer|radier|retirez|supprimez|enlevez|effacez|rayez|radiez "
     "de|d'|des|du"},
    {"fr", "desabonnez-moi", true, "radiez|desinscrivez|desabonnez moi|nous"},
    {"fr", "supprimez mon numero", true, "oubliez|oublie|oublier|jetez|jette|jeter mon|ce numero|contact|telephone",
     kNumberNotAfter},
    {"fr", "je retire mon consentement", true,
     "retire|retirer|revoque|revoquer|retirons mon|le consentement|accord|autorisation"},
    {"fr", "mauvais numero", true, "mauvais|mauvaise numero|destinataire|personne"},
    // ---- pt
    {"pt", "parem de me enviar", true,
     "parem|pare|para|parar|deixem|deixe|deixa|deixar|chega de|com ?me|mim|nos enviar|mandar|ligar|"
     "escrever|contatar|contactar|incomodar|enviarem|mandarem|perturbar"},
    {"pt", "nao quero receber", false, "nao quero|desejo|queremos receber"},
    {"pt", "nao quero mais mensagens", false,
     "nao quero|desejo|queremos mais receber|mensagens|mensagem|sms|textos|nada|propaganda|promocoes|"
     "notificacoes|contato|ligacoes"},
    {"pt", "nao me enviem", false,
     "nao me|nos envie|enviem|envia|mande|mandem|manda|ligue|liguem|liga|escreva|escrevam|contate|"
     "contatem|incomode|incomodem|perturbe"},
    {"pt", "chega de mensagens", true, "chega|basta de mensagens|mensagem|sms|textos|propaganda|ligacoes|spam"},
    {"pt", "me tire da lista", true,
     "me|nos tire|tirem|tira|remova|removam|remove|retire|retirem|exclua|excluam|exclui|descadastre|"
     "descadastrem da|de|dessa|desta|do|deste|desse"},
    {"pt", "remova meu numero", true,
     "tire|tirem|tira|remova|removam|remove|retire|retirem|exclua|excluam|exclui|apague|apaguem|apaga|"
     "delete|deletem meu|esse|este numero|contato|telefone|cadastro|dados"},
    {"pt", "me descadastre", true,
     "me|nos descadastre|descadastra|descadastrar|descadastrem|descadastro|descadastrei|desinscreva|desinscrever|"
     "desinscrevam|desinscrevo"},
    {"pt", "me tire da lista", true,
     "me|nos tirar|remover|retirar|excluir|apagar|deletar da|de|dessa|desta|do|deste|desse|dos|das"},
    {"pt", "tire-me da lista", true,
     "tire|tirem|tira|remova|removam|remove|retire|retirem|exclua|excluam|exclui|apague|apaguem|apaga|delete|"
     "deletem|tirar|remover|retirar|excluir|apagar|deletar me|nos da|de|dessa|desta|do|deste|desse|dos|das"},
    {"pt", "remova meu numero", true,
     "esqueca|esquecam|esquece|esquecer|descarte|descartem|descarta|descartar meu|esse|este numero|contato|telefone",
     kNumberNotAfter},
    {"pt", "retiro meu consentimento", true, "retiro|revogo|retirar|revogar meu|o consentimento|autorizacao"},
    {"pt", "numero errado", true, "numero|pessoa errado|errada"},
    // ---- de
    {"de", "schreiben sie mir nicht mehr", false,
     "schreiben|schreibt|schreib|schicken|schickt|schick|senden|sendet|kontaktieren|kontaktiert|nerven|"
     "nervt|belastigen|belastigt|anrufen|simsen ?sie|du|ihr ?bitte mir|mich|uns nicht|nie mehr"},
    {"de", "schicken sie mir keine nachrichten", false,
     "schreiben|schreibt|schreib|schicken|schickt|schick|senden|sendet ?sie|du|ihr ?bitte mir|uns keine "
     "nachrichten|sms|werbung|mails|emails|textnachrichten|nachricht"},
    {"de", "ich mochte keine nachrichten", false,
     "will|mochte|moechte|wollen|mochten|brauche keine nachrichten|sms|werbung|mails|emails|"
     "textnachrichten|nachricht|mehr"},
    {"de", "keine nachrichten mehr", false, "keine nachrichten|sms|werbung|mails|emails|textnachrichten mehr"},
    {"de", "horen sie auf", true, "horen|hort|hor|hoeren|hoert|hoer ?sie|du|ihr ?bitte auf mir|mich|uns|damit|zu"},
    {"de", "loschen sie meine nummer", true,
     "loschen|losche|entfernen|entferne|streichen|streiche ?sie|du ?bitte meine|meinen|diese|mich "
     "nummer|daten|kontakt|telefonnummer|handynummer|aus|von"},
    {"de", "tragen sie mich aus", true, "tragen|tragt|trag ?sie|du|ihr mich|uns aus"},
    // Separable verbs with the pronoun between ("melde mich ab", "tragen Sie
    // mich bitte aus"), and the pronoun before an infinitive ("ich möchte
    // mich abmelden").
    {"de", "melden sie mich ab", true,
     "melde|meld|melden|meldet|trage|trag|tragen|tragt ?sie|du|ihr ?bitte mich|uns ?bitte ab|aus"},
    {"de", "mich abmelden", true, "mich|uns abmelden|austragen|abbestellen|loschen|entfernen|streichen"},
    {"de", "loschen sie mich", true,
     "losche|losch|loschen|entferne|entfern|entfernen|streiche|streich|streichen ?sie|du ?bitte mich|uns"},
    {"de", "loschen sie meine nummer", true,
     "vergessen|vergesst|vergiss ?sie|du|ihr ?bitte meine|diese nummer|telefonnummer|handynummer|daten",
     kNumberNotAfter},
    {"de", "ich widerrufe meine einwilligung", true,
     "widerrufe|widerrufen|ziehe|entziehe meine|die einwilligung|zustimmung|erlaubnis"},
    {"de", "falsche nummer", true, "falsche nummer|person"},
};

struct PhraseLanguage {
    const char* language;
    const char* negators;  // space-separated
};
constexpr PhraseLanguage kPhraseNegators[] = {
    // en: the negators of the English request phrases (kNegators) are used.
    {"es", "no nunca jamas tampoco ni"},
    {"fr", "ne n' pas jamais"},
    {"pt", "nao nunca jamais nem"},
    {"de", "nicht nie niemals kein keine keinen"},
};

struct PhraseTable {
    struct Slot {
        std::vector<std::u16string> alternatives;
        bool optional = false;
    };
    struct Phrase {
        const PhraseDef* def;
        std::vector<Slot> slots;
        std::vector<std::u16string> negators;
        std::vector<std::u16string> not_after;        // PhraseDef::not_after
        std::vector<std::u16string> not_right_after;  // PhraseDef::not_right_after
    };
    std::vector<Phrase> phrases;
    // First word -> the phrases it can start.
    // (Views of the strings in phrases[i].slots[0]: their addresses never
    // change once a phrase is built, the vectors holding them only move.)
    std::unordered_map<std::u16string_view, std::vector<std::size_t>> by_first;
    // A filter before by_first: bit bloom_bit(w) is set for every first word.
    std::uint64_t bloom[64] = {};
    static std::size_t bloom_bit(std::u16string_view w) noexcept {
        return (w.size() * 131u + static_cast<std::size_t>(w[0]) * 31u + w[w.size() - 1] * 7u +
                (w.size() > 2 ? static_cast<std::size_t>(w[1]) * 17u : 0u)) &
               4095u;
    }
    bool maybe_first(std::u16string_view w) const noexcept {
        const std::size_t b = bloom_bit(w);
        return (bloom[b >> 6] >> (b & 63)) & 1u;
    }

    static std::vector<std::u16string> split(const char* s, char sep) {
        std::vector<std::u16string> out(1);
        for (; *s != 0; ++s) {
            if (*s == sep)
                out.emplace_back();
            else
                out.back().push_back(static_cast<char16_t>(static_cast<unsigned char>(*s)));
        }
        return out;
    }

    PhraseTable() {
        phrases.reserve(std::size(kPhraseDefs));
        for (const PhraseDef& d : kPhraseDefs) {
            Phrase p{&d, {}, {}, {}, {}};
            if (d.not_after != nullptr) p.not_after = split(d.not_after, ' ');
            if (d.not_right_after != nullptr) p.not_right_after = split(d.not_right_after, ' ');
            for (const std::u16string& slot : split(d.pattern, ' ')) {
                Slot sl;
                std::u16string body = slot;
                if (!body.empty() && body[0] == u'?') {
                    sl.optional = true;
                    body.erase(0, 1);
                }
                std::string narrow(body.begin(), body.end());
                sl.alternatives = split(narrow.c_str(), '|');
                p.slots.push_back(std::move(sl));
            }
            if (std::string_view(d.language) == "en") {
                for (const char* neg : kNegators) p.negators.push_back(split(neg, ' ').front());
            } else {
                for (const PhraseLanguage& l : kPhraseNegators)
                    if (std::string_view(l.language) == d.language) p.negators = split(l.negators, ' ');
            }
            phrases.push_back(std::move(p));
            for (const std::u16string& first : phrases.back().slots.front().alternatives) {
                by_first[std::u16string_view(first)].push_back(phrases.size() - 1);
                const std::size_t b = bloom_bit(first);
                bloom[b >> 6] |= std::uint64_t{1} << (b & 63);
            }
        }
    }
};

const PhraseTable& phrase_table() {
    static const PhraseTable table;
    return table;
}

using Tokens = std::vector<std::u16string_view>;

bool in_slot(const PhraseTable::Slot& slot, std::u16string_view w) noexcept {
    for (const std::u16string& a : slot.alternatives)
        if (w == a) return true;
    return false;
}

// Slots [si..] from token ti. Optional slots make this a small search:
// patterns have at most 7 slots.
bool match_slots(const PhraseTable::Phrase& p, std::size_t si, const Tokens& toks, std::size_t ti) noexcept {
    if (si == p.slots.size()) return true;
    const PhraseTable::Slot& slot = p.slots[si];
    if (ti < toks.size() && in_slot(slot, toks[ti]) && match_slots(p, si + 1, toks, ti + 1)) return true;
    return slot.optional && match_slots(p, si + 1, toks, ti);
}

}  // namespace

// Phrases of kPhraseDefs in the words of s (at most kMaxPhraseWords).
bool more_phrases(Scratch& s, Match& m) {
    const std::vector<Span>& words = s.words;
    if (words.empty() || words.size() > kMaxPhraseWords) return false;
    const std::u16string& t = s.text;
    const PhraseTable& table = phrase_table();
    Tokens& toks = s.tokens;  // reused: no allocation once warm
    toks.clear();
    for (const Span& w : words) {
        std::u16string_view v(t.data() + w.begin, w.end - w.begin);
        // French elision: l' d' j' m' n' s' t' c' qu' are words of their own.
        const std::size_t ap = v.find(u'\'');
        if ((ap == 1 || (ap == 2 && v[0] == u'q' && v[1] == u'u')) && v.size() > ap + 1) {
            toks.push_back(v.substr(0, ap + 1));
            toks.push_back(v.substr(ap + 1));
        } else {
            toks.push_back(v);
        }
    }
    for (std::size_t p = 0; p < toks.size(); ++p) {
        if (!table.maybe_first(toks[p])) continue;
        const auto it = table.by_first.find(toks[p]);
        if (it == table.by_first.end()) continue;
        for (std::size_t idx : it->second) {
            const PhraseTable::Phrase& ph = table.phrases[idx];
            if (!match_slots(ph, 0, toks, p)) continue;
            bool negated = false;
            if (ph.def->guarded)
                for (std::size_t w = p >= 3 ? p - 3 : 0; w < p && !negated; ++w)
                    for (const std::u16string& neg : ph.negators)
                        if (toks[w] == neg) negated = true;
            for (std::size_t w = p >= 3 ? p - 3 : 0; w < p && !negated; ++w)
                for (const std::u16string& g : ph.not_after)
                    if (toks[w] == g) negated = true;
            if (p > 0)
                for (const std::u16string& g : ph.not_right_after)
                    if (toks[p - 1] == g) negated = true;
            if (negated) continue;
            m.intent = Intent::OptOut;
            m.rule = Rule::Phrase;
            m.keyword = ph.def->canonical;
            m.language = ph.def->language;
            return true;
        }
    }
    return false;
}

// ------------------------------------------- a request as the whole message

namespace {

// Real words that are a request to stop only when they are the whole message
// (courtesy words aside): "Leave", "exit", "delete me", "go away", "bórrame".
// As normalised (lower case, no diacritics); a hyphen separates words
// ("remova-me" is "remova" "me"). None is a default keyword (those match
// in every mode); each is read only as the whole message, so "should I
// leave?", "leave it there", "exit 12" and "I won't leave" are not.
struct WholeRequest {
    const char* language;
    const char* words;  // space-separated
};
constexpr WholeRequest kWholeRequests[] = {
    {"en", "leave"},
    {"en", "exit"},
    {"en", "delete"},
    {"en", "delete me"},
    {"en", "erase me"},
    {"en", "leave me"},
    {"en", "forget me"},
    {"en", "go away"},
    {"en", "let me be"},
    {"en", "unenroll"},
    {"en", "unregister"},
    {"en", "deregister"},
    {"en", "unjoin"},
    {"en", "unfollow"},
    {"en", "count me out"},
    {"en", "i'm out"},
    {"en", "how to unsubscribe"},
    {"en", "how to opt out"},
    {"en", "how to unsub"},
    {"es", "borrame"},
    {"es", "sacame"},
    {"es", "quitame"},
    {"es", "eliminame"},
    {"es", "borrenme"},
    {"es", "saquenme"},
    {"es", "quitenme"},
    {"es", "eliminenme"},
    {"fr", "quitter"},
    {"fr", "retirez moi"},
    {"fr", "supprimez moi"},
    {"fr", "oubliez moi"},
    {"pt", "remova me"},
    {"pt", "me remova"},
    {"pt", "me tire"},
    {"pt", "tire me"},
    {"pt", "me exclua"},
    {"pt", "exclua me"},
    {"pt", "me apague"},
    {"pt", "apague me"},
    {"de", "loschen"},
    {"de", "entfernen"},
    {"de", "losch mich"},
    {"de", "losche mich"},
    {"de", "entferne mich"},
    {"de", "entfern mich"},
};

// Whether words[b..e) spell the space-separated list w.
bool words_are(const std::u16string& t, const std::vector<Span>& words, std::size_t b, std::size_t e,
               const char* w) noexcept {
    std::size_t i = b;
    while (*w != 0) {
        const char* end = w;
        while (*end != 0 && *end != ' ') ++end;
        if (i >= e) return false;
        const Span& sp = words[i];
        const std::size_t len = static_cast<std::size_t>(end - w);
        if (sp.end - sp.begin != len) return false;
        for (std::size_t j = 0; j < len; ++j)
            if (t[sp.begin + j] != static_cast<unsigned char>(w[j])) return false;
        ++i;
        w = *end == ' ' ? end + 1 : end;
    }
    return i == e;
}

// Whether words[from..to) are courtesy keys only (the words joined, as
// standard's courtesy rule reads them); true when from == to.
bool courtesy_run(const Impl* k, const std::u16string& t, const std::vector<Span>& words, std::size_t from,
                  std::size_t to) noexcept {
    if (from == to) return true;
    if (k == nullptr) return false;
    // A small DP over at most kMaxWholeWords words.
    bool reach[8] = {true};
    for (std::size_t i = from; i < to; ++i) {
        if (!reach[i - from]) continue;
        std::int32_t node = 0;
        for (std::size_t j = i; j < to && node >= 0; ++j) {
            node = k->walk(node, t.data() + words[j].begin, words[j].end - words[j].begin);
            if (node >= 0 && (k->node(node).flags & Impl::kCourtesy)) reach[j + 1 - from] = true;
        }
    }
    return reach[to - from];
}

constexpr std::size_t kMaxWholeWords = 7;

}  // namespace

bool whole_request(const Impl* k, const Scratch& s, Match& m) {
    const std::vector<Span>& words = s.words;
    const std::size_t n = words.size();
    if (n == 0 || n > kMaxWholeWords || s.dropped_quotes) return false;
    const std::u16string& t = s.text;
    // The request starts where the leading courtesy words end (nearly
    // always at the first word).
    for (std::size_t b = 0; b < n; ++b) {
        if (!courtesy_run(k, t, words, 0, b)) continue;
        const char16_t c0 = t[words[b].begin];
        if (c0 < u'a' || c0 > u'z') continue;
        for (const WholeRequest& r : kWholeRequests) {
            if (static_cast<unsigned char>(r.words[0]) != c0) continue;
            std::size_t len = 1;
            for (const char* c = r.words; *c != 0; ++c) len += *c == ' ';
            if (b + len > n || !words_are(t, words, b, b + len, r.words)) continue;
            if (!courtesy_run(k, t, words, b + len, n)) continue;
            m.intent = Intent::OptOut;
            m.rule = Rule::Phrase;
            m.keyword = r.words;
            m.language = r.language;
            return true;
        }
    }
    return false;
}

}  // namespace optout::rules
