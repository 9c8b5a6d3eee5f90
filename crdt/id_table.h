// A compact hash index of 32-bit ids (internal to crdt/).
//
// The presence table keeps its records in one array and indexes them several
// ways (by tag, by {topic, pid, key}, by pid, ...). A node-based hash map per
// index would cost 40-60 bytes per presence and index; this open-addressing
// table stores only {hash, id} (8 bytes a slot), and the key lives in the
// record the id names: lookups take a predicate that compares a candidate
// id's record with the wanted key. Linear probing; erase shifts the following
// run back, so there are no tombstones.
//
// Not thread-safe; owned by one PresenceTable.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace presence {

class IdTable {
 public:
  using Id = std::uint32_t;
  static constexpr Id kNone = 0xFFFFFFFF;

  std::size_t size() const { return size_; }

  // The id whose stored hash equals `hash` and for which matches(id) holds,
  // or kNone.
  template <class Match>
  Id find(std::size_t hash, Match matches) const {
    if (slots_.empty()) return kNone;
    const std::uint32_t h = fold(hash);
    for (std::size_t i = home(h);; i = (i + 1) & mask()) {
      const Slot& slot = slots_[i];
      if (slot.id == kNone) return kNone;
      if (slot.hash == h && matches(slot.id)) return slot.id;
    }
  }

  // Asks the processor to load the slot where a lookup of hash starts, so
  // that a loop over many keys can overlap their cache misses.
  void prefetch(std::size_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(fold(hash))]);
  }

  // Room for `count` ids in all, so that adding them never rehashes.
  void reserve(std::size_t count);
  // Adds id under hash. The caller guarantees no equal key is present.
  void insert(std::size_t hash, Id id);
  // Removes id, which must be present under hash.
  void erase(std::size_t hash, Id id);
  // Swaps id old_id, present under hash, for new_id with an equal key.
  void replace(std::size_t hash, Id old_id, Id new_id);

  template <class F>
  void for_each(F f) const {
    for (const Slot& slot : slots_) {
      if (slot.id != kNone) f(slot.id);
    }
  }

 private:
  struct Slot {
    std::uint32_t hash;
    Id id;
  };

  static std::uint32_t fold(std::size_t hash) {
    return static_cast<std::uint32_t>(hash ^ (static_cast<std::uint64_t>(hash) >> 32));
  }
  std::size_t mask() const { return slots_.size() - 1; }
  // A salted mix of the hash, so that weak hashes (small integers) spread
  // over the table, and so that two tables place the same keys in unrelated
  // orders: filling one table in the slot order of another (a merge of an
  // extract) would otherwise hit its runs back to front, one full run per
  // insert.
  std::size_t home(std::uint32_t h) const {
    std::uint32_t x = (h ^ salt_) * 0x9E3779B1u;
    x ^= x >> 15;
    x *= 0x85EBCA77u;
    x ^= x >> 13;
    return x >> shift_;
  }
  std::size_t slot_of(std::size_t hash, Id id) const;
  static bool fits(std::size_t count, std::size_t capacity);
  void rehash(std::size_t capacity);
  void place(Slot slot);

  std::vector<Slot> slots_;  // size is 0 or a power of two >= 8
  std::size_t size_ = 0;
  unsigned shift_ = 32;
  std::uint32_t salt_ = 0;  // drawn anew at every growth
};

}  // namespace presence
