#include "cnode/replica.h"

#include <atomic>
#include <chrono>

namespace presence {

const char* to_string(Replica::Status status) {
  switch (status) {
    case Replica::Status::kUp:
      return "up";
    case Replica::Status::kDown:
      return "down";
    case Replica::Status::kPermdown:
      return "permdown";
  }
  return "up";
}

std::int64_t new_replica_vsn() {
  static std::atomic<std::int64_t> unique{0};
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::microseconds>(now).count() + ++unique;
}

ReplicaTransition ReplicaTable::put_heartbeat(const ReplicaRef& ref, std::int64_t now_ms) {
  Replica updated{ref, now_ms, Replica::Status::kUp};
  auto [it, inserted] = replicas_.try_emplace(ref.node, updated);
  if (inserted) return {std::nullopt, updated};
  Replica previous = it->second;
  it->second = updated;
  return {previous, updated};
}

ReplicaTransition ReplicaTable::detect_down(const Replica& replica, std::int64_t down_ms,
                                            std::int64_t permdown_ms, std::int64_t now_ms) {
  std::int64_t downtime = now_ms - replica.last_heartbeat_at;
  Replica updated = replica;
  if (downtime > permdown_ms) {
    replicas_.erase(replica.ref.node);
    updated.status = Replica::Status::kPermdown;
  } else if (downtime > down_ms) {
    updated.status = Replica::Status::kDown;
    replicas_[replica.ref.node] = updated;
  }
  return {replica, updated};
}

const Replica* ReplicaTable::fetch_by_ref(const ReplicaRef& ref) const {
  auto it = replicas_.find(ref.node);
  if (it == replicas_.end() || it->second.ref.vsn != ref.vsn) return nullptr;
  return &it->second;
}

}  // namespace presence
