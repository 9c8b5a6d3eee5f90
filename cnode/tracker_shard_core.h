// The decisions of one Phoenix.Tracker shard, without sockets or timers.
//
// ShardCore is Phoenix.Tracker.Shard's state and message handling: the
// local presences and their CRDT (crdt/state.h), the replica table
// (cnode/replica.h), the pending clockset, the delta generations and the
// heartbeat counters. It is driven by calls (a heartbeat tick, a message
// from the shard's PubSub topic, a local track/untrack/update, a tracked
// process ending) and acts only through ShardOutput, so tests can drive it
// with a recording output and explicit times.
//
// Messages between shards (all inside {forward_to_local, "phx_presence:" ++
// ShardName, Msg, 'Elixir.Phoenix.PubSub'} on the wire; ShardOutput deals
// with that envelope):
//
//   {pub, heartbeat, ReplicaRef, Delta | empty, {ReplicaRef, Context}}
//   {pub, transfer_req, Ref, ReplicaRef, {ReplicaRef, Context}}
//   {pub, transfer_ack, Ref, ReplicaRef, Delta | {State, Values}}
//   {pub, graceful_permdown, ReplicaRef}
//
// Input from peers is untrusted: a message is decoded and checked whole
// before anything changes, and a malformed one is dropped and logged with
// the replica or node that sent it.
//
// Not thread-safe: the owner calls it from one thread (the node thread).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cnode/node.h"
#include "cnode/replica.h"
#include "cnode/tracker_options.h"
#include "crdt/clock.h"
#include "crdt/state.h"
#include "term/term.h"

namespace presence {

// Joins and leaves of one topic, as a tracker's handle_diff receives them.
struct TopicDiff {
  std::vector<KeyMeta> joins;
  std::vector<KeyMeta> leaves;
};
// topic => its joins and leaves.
using TrackerDiff = std::map<Term, TopicDiff>;

enum class ReplicaEvent { kUp, kDown, kPermdown };

// The answer to a local track or update: the new phx_ref (a binary), or the
// reason of the failure as Phoenix returns it in {error, Reason}.
struct ShardReply {
  bool ok = false;
  Term value;  // phx_ref when ok, else the reason

  static ShardReply success(Term phx_ref) { return {true, std::move(phx_ref)}; }
  static ShardReply failure(Term reason) { return {false, std::move(reason)}; }
};

// What a ShardCore asks of the world. Called synchronously from inside the
// ShardCore call that decided it.
class ShardOutput {
 public:
  virtual ~ShardOutput() = default;
  // To this shard's topic on every other node (Phoenix's broadcast_from).
  virtual void broadcast(Term message) = 0;
  // To this shard's topic on `node` only.
  virtual void direct_broadcast(Atom node, Term message) = 0;
  // pid now has presences here / has none left: watch it / stop watching.
  // When a watched pid ends, the owner calls ShardCore::pid_down.
  virtual void monitor(const Term& pid) = 0;
  virtual void demonitor(const Term& pid) = 0;
  // Joins and leaves to hand to the tracker's subscribers.
  virtual void diff(const TrackerDiff& diff) = 0;
  virtual void replica_event(ReplicaEvent event, const ReplicaRef& replica) = 0;
  virtual Term make_ref() = 0;
  virtual void log(LogLevel level, const std::string& message) = 0;
  // Where the message being handled came from, for a log line, e.g.
  // "node 'a@h'".
  virtual std::string origin(const Term& message) = 0;
};

class ShardCore {
 public:
  // `self` is this shard's replica ref ({node name, new_replica_vsn()}),
  // `shard_pid` the process that stands for the shard (it salts phx_refs as
  // Phoenix's self() does). `output` must outlive the core. The options must
  // have passed validate().
  ShardCore(Atom shard_name, ReplicaRef self, Term shard_pid, const TrackerOptions& options,
            ShardOutput& output);

  Atom shard_name() const { return shard_name_; }
  const ReplicaRef& replica() const { return self_; }
  const State& state() const { return state_; }
  const ReplicaTable& replicas() const { return replicas_; }

  // Local operations, as the shard's handle_call clauses. A reply is final
  // once returned: the local state already holds the change.
  //
  // Tracks (topic, pid, key) with meta (a map) plus a fresh phx_ref.
  // Failures: {already_tracked, Pid, Topic, Key}; {badmap, Meta}.
  ShardReply track(const Term& pid, const Term& topic, const Term& key, const Term& meta);
  // Untracks one presence (nothing happens if it is not tracked).
  void untrack(const Term& pid, const Term& topic, const Term& key);
  // Untracks every presence of pid on this shard.
  void untrack(const Term& pid);
  // Replaces the meta of a presence by updater(old meta), with a new phx_ref
  // and phx_ref_prev set to the old phx_ref. Failures: nopresence;
  // {badmap, NewMeta} when the updater returns something else than a map.
  ShardReply update(const Term& pid, const Term& topic, const Term& key,
                    const std::function<Term(const Term&)>& updater);
  // A tracked process ended: its presences leave.
  void pid_down(const Term& pid);

  // Presences of up replicas, as Phoenix's list/get_by_key.
  std::vector<KeyMeta> list(const Term& topic) const { return state_.get_by_topic(topic); }
  std::vector<PidMeta> get_by_key(const Term& topic, const Term& key) const {
    return state_.get_by_key(topic, key);
  }

  // The periodic :heartbeat: broadcast the delta (or an empty heartbeat
  // after max_silent_periods quiet periods), every clock_sample_periods
  // ticks ask the replicas needing sync for a transfer, and mark silent
  // replicas down or permdown. now_ms: a monotonic clock in milliseconds.
  void heartbeat(std::int64_t now_ms);

  // A message that arrived on the shard's PubSub topic. Returns false when
  // it is not a tracker message at all (it is then ignored).
  bool handle_message(const Term& message, std::int64_t now_ms);

  // Tells the other replicas this one is gone for good
  // (Phoenix.Tracker.graceful_permdown), so they drop its presences at once.
  void broadcast_graceful_permdown();

 private:
  void handle_heartbeat_message(const Term& message, std::int64_t now_ms);
  void handle_transfer_req(const Term& message);
  void handle_transfer_ack(const Term& message);
  void handle_graceful_permdown(const Term& message);
  void drop_malformed(const Term& message, const std::string& why);
  bool from_self(const ReplicaRef& sender, const Term& message);

  void broadcast_delta_heartbeat();
  void request_transfer_from_replicas_needing_sync();
  void detect_downs(std::int64_t now_ms);
  void on_heartbeat_from(const ReplicaRef& ref, std::int64_t now_ms);
  void put_pending_clock(const ReplicaClock& clock);
  void push_delta_generation(const Delta& delta);

  void up(const Replica& replica);
  void down(const Replica& replica);
  void permdown(const Replica& replica);

  void report_diff(const std::vector<Presence>& joins, const std::vector<Presence>& leaves);
  void report_join(const Term& topic, const Term& key, const Term& meta, const Term* prev_meta);
  void watch_if_first(const Term& pid, bool had_presences);
  void unwatch_if_last(const Term& pid);
  Term random_ref();
  void log_event(const std::string& message);

  Atom shard_name_;
  ReplicaRef self_;
  std::uint16_t ref_salt_;
  TrackerOptions options_;
  std::int64_t down_period_ms_;
  ShardOutput& output_;

  State state_;
  ReplicaTable replicas_;
  ClockSet pending_clockset_;
  std::vector<Delta> deltas_;
  int silent_periods_;
  int current_sample_count_;
};

}  // namespace presence
