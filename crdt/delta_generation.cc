#include "crdt/delta_generation.h"

#include <optional>
#include <utility>

namespace presence {

namespace {

// The generation's range restricted to the asker's replicas must be a
// non-empty span that starts at or before the asker's context and reaches
// beyond it.
bool fulfils(const Delta& generation, const Context& remote_context) {
  const std::vector<ReplicaRef> known = replicas(remote_context);
  const Context start = filter_replicas(generation.range.start, known);
  const Context end = filter_replicas(generation.range.end, known);
  return !dominates_or_equal(start, end) && dominates_or_equal(remote_context, start) &&
         !dominates(remote_context, end);
}

}  // namespace

std::vector<Delta> push(const State& parent, const std::vector<Delta>& generations,
                        const Delta& delta, const std::vector<std::size_t>& max_delta_sizes) {
  // Generations of another shape than max_delta_sizes start over, as none.
  const bool fresh = generations.size() != max_delta_sizes.size();
  std::vector<Delta> pushed;
  pushed.reserve(max_delta_sizes.size());
  // `previous` is what the level below became (or the merge it refused),
  // which a level takes over when its own merge grows too big.
  Delta previous = delta;
  for (std::size_t level = 0; level < max_delta_sizes.size(); ++level) {
    const Delta& generation = fresh ? parent.delta() : generations[level];
    std::optional<Delta> merged = merge_deltas(generation, delta);
    if (!merged) {
      pushed.push_back(generation);
      previous = generation;
    } else if (delta_size(*merged) <= max_delta_sizes[level]) {
      pushed.push_back(*merged);
      previous = std::move(*merged);
    } else {
      pushed.push_back(previous);
      previous = std::move(*merged);
    }
  }
  return pushed;
}

Extracted extract(const State& state, const std::vector<Delta>& generations,
                  const ReplicaRef& remote_ref, const Context& remote_context) {
  for (const Delta& generation : generations) {
    if (fulfils(generation, remote_context)) {
      return extract(generation, remote_ref, remote_context);
    }
  }
  return state.extract(remote_ref, remote_context);
}

void remove_down_replicas(std::vector<Delta>* generations, const ReplicaRef& replica) {
  for (Delta& generation : *generations) remove_down_replicas(&generation, replica);
}

}  // namespace presence
