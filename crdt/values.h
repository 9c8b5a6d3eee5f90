// Presences by tag, as deltas and whole-state transfers carry them
// (Phoenix's values map, tag => {pid, topic, key, meta}).
//
// A flat array of entries with a hash index by tag: building one (an
// extract, a decoded transfer) costs one array slot and one 8-byte index
// slot per presence, and walking it is a walk over contiguous memory.
// Iteration order is unspecified (insertion order until an erase moves the
// last entry into the hole). Equality ignores order, as for a map.
//
// A plain value with no internal locking, like the Delta that holds it.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <utility>
#include <vector>

#include "crdt/clock.h"
#include "crdt/id_table.h"
#include "term/term.h"

namespace presence {

// A presence as deltas and transfers carry it: {pid, topic, key, meta}.
struct PresenceValue {
  Term pid;
  Term topic;
  Term key;
  Term meta;
  friend bool operator==(const PresenceValue&, const PresenceValue&) = default;
};

class Values {
 public:
  using value_type = std::pair<Tag, PresenceValue>;
  using const_iterator = std::vector<value_type>::const_iterator;
  using iterator = const_iterator;  // entries are changed through the methods only

  Values() = default;
  // Of equal tags, the first one given is kept (as when inserting into a map).
  Values(std::initializer_list<value_type> entries);

  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const_iterator begin() const { return entries_.begin(); }
  const_iterator end() const { return entries_.end(); }
  // Room for `count` entries in all, so that adding them moves nothing.
  void reserve(std::size_t count);

  // The value of tag, or nullptr.
  const PresenceValue* get(const Tag& tag) const;
  bool contains(const Tag& tag) const { return get(tag) != nullptr; }
  // The value of tag; throws std::out_of_range when absent.
  const PresenceValue& at(const Tag& tag) const;
  // The value of tag, added as empty terms when absent. The reference lasts
  // until the next change.
  PresenceValue& operator[](const Tag& tag);
  // Adds tag => value unless tag is present; true when added.
  bool emplace(const Tag& tag, PresenceValue value);
  // Adds tag => value. Precondition: tag is absent (what an extract knows,
  // as a state holds each tag once).
  void emplace_new(const Tag& tag, PresenceValue value);
  // Removes tag; the number removed (0 or 1).
  std::size_t erase(const Tag& tag);
  // Removes every entry for which pred(const value_type&) holds; the number
  // removed.
  template <class Pred>
  std::size_t erase_if(Pred pred) {
    std::size_t removed = 0;
    for (std::size_t i = 0; i < entries_.size();) {
      if (pred(std::as_const(entries_[i]))) {
        remove_at(i);
        ++removed;
      } else {
        ++i;
      }
    }
    return removed;
  }

  // The same tags with the same values, in any order.
  friend bool operator==(const Values& a, const Values& b);

 private:
  using Index = IdTable::Id;
  static constexpr Index kNone = IdTable::kNone;

  Index index_of(const Tag& tag, std::size_t hash) const;
  void append(const Tag& tag, std::size_t hash, PresenceValue value);
  // Moves the last entry into position i.
  void remove_at(std::size_t i);

  std::vector<value_type> entries_;
  IdTable index_;  // positions in entries_, keyed by tag
};

}  // namespace presence
