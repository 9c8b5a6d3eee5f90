// Phoenix.PubSub on the C++ node, speaking the PG2 adapter's protocol.
//
// A PubSub named MyApp.PubSub has the adapter name MyApp.PubSub.Adapter
// (Module.concat(name, "Adapter")) and pool_size groups in the pg scope
// 'Elixir.Phoenix.PubSub': the adapter name, then Adapter_2 .. Adapter_N.
// On every node each group has one member, a process registered under the
// group's name. Broadcasting sends
//
//   {forward_to_local, Topic, Message, Dispatcher}
//
// to the members of one group on every other node, and the receiving node
// hands Message to its local subscribers of Topic. Here each group member is
// a registered mailbox that does the same for C++ subscribers.
//
// Topics are binaries on the wire and std::string here. A subscriber is a
// handler (called with the message) or a process of this node (sent the
// message, and unsubscribed when it ends). Delivery order follows Phoenix:
// messages from one sender to one subscriber arrive in the order sent.
//
// Threading: handlers run on the node thread. Every public method is
// thread-safe; called from another thread it posts its work to the node
// thread, called on the node thread it runs at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cnode/node.h"
#include "cnode/pg.h"
#include "term/term.h"

namespace presence {

// The atom Phoenix names a PubSub by: "MyApp.PubSub" (an Elixir module
// name) becomes 'Elixir.MyApp.PubSub'; names already starting with
// "Elixir." and plain atoms such as "my_pubsub" are taken as they are.
Atom pubsub_name(std::string_view name);
// Module.concat(pubsub, "Adapter"): 'Elixir.MyApp.PubSub.Adapter', and
// 'Elixir.my_pubsub.Adapter' for the plain atom my_pubsub.
Atom adapter_name(Atom pubsub);
// The pg groups of a pool: the adapter name, then "<adapter>_2" .. "_N".
std::vector<Atom> adapter_groups(Atom adapter, int pool_size);

struct PubSubOptions {
  std::string name;  // as for pubsub_name()
  // Must equal the pool_size of the Phoenix nodes, as Phoenix requires.
  int pool_size = 1;
};

class PubSub : public std::enable_shared_from_this<PubSub> {
 public:
  using SubscriptionId = std::uint64_t;
  using Handler = std::function<void(const Term& message)>;

  // Registers one mailbox per group and joins it to its group in `scope`
  // (whose scope must be 'Elixir.Phoenix.PubSub' for Phoenix to find it).
  // Returns nullptr, after logging, when a name is taken or pool_size < 1.
  // Node thread; `node` must outlive the PubSub.
  static std::shared_ptr<PubSub> start(Node& node, std::shared_ptr<PgScope> scope,
                                       PubSubOptions options);
  // Leaves the groups and closes the mailboxes. Node thread.
  ~PubSub();
  PubSub(const PubSub&) = delete;
  PubSub& operator=(const PubSub&) = delete;

  Atom name() const { return name_; }
  Atom adapter() const { return groups_.front(); }

  // `handler` receives every message broadcast on topic from now on.
  SubscriptionId subscribe(std::string topic, Handler handler);
  // The process `pid` (of any node) is sent every message broadcast on
  // topic until it ends, its node disconnects, or it is unsubscribed.
  // Returns 0 if pid is not a pid.
  SubscriptionId subscribe(std::string topic, Term pid);
  // After this returns on the node thread the subscriber gets nothing more;
  // from another thread, deliveries already under way may still arrive.
  void unsubscribe(SubscriptionId id);

  // To the subscribers of topic on every node, this one included.
  void broadcast(std::string topic, Term message);
  // As broadcast, but not to the local subscription `from`.
  void broadcast_from(SubscriptionId from, std::string topic, Term message);
  // To the subscribers of topic on this node only.
  void local_broadcast(std::string topic, Term message);
  // To the subscribers of topic on `node` only (through that node's adapter
  // process, as Phoenix does; locally when node is this one).
  void direct_broadcast(Atom node, std::string topic, Term message);

  // Serves the PubSub requests of a control process, each naming this
  // PubSub as Phoenix.PubSub's functions do (Topic a binary):
  //   {subscribe, PubSub, Topic, Pid}                  -> {ok, Id}
  //   {unsubscribe, PubSub, Id}                        -> ok (Id from subscribe)
  //   {broadcast, PubSub, Topic, Message}              -> ok
  //   {local_broadcast, PubSub, Topic, Message}        -> ok
  //   {direct_broadcast, Node, PubSub, Topic, Message} -> ok
  // A request of that shape with bad arguments is answered {error, badarg}.
  // Returns std::nullopt for anything else (another PubSub's request too).
  // Node thread.
  std::optional<Term> handle_request(const Term& request);

 private:
  struct Subscription {
    SubscriptionId id;
    std::string topic;
    Handler handler;   // empty for a process subscription
    Term pid;          // the process, for a process subscription
    Term monitor_ref;  // its monitor, for a process subscription
    bool active = true;
  };

  PubSub(Node& node, std::shared_ptr<PgScope> scope, Atom name, std::vector<Atom> groups);
  bool open_mailboxes();
  // Runs f on the node thread, now if this is it.
  template <typename F>
  void on_node_thread(F&& f);

  void handle_message(const Term& message);
  bool handle_forward(const Term& message);
  void handle_down(const Term& ref, const Term& pid);

  // Gives the subscription its id (any thread) and adds it on the node thread.
  SubscriptionId register_subscription(std::shared_ptr<Subscription> subscription);
  void add(std::shared_ptr<Subscription> subscription);
  void remove(SubscriptionId id);
  void deliver(const std::string& topic, const Term& message, SubscriptionId except);
  void send_to_peers(const std::string& topic, const Term& message);
  Term forward(const std::string& topic, const Term& message) const;

  Node& node_;
  std::shared_ptr<PgScope> scope_;
  Atom name_;
  Atom self_node_;
  std::vector<Atom> groups_;                         // groups_[0] is the adapter name
  std::vector<std::shared_ptr<Mailbox>> mailboxes_;  // one per group

  std::atomic<SubscriptionId> next_id_{1};
  std::unordered_map<std::string, std::vector<std::shared_ptr<Subscription>>> topics_;
  std::unordered_map<SubscriptionId, std::shared_ptr<Subscription>> subscriptions_;
  std::unordered_map<Term, SubscriptionId, TermHash> monitors_;  // monitor ref -> subscription
  std::unordered_set<SubscriptionId> requested_;                 // made by handle_request
};

}  // namespace presence
