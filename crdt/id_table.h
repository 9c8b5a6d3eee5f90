// A compact hash index of 32-bit ids (internal to crdt/).
//
// The presence table keeps its records in one array and indexes them several
// ways (by tag, by {topic, pid, key}, by pid, ...). A node-based hash map per
// index would cost 40-60 bytes per presence and index; this open-addressing
// table stores one 32-bit word a slot: the id and 6 bits of its key's hash,
// which spare most comparisons with keys that only share a home slot. The
// key lives in the record the id names: lookups take a predicate that
// compares a candidate id's record with the wanted key, and growing takes a
// function giving an id's hash back from its record. Linear probing; erase
// leaves a tombstone, which inserts reuse and growth drops.
//
// Not thread-safe; owned by one PresenceTable or Values.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "term/prefetch.h"

namespace presence {

class IdTable {
 public:
  using Id = std::uint32_t;
  static constexpr Id kNone = 0xFFFFFFFF;
  // A slot's top kCheckBits bits hold hash bits, the rest the id; ids must
  // not exceed kMaxId (67,108,860), so that no slot holding one reads as
  // empty or erased.
  static constexpr unsigned kCheckBits = 6;
  static constexpr Id kMaxId = (Id{1} << (32 - kCheckBits)) - 3;

  std::size_t size() const { return size_; }

  // The id whose key hashes to `hash` and for which matches(id) holds, or
  // kNone.
  template <class Match>
  Id find(std::size_t hash, Match matches) const {
    if (slots_.empty()) return kNone;
    const std::uint32_t x = mixed(hash);
    const std::uint32_t bits = check_bits(x);
    for (std::size_t i = home(x);; i = next(i)) {
      const std::uint32_t slot = slots_[i];
      if (slot == kEmpty) return kNone;
      if (slot != kDeleted && (slot & ~kIdMask) == bits && matches(slot & kIdMask)) {
        return slot & kIdMask;
      }
    }
  }

  // A lookup that also notes where the key would be inserted: a find and
  // the following insert_at() of an absent key probe the table once.
  struct Spot {
    Id found = kNone;
    std::size_t hash = 0;
    std::uint32_t mixed = 0;     // of hash, under the table's salt then
    std::size_t slot = kNoSlot;  // the first free or erased slot on the way
  };
  template <class Match>
  Spot locate(std::size_t hash, Match matches) const {
    Spot spot;
    spot.hash = hash;
    if (slots_.empty()) return spot;
    spot.mixed = mixed(hash);
    const std::uint32_t bits = check_bits(spot.mixed);
    for (std::size_t i = home(spot.mixed);; i = next(i)) {
      const std::uint32_t slot = slots_[i];
      if (slot >= kDeleted) {
        if (spot.slot == kNoSlot) spot.slot = i;
        if (slot == kEmpty) return spot;
      } else if ((slot & ~kIdMask) == bits && matches(slot & kIdMask)) {
        spot.found = slot & kIdMask;
        return spot;
      }
    }
  }
  // insert() of id under the key a locate() found absent, with no change to
  // this table in between.
  template <class HashOf>
  void insert_at(const Spot& spot, Id id, HashOf hash_of) {
    assert(spot.found == kNone && id <= kMaxId);
    if (spot.slot == kNoSlot || !fits(size_ + deleted_ + 1, slots_.size())) {
      insert(spot.hash, id, hash_of);
      return;
    }
    if (slots_[spot.slot] == kDeleted) --deleted_;
    slots_[spot.slot] = check_bits(spot.mixed) | id;
    ++size_;
  }

  // Asks the processor to load the slot where a lookup of hash starts, so
  // that a loop over many keys can overlap their cache misses.
  void prefetch(std::size_t hash) const {
    if (!slots_.empty()) prefetch_read(&slots_[home(mixed(hash))]);
  }

  // Room for `count` ids in all, so that adding them never grows the table.
  // hash_of(id) gives the hash an id was inserted under. The table keeps
  // half as much room again as asked for, so that when those ids are in it
  // is as full as a table just grown by half: a fuller one makes every
  // lookup of an absent key (each insert does one) walk a long run. It grows
  // at least by half, so that a series of small reserves stays cheap.
  template <class HashOf>
  void reserve(std::size_t count, HashOf hash_of) {
    if (has_room(count)) return;
    rehash(std::max(capacity_for(count + count / 2, /*headroom=*/false),
                    capacity_for(size_ + 1, /*headroom=*/true)),
           hash_of);
  }

  // True when `count` ids in all fit without growing.
  bool has_room(std::size_t count) const { return fits(count + deleted_, slots_.size()); }
  // Empties the table, sized as reserve(count) would size it; the caller
  // then adds the ids back with insert_reserved().
  void clear_for(std::size_t count) {
    const std::size_t capacity = std::max(capacity_for(count + count / 2, /*headroom=*/false),
                                          capacity_for(size_ + 1, /*headroom=*/true));
    size_ = 0;
    reset(capacity);
  }
  // insert() into room made beforehand: never grows.
  void insert_reserved(std::size_t hash, Id id) {
    assert(id <= kMaxId && fits(size_ + deleted_ + 1, slots_.size()));
    place(mixed(hash), id);
    ++size_;
  }

  // Adds id under hash. The caller guarantees no equal key is present.
  template <class HashOf>
  void insert(std::size_t hash, Id id, HashOf hash_of) {
    assert(id <= kMaxId);
    if (!fits(size_ + deleted_ + 1, slots_.size())) {
      rehash(capacity_for(size_ + 1, /*headroom=*/true), hash_of);
    }
    place(mixed(hash), id);
    ++size_;
  }

  // Removes id, which must be present under hash.
  void erase(std::size_t hash, Id id);
  // Swaps id old_id, present under hash, for new_id with an equal key.
  void replace(std::size_t hash, Id old_id, Id new_id);

  template <class F>
  void for_each(F f) const {
    for (std::uint32_t slot : slots_) {
      if (slot < kDeleted) f(slot & kIdMask);
    }
  }

 private:
  static constexpr std::size_t kNoSlot = static_cast<std::size_t>(-1);
  static constexpr std::uint32_t kEmpty = 0xFFFFFFFF;
  static constexpr std::uint32_t kDeleted = 0xFFFFFFFE;
  static constexpr std::uint32_t kIdMask = (std::uint32_t{1} << (32 - kCheckBits)) - 1;

  // A salted mix of the hash, so that weak hashes (small integers) spread
  // over the table, and so that two tables place the same keys in unrelated
  // orders: filling one table in the slot order of another (a merge of an
  // extract) would otherwise hit its runs back to front, one full run per
  // insert. Its high bits choose the home slot, its low bits are the check
  // bits kept in the slot.
  std::uint32_t mixed(std::size_t hash) const {
    std::uint32_t x = static_cast<std::uint32_t>(hash ^ (static_cast<std::uint64_t>(hash) >> 32));
    x = (x ^ salt_) * 0x9E3779B1u;
    x ^= x >> 15;
    x *= 0x85EBCA77u;
    x ^= x >> 13;
    return x;
  }
  static std::uint32_t check_bits(std::uint32_t x) { return x << (32 - kCheckBits); }
  // At most 13/16 full (tombstones included): linear probing degrades
  // quickly past that.
  static bool fits(std::size_t count, std::size_t capacity) { return count * 16 <= capacity * 13; }
  // The slots for count ids: just enough, or with headroom when growing
  // one insert at a time (by half: between growths a table is 54% to 81%
  // full).
  static std::size_t capacity_for(std::size_t count, bool headroom);

  std::size_t next(std::size_t i) const { return i + 1 == slots_.size() ? 0 : i + 1; }
  std::size_t home(std::uint32_t x) const {
    return static_cast<std::size_t>((std::uint64_t{x} * slots_.size()) >> 32);
  }
  std::size_t slot_of(std::size_t hash, Id id) const;
  void place(std::uint32_t x, Id id);
  void reset(std::size_t capacity);

  // hash_of reads the record an id names: taking the ids in ascending
  // order reads the records in storage order, not all over memory.
  template <class HashOf>
  void rehash(std::size_t capacity, HashOf hash_of) {
    std::vector<Id> ids = live_ids();
    reset(capacity);
    for (Id id : ids) place(mixed(hash_of(id)), id);
  }
  // The ids present, ascending.
  std::vector<Id> live_ids() const;

  std::vector<std::uint32_t> slots_;  // id | check bits, kEmpty or kDeleted
  std::size_t size_ = 0;
  std::size_t deleted_ = 0;
  std::uint32_t salt_ = 0;  // drawn anew at every growth
};

}  // namespace presence
