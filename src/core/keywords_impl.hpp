// optout core, private: the representation of a KeywordSet.
//
// Pure C++17. Never include a PostgreSQL header here.
#pragma once

#include "optout/classifier.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace optout {

// Longest accepted key (a keyword's normalised words, joined), in UTF-16
// code units. Keeps the segmentation in classify() linear with a small
// constant (it never looks further back than the longest key).
constexpr std::size_t kMaxKeyLength = 100;
// Longest key read with a typo.
constexpr std::size_t kMaxTypoKey = 40;

struct KeywordSet::Impl {
    struct Entry {
        std::string keyword;   // as given to add()
        std::string language;  // as given to add()
        Intent intent;
    };

    // One key (e.g. "stopall") and the keywords spelling it ("stopall",
    // "stop all"), in the order they were added.
    struct Key {
        Intent intent;
        std::vector<std::int32_t> entries;
    };

    // Trie over the UTF-16 code units of the keys, of the courtesy keys
    // ("please", "thankyou", ...) and of the single words that may follow an
    // opt-out keyword in reasonable mode ("me", "texting", ...).
    enum : std::uint8_t {
        kCourtesy = 1,   // a courtesy key ends here
        kMessaging = 2,  // a word "about the messaging" ends here
        kStdPrefix = 4   // on the path of a key or courtesy key
    };
    struct Node {
        std::vector<std::pair<char16_t, std::int32_t>> next;
        std::int32_t key = -1;  // index into keys when a key ends here
        std::uint8_t flags = 0;
    };

    Impl();

    void add(std::string_view keyword, Intent intent, std::string_view language);

    std::int32_t child(std::int32_t node, char16_t c) const noexcept {
        for (const auto& [ch, idx] : trie[static_cast<std::size_t>(node)].next)
            if (ch == c) return idx;
        return -1;
    }
    // Follows s[0..n) from `node`; -1 when the trie has no such path.
    std::int32_t walk(std::int32_t node, const char16_t* s, std::size_t n) const noexcept {
        for (std::size_t i = 0; i < n && node >= 0; ++i) node = child(node, s[i]);
        return node;
    }
    const Node& node(std::int32_t idx) const noexcept { return trie[static_cast<std::size_t>(idx)]; }

    // The entry reported for a key: the first keyword added with it.
    std::int32_t key_entry(std::int32_t key) const noexcept {
        return keys[static_cast<std::size_t>(key)].entries.front();
    }
    Intent key_intent(std::int32_t key) const noexcept { return keys[static_cast<std::size_t>(key)].intent; }

    std::vector<Entry> entries;
    std::vector<Key> keys;
    std::unordered_map<std::u16string, std::int32_t> key_index;    // key -> keys
    std::unordered_map<std::u16string, std::int32_t> exact_index;  // folded text -> entries
    std::unordered_map<std::u16string, std::int32_t> norm_index;   // normalize(k) -> entries
    std::vector<Node> trie;                                        // trie[0] is the root
    // Opt-out keys made of a-z only, 4 to kMaxTypoKey letters long: the ones
    // reasonable mode reads with a typo (classify_typo.cpp).
    std::vector<std::u16string> typo_keys[26];  // by first letter
    // Opt-out keys by first letter a-z: the entry of the first one added with
    // that initial, or -1 (review: a lone letter).
    std::int32_t optout_initial[26] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                       -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
    std::size_t max_exact_len = 0;  // longest exact_index key (code units)
    std::size_t max_norm_len = 0;   // longest norm_index key (code units)

private:
    // Inserts the path of `s` (flagging its nodes with `along`), returns its
    // last node. On an exception, *grown_parent / trie size let the caller
    // undo the insertion.
    std::int32_t insert_path(const std::u16string& s, std::uint8_t along, std::int32_t* grown_parent);
};

}  // namespace optout
