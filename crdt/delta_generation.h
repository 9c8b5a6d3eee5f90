// Delta generations (Phoenix.Tracker.DeltaGeneration).
//
// A shard keeps a few deltas of growing size, each the merge of the recent
// deltas it sent or received, bounded by max_delta_sizes (Phoenix's default
// [100, 1000, 10000]). A transfer request is answered from the smallest
// generation whose range covers the asker's context, and with the whole
// state only when none does.
//
// Pure functions over values; callers serialize access to what they pass.
#pragma once

#include <cstddef>
#include <vector>

#include "crdt/clock.h"
#include "crdt/state.h"

namespace presence {

// Phoenix's default max_delta_sizes.
inline const std::vector<std::size_t> kDefaultMaxDeltaSizes = {100, 1000, 10000};

// The generations after delta (a local delta just broadcast, or a remote
// one just merged) is added. With no generations yet, each level starts as
// parent's current delta. Level i becomes (level i merged with delta) when
// that has at most max_delta_sizes[i] entries (delta_size), else what level
// i-1 became; a level not contiguous with delta stays as it was.
// Generations with another number of levels than max_delta_sizes count as
// none.
std::vector<Delta> push(const State& parent, const std::vector<Delta>& generations,
                        const Delta& delta, const std::vector<std::size_t>& max_delta_sizes);

// What to answer a transfer request with: State-extract of the first
// generation whose range, restricted to the asker's replicas, is non-empty,
// starts at or before remote_context and ends beyond it; else the whole
// state extracted for the asker.
Extracted extract(const State& state, const std::vector<Delta>& generations,
                  const ReplicaRef& remote_ref, const Context& remote_context);

// Drops a permanently gone replica from every generation.
void remove_down_replicas(std::vector<Delta>* generations, const ReplicaRef& replica);

}  // namespace presence
