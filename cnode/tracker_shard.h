// One Phoenix.Tracker shard on the C++ node: a ShardCore wired to the node.
//
// The shard is a process registered as :"#{tracker_name}_shard#{n}" (the
// name keeps the Elixir. prefix, e.g. 'Elixir.MyApp.Presence_shard0'). It
// subscribes to the PubSub topic "phx_presence:" ++ that name, through which
// every tracker message travels, and runs the heartbeat timer: the first
// tick at a random 0-25 % of broadcast_period, then one every period. It
// monitors the processes with presences here, local or remote; when one ends
// (or its node's connection is lost) its presences leave.
//
// Threading: everything, including the DiffSink, runs on the node thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <unordered_map>
#include <utility>

#include "cnode/asio.h"
#include "cnode/node.h"
#include "cnode/pubsub.h"
#include "cnode/tracker_options.h"
#include "cnode/tracker_shard_core.h"
#include "term/term.h"

namespace presence {

// Shard n of a tracker: :"#{name}_shard#{n}".
Atom shard_name(Atom tracker_name, int number);

class TrackerShard : public std::enable_shared_from_this<TrackerShard>, private ShardOutput {
 public:
  using DiffSink = std::function<void(const TrackerDiff& diff)>;

  // Registers the shard's process, subscribes to its topic on `pubsub` and
  // schedules the first heartbeat. Returns nullptr, after logging, when the
  // shard's name is taken. `options` must be valid (validate()); `node` and
  // `pubsub` must outlive the shard. Node thread.
  static std::shared_ptr<TrackerShard> start(Node& node, std::shared_ptr<PubSub> pubsub,
                                             const TrackerOptions& options, int number,
                                             DiffSink diffs);
  // Stops without a word to the peers (they see this replica go silent, as
  // when a Phoenix node stops with permdown_on_shutdown false). Node thread.
  ~TrackerShard() override;
  TrackerShard(const TrackerShard&) = delete;
  TrackerShard& operator=(const TrackerShard&) = delete;

  Atom name() const { return core_->shard_name(); }
  const Term& pid() const { return mailbox_->pid(); }
  ShardCore& core() { return *core_; }
  const ShardCore& core() const { return *core_; }

  // Broadcasts graceful_permdown and stops: no more heartbeats, no more
  // input. Idempotent.
  void graceful_permdown();
  // Stops without a word: no more heartbeats, no more input, no more
  // monitors. Idempotent.
  void stop();

  // A monotonic clock in milliseconds, the time base of the replica table.
  static std::int64_t now_ms();

 private:
  TrackerShard(Node& node, std::shared_ptr<PubSub> pubsub, DiffSink diffs);
  void schedule_heartbeat(std::chrono::milliseconds delay);
  void on_mailbox_message(const Term& message);

  // ShardOutput
  void broadcast(Term message) override;
  void direct_broadcast(Atom node, Term message) override;
  void monitor(const Term& pid) override;
  void demonitor(const Term& pid) override;
  void diff(const TrackerDiff& diff) override;
  void replica_event(ReplicaEvent event, const ReplicaRef& replica) override;
  Term make_ref() override;
  void log(LogLevel level, const std::string& message) override;
  std::string origin(const Term& message) override;

  Node& node_;
  std::shared_ptr<PubSub> pubsub_;
  std::shared_ptr<Mailbox> mailbox_;
  std::string topic_;
  PubSub::SubscriptionId subscription_ = 0;
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds broadcast_period_{0};
  DiffSink diffs_;
  std::optional<ShardCore> core_;
  bool stopped_ = false;

  std::unordered_map<Term, Term, TermHash> monitors_;   // pid -> monitor ref
  std::unordered_map<Term, Term, TermHash> monitored_;  // monitor ref -> pid
};

}  // namespace presence
