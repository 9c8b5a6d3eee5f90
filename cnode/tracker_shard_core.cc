#include "cnode/tracker_shard_core.h"

#include <atomic>
#include <cassert>
#include <chrono>
#include <utility>

#include "cnode/peer_input.h"
#include "crdt/delta_generation.h"
#include "crdt/wire.h"
#include "term/phash2.h"

namespace presence {
namespace {

const Term kPub = Term::atom("pub");
const Term kPhxRef = Term::atom("phx_ref");
const Term kPhxRefPrev = Term::atom("phx_ref_prev");

std::string base64url(const unsigned char* bytes, std::size_t size) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  for (std::size_t i = 0; i < size; i += 3) {
    std::uint32_t chunk = bytes[i] << 16;
    if (i + 1 < size) chunk |= bytes[i + 1] << 8;
    if (i + 2 < size) chunk |= bytes[i + 2];
    out += kAlphabet[(chunk >> 18) & 63];
    out += kAlphabet[(chunk >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(chunk >> 6) & 63] : '=';
    out += i + 2 < size ? kAlphabet[chunk & 63] : '=';
  }
  return out;
}

}  // namespace

ShardCore::ShardCore(Atom shard_name, ReplicaRef self, Term shard_pid,
                     const TrackerOptions& options, ShardOutput& output)
    : shard_name_(shard_name),
      self_(self),
      ref_salt_(static_cast<std::uint16_t>(
          phash2(Term::tuple({Term::atom(self.node), std::move(shard_pid)})))),
      options_(options),
      down_period_ms_(options.effective_down_period().count()),
      output_(output),
      state_(self),
      silent_periods_(options.max_silent_periods),
      current_sample_count_(options.clock_sample_periods) {
  assert(!validate(options).has_value());
}

// ---- local operations ----

ShardReply ShardCore::track(const Term& pid, const Term& topic, const Term& key, const Term& meta) {
  if (!pid.is_pid()) return ShardReply::failure(Term::tuple({Term::atom("badarg"), pid}));
  if (!meta.is_map()) return ShardReply::failure(Term::tuple({Term::atom("badmap"), meta}));
  if (state_.get_by_pid(pid, topic, key)) {
    return ShardReply::failure(Term::tuple({Term::atom("already_tracked"), pid, topic, key}));
  }
  bool had_presences = !state_.get_by_pid(pid).empty();
  Term ref = random_ref();
  Term tracked_meta = meta.map_put(kPhxRef, ref);
  report_join(topic, key, tracked_meta, nullptr);
  state_.join(pid, topic, key, tracked_meta);
  watch_if_first(pid, had_presences);
  return ShardReply::success(ref);
}

void ShardCore::untrack(const Term& pid, const Term& topic, const Term& key) {
  if (auto presence = state_.get_by_pid(pid, topic, key)) {
    report_diff({}, {*presence});
    state_.leave(pid, topic, key);
  }
  unwatch_if_last(pid);
}

void ShardCore::untrack(const Term& pid) {
  std::vector<Presence> leaves = state_.get_by_pid(pid);
  report_diff({}, leaves);
  state_.leave(pid);
  unwatch_if_last(pid);
}

void ShardCore::pid_down(const Term& pid) {
  std::vector<Presence> leaves = state_.get_by_pid(pid);
  report_diff({}, leaves);
  state_.leave(pid);
}

ShardReply ShardCore::update(const Term& pid, const Term& topic, const Term& key,
                             const std::function<Term(const Term&)>& updater) {
  auto previous = state_.get_by_pid(pid, topic, key);
  if (!previous) return ShardReply::failure(Term::atom("nopresence"));
  Term meta = updater(previous->meta);
  if (!meta.is_map()) return ShardReply::failure(Term::tuple({Term::atom("badmap"), meta}));

  // Local presences always carry the phx_ref given by track or update.
  const Term* prev_ref = previous->meta.find(kPhxRef);
  assert(prev_ref != nullptr);
  Term ref = random_ref();
  meta = meta.map_put(kPhxRef, ref).map_put(kPhxRefPrev, prev_ref ? *prev_ref : Term::atom("nil"));
  report_join(topic, key, meta, &previous->meta);
  state_.leave_join(pid, topic, key, meta);
  return ShardReply::success(ref);
}

void ShardCore::broadcast_graceful_permdown() {
  output_.broadcast(
      Term::tuple({kPub, Term::atom("graceful_permdown"), encode_replica_ref(self_)}));
}

// ---- the heartbeat tick ----

void ShardCore::heartbeat(std::int64_t now_ms) {
  broadcast_delta_heartbeat();
  request_transfer_from_replicas_needing_sync();
  detect_downs(now_ms);
}

void ShardCore::broadcast_delta_heartbeat() {
  if (state_.has_delta()) {
    // The clocks sent are those of the state that made the delta, before
    // the reset and compaction (as Phoenix computes them).
    Term clocks = encode_replica_clock(state_.clocks());
    Delta delta = state_.delta();
    state_.reset_delta();
    state_.compact();
    output_.broadcast(Term::tuple({kPub, Term::atom("heartbeat"), encode_replica_ref(self_),
                                   encode_delta(delta), std::move(clocks)}));
    silent_periods_ = 0;
    push_delta_generation(delta);
  } else if (silent_periods_ >= options_.max_silent_periods) {
    output_.broadcast(Term::tuple({kPub, Term::atom("heartbeat"), encode_replica_ref(self_),
                                   Term::atom("empty"), encode_replica_clock(state_.clocks())}));
    silent_periods_ = 0;
  } else {
    ++silent_periods_;
  }
}

void ShardCore::request_transfer_from_replicas_needing_sync() {
  if (current_sample_count_ > 1) {
    --current_sample_count_;
    return;
  }
  ReplicaClock own = state_.clocks();
  for (const ReplicaRef& replica : clockset_replicas(append_clock(pending_clockset_, own))) {
    if (replica == self_) continue;
    log_event("transfer_req to " + replica.to_string());
    output_.direct_broadcast(replica.node,
                             Term::tuple({kPub, Term::atom("transfer_req"), output_.make_ref(),
                                          encode_replica_ref(self_), encode_replica_clock(own)}));
  }
  pending_clockset_.clear();
  current_sample_count_ = options_.clock_sample_periods;
}

void ShardCore::detect_downs(std::int64_t now_ms) {
  std::vector<Replica> current;
  for (const auto& [node, replica] : replicas_.entries()) current.push_back(replica);

  const std::int64_t permdown_ms = options_.permdown_period.count();
  for (const Replica& replica : current) {
    auto transition = replicas_.detect_down(replica, down_period_ms_, permdown_ms, now_ms);
    auto before = transition.previous->status;
    auto after = transition.updated.status;
    if (after == Replica::Status::kPermdown) {
      if (before == Replica::Status::kUp) down(transition.updated);
      permdown(transition.updated);
    } else if (before == Replica::Status::kUp && after == Replica::Status::kDown) {
      down(transition.updated);
    }
  }
}

// ---- messages from peers ----

bool ShardCore::handle_message(const Term& message, std::int64_t now_ms) {
  if (!message.is_tuple() || message.size() < 3 || message[0] != kPub || !message[1].is_atom()) {
    return false;
  }
  Atom kind = message[1].as_atom();
  if (kind == Atom("heartbeat") && message.size() == 5) {
    handle_heartbeat_message(message, now_ms);
  } else if (kind == Atom("transfer_req") && message.size() == 5) {
    handle_transfer_req(message);
  } else if (kind == Atom("transfer_ack") && message.size() == 5) {
    handle_transfer_ack(message);
  } else if (kind == Atom("graceful_permdown") && message.size() == 3) {
    handle_graceful_permdown(message);
  } else {
    drop_malformed(message, "unknown tracker message");
  }
  return true;
}

void ShardCore::handle_heartbeat_message(const Term& message, std::int64_t now_ms) {
  auto sender = decode_replica_ref(message[2]);
  if (!sender) return drop_malformed(message, "bad replica: " + sender.error().message());
  if (from_self(sender.value(), message)) return;
  auto clocks = decode_replica_clock(message[4]);
  if (!clocks) return drop_malformed(message, "bad clocks: " + clocks.error().message());

  if (message[3].is_atom("empty")) {
    put_pending_clock(clocks.value());
    on_heartbeat_from(sender.value(), now_ms);
    return;
  }
  auto delta = decode_delta(message[3]);
  if (!delta) return drop_malformed(message, "bad delta: " + delta.error().message());

  on_heartbeat_from(sender.value(), now_ms);
  MergeResult merged = state_.merge(delta.value());
  report_diff(merged.joins, merged.leaves);
  put_pending_clock(clocks.value());
  push_delta_generation(delta.value());
}

void ShardCore::handle_transfer_req(const Term& message) {
  auto asker = decode_replica_ref(message[3]);
  if (!asker) return drop_malformed(message, "bad replica: " + asker.error().message());
  if (from_self(asker.value(), message)) return;
  auto clocks = decode_replica_clock(message[4]);
  if (!clocks) return drop_malformed(message, "bad clocks: " + clocks.error().message());

  log_event("transfer_req from " + asker.value().to_string());
  // Phoenix extracts for the asker's node name, which equals no replica ref,
  // so the asker gets its own presences back too. Leaving them out would
  // keep their tags in the answer's clouds without their values, and a
  // generation the asker builds from that answer would later tell a third
  // replica it had seen presences it never received.
  const ReplicaRef no_replica{asker.value().node, -1};
  Extracted extracted = extract(state_, deltas_, no_replica, clocks.value().context);
  if (std::holds_alternative<WholeState>(extracted)) {
    log_event("sending the whole state to " + asker.value().to_string());
  }
  output_.direct_broadcast(asker.value().node,
                           Term::tuple({kPub, Term::atom("transfer_ack"), message[2],
                                        encode_replica_ref(self_), encode_extracted(extracted)}));
}

void ShardCore::handle_transfer_ack(const Term& message) {
  auto sender = decode_replica_ref(message[3]);
  if (!sender) return drop_malformed(message, "bad replica: " + sender.error().message());
  if (from_self(sender.value(), message)) return;
  auto remote = decode_extracted(message[4]);
  if (!remote) return drop_malformed(message, "bad state: " + remote.error().message());

  log_event("transfer_ack from " + sender.value().to_string());
  MergeResult merged =
      std::visit([&](const auto& value) { return state_.merge(value); }, remote.value());
  report_diff(merged.joins, merged.leaves);
  // A whole state restarts the generations; a delta is pushed onto them.
  // (Phoenix seeds empty generations from the state before this merge; the
  // state after it differs only by the removals the merge recorded.)
  if (const auto* delta = std::get_if<Delta>(&remote.value())) {
    push_delta_generation(*delta);
  } else {
    deltas_.clear();
  }
}

void ShardCore::handle_graceful_permdown(const Term& message) {
  auto sender = decode_replica_ref(message[2]);
  if (!sender) return drop_malformed(message, "bad replica: " + sender.error().message());
  if (from_self(sender.value(), message)) return;
  if (const Replica* replica = replicas_.fetch_by_ref(sender.value())) {
    Replica gone = *replica;
    down(gone);
    permdown(gone);
  }
}

bool ShardCore::from_self(const ReplicaRef& sender, const Term& message) {
  if (sender.node != self_.node) return false;
  drop_malformed(message, "it claims to come from this node");
  return true;
}

void ShardCore::drop_malformed(const Term& message, const std::string& why) {
  std::string from = output_.origin(message);
  if (message.is_tuple() && message.size() >= 3) {
    for (std::size_t i = 2; i < message.size() && i < 4; ++i) {
      if (auto ref = decode_replica_ref(message[i])) {
        from = "replica " + ref.value().to_string();
        break;
      }
    }
  }
  output_.log(LogLevel::kWarning, std::string(shard_name_.text()) + ": dropped message from " +
                                      from + " (" + why + "): " + brief_term(message));
}

void ShardCore::on_heartbeat_from(const ReplicaRef& ref, std::int64_t now_ms) {
  auto transition = replicas_.put_heartbeat(ref, now_ms);
  const Replica& upped = transition.updated;
  if (!transition.previous) return up(upped);

  const Replica& previous = *transition.previous;
  bool was_up = previous.status == Replica::Status::kUp;
  if (previous.ref.vsn == ref.vsn) {
    if (!was_up) up(upped);
    return;
  }
  // A new vsn: the node's shard restarted, so its old replica is gone.
  if (was_up) down(previous);
  permdown(previous);
  up(upped);
}

void ShardCore::put_pending_clock(const ReplicaClock& clock) {
  pending_clockset_ = append_clock(pending_clockset_, clock);
}

void ShardCore::push_delta_generation(const Delta& delta) {
  deltas_ = push(state_, deltas_, delta, options_.max_delta_sizes);
}

// ---- replica transitions ----

void ShardCore::up(const Replica& replica) {
  output_.replica_event(ReplicaEvent::kUp, replica.ref);
  log_event("replica up from " + replica.ref.to_string());
  report_diff(state_.replica_up(replica.ref), {});
}

void ShardCore::down(const Replica& replica) {
  output_.replica_event(ReplicaEvent::kDown, replica.ref);
  log_event("replica down from " + replica.ref.to_string());
  report_diff({}, state_.replica_down(replica.ref));
}

void ShardCore::permdown(const Replica& replica) {
  output_.replica_event(ReplicaEvent::kPermdown, replica.ref);
  log_event("permanent replica down detected " + replica.ref.to_string());
  state_.remove_down_replicas(replica.ref);
  remove_down_replicas(&deltas_, replica.ref);
  if (replicas_.fetch_by_ref(replica.ref)) replicas_.erase(replica.ref.node);
}

// ---- diffs, watches, refs ----

void ShardCore::report_diff(const std::vector<Presence>& joins,
                            const std::vector<Presence>& leaves) {
  if (joins.empty() && leaves.empty()) return;
  TrackerDiff diff;
  for (const Presence& join : joins) diff[join.topic].joins.push_back({join.key, join.meta});
  for (const Presence& leave : leaves) diff[leave.topic].leaves.push_back({leave.key, leave.meta});
  output_.diff(diff);
}

void ShardCore::report_join(const Term& topic, const Term& key, const Term& meta,
                            const Term* prev_meta) {
  TrackerDiff diff;
  TopicDiff& topic_diff = diff[topic];
  topic_diff.joins.push_back({key, meta});
  if (prev_meta) topic_diff.leaves.push_back({key, *prev_meta});
  output_.diff(diff);
}

void ShardCore::watch_if_first(const Term& pid, bool had_presences) {
  if (!had_presences) output_.monitor(pid);
}

void ShardCore::unwatch_if_last(const Term& pid) {
  if (state_.get_by_pid(pid).empty()) output_.demonitor(pid);
}

Term ShardCore::random_ref() {
  static std::atomic<std::uint16_t> unique{0};
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto nanos =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count());
  std::uint16_t counter = ++unique;
  unsigned char bytes[12];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(nanos >> (56 - 8 * i));
  bytes[8] = static_cast<unsigned char>(ref_salt_ >> 8);
  bytes[9] = static_cast<unsigned char>(ref_salt_);
  bytes[10] = static_cast<unsigned char>(counter >> 8);
  bytes[11] = static_cast<unsigned char>(counter);
  return Term::binary(base64url(bytes, sizeof bytes));
}

void ShardCore::log_event(const std::string& message) {
  if (options_.log_level) {
    output_.log(*options_.log_level, std::string(shard_name_.text()) + ": " + message);
  }
}

}  // namespace presence
