// A small open-addressing hash table of plain data, for the send path.
//
// Keys and values are trivially copyable structs (strings as pointers the
// caller owns); Traits says how a key hashes and compares:
//
//   struct Traits {
//       static uint64_t hash(const Key& k);
//       static bool equal(const Key& a, const Key& b);
//   };
//
// Memory comes from a TableMemory (zeroed blocks), so that the PostgreSQL
// glue allocates in a memory context (the table dies with it, and is never
// freed by a destructor: this class has none, and may live in a frame that
// PostgreSQL longjmps out of) and the unit tests with calloc. Linear
// probing, a power-of-two capacity, at most half full; each slot keeps its
// key's hash, so that probes compare hashes first and growth rehashes
// nothing. No erase: the send path only adds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace optout {

struct TableMemory {
    // Returns `bytes` zeroed bytes; never returns null (it throws, or
    // PostgreSQL's allocators raise an error).
    void* (*alloc)(void* context, size_t bytes);
    void (*release)(void* context, void* block);
    void* context;
};

template <typename Key, typename Value, typename Traits>
class HashTable {
    static_assert(std::is_trivially_copyable<Key>::value && std::is_trivially_copyable<Value>::value,
                  "HashTable holds plain data");

public:
    struct Entry {
        Key key;
        Value value;
    };

    // An empty table; allocates at the first insert.
    void init(const TableMemory& memory) {
        memory_ = memory;
        slots_ = nullptr;
        mask_ = 0;
        size_ = 0;
    }

    size_t size() const { return size_; }

    Entry* find(const Key& key) const {
        if (size_ == 0) return nullptr;
        uint64_t h = slot_hash(key);
        for (size_t i = h & mask_;; i = (i + 1) & mask_) {
            Slot& s = slots_[i];
            if (s.hash == 0) return nullptr;
            if (s.hash == h && Traits::equal(s.entry.key, key)) return &s.entry;
        }
    }

    // The entry of this key; a new one (value zeroed) when *found is false.
    // The caller may then point the key at copies it owns (equal to `key`).
    Entry* insert(const Key& key, bool* found) {
        if ((size_ + 1) * 2 > capacity()) grow();
        uint64_t h = slot_hash(key);
        size_t i = h & mask_;
        for (;; i = (i + 1) & mask_) {
            Slot& s = slots_[i];
            if (s.hash == 0) break;
            if (s.hash == h && Traits::equal(s.entry.key, key)) {
                *found = true;
                return &s.entry;
            }
        }
        Slot& s = slots_[i];
        s.hash = h;
        s.entry.key = key;
        s.entry.value = Value{};
        size_++;
        *found = false;
        return &s.entry;
    }

    // Iteration in slot order: for (const Entry* e = t.first(); e; e = t.next(e)).
    const Entry* first() const { return scan(0); }
    const Entry* next(const Entry* e) const {
        // The entry is its slot's first member.
        return scan(static_cast<size_t>(reinterpret_cast<const Slot*>(e) - slots_) + 1);
    }

private:
    struct Slot {
        Entry entry;
        uint64_t hash;  // 0: free
    };

    size_t capacity() const { return slots_ ? mask_ + 1 : 0; }

    // The traits' hash, mixed (splitmix64's finalizer) so that its low bits
    // pick the slot; never 0, which marks a free slot.
    static uint64_t slot_hash(const Key& key) {
        uint64_t h = Traits::hash(key);
        h ^= h >> 30;
        h *= UINT64_C(0xbf58476d1ce4e5b9);
        h ^= h >> 27;
        h *= UINT64_C(0x94d049bb133111eb);
        h ^= h >> 31;
        return h ? h : 1;
    }

    const Entry* scan(size_t from) const {
        for (size_t i = from; i < capacity(); i++)
            if (slots_[i].hash != 0) return &slots_[i].entry;
        return nullptr;
    }

    // Twice the slots (64 to begin with); the old ones are released once
    // the new ones hold everything.
    void grow() {
        size_t cap = slots_ ? (mask_ + 1) * 2 : 64;
        Slot* slots = static_cast<Slot*>(memory_.alloc(memory_.context, sizeof(Slot) * cap));
        size_t mask = cap - 1;
        for (size_t k = 0; k < capacity(); k++) {
            const Slot& s = slots_[k];
            if (s.hash == 0) continue;
            size_t i = s.hash & mask;
            while (slots[i].hash != 0) i = (i + 1) & mask;
            slots[i] = s;
        }
        Slot* old = slots_;
        slots_ = slots;
        mask_ = mask;
        if (old) memory_.release(memory_.context, old);
    }

    TableMemory memory_;
    Slot* slots_;
    size_t mask_;
    size_t size_;
};

}  // namespace optout
