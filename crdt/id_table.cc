#include "crdt/id_table.h"

#include <algorithm>
#include <atomic>
#include <utility>

namespace presence {

namespace {

constexpr std::size_t kMinSlots = 8;

// Distinct salts for the tables of a process, deterministic from run to run.
std::uint32_t next_salt() {
  static std::atomic<std::uint32_t> counter{0};
  return (counter.fetch_add(1, std::memory_order_relaxed) + 1) * 0x27D4EB2Fu;
}

}  // namespace

bool IdTable::fits(std::size_t count, std::size_t capacity) {
  // At most 13/16 full: linear probing degrades quickly past that.
  return count * 16 <= capacity * 13;
}

void IdTable::reserve(std::size_t count) {
  std::size_t capacity = std::max(slots_.size(), kMinSlots);
  while (!fits(count, capacity)) capacity *= 2;
  if (capacity != slots_.size()) rehash(capacity);
}

void IdTable::insert(std::size_t hash, Id id) {
  assert(id != kNone);
  if (!fits(size_ + 1, slots_.size())) rehash(slots_.empty() ? kMinSlots : slots_.size() * 2);
  place({fold(hash), id});
  ++size_;
}

void IdTable::erase(std::size_t hash, Id id) {
  std::size_t hole = slot_of(hash, id);
  slots_[hole].id = kNone;
  --size_;
  // Shift back every following slot whose home does not lie strictly
  // between the hole and it, so that each stays reachable from its home.
  for (std::size_t next = (hole + 1) & mask(); slots_[next].id != kNone;
       next = (next + 1) & mask()) {
    const std::size_t next_home = home(slots_[next].hash);
    if (((next - next_home) & mask()) >= ((next - hole) & mask())) {
      slots_[hole] = slots_[next];
      slots_[next].id = kNone;
      hole = next;
    }
  }
}

void IdTable::replace(std::size_t hash, Id old_id, Id new_id) {
  assert(new_id != kNone);
  slots_[slot_of(hash, old_id)].id = new_id;
}

std::size_t IdTable::slot_of(std::size_t hash, Id id) const {
  assert(!slots_.empty());
  const std::uint32_t h = fold(hash);
  for (std::size_t i = home(h);; i = (i + 1) & mask()) {
    // The id must be present: reaching an empty slot is a broken invariant.
    assert(slots_[i].id != kNone);
    if (slots_[i].id == id) return i;
  }
}

void IdTable::rehash(std::size_t capacity) {
  std::vector<Slot> old = std::exchange(slots_, {});
  slots_.assign(capacity, Slot{0, kNone});
  shift_ = 32;
  for (std::size_t c = capacity; c > 1; c >>= 1) --shift_;
  salt_ = next_salt();
  for (const Slot& slot : old) {
    if (slot.id != kNone) place(slot);
  }
}

void IdTable::place(Slot slot) {
  std::size_t i = home(slot.hash);
  while (slots_[i].id != kNone) i = (i + 1) & mask();
  slots_[i] = slot;
}

}  // namespace presence
