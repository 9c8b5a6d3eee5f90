#include "cnode/presence.h"

#include <cassert>
#include <mutex>
#include <set>
#include <utility>

#include "cnode/asio.h"
#include "cnode/peer_input.h"
#include "cnode/tracker_options.h"

namespace presence {

// ---- values ----

Value::Value(const Meta& meta) : term_(meta.term()) {}

Term list(std::initializer_list<Value> elements) {
  std::vector<Term> terms;
  for (const Value& element : elements) terms.push_back(element.term());
  return Term::list(std::move(terms));
}

Term tuple(std::initializer_list<Value> elements) {
  std::vector<Term> terms;
  for (const Value& element : elements) terms.push_back(element.term());
  return Term::tuple(std::move(terms));
}

Meta::Meta(std::initializer_list<std::pair<std::string_view, Value>> entries) {
  std::vector<std::pair<Term, Term>> map;
  for (const auto& [key, value] : entries) map.emplace_back(Term::atom(key), value.term());
  map_ = Term::map(std::move(map));
}

Meta::Meta(Term map) : map_(std::move(map)) {
  assert(map_.is_map());
}

Meta Meta::with(std::string_view key, Value value) const {
  return Meta(map_.map_put(Term::atom(key), std::move(value).term()));
}

// ---- the shared core ----

namespace detail {

// What sessions, subscriptions and the service share. The trackers are
// touched on the node thread only; names never changes after construction,
// so any thread may read it.
struct PresenceCore : std::enable_shared_from_this<PresenceCore> {
  PresenceCore(presence::Node& node, std::vector<std::unique_ptr<Tracker>> started) : node(node) {
    for (auto& tracker : started) {
      names.insert(tracker->name());
      trackers.emplace(tracker->name(), std::move(tracker));
    }
  }

  bool on_node_thread() const { return node.io().get_executor().running_in_this_thread(); }

  template <class F>
  void run(F f) {
    if (on_node_thread()) {
      f();
    } else {
      boost::asio::post(node.io(), std::move(f));
    }
  }

  // f() on the node thread; its result through a future.
  template <class T, class F>
  std::future<T> call(F f) {
    auto promise = std::make_shared<std::promise<T>>();
    std::future<T> future = promise->get_future();
    run([promise, f = std::move(f)]() mutable { promise->set_value(f()); });
    return future;
  }

  // f(tracker) on the node thread, or {unknown_tracker, Name}.
  template <class T, class F>
  std::future<Reply<T>> with_tracker(std::string_view tracker_name, F f) {
    Atom name = module_atom(tracker_name);
    if (!names.contains(name)) return ready(Reply<T>::failure(unknown_tracker(name)));
    return call<Reply<T>>([self = shared_from_this(), name, f = std::move(f)]() mutable {
      Tracker* tracker = self->find(name);
      if (!tracker) return Reply<T>::failure(unknown_tracker(name));
      return f(*tracker);
    });
  }

  template <class T>
  static std::future<T> ready(T value) {
    std::promise<T> promise;
    promise.set_value(std::move(value));
    return promise.get_future();
  }

  static Term unknown_tracker(Atom name) {
    return Term::tuple({Term::atom("unknown_tracker"), Term::atom(name)});
  }

  Tracker* find(Atom name) const {
    auto it = trackers.find(name);
    return it == trackers.end() ? nullptr : it->second.get();
  }

  presence::Node& node;
  std::set<Atom> names;
  std::map<Atom, std::unique_ptr<Tracker>> trackers;
};

}  // namespace detail

namespace {

TrackReply to_track_reply(const ShardReply& reply) {
  if (!reply.ok) return TrackReply::failure(reply.value);
  return TrackReply::success(std::string(reply.value.as_binary()));
}

const Term kNoproc = Term::atom("noproc");

}  // namespace

// ---- sessions ----

Session::Session(std::shared_ptr<detail::PresenceCore> core, std::shared_ptr<Mailbox> mailbox)
    : core_(std::move(core)), mailbox_(std::move(mailbox)), pid_(mailbox_->pid()) {}

Session::~Session() {
  close();
}

std::future<TrackReply> Session::track(std::string_view tracker, Value topic, Value key,
                                       Meta meta) {
  if (closed()) return detail::PresenceCore::ready(TrackReply::failure(kNoproc));
  return core_->with_tracker<std::string>(
      tracker,
      [pid = pid_, topic = std::move(topic).term(), key = std::move(key).term(),
       meta = meta.term()](Tracker& t) { return to_track_reply(t.track(pid, topic, key, meta)); });
}

std::future<Ack> Session::untrack(std::string_view tracker, Value topic, Value key) {
  if (closed()) return detail::PresenceCore::ready(Ack::failure(kNoproc));
  return core_->with_tracker<Done>(tracker, [pid = pid_, topic = std::move(topic).term(),
                                             key = std::move(key).term()](Tracker& t) {
    t.untrack(pid, topic, key);
    return Ack::success({});
  });
}

std::future<Ack> Session::untrack_all(std::string_view tracker) {
  if (closed()) return detail::PresenceCore::ready(Ack::failure(kNoproc));
  return core_->with_tracker<Done>(tracker, [pid = pid_](Tracker& t) {
    t.untrack(pid);
    return Ack::success({});
  });
}

std::future<Ack> Session::untrack_all() {
  if (closed()) return detail::PresenceCore::ready(Ack::failure(kNoproc));
  return core_->call<Ack>([core = core_, pid = pid_] {
    for (auto& [name, tracker] : core->trackers) tracker->untrack(pid);
    return Ack::success({});
  });
}

std::future<TrackReply> Session::update(std::string_view tracker, Value topic, Value key,
                                        Meta meta) {
  return update(tracker, std::move(topic), std::move(key),
                [meta = std::move(meta)](const Meta&) { return meta; });
}

std::future<TrackReply> Session::update(std::string_view tracker, Value topic, Value key,
                                        std::function<Meta(const Meta&)> updater) {
  if (closed()) return detail::PresenceCore::ready(TrackReply::failure(kNoproc));
  return core_->with_tracker<std::string>(tracker, [pid = pid_, topic = std::move(topic).term(),
                                                    key = std::move(key).term(),
                                                    updater = std::move(updater)](Tracker& t) {
    // A throwing updater fails this update only; the presence is unchanged.
    try {
      return to_track_reply(t.update(
          pid, topic, key, [&updater](const Term& meta) { return updater(Meta(meta)).term(); }));
    } catch (const std::exception& error) {
      return TrackReply::failure(
          Term::tuple({Term::atom("updater_failed"), Term::binary(error.what())}));
    }
  });
}

std::future<Ack> Session::close() {
  if (closed_.exchange(true)) return detail::PresenceCore::ready(Ack::success({}));
  return core_->call<Ack>([core = core_, mailbox = mailbox_] {
    for (auto& [name, tracker] : core->trackers) tracker->untrack(mailbox->pid());
    mailbox->close();
    return Ack::success({});
  });
}

// ---- diff subscriptions ----

struct DiffSubscription::Shared {
  std::recursive_mutex mutex;  // held while the handler runs
  bool active = true;
  Tracker::DiffHandler handler;
  std::weak_ptr<detail::PresenceCore> core;
  Atom tracker;
  Tracker::SubscriptionId id = 0;  // node thread
};

void DiffSubscription::cancel() {
  {
    std::lock_guard lock(shared_->mutex);
    if (!shared_->active) return;
    shared_->active = false;
  }
  auto core = shared_->core.lock();
  if (!core) return;
  core->run([core, shared = shared_] {
    if (Tracker* tracker = core->find(shared->tracker)) tracker->unsubscribe(shared->id);
  });
}

// ---- the service ----

PresenceService::PresenceService(Node& node, std::vector<std::unique_ptr<Tracker>> trackers)
    : core_(std::make_shared<detail::PresenceCore>(node, std::move(trackers))) {}

PresenceService::~PresenceService() {
  core_->trackers.clear();
}

std::unique_ptr<Session> PresenceService::open_session(Mailbox::Handler on_message) {
  auto mailbox = core_->node.spawn([on_message = std::move(on_message)](const Term& message) {
    if (on_message) on_message(message);
  });
  return std::unique_ptr<Session>(new Session(core_, std::move(mailbox)));
}

std::future<Reply<std::vector<KeyMeta>>> PresenceService::list(std::string_view tracker,
                                                               Value topic) {
  return core_->with_tracker<std::vector<KeyMeta>>(
      tracker, [topic = std::move(topic).term()](Tracker& t) {
        return Reply<std::vector<KeyMeta>>::success(t.list(topic));
      });
}

std::future<Reply<std::vector<PidMeta>>> PresenceService::get_by_key(std::string_view tracker,
                                                                     Value topic, Value key) {
  return core_->with_tracker<std::vector<PidMeta>>(
      tracker, [topic = std::move(topic).term(), key = std::move(key).term()](Tracker& t) {
        return Reply<std::vector<PidMeta>>::success(t.get_by_key(topic, key));
      });
}

std::future<Reply<PresenceMap>> PresenceService::presences(std::string_view tracker, Value topic) {
  return core_->with_tracker<PresenceMap>(tracker, [topic = std::move(topic).term()](Tracker& t) {
    PresenceMap view;
    for (KeyMeta& entry : t.list(topic)) view[entry.key].push_back(std::move(entry.meta));
    return Reply<PresenceMap>::success(std::move(view));
  });
}

std::future<Reply<std::vector<Replica>>> PresenceService::replicas(std::string_view tracker) {
  return core_->with_tracker<std::vector<Replica>>(
      tracker, [](Tracker& t) { return Reply<std::vector<Replica>>::success(t.replicas()); });
}

std::unique_ptr<DiffSubscription> PresenceService::subscribe(std::string_view tracker,
                                                             std::optional<Value> topic,
                                                             DiffHandler handler) {
  Atom name = module_atom(tracker);
  if (!core_->names.contains(name)) return nullptr;
  auto shared = std::make_shared<DiffSubscription::Shared>();
  shared->handler = std::move(handler);
  shared->core = core_;
  shared->tracker = name;

  std::optional<Term> topic_term;
  if (topic) topic_term = std::move(*topic).term();
  core_->run([core = core_, shared, topic_term] {
    Tracker* tracker = core->find(shared->tracker);
    if (!tracker) return;
    std::weak_ptr<DiffSubscription::Shared> weak = shared;
    shared->id = tracker->subscribe(topic_term, [weak](const Term& topic, const TopicDiff& diff) {
      auto shared = weak.lock();
      if (!shared) return;
      std::lock_guard lock(shared->mutex);
      if (shared->active) shared->handler(topic, diff);
    });
  });
  return std::unique_ptr<DiffSubscription>(new DiffSubscription(std::move(shared)));
}

// ---- liveness ----

namespace {

// One confirm_alive: a process that monitors the target and sends a probe
// whose answer comes back through the target's connection after any DOWN.
struct Probe : std::enable_shared_from_this<Probe> {
  Probe(Node& node, std::function<void(const Liveness&)> callback)
      : timer(node.io()), callback(std::move(callback)) {}

  void start(Node& node, const Term& pid, std::chrono::milliseconds timeout) {
    std::weak_ptr<Probe> weak = shared_from_this();
    mailbox = node.spawn([weak](const Term& message) {
      if (auto self = weak.lock()) self->on_message(message);
    });
    monitor_ref = mailbox->monitor(pid);
    probe_ref = node.make_ref();
    Atom target_node = pid.as_pid().node;
    if (target_node == node.name()) {
      // Local deliveries are queued in order: the probe comes after any DOWN.
      mailbox->send(mailbox->pid(), Term::tuple({probe_ref, Term::atom("yes")}));
    } else {
      Term from = Term::tuple({mailbox->pid(), probe_ref});
      Term request = Term::tuple({Term::atom("is_auth"), Term::atom(node.name())});
      mailbox->send(Atom("net_kernel"), target_node,
                    Term::tuple({Term::atom("$gen_call"), from, request}));
    }
    timer.expires_after(timeout);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
      if (!error) self->finish({false, Term::atom("timeout")});
    });
  }

  void on_message(const Term& message) {
    if (is_down_message(message) && message[1] == monitor_ref) {
      finish({false, message[4]});
    } else if (message.is_tuple(2) && message[0] == probe_ref) {
      finish({true, Term()});
    }
  }

  void finish(const Liveness& result) {
    if (done) return;
    done = true;
    timer.cancel();
    mailbox->demonitor(monitor_ref);
    mailbox->close();
    callback(result);
  }

  boost::asio::steady_timer timer;
  std::function<void(const Liveness&)> callback;
  std::shared_ptr<Mailbox> mailbox;
  Term monitor_ref;
  Term probe_ref;
  bool done = false;
};

}  // namespace

void PresenceService::confirm_alive(const Term& pid, std::function<void(const Liveness&)> callback,
                                    std::chrono::milliseconds timeout) {
  core_->run([core = core_, pid, callback = std::move(callback), timeout]() mutable {
    if (!pid.is_pid()) return callback({false, Term::atom("badarg")});
    auto probe = std::make_shared<Probe>(core->node, std::move(callback));
    probe->start(core->node, pid, timeout);
  });
}

std::future<Liveness> PresenceService::confirm_alive(const Term& pid,
                                                     std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<Liveness>>();
  std::future<Liveness> future = promise->get_future();
  confirm_alive(
      pid, [promise](const Liveness& result) { promise->set_value(result); }, timeout);
  return future;
}

Tracker* PresenceService::tracker(Atom name) const {
  return core_->find(name);
}

std::vector<Tracker*> PresenceService::trackers() const {
  std::vector<Tracker*> all;
  for (auto& [name, tracker] : core_->trackers) all.push_back(tracker.get());
  return all;
}

void PresenceService::shutdown() {
  for (auto& [name, tracker] : core_->trackers) tracker->shutdown();
}

}  // namespace presence
