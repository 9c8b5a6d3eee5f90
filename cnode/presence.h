// The C++ API for native services: Phoenix Presence from C++.
//
// A native service opens one Session per client connection. A session is a
// process of this node (a pid any node can see, monitor and send to); its
// presences are tracked in the node's trackers exactly as a Phoenix channel
// process's are, replicate to every Phoenix and C++ node of the cluster,
// and leave when the session closes.
//
//   PresenceService& presence = ...;
//   auto session = presence.open_session();
//   auto ref = session->track("MyApp.Presence", "room:1", "alice",
//                             Meta{{"device", "web"}, {"n", 1}}).get();
//   if (!ref.ok()) log(ref.error().to_string());
//   auto here = presence.presences("MyApp.Presence", "room:1").get();
//
// Trackers are named as on the command line ("MyApp.Presence" means
// 'Elixir.MyApp.Presence'). Failures come back as the Term Phoenix would put
// in {error, Reason}: {already_tracked, Pid, Topic, Key}, nopresence,
// {unknown_tracker, Name}, and noproc for a closed session.
//
// Threading: every method of PresenceService, Session and DiffSubscription
// is thread-safe. Work runs on the node thread; a call made there runs at
// once and returns a ready future, a call made elsewhere posts the work and
// returns a future that becomes ready when it is done (never wait on one
// from the node thread for work posted from elsewhere). Callbacks (diff
// handlers, liveness answers, meta updaters, session message handlers) run
// on the node thread and must neither block nor throw (an updater may).
//
// Read-your-writes: a track, update or untrack future becomes ready only
// after the local replica applied the change, so a list made after it on
// this node sees it. Other nodes see it within about one broadcast_period.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <functional>
#include <future>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "cnode/node.h"
#include "cnode/replica.h"
#include "cnode/tracker.h"
#include "crdt/state.h"
#include "term/term.h"

namespace presence {

class Meta;

// A C++ value as a Term: strings become binaries (Phoenix's strings),
// integers, doubles and bools their Erlang counterparts, an Atom an atom,
// a Meta a map; a Term is taken as it is.
class Value {
 public:
  Value(Term term) : term_(std::move(term)) {}
  Value(const char* text) : term_(Term::binary(text)) {}
  Value(std::string_view text) : term_(Term::binary(text)) {}
  Value(const std::string& text) : term_(Term::binary(text)) {}
  template <std::integral T>
  requires(!std::same_as<T, bool>) Value(T number)
      : term_(Term::integer(static_cast<std::int64_t>(number))) {}
  Value(bool flag) : term_(Term::boolean(flag)) {}
  Value(double number) : term_(Term::floating(number)) {}
  Value(Atom atom) : term_(Term::atom(atom)) {}
  Value(const Meta& meta);

  const Term& term() const& { return term_; }
  Term&& term() && { return std::move(term_); }

 private:
  Term term_;
};

// Lists and tuples of values: list({1, "a", atom("b")}).
Term list(std::initializer_list<Value> elements);
Term tuple(std::initializer_list<Value> elements);
inline Term atom(std::string_view text) {
  return Term::atom(text);
}

// A presence's metadata: a map with atom keys, as Phoenix code writes it.
//   Meta{{"device", "web"}, {"n", 1}, {"user", Meta{{"id", 7}}}}
//   is #{device => <<"web">>, n => 1, user => #{id => 7}}.
class Meta {
 public:
  Meta() : map_(Term::map({})) {}
  Meta(std::initializer_list<std::pair<std::string_view, Value>> entries);
  // Any map (keys of any kind), e.g. a meta read back from a list.
  // Precondition: map.is_map().
  explicit Meta(Term map);

  // A copy with key (an atom) set to value.
  Meta with(std::string_view key, Value value) const;
  // The value of atom key, or nullptr.
  const Term* find(std::string_view key) const { return map_.find(key); }
  const Term& term() const { return map_; }

 private:
  Term map_;
};

// A result, or the reason there is none.
template <class T>
class Reply {
 public:
  static Reply success(T value) { return Reply(std::move(value), Term()); }
  static Reply failure(Term reason) { return Reply(std::nullopt, std::move(reason)); }

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  const T& value() const { return *value_; }
  const T& operator*() const { return *value_; }
  const T* operator->() const { return &*value_; }
  // The reason, as Phoenix would put it in {error, Reason}. Only if !ok().
  const Term& error() const { return error_; }

 private:
  Reply(std::optional<T> value, Term error) : value_(std::move(value)), error_(std::move(error)) {}
  std::optional<T> value_;
  Term error_;
};

struct Done {};
using Ack = Reply<Done>;
// The phx_ref of the presence as tracked or updated.
using TrackReply = Reply<std::string>;
// Phoenix.Presence's view of a topic: key => the metas of its presences
// (one per process that tracks the key), in list order.
using PresenceMap = std::map<Term, std::vector<Term>>;

// Whether a process lives. reason is set when it does not: noproc (it does
// not exist), noconnection (its node cannot be reached), timeout (no answer
// in time), or the reason it ended with.
struct Liveness {
  bool alive = false;
  Term reason;
};

class PresenceService;
namespace detail {
struct PresenceCore;
}

// One native connection's process and its presences.
class Session {
 public:
  // Closes the session (see close()) without waiting.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The session's pid: what get_by_key lists and what peers may monitor.
  const Term& pid() const { return pid_; }

  // Phoenix.Tracker.track/untrack/update for this session's pid. The
  // updater form is called on the node thread with the current meta; if it
  // throws, the update fails with {updater_failed, What}.
  std::future<TrackReply> track(std::string_view tracker, Value topic, Value key, Meta meta = {});
  std::future<Ack> untrack(std::string_view tracker, Value topic, Value key);
  // Every presence of this session in one tracker / in every tracker.
  std::future<Ack> untrack_all(std::string_view tracker);
  std::future<Ack> untrack_all();
  std::future<TrackReply> update(std::string_view tracker, Value topic, Value key, Meta meta);
  std::future<TrackReply> update(std::string_view tracker, Value topic, Value key,
                                 std::function<Meta(const Meta&)> updater);

  // Untracks every presence of the session (the leaves are local when the
  // future is ready) and ends its process. Later calls fail with noproc.
  // Idempotent.
  std::future<Ack> close();

 private:
  friend class PresenceService;
  Session(std::shared_ptr<detail::PresenceCore> core, std::shared_ptr<Mailbox> mailbox);
  bool closed() const { return closed_.load(); }

  std::shared_ptr<detail::PresenceCore> core_;
  std::shared_ptr<Mailbox> mailbox_;
  Term pid_;
  std::atomic<bool> closed_{false};
};

// A subscription to a tracker's diffs; destroying it unsubscribes.
class DiffSubscription {
 public:
  ~DiffSubscription() { cancel(); }
  DiffSubscription(const DiffSubscription&) = delete;
  DiffSubscription& operator=(const DiffSubscription&) = delete;
  // After cancel() returns no callback runs or is running (except the one
  // calling cancel, when called from inside it). Idempotent.
  void cancel();

 private:
  friend class PresenceService;
  struct Shared;
  explicit DiffSubscription(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  std::shared_ptr<Shared> shared_;
};

class PresenceService {
 public:
  using DiffHandler = Tracker::DiffHandler;

  // Takes the node's trackers (started on its node thread). Construct and
  // destroy on the node thread (or while the io_context is not running);
  // the node must outlive the service. Destroying it stops the trackers
  // (silently: call shutdown() first for a graceful stop); sessions and
  // subscriptions still alive then fail with {unknown_tracker, Name}.
  PresenceService(Node& node, std::vector<std::unique_ptr<Tracker>> trackers);
  ~PresenceService();
  PresenceService(const PresenceService&) = delete;
  PresenceService& operator=(const PresenceService&) = delete;

  // A new session. on_message, if given, receives the messages sent to the
  // session's pid (on the node thread).
  std::unique_ptr<Session> open_session(Mailbox::Handler on_message = {});

  // Phoenix.Tracker.list/get_by_key, and the Phoenix.Presence-shaped view.
  std::future<Reply<std::vector<KeyMeta>>> list(std::string_view tracker, Value topic);
  std::future<Reply<std::vector<PidMeta>>> get_by_key(std::string_view tracker, Value topic,
                                                      Value key);
  std::future<Reply<PresenceMap>> presences(std::string_view tracker, Value topic);
  // The remote replicas the tracker's shards know, with their status.
  std::future<Reply<std::vector<Replica>>> replicas(std::string_view tracker);

  // Diffs of one topic (or of all, with no topic): joins and leaves, local
  // and replicated. Returns nullptr when there is no such tracker.
  std::unique_ptr<DiffSubscription> subscribe(std::string_view tracker, std::optional<Value> topic,
                                              DiffHandler handler);

  // Whether pid (of any node) is alive, answered once on the node thread:
  // the process is monitored, then a message is sent that comes back through
  // the same connection, so a process already gone is reported dead even if
  // its presences have not left yet. Use it before routing to a presence's
  // pid.
  void confirm_alive(const Term& pid, std::function<void(const Liveness&)> callback,
                     std::chrono::milliseconds timeout = std::chrono::seconds(5));
  std::future<Liveness> confirm_alive(const Term& pid,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // Node thread only: the trackers by name (nullptr when unknown), for the
  // control process and the program's shutdown.
  Tracker* tracker(Atom name) const;
  std::vector<Tracker*> trackers() const;
  // Node thread: each tracker's graceful stop (Tracker::shutdown); the
  // trackers' shards stop, so nothing of them keeps the io_context busy.
  void shutdown();

 private:
  std::shared_ptr<detail::PresenceCore> core_;
};

}  // namespace presence
