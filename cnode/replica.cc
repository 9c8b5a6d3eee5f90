#include "cnode/replica.h"

#include <atomic>
#include <chrono>

namespace presence {

const char* to_string(ReplicaStatus status) {
  switch (status) {
    case ReplicaStatus::kUp:
      return "up";
    case ReplicaStatus::kDown:
      return "down";
    case ReplicaStatus::kPermdown:
      return "permdown";
  }
  return "up";
}

Term replica_ref(Atom name, std::int64_t vsn) {
  return Term::tuple({Term::atom(name), Term::integer(vsn)});
}

Term Replica::ref() const {
  return replica_ref(name, vsn);
}

std::optional<ReplicaRef> parse_replica_ref(const Term& term) {
  if (!term.is_tuple(2) || !term[0].is_atom() || !term[1].is_integer()) return std::nullopt;
  return ReplicaRef{term[0].as_atom(), term[1].as_integer()};
}

std::int64_t new_replica_vsn() {
  static std::atomic<std::int64_t> unique{0};
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::microseconds>(now).count() + ++unique;
}

ReplicaTransition ReplicaTable::put_heartbeat(Atom name, std::int64_t vsn, std::int64_t now_ms) {
  Replica updated{name, vsn, now_ms, ReplicaStatus::kUp};
  auto it = replicas_.find(name);
  if (it == replicas_.end()) {
    replicas_.emplace(name, updated);
    return {std::nullopt, updated};
  }
  Replica previous = it->second;
  it->second = updated;
  return {previous, updated};
}

ReplicaTransition ReplicaTable::detect_down(const Replica& replica, std::int64_t down_ms,
                                            std::int64_t permdown_ms, std::int64_t now_ms) {
  std::int64_t downtime = now_ms - replica.last_heartbeat_at;
  Replica updated = replica;
  if (downtime > permdown_ms) {
    replicas_.erase(replica.name);
    updated.status = ReplicaStatus::kPermdown;
  } else if (downtime > down_ms) {
    updated.status = ReplicaStatus::kDown;
    replicas_[replica.name] = updated;
  }
  return {replica, updated};
}

const Replica* ReplicaTable::fetch_by_ref(Atom name, std::int64_t vsn) const {
  auto it = replicas_.find(name);
  if (it == replicas_.end() || it->second.vsn != vsn) return nullptr;
  return &it->second;
}

}  // namespace presence
