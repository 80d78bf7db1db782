// optout::IntSet (optout/int_set.hpp): the send path's set of integer
// contacts, a bitmap when dense and a hash table otherwise, against std::set.
#include "optout/int_set.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <new>
#include <random>
#include <set>
#include <vector>

namespace {

using optout::IntSet;
using optout::TableMemory;

struct Memory {
    std::vector<void*> blocks;
    ~Memory() {
        for (void* p : blocks) std::free(p);
    }
    static void* alloc(void* context, size_t bytes) {
        void* p = std::calloc(1, bytes);
        if (!p) throw std::bad_alloc();
        static_cast<Memory*>(context)->blocks.push_back(p);
        return p;
    }
    static void release(void*, void*) {}  // freed with the Memory
    TableMemory table_memory() { return TableMemory{alloc, release, this}; }
};

// Every value in `probe` answers as std::set does.
void expect_same(const std::vector<int64_t>& values, const std::vector<int64_t>& probe, bool dense) {
    Memory memory;
    IntSet s;
    s.init(memory.table_memory());
    s.build(values.data(), values.size());
    EXPECT_EQ(s.dense(), dense);
    std::set<int64_t> want(values.begin(), values.end());
    for (int64_t v : probe) EXPECT_EQ(s.contains(v), want.count(v) == 1) << v;
    for (int64_t v : values) EXPECT_TRUE(s.contains(v)) << v;
}

std::vector<int64_t> around(const std::vector<int64_t>& values) {
    std::vector<int64_t> probe;
    for (int64_t v : values)
        for (int64_t d : {-65, -64, -63, -1, 1, 63, 64, 65})
            if ((d < 0 && v >= std::numeric_limits<int64_t>::min() - d) ||
                (d > 0 && v <= std::numeric_limits<int64_t>::max() - d))
                probe.push_back(v + d);
    return probe;
}

TEST(IntSet, EmptyHoldsNothing) {
    Memory memory;
    IntSet s;
    s.init(memory.table_memory());
    s.build(nullptr, 0);
    EXPECT_FALSE(s.contains(0));
    EXPECT_FALSE(s.contains(std::numeric_limits<int64_t>::min()));
}

TEST(IntSet, OneValue) {
    std::vector<int64_t> v{42};
    expect_same(v, around(v), true);
}

TEST(IntSet, EveryTenthContactIsABitmap) {
    std::vector<int64_t> v;
    for (int64_t i = 10; i <= 100000; i += 10) v.push_back(i);
    std::vector<int64_t> probe;
    for (int64_t i = -100; i <= 100100; i++) probe.push_back(i);
    expect_same(v, probe, true);
}

TEST(IntSet, NegativeAndRepeatedValues) {
    std::vector<int64_t> v{-5, -5, -1, 0, 3, 3, 130, -200};
    expect_same(v, around(v), true);
}

TEST(IntSet, SparseValuesAreAHashTable) {
    // 3 values over a range of 10^12: far over 256 bits a value.
    std::vector<int64_t> v{1, 1000000, 1000000000000};
    expect_same(v, around(v), false);
}

TEST(IntSet, TheExtremesOfInt64) {
    const int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
    std::vector<int64_t> v{lo, hi, 0};  // the range does not fit in 64 bits
    expect_same(v, around(v), false);
    std::vector<int64_t> top{hi, hi - 1, hi - 100};
    expect_same(top, around(top), true);
    std::vector<int64_t> bottom{lo, lo + 1, lo + 100};
    expect_same(bottom, around(bottom), true);
}

TEST(IntSet, TheDensityThreshold) {
    // n values over a width of exactly 256 * n bits is a hash table; one
    // less is a bitmap.
    const int64_t n = 4;
    std::vector<int64_t> sparse{0, 1, 2, 256 * n};
    expect_same(sparse, around(sparse), false);
    std::vector<int64_t> dense{0, 1, 2, 256 * n - 1};
    expect_same(dense, around(dense), true);
}

TEST(IntSet, TheSizeCap) {
    // Dense enough per value, but wider than 2^27 bits: a hash table.
    std::vector<int64_t> v;
    const int64_t width = int64_t{1} << 27;
    for (int64_t i = 0; i <= width; i += 200) v.push_back(i);  // 256 bits a value would allow 1.7 * 2^27
    v.push_back(width);
    Memory memory;
    IntSet s;
    s.init(memory.table_memory());
    s.build(v.data(), v.size());
    EXPECT_FALSE(s.dense());
    EXPECT_TRUE(s.contains(0));
    EXPECT_TRUE(s.contains(width));
    EXPECT_FALSE(s.contains(width - 1));
}

TEST(IntSet, RandomSetsAgreeWithStdSet) {
    std::mt19937_64 rng(25);
    for (int round = 0; round < 50; round++) {
        size_t n = 1 + rng() % 2000;
        int64_t spread = int64_t{1} << (rng() % 40);
        int64_t base = static_cast<int64_t>(rng() % 1000000) - 500000;
        std::vector<int64_t> v;
        for (size_t i = 0; i < n; i++) v.push_back(base + static_cast<int64_t>(rng() % static_cast<uint64_t>(spread)));
        std::vector<int64_t> probe = around(v);
        for (int i = 0; i < 2000; i++)
            probe.push_back(base + static_cast<int64_t>(rng() % static_cast<uint64_t>(spread + 100)) - 50);
        Memory memory;
        IntSet s;
        s.init(memory.table_memory());
        s.build(v.data(), v.size());
        std::set<int64_t> want(v.begin(), v.end());
        for (int64_t p : probe) ASSERT_EQ(s.contains(p), want.count(p) == 1) << "round " << round << ", value " << p;
    }
}

}  // namespace
