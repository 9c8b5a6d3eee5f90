// The presences of one replica by clock (internal to crdt/).
//
// A replica's clock counts its events, so the clocks of its presences
// mostly form runs with few gaps: a whole-state merge brings a replica's
// presences in clock order, and a replica's own joins take consecutive
// clocks. The index keeps a window of clocks, [base, base + size), as an
// array of record ids indexed by clock - base, so adding the next clock is
// one store and a lookup one load, at 4 bytes a clock. Clocks the window
// cannot take without becoming sparse (older than its base, or far beyond
// its end) go to an IdTable, as do the window's entries when leaves have
// thinned it below a quarter full. A clock is in at most one of the two.
//
// The key of an id (its clock) lives in the record: lookups in the IdTable
// take clock_of(id), which reads it back.
//
// Not thread-safe; owned by one PresenceTable.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "crdt/clock.h"
#include "crdt/id_table.h"
#include "term/prefetch.h"

namespace presence {

class ClockIndex {
 public:
  using Id = IdTable::Id;
  static constexpr Id kNone = IdTable::kNone;

  std::size_t size() const { return window_live_ + rest_.size(); }

  // The id stored under clock, or kNone.
  template <class ClockOf>
  Id find(Clock clock, ClockOf clock_of) const {
    if (in_window(clock)) {
      const Id id = window_[static_cast<std::size_t>(clock - base_)];
      if (id != kNone) return id;
    }
    if (rest_.size() == 0) return kNone;
    return rest_.find(hash(clock), [&](Id id) { return clock_of(id) == clock; });
  }

  // Adds id under clock. Precondition: clock is absent.
  template <class ClockOf>
  void insert(Clock clock, Id id, ClockOf clock_of) {
    if (window_.empty()) base_ = clock;
    // The common case: the clock after the window's last.
    if (clock >= base_ && static_cast<std::uint64_t>(clock - base_) == window_.size()) {
      if (window_.size() == window_.capacity()) window_.reserve(window_.size() * 5 / 4 + 16);
      window_.push_back(id);
      ++window_live_;
      return;
    }
    if (!in_window(clock) && clock >= base_ && takes(clock)) {
      grow_to(static_cast<std::size_t>(clock - base_) + 1);
    }
    if (in_window(clock)) {
      window_[static_cast<std::size_t>(clock - base_)] = id;
      ++window_live_;
      return;
    }
    rest_.insert(hash(clock), id, [&](Id other) { return hash(clock_of(other)); });
  }

  // Removes id, stored under clock.
  template <class ClockOf>
  void erase(Clock clock, Id id, ClockOf clock_of) {
    if (in_window(clock) && window_[static_cast<std::size_t>(clock - base_)] == id) {
      window_[static_cast<std::size_t>(clock - base_)] = kNone;
      --window_live_;
      if (window_live_ * 4 < window_.size() && window_.size() > kMinSparseWindow) {
        move_window_to_rest(clock_of);
      }
      return;
    }
    rest_.erase(hash(clock), id);
  }

  // Room for count more ids added at the window's end without moving it.
  void reserve(std::size_t count) {
    const std::size_t wanted = window_.size() + count;
    if (wanted > window_.capacity()) window_.reserve(wanted);
  }

  // Asks the processor to load where a lookup or insert of clock goes.
  void prefetch(Clock clock) const {
    if (in_window(clock)) {
      prefetch_read(&window_[static_cast<std::size_t>(clock - base_)]);
    } else if (rest_.size() != 0) {
      rest_.prefetch(hash(clock));
    }
  }

  template <class F>
  void for_each(F f) const {
    for (Id id : window_) {
      if (id != kNone) f(id);
    }
    rest_.for_each(f);
  }

 private:
  // Below this the window is never thinned out: a few holes cost less than
  // the move.
  static constexpr std::size_t kMinSparseWindow = 64;

  static std::size_t hash(Clock clock) { return static_cast<std::size_t>(clock); }

  bool in_window(Clock clock) const {
    return clock >= base_ && static_cast<std::uint64_t>(clock - base_) < window_.size();
  }
  // True when growing the window up to clock keeps it at least half full.
  bool takes(Clock clock) const {
    const auto span = static_cast<std::uint64_t>(clock - base_) + 1;
    return span <= 2 * (window_live_ + 1) + kMinSparseWindow;
  }
  void grow_to(std::size_t size) {
    // Past the reserved room, by a quarter: the window's slack stays small.
    if (size > window_.capacity()) window_.reserve(std::max(size, window_.size() * 5 / 4));
    window_.resize(size, kNone);
  }
  template <class ClockOf>
  void move_window_to_rest(ClockOf clock_of) {
    auto hash_of = [&](Id other) { return hash(clock_of(other)); };
    rest_.reserve(rest_.size() + window_live_, hash_of);
    for (std::size_t i = 0; i < window_.size(); ++i) {
      if (window_[i] != kNone)
        rest_.insert(hash(base_ + static_cast<Clock>(i)), window_[i], hash_of);
    }
    std::vector<Id>().swap(window_);
    window_live_ = 0;
  }

  Clock base_ = 0;
  std::vector<Id> window_;  // ids by clock - base_; kNone for a clock not held here
  std::size_t window_live_ = 0;
  IdTable rest_;  // ids keyed by clock
};

}  // namespace presence
