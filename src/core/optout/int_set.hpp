// A set of 64-bit integers, built once and then only read: the send path's
// answer to "is this integer contact stopped?" for a bulk send, asked once a
// row.
//
// Where the values are dense enough (at most kBitsPerValue bits of their
// range [min, max] for each value, and at most kMaxBits in all) it is a
// bitmap over that range: a lookup reads one word, and a send over
// consecutive contacts reads consecutive words. Platforms number their
// contacts with a sequence, so a ledger's integer contacts usually are.
// Otherwise it is a HashTable, whose mixed hash sends each lookup to a
// random slot (a cache miss once the table outgrows the cache).
//
// Memory comes from a TableMemory, as for HashTable: no destructor, the
// blocks go with the caller's memory context.
#pragma once

#include <cstddef>
#include <cstdint>

#include "optout/hash_table.hpp"

namespace optout {

class IntSet {
public:
    // At most this many bits of range per value (a hash table holds a value
    // in 2 to 4 slots of 24 bytes, 384 to 768 bits) ...
    static constexpr uint64_t kBitsPerValue = 256;
    // ... and at most 2^27 bits (16 MB) for the whole bitmap.
    static constexpr uint64_t kMaxBits = uint64_t{1} << 27;

    // An empty set.
    void init(const TableMemory& memory) {
        memory_ = memory;
        bits_ = nullptr;
        lo_ = 0;
        nbits_ = 0;
        table_.init(memory);
    }

    // Builds the set of values[0 .. n) (they may repeat, in any order).
    // Called once, on an empty set.
    void build(const int64_t* values, size_t n) {
        if (n == 0) return;
        int64_t lo = values[0], hi = values[0];
        for (size_t i = 1; i < n; i++) {
            if (values[i] < lo) lo = values[i];
            if (values[i] > hi) hi = values[i];
        }
        // The range's width in bits, computed without overflow.
        uint64_t width = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
        if (width < kMaxBits && width < kBitsPerValue * static_cast<uint64_t>(n)) {
            nbits_ = width + 1;
            lo_ = lo;
            size_t words = static_cast<size_t>((nbits_ + 63) / 64);
            bits_ = static_cast<uint64_t*>(memory_.alloc(memory_.context, words * sizeof(uint64_t)));
            for (size_t i = 0; i < n; i++) {
                uint64_t off = static_cast<uint64_t>(values[i]) - static_cast<uint64_t>(lo_);
                bits_[off >> 6] |= uint64_t{1} << (off & 63);
            }
            return;
        }
        for (size_t i = 0; i < n; i++) {
            bool found;
            table_.insert(values[i], &found);
        }
    }

    bool contains(int64_t v) const {
        if (bits_) {
            uint64_t off = static_cast<uint64_t>(v) - static_cast<uint64_t>(lo_);
            return off < nbits_ && (bits_[off >> 6] >> (off & 63) & 1) != 0;
        }
        return table_.find(v) != nullptr;
    }

    // Whether the set is a bitmap (for the tests).
    bool dense() const { return bits_ != nullptr; }

private:
    struct Traits {
        static uint64_t hash(const int64_t& k) { return static_cast<uint64_t>(k); }
        static bool equal(const int64_t& a, const int64_t& b) { return a == b; }
    };

    TableMemory memory_;
    uint64_t* bits_;  // the bitmap over [lo_, lo_ + nbits_), or null
    int64_t lo_;
    uint64_t nbits_;
    HashTable<int64_t, bool, Traits> table_;  // when not dense
};

}  // namespace optout
