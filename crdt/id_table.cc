#include "crdt/id_table.h"

#include <algorithm>
#include <atomic>

namespace presence {

namespace {

constexpr std::size_t kMinSlots = 8;

// Distinct salts for the tables of a process, deterministic from run to run.
std::uint32_t next_salt() {
  static std::atomic<std::uint32_t> counter{0};
  return (counter.fetch_add(1, std::memory_order_relaxed) + 1) * 0x27D4EB2Fu;
}

}  // namespace

std::size_t IdTable::capacity_for(std::size_t count, bool headroom) {
  return std::max(kMinSlots, headroom ? count * 24 / 13 + 1 : (count * 16 + 12) / 13);
}

void IdTable::erase(std::size_t hash, Id id) {
  slots_[slot_of(hash, id)] = kDeleted;
  --size_;
  ++deleted_;
}

void IdTable::replace(std::size_t hash, Id old_id, Id new_id) {
  assert(new_id <= kMaxId);
  std::uint32_t& slot = slots_[slot_of(hash, old_id)];
  slot = (slot & ~kIdMask) | new_id;
}

std::size_t IdTable::slot_of(std::size_t hash, Id id) const {
  assert(!slots_.empty());
  for (std::size_t i = home(mixed(hash));; i = next(i)) {
    // The id must be present: reaching an empty slot is a broken invariant.
    assert(slots_[i] != kEmpty);
    if (slots_[i] != kDeleted && (slots_[i] & kIdMask) == id) return i;
  }
}

void IdTable::place(std::uint32_t x, Id id) {
  std::size_t i = home(x);
  while (slots_[i] < kDeleted) i = next(i);
  if (slots_[i] == kDeleted) --deleted_;
  slots_[i] = check_bits(x) | id;
}

std::vector<IdTable::Id> IdTable::live_ids() const {
  Id max_id = 0;
  for_each([&](Id id) { max_id = std::max(max_id, id); });
  std::vector<Id> ids;
  ids.reserve(size_);
  if (max_id / 16 > size_) {
    // Sparse ids: a comparison sort.
    for_each([&](Id id) { ids.push_back(id); });
    std::sort(ids.begin(), ids.end());
    return ids;
  }
  // Dense ids (records and positions mostly are): one bit per possible id.
  std::vector<std::uint64_t> present(max_id / 64 + 1);
  for_each([&](Id id) { present[id / 64] |= std::uint64_t{1} << (id % 64); });
  for (std::size_t word = 0; word < present.size(); ++word) {
    for (std::uint64_t bits = present[word]; bits != 0; bits &= bits - 1) {
      ids.push_back(static_cast<Id>(word * 64 + static_cast<std::size_t>(__builtin_ctzll(bits))));
    }
  }
  return ids;
}

void IdTable::reset(std::size_t capacity) {
  slots_.assign(capacity, kEmpty);
  deleted_ = 0;
  salt_ = next_salt();
}

}  // namespace presence
