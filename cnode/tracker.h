// A Phoenix.Tracker on the C++ node: a pool of shards with one name.
//
// A topic lives on shard :erlang.phash2(Topic, pool_size), as in Phoenix, so
// the C++ node and the Phoenix nodes agree on which shard replicates which
// topic. The operations mirror Phoenix.Tracker's client API and act on the
// local replica at once: when one returns, a following list on this node
// sees the change. Diffs (joins and leaves per topic, from local changes and
// from replication alike) go to the subscribers, in the order the shards
// produce them.
//
// Threading: a Tracker lives on the node thread; every method must be called
// there and every handler runs there. presence.h offers the thread-safe API.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "cnode/node.h"
#include "cnode/pubsub.h"
#include "cnode/replica.h"
#include "cnode/tracker_options.h"
#include "cnode/tracker_shard.h"
#include "term/term.h"

namespace presence {

class Tracker {
 public:
  using SubscriptionId = std::uint64_t;
  // The joins and leaves of one topic.
  using DiffHandler = std::function<void(const Term& topic, const TopicDiff& diff)>;
  using Updater = std::function<Term(const Term& meta)>;

  // Starts the shards on `pubsub`, which must be the PubSub named
  // options.pubsub_server. Returns nullptr, after logging, when the options
  // are invalid or a shard's name is taken. `node` and `pubsub` must outlive
  // the tracker.
  static std::unique_ptr<Tracker> start(Node& node, std::shared_ptr<PubSub> pubsub,
                                        TrackerOptions options);
  // Stops the shards. Peers hear nothing (see shutdown()).
  ~Tracker();
  Tracker(const Tracker&) = delete;
  Tracker& operator=(const Tracker&) = delete;

  Atom name() const { return options_.name; }
  const TrackerOptions& options() const { return options_; }
  std::size_t pool_size() const { return shards_.size(); }
  // The shard that holds topic.
  TrackerShard& shard_for(const Term& topic);
  TrackerShard& shard(std::size_t number) { return *shards_.at(number); }

  // As Phoenix.Tracker.track/untrack/update/list/get_by_key; see ShardCore
  // for the replies. pid may be a process of any node; it is monitored
  // while it has presences.
  ShardReply track(const Term& pid, const Term& topic, const Term& key, const Term& meta);
  void untrack(const Term& pid, const Term& topic, const Term& key);
  void untrack(const Term& pid);  // on every shard
  ShardReply update(const Term& pid, const Term& topic, const Term& key, const Term& meta);
  ShardReply update(const Term& pid, const Term& topic, const Term& key, const Updater& updater);
  std::vector<KeyMeta> list(const Term& topic);
  std::vector<PidMeta> get_by_key(const Term& topic, const Term& key);

  // The remote replicas every shard knows, shard by shard.
  std::vector<Replica> replicas() const;

  // Diffs of one topic, or of every topic when topic is nullopt. A handler
  // may subscribe and unsubscribe (itself included) while it runs.
  SubscriptionId subscribe(std::optional<Term> topic, DiffHandler handler);
  void unsubscribe(SubscriptionId id);

  // Tells the peers this replica is gone for good and stops the shards
  // (Phoenix.Tracker.graceful_permdown). Idempotent.
  void graceful_permdown();
  // A graceful stop: graceful_permdown() when permdown_on_shutdown is set,
  // else the shards stop without a word and the peers wait for down_period.
  // Idempotent.
  void shutdown();

 private:
  explicit Tracker(TrackerOptions options) : options_(std::move(options)) {}
  void dispatch(const TrackerDiff& diff);

  struct Subscription {
    std::optional<Term> topic;
    DiffHandler handler;
  };

  TrackerOptions options_;
  std::vector<std::shared_ptr<TrackerShard>> shards_;
  SubscriptionId next_subscription_ = 1;
  std::map<SubscriptionId, Subscription> subscriptions_;
};

}  // namespace presence
