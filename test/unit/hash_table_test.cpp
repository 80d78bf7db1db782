// optout::HashTable (optout/hash_table.hpp): the open-addressing table of the
// send path, with struct keys, against std::map.
#include "optout/hash_table.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using optout::HashTable;
using optout::TableMemory;

// calloc'd blocks, counted: what the table holds is released as it grows.
struct Blocks {
    int live = 0;
    std::vector<void*> all;
};
void* test_alloc(void* context, size_t bytes) {
    Blocks* b = static_cast<Blocks*>(context);
    void* p = std::calloc(1, bytes);
    if (!p) throw std::bad_alloc();
    b->live++;
    b->all.push_back(p);
    return p;
}
void test_release(void* context, void* block) {
    Blocks* b = static_cast<Blocks*>(context);
    b->live--;
    for (void*& p : b->all)
        if (p == block) p = nullptr;
    std::free(block);
}
struct Memory {
    Blocks blocks;
    ~Memory() {
        for (void* p : blocks.all) std::free(p);
    }
    TableMemory table_memory() { return TableMemory{test_alloc, test_release, &blocks}; }
};

struct IntTraits {
    static uint64_t hash(const int64_t& k) { return static_cast<uint64_t>(k); }
    static bool equal(const int64_t& a, const int64_t& b) { return a == b; }
};

// Every key in one chain.
struct CollidingTraits {
    static uint64_t hash(const int64_t&) { return 42; }
    static bool equal(const int64_t& a, const int64_t& b) { return a == b; }
};

// A struct key with strings by pointer (NULL: none), as the send path has.
struct PairKey {
    const char* contact;
    const char* channel;
};
struct PairTraits {
    static uint64_t hash(const PairKey& k) {
        uint64_t h = 1469598103934665603ULL;
        for (const char* p = k.contact; *p; p++) h = (h ^ static_cast<unsigned char>(*p)) * 1099511628211ULL;
        h = (h ^ (k.channel ? 1 : 2)) * 1099511628211ULL;
        for (const char* p = k.channel; p && *p; p++) h = (h ^ static_cast<unsigned char>(*p)) * 1099511628211ULL;
        return h;
    }
    static bool equal(const PairKey& a, const PairKey& b) {
        return std::strcmp(a.contact, b.contact) == 0 &&
               (a.channel && b.channel ? std::strcmp(a.channel, b.channel) == 0 : a.channel == b.channel);
    }
};

TEST(HashTable, EmptyFindsNothingAndAllocatesNothing) {
    Memory m;
    HashTable<int64_t, int, IntTraits> t;
    t.init(m.table_memory());
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(t.find(7), nullptr);
    EXPECT_EQ(t.first(), nullptr);
    EXPECT_EQ(m.blocks.live, 0);
}

TEST(HashTable, InsertFindsAndCounts) {
    Memory m;
    HashTable<int64_t, int, IntTraits> t;
    t.init(m.table_memory());
    bool found = true;
    auto* e = t.insert(5, &found);
    EXPECT_FALSE(found);
    EXPECT_EQ(e->key, 5);
    EXPECT_EQ(e->value, 0);  // a new value is zeroed
    e->value = 3;
    e = t.insert(5, &found);
    EXPECT_TRUE(found);
    EXPECT_EQ(e->value, 3);
    ASSERT_NE(t.find(5), nullptr);
    EXPECT_EQ(t.find(5)->value, 3);
    EXPECT_EQ(t.find(6), nullptr);
    EXPECT_EQ(t.find(0), nullptr);
    EXPECT_EQ(t.find(-5), nullptr);
    EXPECT_EQ(t.size(), 1u);
}

TEST(HashTable, GrowsKeepingEveryEntryAndReleasingOldBlocks) {
    Memory m;
    HashTable<int64_t, int64_t, IntTraits> t;
    t.init(m.table_memory());
    constexpr int64_t n = 100000;
    for (int64_t k = 0; k < n; k++) {
        bool found;
        t.insert(k * 3, &found)->value = k;
        ASSERT_FALSE(found);
        ASSERT_EQ(m.blocks.live, 1);  // the old slots go once the new ones hold everything
    }
    EXPECT_EQ(t.size(), static_cast<size_t>(n));
    for (int64_t k = 0; k < n; k++) {
        auto* e = t.find(k * 3);
        ASSERT_NE(e, nullptr);
        EXPECT_EQ(e->value, k);
        EXPECT_EQ(t.find(k * 3 + 1), nullptr);
    }
}

TEST(HashTable, CollisionsStayDistinct) {
    Memory m;
    HashTable<int64_t, int, CollidingTraits> t;
    t.init(m.table_memory());
    for (int64_t k = 0; k < 500; k++) {
        bool found;
        t.insert(k, &found)->value = static_cast<int>(k) + 1;
        ASSERT_FALSE(found);
    }
    for (int64_t k = 0; k < 500; k++) {
        bool found;
        EXPECT_EQ(t.insert(k, &found)->value, static_cast<int>(k) + 1);
        EXPECT_TRUE(found);
    }
    EXPECT_EQ(t.find(500), nullptr);
    EXPECT_EQ(t.size(), 500u);
}

TEST(HashTable, IterationVisitsEachEntryOnce) {
    Memory m;
    HashTable<int64_t, int, IntTraits> t;
    t.init(m.table_memory());
    std::map<int64_t, int> want;
    for (int64_t k = -300; k < 300; k += 7) {
        bool found;
        t.insert(k, &found)->value = static_cast<int>(k * 2);
        want[k] = static_cast<int>(k * 2);
    }
    std::map<int64_t, int> got;
    for (const auto* e = t.first(); e; e = t.next(e)) {
        EXPECT_TRUE(got.emplace(e->key, e->value).second) << e->key;
    }
    EXPECT_EQ(got, want);
}

TEST(HashTable, StructKeysWithStringsAndNoneAgainstStdMap) {
    Memory m;
    HashTable<PairKey, int64_t, PairTraits> t;
    t.init(m.table_memory());
    std::mt19937 rng(15);
    std::vector<std::string> contacts, channels;
    for (int i = 0; i < 3000; i++) contacts.push_back(std::to_string(rng() % 2000) + (i % 3 ? "" : "-x"));
    for (int i = 0; i < 5; i++) channels.push_back("ch" + std::to_string(i));
    std::map<std::pair<std::string, std::string>, int64_t> want;  // channel "\x01none": none
    for (int round = 0; round < 20000; round++) {
        const std::string& c = contacts[rng() % contacts.size()];
        int ch = static_cast<int>(rng() % 6);
        PairKey key{c.c_str(), ch == 5 ? nullptr : channels[ch].c_str()};
        bool found;
        auto* e = t.insert(key, &found);
        auto& w = want[{c, ch == 5 ? std::string("\x01none") : channels[ch]}];
        EXPECT_EQ(found, w != 0);
        e->value++;
        w++;
    }
    EXPECT_EQ(t.size(), want.size());
    for (const auto& [k, count] : want) {
        PairKey key{k.first.c_str(), k.second == "\x01none" ? nullptr : k.second.c_str()};
        auto* e = t.find(key);
        ASSERT_NE(e, nullptr) << k.first << "/" << k.second;
        EXPECT_EQ(e->value, count);
    }
    // No channel is not the empty channel.
    PairKey none{"1", nullptr}, empty{"1", ""};
    bool found;
    t.insert(none, &found);
    EXPECT_EQ(t.find(empty), nullptr);
}

TEST(HashTable, ManyKeysMatchStdMap) {
    Memory m;
    HashTable<int64_t, int64_t, IntTraits> t;
    t.init(m.table_memory());
    std::mt19937_64 rng(2026);
    std::map<int64_t, int64_t> want;
    for (int i = 0; i < 200000; i++) {
        int64_t k = static_cast<int64_t>(rng() % 50000) - 25000;
        bool found;
        auto* e = t.insert(k, &found);
        EXPECT_EQ(found, want.count(k) == 1);
        e->value += i;
        want[k] += i;
    }
    ASSERT_EQ(t.size(), want.size());
    for (const auto& [k, v] : want) {
        auto* e = t.find(k);
        ASSERT_NE(e, nullptr);
        EXPECT_EQ(e->value, v);
    }
}

}  // namespace
