// The inside of a Node (node.h): the process table of C++ mailboxes, their
// links and monitors, the distribution connections, and the built-in
// processes every node has (net_kernel, rex).
//
// Threading: the node thread owns everything here, except the registry of
// pids and names (guarded by registry_mutex_, since spawn and close are
// thread-safe) and the pid and reference counters (atomic). The methods
// marked thread-safe post to the node thread unless called on it.
//
// Signals follow Erlang's rules with every mailbox trapping exits: an exit
// signal becomes the message {'EXIT', From, Reason}; a monitor fires
// {'DOWN', Ref, process, Pid, Reason}. Losing the connection to a node ends
// every link and monitor that involves its processes with reason
// noconnection.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cnode/asio.h"
#include "cnode/dist_connection.h"
#include "cnode/dist_control.h"
#include "cnode/epmd_client.h"
#include "cnode/node.h"
#include "term/term.h"

namespace presence {

class NodeCore;

// A Mailbox of this node. The node keeps only a weak reference to it.
class LocalMailbox final : public Mailbox {
 public:
  LocalMailbox(std::weak_ptr<NodeCore> node, Term pid, std::optional<Atom> name, Handler handler);
  // A mailbox dropped without close() ends with reason normal.
  ~LocalMailbox() override;

  const Term& pid() const override { return pid_; }
  std::optional<Atom> registered_name() const override { return name_; }
  void send(const Term& to_pid, Term message) override;
  void send(Atom name, Atom node, Term message) override;
  Term monitor(const Term& pid) override;
  void demonitor(const Term& ref) override;
  void link(const Term& pid) override;
  void unlink(const Term& pid) override;
  void close(Term reason) override;

  // Node thread: runs the handler unless the mailbox is closed.
  void deliver(const Term& message);
  bool closed() const { return closed_; }
  // Marks the mailbox closed; true for the caller that actually closed it.
  bool mark_closed() { return !closed_.exchange(true); }

 private:
  std::weak_ptr<NodeCore> node_;
  Term pid_;
  std::optional<Atom> name_;
  Handler handler_;
  std::atomic<bool> closed_{false};
};

class NodeCore final : public dist::ConnectionOwner, public std::enable_shared_from_this<NodeCore> {
 public:
  NodeCore(boost::asio::io_context& io, NodeOptions options);

  // Node API (node.h); the thread rules are those of Node.
  bool start();
  void stop();
  Atom name() const { return name_; }
  std::uint32_t creation() const { return creation_; }
  std::uint16_t port() const { return port_; }
  std::shared_ptr<Mailbox> spawn(Mailbox::Handler handler, std::optional<Atom> name);
  void send(const Term& to_pid, Term message);
  void send(Atom name, Atom node, Term message);
  Term make_ref();
  std::vector<Atom> connected_nodes() const;
  void connect(Atom node);
  int on_node_event(Node::NodeEventHandler handler);
  std::optional<Atom> message_origin() const { return message_origin_; }
  void remove_node_event_handler(int id);
  void log(LogLevel level, const std::string& message) override;
  boost::asio::io_context& io() { return io_; }

  // Closes every mailbox and connection now. Node thread, idempotent.
  void stop_now();

  // Runs f on the node thread: at once when called there, else posted.
  // Thread-safe.
  template <typename F>
  void run_on_node(F&& f) {
    if (io_.get_executor().running_in_this_thread()) return f();
    boost::asio::post(io_, [weak = weak_from_this(), f = std::forward<F>(f)]() mutable {
      if (weak.lock()) f();
    });
  }

  // What mailboxes do; node thread. `from` and `watcher` are local pids.
  void route(const Term& from, const Term& to_pid, Term message);
  void route_named(const Term& from, Atom name, Atom node, Term message);
  void monitor(const Term& watcher, const Term& target, const Term& ref);
  void demonitor(const Term& watcher, const Term& ref);
  void link(const Term& pid, const Term& other);
  void unlink(const Term& pid, const Term& other);
  // The process `pid` ended: fires its links and monitors and frees its
  // name. Thread-safe.
  void exited(const Term& pid, Term reason);

  // dist::ConnectionOwner.
  dist::Admission admit(dist::Connection& connection) override;
  void replace(dist::Connection& connection) override;
  void on_up(const std::shared_ptr<dist::Connection>& connection) override;
  void on_control(dist::Connection& connection, const Term& control, const Term* message) override;
  void on_closed(const std::shared_ptr<dist::Connection>& connection, dist::Closure closure,
                 const std::string& why) override;

 private:
  struct Monitor {
    Term watcher;          // the process that gets DOWN
    Term target;           // the monitored pid
    Term target_as_given;  // pid or registered name, as the watcher named it
  };

  // Naming and start-up (node.cc).
  std::string resolve_name();
  bool open_listener();
  void spawn_builtins();
  void step_accept();
  dist::LocalNode local_node() const;

  // Registry (node.cc); any thread.
  std::shared_ptr<LocalMailbox> find_mailbox(const Term& pid) const;
  std::optional<Term> whereis(Atom name) const;
  bool is_local(const Term& pid) const;
  Term new_pid();
  void unregister(const Term& pid);

  // Delivery and signals (dist_node.cc); node thread. `origin` is the node
  // the message came from, reported by message_origin() while the handler
  // runs; local deliveries come from this node.
  void deliver(const Term& to_pid, Term message, std::optional<Atom> origin = std::nullopt);
  void send_to_node(Atom node, const Term& control, const Term* message, bool connect_if_needed);
  void handle_signal(const dist::Signal& signal, Atom origin);
  void handle_link(const dist::Signal& signal);
  void handle_unlink(const dist::Signal& signal);
  void handle_exit(const dist::Signal& signal, bool linked_only);
  void handle_monitor(const dist::Signal& signal);
  void handle_monitor_exit(const dist::Signal& signal);
  void add_monitor(const Term& ref, Monitor monitor);
  std::optional<Monitor> remove_monitor(const Term& ref);
  void fire_links(const Term& pid, const Term& reason);
  void fire_monitors(const Term& pid, const Term& reason);
  void drop_own_monitors(const Term& pid);
  void connection_lost(Atom peer);

  // Connections over time (dist_node.cc).
  void log_failure(Atom peer, const std::string& why);
  void schedule_reconnect(Atom peer);
  void await_simultaneous(Atom peer);
  void fire_node_event(Atom node, bool up);
  void after(std::chrono::milliseconds delay, std::function<void()> action);

  // Built-in processes and discovery (dist_builtins.cc).
  void handle_net_kernel(const Term& message);
  void handle_rex(const Term& message);
  void handle_system(const Term& message);
  void handle_spawn_request(const dist::Signal& signal);
  std::optional<Term> apply_builtin(const Term& module, const Term& function, const Term& args,
                                    Term* error) const;
  std::optional<std::vector<Atom>> nodes_of_kinds(const Term& kinds) const;
  void discover();
  void schedule_discovery();

  boost::asio::io_context& io_;
  NodeOptions options_;
  Atom name_;
  std::string alive_;
  std::string name_error_;
  std::string cookie_;
  std::uint32_t creation_ = 0;
  std::uint16_t port_ = 0;
  bool started_ = false;
  bool stopping_ = false;
  // The node the message being handled came from; set only while a mailbox
  // handler runs.
  std::optional<Atom> message_origin_;

  epmd::Registration registration_;
  boost::asio::ip::tcp::acceptor acceptor_;

  mutable std::mutex registry_mutex_;
  std::unordered_map<Term, std::weak_ptr<LocalMailbox>, TermHash> mailboxes_;
  std::unordered_map<Atom, Term> names_;
  std::atomic<std::uint64_t> next_pid_{1};
  std::atomic<std::uint64_t> next_ref_{1};

  std::unordered_map<Term, std::set<Term>, TermHash> links_;
  std::map<Term, Monitor> monitors_;
  std::unordered_map<Term, std::set<Term>, TermHash> monitors_of_target_;
  std::unordered_map<Term, std::set<Term>, TermHash> monitors_of_watcher_;
  std::int64_t next_unlink_id_ = 1;

  std::unordered_map<Atom, std::shared_ptr<dist::Connection>> connections_;
  std::set<std::shared_ptr<dist::Connection>> unnamed_;
  std::unordered_map<Atom, std::vector<std::string>> outbox_;
  std::unordered_map<Atom, std::string> last_failure_;
  std::unordered_set<Atom> configured_;
  std::unordered_map<Atom, std::chrono::milliseconds> backoff_;
  std::unordered_set<Atom> reconnect_pending_;
  std::set<std::shared_ptr<boost::asio::steady_timer>> timers_;

  std::map<int, Node::NodeEventHandler> node_handlers_;
  int next_handler_id_ = 1;

  std::shared_ptr<Mailbox> net_kernel_;
  std::shared_ptr<Mailbox> rex_;
  // Sender of anonymous sends and of discovery calls.
  std::shared_ptr<Mailbox> system_;
};

}  // namespace presence
