// The replica table of a tracker shard, as Phoenix.Tracker.Replica keeps it.
//
// A replica is one shard of one node, named by the node and identified by a
// version (vsn) chosen when the shard starts: the ReplicaRef {Node, Vsn}
// travels in every heartbeat. The table holds, per remote node, the last
// version heard from, when it was last heard from and whether it is up,
// down (silent for down_period: its presences are hidden) or, transiently,
// permdown (silent for permdown_period: its presences are deleted and the
// entry removed).
//
// Pure logic: time is passed in as milliseconds of any monotonic clock.
// Not thread-safe; a shard owns its table.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

#include "crdt/clock.h"
#include "term/term.h"

namespace presence {

struct Replica {
  enum class Status { kUp, kDown, kPermdown };

  ReplicaRef ref;
  std::int64_t last_heartbeat_at = 0;  // milliseconds
  Status status = Status::kUp;
};

// "up", "down" or "permdown", as the atoms Phoenix uses.
const char* to_string(Replica::Status status);

// A new version for a replica starting now: the system time in
// microseconds plus a process-wide positive counter, as Phoenix makes it,
// so two shards started in the same microsecond still differ.
std::int64_t new_replica_vsn();

// How an operation changed one entry: the entry before (none for a replica
// never seen) and after.
struct ReplicaTransition {
  std::optional<Replica> previous;
  Replica updated;
};

class ReplicaTable {
 public:
  // Records a heartbeat from ref: the entry of its node becomes up with
  // ref's vsn, last heard from now.
  ReplicaTransition put_heartbeat(const ReplicaRef& ref, std::int64_t now_ms);

  // Re-evaluates one entry: silent for more than permdown_ms it is removed
  // (updated.status is kPermdown), for more than down_ms it becomes down,
  // otherwise nothing changes.
  ReplicaTransition detect_down(const Replica& replica, std::int64_t down_ms,
                                std::int64_t permdown_ms, std::int64_t now_ms);

  // The entry of ref's node only if it has exactly ref's vsn.
  const Replica* fetch_by_ref(const ReplicaRef& ref) const;

  void erase(Atom node) { replicas_.erase(node); }
  // Keyed by node name.
  const std::map<Atom, Replica>& entries() const { return replicas_; }
  bool empty() const { return replicas_.empty(); }

 private:
  std::map<Atom, Replica> replicas_;
};

}  // namespace presence
