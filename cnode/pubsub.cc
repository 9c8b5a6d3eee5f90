#include "cnode/pubsub.h"

#include <cassert>
#include <exception>
#include <utility>

#include "cnode/asio.h"
#include "cnode/peer_input.h"

namespace presence {
namespace {

constexpr std::string_view kElixirPrefix = "Elixir.";
const Atom kForwardToLocal("forward_to_local");
// The dispatcher named in outgoing forwards: Phoenix's default, which sends
// the message to each subscriber as it is.
const Atom kDispatcher("Elixir.Phoenix.PubSub");

}  // namespace

Atom pubsub_name(std::string_view name) {
  bool module_name = !name.empty() && name.front() >= 'A' && name.front() <= 'Z';
  if (module_name && !name.starts_with(kElixirPrefix)) {
    return Atom(std::string(kElixirPrefix) + std::string(name));
  }
  return Atom(name);
}

Atom adapter_name(Atom pubsub) {
  std::string_view text = pubsub.text();
  if (text.starts_with(kElixirPrefix)) text.remove_prefix(kElixirPrefix.size());
  return Atom(std::string(kElixirPrefix) + std::string(text) + ".Adapter");
}

std::vector<Atom> adapter_groups(Atom adapter, int pool_size) {
  std::vector<Atom> groups{adapter};
  for (int number = 2; number <= pool_size; ++number) {
    groups.emplace_back(std::string(adapter.text()) + "_" + std::to_string(number));
  }
  return groups;
}

std::shared_ptr<PubSub> PubSub::start(Node& node, std::shared_ptr<PgScope> scope,
                                      PubSubOptions options) {
  Atom name = pubsub_name(options.name);
  if (options.pool_size < 1) {
    node.log(LogLevel::kError, "pubsub " + std::string(name.text()) + ": pool_size must be >= 1");
    return nullptr;
  }
  std::shared_ptr<PubSub> pubsub(new PubSub(node, std::move(scope), name,
                                            adapter_groups(adapter_name(name), options.pool_size)));
  if (!pubsub->open_mailboxes()) return nullptr;
  return pubsub;
}

PubSub::PubSub(Node& node, std::shared_ptr<PgScope> scope, Atom name, std::vector<Atom> groups)
    : node_(node),
      scope_(std::move(scope)),
      name_(name),
      self_node_(node.name()),
      groups_(std::move(groups)) {}

bool PubSub::open_mailboxes() {
  std::weak_ptr<PubSub> weak = weak_from_this();
  for (Atom group : groups_) {
    auto mailbox = node_.spawn(
        [weak](const Term& message) {
          if (auto self = weak.lock()) self->handle_message(message);
        },
        group);
    if (!mailbox) {
      node_.log(LogLevel::kError, "pubsub " + std::string(name_.text()) + ": the name " +
                                      std::string(group.text()) +
                                      " is already registered on this node");
      return false;  // the destructor closes the mailboxes opened so far
    }
    scope_->join(Term::atom(group), mailbox->pid());
    mailboxes_.push_back(std::move(mailbox));
  }
  return true;
}

PubSub::~PubSub() {
  for (std::size_t i = 0; i < mailboxes_.size(); ++i) {
    scope_->leave(Term::atom(groups_[i]), mailboxes_[i]->pid());
    mailboxes_[i]->close();
  }
}

template <typename F>
void PubSub::on_node_thread(F&& f) {
  boost::asio::dispatch(node_.io(), [weak = weak_from_this(), f = std::forward<F>(f)]() mutable {
    if (auto self = weak.lock()) f(*self);
  });
}

// --- public API ---

PubSub::SubscriptionId PubSub::subscribe(std::string topic, Handler handler) {
  auto subscription = std::make_shared<Subscription>();
  subscription->topic = std::move(topic);
  subscription->handler = std::move(handler);
  return register_subscription(std::move(subscription));
}

PubSub::SubscriptionId PubSub::subscribe(std::string topic, Term pid) {
  if (!pid.is_pid()) return 0;
  auto subscription = std::make_shared<Subscription>();
  subscription->topic = std::move(topic);
  subscription->pid = std::move(pid);
  return register_subscription(std::move(subscription));
}

PubSub::SubscriptionId PubSub::register_subscription(std::shared_ptr<Subscription> subscription) {
  subscription->id = next_id_++;
  SubscriptionId id = subscription->id;
  on_node_thread(
      [subscription = std::move(subscription)](PubSub& self) { self.add(subscription); });
  return id;
}

void PubSub::unsubscribe(SubscriptionId id) {
  on_node_thread([id](PubSub& self) { self.remove(id); });
}

void PubSub::broadcast(std::string topic, Term message) {
  broadcast_from(0, std::move(topic), std::move(message));
}

void PubSub::broadcast_from(SubscriptionId from, std::string topic, Term message) {
  on_node_thread([from, topic = std::move(topic), message = std::move(message)](PubSub& self) {
    self.send_to_peers(topic, message);
    self.deliver(topic, message, from);
  });
}

void PubSub::local_broadcast(std::string topic, Term message) {
  on_node_thread([topic = std::move(topic), message = std::move(message)](PubSub& self) {
    self.deliver(topic, message, 0);
  });
}

void PubSub::direct_broadcast(Atom node, std::string topic, Term message) {
  on_node_thread([node, topic = std::move(topic), message = std::move(message)](PubSub& self) {
    if (node == self.self_node_) {
      self.deliver(topic, message, 0);
    } else {
      self.mailboxes_.front()->send(self.adapter(), node, self.forward(topic, message));
    }
  });
}

// --- control requests ---

namespace {

bool is_request(const Term& request, std::string_view verb, std::size_t arity) {
  return request.is_tuple(arity) && request[0].is_atom(verb);
}

}  // namespace

std::optional<Term> PubSub::handle_request(const Term& request) {
  if (!request.is_tuple() || request.size() < 3 || !request[0].is_atom()) return std::nullopt;
  bool direct = is_request(request, "direct_broadcast", 5);
  const Term& pubsub = direct ? request[2] : request[1];
  if (pubsub != Term::atom(name_)) return std::nullopt;

  Term ok = Term::atom("ok");
  Term badarg = Term::tuple({Term::atom("error"), Term::atom("badarg")});
  if (is_request(request, "unsubscribe", 3)) {
    // Only what a request subscribed: the node's own subscribers (tracker
    // shards) are not for a control process to end.
    if (!request[2].is_integer()) return badarg;
    auto id = static_cast<SubscriptionId>(request[2].as_integer());
    if (requested_.erase(id) == 0) return badarg;
    unsubscribe(id);
    return ok;
  }
  if (is_request(request, "subscribe", 4)) {
    if (!request[2].is_binary() || !request[3].is_pid()) return badarg;
    SubscriptionId id = subscribe(std::string(request[2].as_binary()), request[3]);
    requested_.insert(id);
    return Term::tuple({ok, Term::integer(static_cast<std::int64_t>(id))});
  }
  std::size_t topic = direct ? 3 : 2;
  bool broadcast = is_request(request, "broadcast", 4);
  bool local = is_request(request, "local_broadcast", 4);
  if (!broadcast && !local && !direct) return std::nullopt;
  if (!request[topic].is_binary() || (direct && !request[1].is_atom())) return badarg;
  std::string topic_text(request[topic].as_binary());
  const Term& message = request[topic + 1];
  if (broadcast) this->broadcast(std::move(topic_text), message);
  if (local) local_broadcast(std::move(topic_text), message);
  if (direct) direct_broadcast(request[1].as_atom(), std::move(topic_text), message);
  return ok;
}

// --- messages from peers ---

void PubSub::handle_message(const Term& message) {
  if (is_down_message(message)) {
    handle_down(message[1], message[3]);
  } else if (!handle_forward(message)) {
    node_.log(LogLevel::kWarning, "pubsub " + std::string(name_.text()) +
                                      ": dropped a message it does not understand from " +
                                      origin_of(node_, message) + ": " + brief_term(message));
  }
}

// {forward_to_local, Topic, Message, Dispatcher}. The dispatcher is Elixir
// code that cannot run here; C++ subscribers get the message as Phoenix's
// default dispatcher would hand it over.
bool PubSub::handle_forward(const Term& message) {
  if (!message.is_tuple(4) || !message[0].is_atom(kForwardToLocal.text()) ||
      !message[1].is_binary() || !message[3].is_atom()) {
    return false;
  }
  deliver(std::string(message[1].as_binary()), message[2], 0);
  return true;
}

void PubSub::handle_down(const Term& ref, const Term& pid) {
  auto it = monitors_.find(ref);
  if (it == monitors_.end()) return;
  SubscriptionId id = it->second;
  monitors_.erase(it);
  auto subscription = subscriptions_.find(id);
  if (subscription != subscriptions_.end() && subscription->second->pid == pid) remove(id);
}

// --- subscriptions and delivery ---

void PubSub::add(std::shared_ptr<Subscription> subscription) {
  if (subscription->pid.is_pid()) {
    subscription->monitor_ref = mailboxes_.front()->monitor(subscription->pid);
    monitors_.emplace(subscription->monitor_ref, subscription->id);
  }
  topics_[subscription->topic].push_back(subscription);
  subscriptions_.emplace(subscription->id, std::move(subscription));
}

void PubSub::remove(SubscriptionId id) {
  auto it = subscriptions_.find(id);
  if (it == subscriptions_.end()) return;
  std::shared_ptr<Subscription> subscription = std::move(it->second);
  subscriptions_.erase(it);
  requested_.erase(id);
  subscription->active = false;
  if (subscription->pid.is_pid() && monitors_.erase(subscription->monitor_ref) > 0) {
    mailboxes_.front()->demonitor(subscription->monitor_ref);
  }
  auto topic = topics_.find(subscription->topic);
  assert(topic != topics_.end());  // every subscription is listed under its topic
  std::erase(topic->second, subscription);
  if (topic->second.empty()) topics_.erase(topic);
}

void PubSub::deliver(const std::string& topic, const Term& message, SubscriptionId except) {
  auto it = topics_.find(topic);
  if (it == topics_.end()) return;
  // Handlers may subscribe and unsubscribe while this runs.
  std::vector<std::shared_ptr<Subscription>> subscribers = it->second;
  for (const auto& subscription : subscribers) {
    if (!subscription->active || subscription->id == except) continue;
    if (!subscription->handler) {
      node_.send(subscription->pid, message);
      continue;
    }
    try {
      subscription->handler(message);
    } catch (const std::exception& error) {
      node_.log(LogLevel::kError, "pubsub " + std::string(name_.text()) + ": a subscriber of " +
                                      topic + " threw: " + error.what());
    }
  }
}

// The BEAM spreads its senders over the pool's groups by phash2(self()),
// which keeps each sender's messages in order. This node counts as one
// sender, so it always uses the first group: every node has a member there,
// whatever its pool_size.
void PubSub::send_to_peers(const std::string& topic, const Term& message) {
  std::vector<Term> members = scope_->get_members(Term::atom(adapter()));
  if (members.empty()) return;
  Term forwarded = forward(topic, message);
  for (const Term& pid : members) {
    if (pid.as_pid().node != self_node_) mailboxes_.front()->send(pid, forwarded);
  }
}

Term PubSub::forward(const std::string& topic, const Term& message) const {
  return Term::tuple(
      {Term::atom(kForwardToLocal), Term::binary(topic), message, Term::atom(kDispatcher)});
}

}  // namespace presence
