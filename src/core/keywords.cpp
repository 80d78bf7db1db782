// optout core: KeywordSet and keyword_key(). See classify.cpp for the rules.
#include "keywords_impl.hpp"
#include "optout/classifier.hpp"
#include "text.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <utility>

namespace optout {

namespace {

using detail::Scratch;
using detail::ScratchLease;
using detail::Span;
using detail::Tokenizer;

// Courtesy keys (docs/classifier.md, standard mode): please, pls, plz, now,
// thanks, thank you, thx, ty, ok, okay; fr svp, s'il vous plait, merci
// (beaucoup); es por favor, gracias, muchas gracias; pt por favor,
// obrigado, obrigada; de bitte, danke, danke schon, vielen dank -- as keys,
// i.e. words joined.
constexpr const char16_t* kCourtesyKeys[] = {
    u"please",        u"pls",        u"plz",
    u"now",           u"thanks",     u"thankyou",
    u"thx",           u"ty",         u"ok",
    u"okay",          u"svp",        u"silvousplait",
    u"s'ilvousplait", u"merci",      u"mercibeaucoup",
    u"porfavor",      u"gracias",    u"muchasgracias",
    u"obrigado",      u"obrigada",   u"bitte",
    u"danke",         u"dankeschon", u"vielendank",
};

// Reasonable mode, rule (A): the closed list of single words "about the
// messaging" that may follow an opt-out keyword ("Stop texting me",
// "unsubscribe me please"). Deliberately absent: my, by, of, at, for, job,
// appointment, ... ("Cancel my appointment", "Stop by the office").
constexpr const char16_t* kMessagingWords[] = {
    u"me",        u"it",       u"this",      u"that",          u"these",    u"those",   u"all",       u"now",
    u"texting",   u"txting",   u"texts",     u"text",          u"txt",      u"txts",    u"messaging", u"messages",
    u"message",   u"msgs",     u"msg",       u"sms",           u"mms",      u"sending", u"send",      u"contacting",
    u"contact",   u"calling",  u"calls",     u"call",          u"emailing", u"emails",  u"email",     u"please",
    u"pls",       u"plz",      u"thanks",    u"thank",         u"thankyou", u"you",     u"thx",       u"ty",
    u"us",        u"them",     u"the",       u"your",          u"to",       u"from",    u"list",      u"anymore",
    u"any",       u"more",     u"again",     u"immediately",   u"right",    u"away",    u"ok",        u"okay",
    u"spam",      u"spamming", u"bothering", u"notifications", u"alerts",   u"ads",     u"promos",    u"promotions",
    u"marketing", u"number",
};

struct DefaultKeyword {
    const char* keyword;
    Intent intent;
    const char* language;
};

// The default keywords: this list is their one source. The INSERT into
// optout.keywords in src/sql/classifier.sql (with a note per row) and the
// table of docs/classifier.md, "Default keywords", must list the same rows in
// the same order; test/unit/keywords_test.cpp reads both and checks them
// against defaults(). The SQL side loads the table one row at a time with
// add(); defaults() does exactly that.
constexpr DefaultKeyword kDefaults[] = {
    {"stop", Intent::OptOut, "en"},
    {"stopall", Intent::OptOut, "en"},
    {"stop all", Intent::OptOut, "en"},
    {"unsubscribe", Intent::OptOut, "en"},
    {"unsub", Intent::OptOut, "en"},
    {"cancel", Intent::OptOut, "en"},
    {"end", Intent::OptOut, "en"},
    {"quit", Intent::OptOut, "en"},
    {"revoke", Intent::OptOut, "en"},
    {"optout", Intent::OptOut, "en"},
    {"opt out", Intent::OptOut, "en"},
    {"remove", Intent::OptOut, "en"},
    {"arret", Intent::OptOut, "fr"},
    {"arrete", Intent::OptOut, "fr"},
    {"alto", Intent::OptOut, "es"},
    {"detener", Intent::OptOut, "es"},
    {"salir", Intent::OptOut, "es"},
    {"baja", Intent::OptOut, "es"},
    {"cancelar", Intent::OptOut, "es"},
    {"parar", Intent::OptOut, "pt"},
    {"sair", Intent::OptOut, "pt"},
    {"pare", Intent::OptOut, "pt"},
    {"stopp", Intent::OptOut, "de"},
    // Each language's own verb for unsubscribing, with its common forms.
    {"desuscribir", Intent::OptOut, "es"},
    {"desuscribirme", Intent::OptOut, "es"},
    {"desuscribo", Intent::OptOut, "es"},
    {"desuscribanme", Intent::OptOut, "es"},
    {"desabonner", Intent::OptOut, "fr"},
    {"desabonne", Intent::OptOut, "fr"},
    {"desabonnez", Intent::OptOut, "fr"},
    {"desabonnement", Intent::OptOut, "fr"},
    {"desinscrire", Intent::OptOut, "fr"},
    {"desinscription", Intent::OptOut, "fr"},
    {"descadastrar", Intent::OptOut, "pt"},
    {"descadastre", Intent::OptOut, "pt"},
    {"descadastra", Intent::OptOut, "pt"},
    {"descadastro", Intent::OptOut, "pt"},
    {"descadastrem", Intent::OptOut, "pt"},
    {"abmelden", Intent::OptOut, "de"},
    {"abmelde", Intent::OptOut, "de"},
    {"abmeldung", Intent::OptOut, "de"},
    {"abbestellen", Intent::OptOut, "de"},
    {"abbestelle", Intent::OptOut, "de"},
    {"austragen", Intent::OptOut, "de"},
    {"start", Intent::OptIn, "en"},
    {"unstop", Intent::OptIn, "en"},
    {"yes", Intent::OptIn, "en"},
    {"resume", Intent::OptIn, "en"},
    {"subscribe", Intent::OptIn, "en"},
    {"nonarret", Intent::OptIn, "fr"},
    {"help", Intent::Help, "en"},
    {"info", Intent::Help, "en"},
    {"aide", Intent::Help, "fr"},
    {"ayuda", Intent::Help, "es"},
};

// Room for one more element without quadratic growth from reserve(size+1).
template <class Vector>
void reserve_one(Vector& v) {
    if (v.size() == v.capacity()) v.reserve(v.capacity() < 8 ? 8 : 2 * v.capacity());
}

bool valid_intent(Intent intent) noexcept {
    return intent == Intent::OptOut || intent == Intent::OptIn || intent == Intent::Help;
}

std::string quoted(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    out.push_back('"');
    out.append(s.data(), s.size());
    out.push_back('"');
    return out;
}

// The key of the text in s.text: its words (quotation marks are plain
// separators here) joined.
void join_words(const std::u16string& text, std::u16string& key) {
    key.clear();
    Tokenizer tk(text, /*drop_quotes=*/false);
    Span w;
    while (tk.next(w)) key.append(text, w.begin, w.end - w.begin);
}

}  // namespace

// ------------------------------------------------------------- keyword_key

std::string keyword_key(std::string_view utf8) {
    ScratchLease lease;
    Scratch& s = lease.get();
    detail::normalize_text(utf8, detail::all_ascii(utf8), false, s, s.text);
    join_words(s.text, s.tmp);
    return detail::to_utf8(s.tmp);
}

// --------------------------------------------------------------------- Impl

KeywordSet::Impl::Impl() {
    trie.emplace_back();
    trie[0].flags = kStdPrefix;
    for (const char16_t* k : kCourtesyKeys) {
        std::int32_t grown = -1;
        std::int32_t n = insert_path(k, kStdPrefix, &grown);
        trie[static_cast<std::size_t>(n)].flags |= kCourtesy;
    }
    for (const char16_t* w : kMessagingWords) {
        std::int32_t grown = -1;
        std::int32_t n = insert_path(w, 0, &grown);
        trie[static_cast<std::size_t>(n)].flags |= kMessaging;
    }
}

std::int32_t KeywordSet::Impl::insert_path(const std::u16string& s, std::uint8_t along, std::int32_t* grown_parent) {
    std::int32_t node = 0;
    trie[0].flags |= along;
    for (char16_t c : s) {
        std::int32_t next = child(node, c);
        if (next < 0) {
            // Create the node first, then link it: an exception leaves at
            // most an unlinked node (or a link from a node created here).
            next = static_cast<std::int32_t>(trie.size());
            trie.emplace_back();
            trie[static_cast<std::size_t>(node)].next.emplace_back(c, next);
            if (*grown_parent < 0) *grown_parent = node;  // the first, pre-existing parent
        }
        node = next;
        trie[static_cast<std::size_t>(node)].flags |= along;
    }
    return node;
}

void KeywordSet::Impl::add(std::string_view keyword, Intent intent, std::string_view language) {
    if (!valid_intent(intent))
        throw Error(Error::Kind::InvalidKeyword,
                    "keyword " + quoted(keyword) + " has no intent: it must be opt_out, opt_in or help");

    std::u16string key, norm, folded;
    {
        ScratchLease lease;
        Scratch& s = lease.get();
        const bool ascii = detail::all_ascii(keyword);
        detail::normalize_text(keyword, ascii, false, s, s.text);
        join_words(s.text, key);
        if (key.empty())
            throw Error(Error::Kind::InvalidKeyword, "keyword " + quoted(keyword) + " has no letter or digit");
        if (key.size() > kMaxKeyLength)
            throw Error(Error::Kind::InvalidKeyword, "keyword " + quoted(keyword) + " is too long: at most " +
                                                         std::to_string(kMaxKeyLength) + " letters and digits");
        detail::collapse_trim(s.text, norm, SIZE_MAX);
        if (ascii)
            detail::exact_fold_ascii(keyword, SIZE_MAX, folded);
        else  // normalize_text left the decoded keyword in s.raw
            detail::exact_fold(s.raw.data(), s.raw.size(), SIZE_MAX, folded);
    }

    auto conflict = [&](std::int32_t other) {
        const Entry& o = entries[static_cast<std::size_t>(other)];
        throw Error(Error::Kind::KeywordConflict, "keyword " + quoted(keyword) + " conflicts with keyword " +
                                                      quoted(o.keyword) + " (intent " + to_string(o.intent) +
                                                      "): a keyword belongs to exactly one intent");
    };

    const auto kit = key_index.find(key);
    if (kit != key_index.end()) {
        const Key& k = keys[static_cast<std::size_t>(kit->second)];
        if (k.intent != intent) conflict(k.entries.front());
        for (std::int32_t e : k.entries) {
            const Entry& en = entries[static_cast<std::size_t>(e)];
            if (en.keyword == keyword && en.language == language) return;  // already known
        }
    }
    // Same key implies same folded and normalised text in practice; check
    // anyway so that no index can ever answer with another intent.
    if (!folded.empty()) {
        const auto eit = exact_index.find(folded);
        if (eit != exact_index.end() && entries[static_cast<std::size_t>(eit->second)].intent != intent)
            conflict(eit->second);
    }
    const auto nit = norm_index.find(norm);
    if (nit != norm_index.end() && entries[static_cast<std::size_t>(nit->second)].intent != intent)
        conflict(nit->second);

    // Prepare everything that allocates, then commit with operations that
    // cannot throw (strong exception guarantee).
    const bool new_key = kit == key_index.end();
    const auto entry_idx = static_cast<std::int32_t>(entries.size());
    Entry entry{std::string(keyword), std::string(language), intent};
    Key key_rec{intent, {}};
    // A new opt-out key of a-z letters is also read with typos.
    bool typo_key = new_key && intent == Intent::OptOut && key.size() >= 4 && key.size() <= kMaxTypoKey;
    for (char16_t c : key) typo_key = typo_key && c >= u'a' && c <= u'z';
    std::u16string typo_copy;
    if (typo_key) {
        typo_copy = key;
        reserve_one(typo_keys[key[0] - u'a']);
    }
    reserve_one(entries);
    if (new_key) {
        key_rec.entries.push_back(entry_idx);
        reserve_one(keys);
    } else {
        reserve_one(keys[static_cast<std::size_t>(kit->second)].entries);
    }

    const std::size_t trie_size = trie.size();
    std::int32_t grown_parent = -1;
    std::int32_t last = -1;
    bool key_inserted = false;
    bool exact_inserted = false;
    try {
        if (new_key) {
            last = insert_path(key, kStdPrefix, &grown_parent);
            key_inserted = key_index.emplace(key, static_cast<std::int32_t>(keys.size())).second;
        }
        if (!folded.empty()) exact_inserted = exact_index.emplace(folded, entry_idx).second;
        norm_index.emplace(norm, entry_idx);
    } catch (...) {
        if (exact_inserted) exact_index.erase(folded);
        if (key_inserted) key_index.erase(key);
        if (grown_parent >= 0) {
            auto& next = trie[static_cast<std::size_t>(grown_parent)].next;
            if (!next.empty() && static_cast<std::size_t>(next.back().second) >= trie_size) next.pop_back();
        }
        trie.resize(trie_size);  // shrinking never throws
        throw;
    }

    entries.push_back(std::move(entry));
    if (new_key) {
        trie[static_cast<std::size_t>(last)].key = static_cast<std::int32_t>(keys.size());
        keys.push_back(std::move(key_rec));
    } else {
        keys[static_cast<std::size_t>(kit->second)].entries.push_back(entry_idx);
    }
    if (typo_key) typo_keys[typo_copy[0] - u'a'].push_back(std::move(typo_copy));  // reserved: no throw
    if (intent == Intent::OptOut && key[0] >= u'a' && key[0] <= u'z' && optout_initial[key[0] - u'a'] < 0)
        optout_initial[key[0] - u'a'] = entry_idx;
    max_exact_len = std::max(max_exact_len, folded.size());
    max_norm_len = std::max(max_norm_len, norm.size());
}

// --------------------------------------------------------------- KeywordSet

KeywordSet::KeywordSet() : impl_(std::make_unique<Impl>()) {}
KeywordSet::~KeywordSet() = default;
KeywordSet::KeywordSet(KeywordSet&&) noexcept = default;
KeywordSet& KeywordSet::operator=(KeywordSet&&) noexcept = default;

void KeywordSet::add(std::string_view keyword, Intent intent, std::string_view language) {
    if (!impl_) impl_ = std::make_unique<Impl>();  // a moved-from set is usable again
    impl_->add(keyword, intent, language);
}

KeywordSet KeywordSet::defaults() {
    KeywordSet set;
    for (const DefaultKeyword& d : kDefaults) set.add(d.keyword, d.intent, d.language);
    return set;
}

std::size_t KeywordSet::size() const noexcept { return impl_ ? impl_->entries.size() : 0; }

}  // namespace optout
