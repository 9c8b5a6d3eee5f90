#include "cnode/tracker.h"

#include "term/phash2.h"

namespace presence {

std::unique_ptr<Tracker> Tracker::start(Node& node, std::shared_ptr<PubSub> pubsub,
                                        TrackerOptions options) {
  if (auto error = validate(options)) {
    node.log(LogLevel::kError,
             "tracker " + std::string(options.name.text()) + " not started: " + *error);
    return nullptr;
  }
  std::unique_ptr<Tracker> tracker(new Tracker(std::move(options)));
  Tracker* raw = tracker.get();
  for (int n = 0; n < raw->options_.pool_size; ++n) {
    auto shard = TrackerShard::start(node, pubsub, raw->options_, n,
                                     [raw](const TrackerDiff& diff) { raw->dispatch(diff); });
    if (!shard) return nullptr;
    raw->shards_.push_back(std::move(shard));
  }
  return tracker;
}

Tracker::~Tracker() = default;

TrackerShard& Tracker::shard_for(const Term& topic) {
  return *shards_[phash2(topic, static_cast<std::uint32_t>(shards_.size()))];
}

ShardReply Tracker::track(const Term& pid, const Term& topic, const Term& key, const Term& meta) {
  return shard_for(topic).core().track(pid, topic, key, meta);
}

void Tracker::untrack(const Term& pid, const Term& topic, const Term& key) {
  shard_for(topic).core().untrack(pid, topic, key);
}

void Tracker::untrack(const Term& pid) {
  for (auto& shard : shards_) shard->core().untrack(pid);
}

ShardReply Tracker::update(const Term& pid, const Term& topic, const Term& key, const Term& meta) {
  return update(pid, topic, key, [&meta](const Term&) { return meta; });
}

ShardReply Tracker::update(const Term& pid, const Term& topic, const Term& key,
                           const Updater& updater) {
  return shard_for(topic).core().update(pid, topic, key, updater);
}

std::vector<KeyMeta> Tracker::list(const Term& topic) {
  return shard_for(topic).core().list(topic);
}

std::vector<PidMeta> Tracker::get_by_key(const Term& topic, const Term& key) {
  return shard_for(topic).core().get_by_key(topic, key);
}

std::vector<Replica> Tracker::replicas() const {
  std::vector<Replica> all;
  for (const auto& shard : shards_) {
    for (const auto& [node, replica] : shard->core().replicas().entries()) all.push_back(replica);
  }
  return all;
}

Tracker::SubscriptionId Tracker::subscribe(std::optional<Term> topic, DiffHandler handler) {
  SubscriptionId id = next_subscription_++;
  subscriptions_.emplace(id, Subscription{std::move(topic), std::move(handler)});
  return id;
}

void Tracker::unsubscribe(SubscriptionId id) {
  subscriptions_.erase(id);
}

void Tracker::dispatch(const TrackerDiff& diff) {
  if (subscriptions_.empty()) return;
  // Handlers may change the subscriptions: walk a snapshot of the ids and
  // skip those removed meanwhile.
  std::vector<SubscriptionId> ids;
  for (const auto& [id, subscription] : subscriptions_) ids.push_back(id);
  for (const auto& [topic, topic_diff] : diff) {
    for (SubscriptionId id : ids) {
      auto it = subscriptions_.find(id);
      if (it == subscriptions_.end()) continue;
      if (it->second.topic && *it->second.topic != topic) continue;
      DiffHandler handler = it->second.handler;
      handler(topic, topic_diff);
    }
  }
}

void Tracker::graceful_permdown() {
  for (auto& shard : shards_) shard->graceful_permdown();
}

void Tracker::shutdown() {
  if (options_.permdown_on_shutdown) return graceful_permdown();
  for (auto& shard : shards_) shard->stop();
}

}  // namespace presence
