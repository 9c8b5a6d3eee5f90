// Replica identities, causal contexts and the clock arithmetic of
// Phoenix.Tracker (Phoenix.Tracker.Clock).
//
// Vocabulary, as in Phoenix:
//   replica   a tracker shard incarnation, {node_name, vsn}. A restarted shard
//             picks a new vsn, so it is a new replica.
//   clock     a replica's event counter. Every join and every leave a replica
//             performs bumps its own clock by one.
//   tag       {replica, clock}: names one event, and so one presence.
//   context   replica => highest clock such that every event of that replica
//             up to it has been seen (a version vector).
//   clockset  a list of {replica, context}: the contexts a shard collected
//             from heartbeats, reduced to those no other one dominates.
//
// Pure values and functions: no I/O, no shared state, safe from any thread.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "term/term.h"

namespace presence {

// Phoenix clocks are positive integers; 0 means "nothing seen yet".
using Clock = std::int64_t;

// A replica's identity, {node_name, vsn} on the wire.
struct ReplicaRef {
  Atom node;
  std::int64_t vsn = 0;

  friend bool operator==(const ReplicaRef&, const ReplicaRef&) = default;
  // Erlang's order of the tuple {node, vsn}: atom text first, then vsn.
  friend std::strong_ordering operator<=>(const ReplicaRef& a, const ReplicaRef& b) {
    if (auto c = a.node <=> b.node; c != 0) return c;
    return a.vsn <=> b.vsn;
  }
  std::size_t hash() const { return node.hash() * 31 + std::hash<std::int64_t>()(vsn); }
  std::string to_string() const;  // as Term::to_string renders {node, vsn}
};

struct ReplicaRefHash {
  std::size_t operator()(const ReplicaRef& ref) const { return ref.hash(); }
};

// One event of one replica.
struct Tag {
  ReplicaRef replica;
  Clock clock = 0;

  friend bool operator==(const Tag&, const Tag&) = default;
  // Erlang's order of {replica, clock}.
  friend std::strong_ordering operator<=>(const Tag& a, const Tag& b) {
    if (auto c = a.replica <=> b.replica; c != 0) return c;
    return a.clock <=> b.clock;
  }
  std::size_t hash() const { return replica.hash() * 1000003 + std::hash<Clock>()(clock); }
  std::string to_string() const;  // as Term::to_string renders {{node, vsn}, clock}
};

struct TagHash {
  std::size_t operator()(const Tag& tag) const { return tag.hash(); }
};

// replica => clock. Ordered by replica, which is also the order in which the
// BEAM iterates (and encodes) a small map with these keys. A replica that is
// absent counts as clock 0 in comparisons (as Map.get(c, r, 0)), but
// presence in the map is meaningful elsewhere: a state only accepts values
// from replicas its context holds.
using Context = std::map<ReplicaRef, Clock>;

// Phoenix's `clock` type: a replica with its context, as carried by
// heartbeats and transfer requests.
struct ReplicaClock {
  ReplicaRef replica;
  Context context;
  friend bool operator==(const ReplicaClock&, const ReplicaClock&) = default;
};

using ClockSet = std::vector<ReplicaClock>;

// The replicas of a clockset, in the clockset's order.
std::vector<ReplicaRef> clockset_replicas(const ClockSet& clockset);

// Adds clock to clockset keeping only contexts no other one dominates.
// An empty context leaves the set unchanged. The resulting order is
// Phoenix's: a newly kept clock comes first, the survivors of a filtering
// pass come in reverse order.
ClockSet append_clock(const ClockSet& clockset, const ReplicaClock& clock);

// True when c1 has seen at least everything c2 has, for every replica of c2
// (absent replicas in c1 count as 0), and c1 has no fewer replicas than c2.
bool dominates(const Context& c1, const Context& c2);

// True when, for every replica of c1, c1's clock is >= c2's (absent in c2
// counts as 0). Two empty contexts are equal; an empty c1 never dominates a
// non-empty c2. Note the asymmetry: only c1's replicas are inspected.
bool dominates_or_equal(const Context& c1, const Context& c2);

// Per replica maximum / minimum over the union of both contexts' replicas
// (a replica present in only one keeps its clock).
Context upperbound(const Context& c1, const Context& c2);
Context lowerbound(const Context& c1, const Context& c2);

// The entries of c whose replica is in `replicas` (Map.take).
Context filter_replicas(const Context& c, const std::vector<ReplicaRef>& replicas);

// The replicas of c, in order (Map.keys).
std::vector<ReplicaRef> replicas(const Context& c);

}  // namespace presence

template <>
struct std::hash<presence::ReplicaRef> {
  std::size_t operator()(const presence::ReplicaRef& ref) const { return ref.hash(); }
};
template <>
struct std::hash<presence::Tag> {
  std::size_t operator()(const presence::Tag& tag) const { return tag.hash(); }
};
