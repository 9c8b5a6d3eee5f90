#include "cnode/tracker_shard.h"

#include <chrono>

#include "cnode/peer_input.h"

namespace presence {

Atom shard_name(Atom tracker_name, int number) {
  return Atom(std::string(tracker_name.text()) + "_shard" + std::to_string(number));
}

std::int64_t TrackerShard::now_ms() {
  auto now = std::chrono::steady_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
}

TrackerShard::TrackerShard(Node& node, std::shared_ptr<PubSub> pubsub, DiffSink diffs)
    : node_(node), pubsub_(std::move(pubsub)), timer_(node.io()), diffs_(std::move(diffs)) {}

std::shared_ptr<TrackerShard> TrackerShard::start(Node& node, std::shared_ptr<PubSub> pubsub,
                                                  const TrackerOptions& options, int number,
                                                  DiffSink diffs) {
  Atom name = shard_name(options.name, number);
  std::shared_ptr<TrackerShard> shard(new TrackerShard(node, std::move(pubsub), std::move(diffs)));
  std::weak_ptr<TrackerShard> weak = shard;
  shard->mailbox_ = node.spawn(
      [weak](const Term& message) {
        if (auto self = weak.lock()) self->on_mailbox_message(message);
      },
      name);
  if (!shard->mailbox_) {
    node.log(LogLevel::kError, "tracker shard " + std::string(name.text()) +
                                   " not started: the name is already registered");
    return nullptr;
  }

  ReplicaRef self{node.name(), new_replica_vsn()};
  ShardOutput& output = *shard;
  shard->core_.emplace(name, self, shard->mailbox_->pid(), options, output);
  shard->broadcast_period_ = options.broadcast_period;
  shard->topic_ = "phx_presence:" + std::string(name.text());
  shard->subscription_ = shard->pubsub_->subscribe(shard->topic_, [weak](const Term& message) {
    if (auto self = weak.lock(); self && !self->stopped_) {
      self->core_->handle_message(message, now_ms());
    }
  });

  // The first heartbeat comes at a random 0-25 % of a period, so that
  // shards started together do not beat in step.
  std::random_device seed;
  std::uniform_int_distribution<std::int64_t> first(0, options.broadcast_period.count() / 4);
  shard->schedule_heartbeat(std::chrono::milliseconds(first(seed)));
  return shard;
}

TrackerShard::~TrackerShard() {
  stop();
}

void TrackerShard::graceful_permdown() {
  if (stopped_) return;
  core_->broadcast_graceful_permdown();
  stop();
}

void TrackerShard::stop() {
  if (stopped_) return;
  stopped_ = true;
  timer_.cancel();
  if (subscription_ != 0) pubsub_->unsubscribe(subscription_);
  for (const auto& [pid, ref] : monitors_) mailbox_->demonitor(ref);
  monitors_.clear();
  monitored_.clear();
  if (mailbox_) mailbox_->close(Term::atom("shutdown"));
}

void TrackerShard::schedule_heartbeat(std::chrono::milliseconds delay) {
  timer_.expires_after(delay);
  std::weak_ptr<TrackerShard> weak = weak_from_this();
  timer_.async_wait([weak](const boost::system::error_code& error) {
    if (error) return;
    auto self = weak.lock();
    if (!self || self->stopped_) return;
    self->core_->heartbeat(now_ms());
    self->schedule_heartbeat(self->broadcast_period_);
  });
}

void TrackerShard::on_mailbox_message(const Term& message) {
  if (stopped_ || !is_down_message(message)) return;
  auto it = monitored_.find(message[1]);
  if (it == monitored_.end()) return;
  Term pid = it->second;
  monitored_.erase(it);
  monitors_.erase(pid);
  core_->pid_down(pid);
}

void TrackerShard::broadcast(Term message) {
  pubsub_->broadcast_from(subscription_, topic_, std::move(message));
}

void TrackerShard::direct_broadcast(Atom node, Term message) {
  pubsub_->direct_broadcast(node, topic_, std::move(message));
}

void TrackerShard::monitor(const Term& pid) {
  if (monitors_.contains(pid)) return;
  Term ref = mailbox_->monitor(pid);
  monitors_.emplace(pid, ref);
  monitored_.emplace(ref, pid);
}

void TrackerShard::demonitor(const Term& pid) {
  auto it = monitors_.find(pid);
  if (it == monitors_.end()) return;
  mailbox_->demonitor(it->second);
  monitored_.erase(it->second);
  monitors_.erase(it);
}

void TrackerShard::diff(const TrackerDiff& diff) {
  if (diffs_) diffs_(diff);
}

void TrackerShard::replica_event(ReplicaEvent, const ReplicaRef&) {}

Term TrackerShard::make_ref() {
  return node_.make_ref();
}

void TrackerShard::log(LogLevel level, const std::string& message) {
  node_.log(level, message);
}

std::string TrackerShard::origin(const Term& message) {
  return origin_of(node_, message);
}

}  // namespace presence
