#include "crdt/clock.h"

#include <algorithm>

namespace presence {

namespace {

Clock clock_of(const Context& context, const ReplicaRef& replica) {
  auto it = context.find(replica);
  return it == context.end() ? 0 : it->second;
}

Context combine_clocks(const ClockSet& clockset) {
  Context combined;
  for (const ReplicaClock& clock : clockset) combined = upperbound(clock.context, combined);
  return combined;
}

// Keeps the clocks of clockset that `clock` does not dominate, and adds
// `clock` when it dominated one of them or is not dominated by any of them.
ClockSet filter_clocks(const ClockSet& clockset, const ReplicaClock& clock) {
  ClockSet kept;
  bool insert = false;
  for (const ReplicaClock& other : clockset) {
    if (dominates(clock.context, other.context)) {
      insert = true;
    } else {
      kept.push_back(other);
      insert = insert || !dominates(other.context, clock.context);
    }
  }
  // Phoenix accumulates by prepending, which reverses the survivors.
  std::reverse(kept.begin(), kept.end());
  if (insert) kept.insert(kept.begin(), clock);
  return kept;
}

template <class Pick>
Context merge_with(const Context& c1, const Context& c2, Pick pick) {
  Context merged = c1;
  for (const auto& [replica, clock] : c2) {
    auto [it, inserted] = merged.emplace(replica, clock);
    if (!inserted) it->second = pick(it->second, clock);
  }
  return merged;
}

}  // namespace

std::string ReplicaRef::to_string() const {
  return Term::tuple({Term::atom(node), Term::integer(vsn)}).to_string();
}

std::string Tag::to_string() const {
  return Term::tuple({Term::tuple({Term::atom(replica.node), Term::integer(replica.vsn)}),
                      Term::integer(clock)})
      .to_string();
}

std::vector<ReplicaRef> clockset_replicas(const ClockSet& clockset) {
  std::vector<ReplicaRef> refs;
  refs.reserve(clockset.size());
  for (const ReplicaClock& clock : clockset) refs.push_back(clock.replica);
  return refs;
}

ClockSet append_clock(const ClockSet& clockset, const ReplicaClock& clock) {
  if (clock.context.empty()) return clockset;
  const Context big_clock = combine_clocks(clockset);
  if (dominates(clock.context, big_clock)) return {clock};
  if (dominates(big_clock, clock.context)) return clockset;
  return filter_clocks(clockset, clock);
}

bool dominates(const Context& c1, const Context& c2) {
  if (c1.size() < c2.size()) return false;
  return std::all_of(c2.begin(), c2.end(),
                     [&](const auto& entry) { return clock_of(c1, entry.first) >= entry.second; });
}

bool dominates_or_equal(const Context& c1, const Context& c2) {
  if (c1.empty()) return c2.empty();
  return std::all_of(c1.begin(), c1.end(),
                     [&](const auto& entry) { return entry.second >= clock_of(c2, entry.first); });
}

Context upperbound(const Context& c1, const Context& c2) {
  return merge_with(c1, c2, [](Clock a, Clock b) { return std::max(a, b); });
}

Context lowerbound(const Context& c1, const Context& c2) {
  return merge_with(c1, c2, [](Clock a, Clock b) { return std::min(a, b); });
}

Context filter_replicas(const Context& c, const std::vector<ReplicaRef>& replicas) {
  Context taken;
  for (const ReplicaRef& replica : replicas) {
    auto it = c.find(replica);
    if (it != c.end()) taken.insert(*it);
  }
  return taken;
}

std::vector<ReplicaRef> replicas(const Context& c) {
  std::vector<ReplicaRef> refs;
  refs.reserve(c.size());
  for (const auto& entry : c) refs.push_back(entry.first);
  return refs;
}

}  // namespace presence
