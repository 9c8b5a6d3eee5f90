// An in-memory Node for unit tests of the processes that run on the C++
// node: local mailboxes, monitors and node events behave as the real node
// describes them, while every message to another node is recorded instead of
// sent. Messages to local mailboxes and DOWN notifications are delivered
// from the io_context, as on the real node, so a test runs io.poll() to see
// them arrive.
//
// Single-threaded: use it only on the thread that runs the io_context.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cnode/asio.h"
#include "cnode/node.h"
#include "term/term.h"

namespace presence::testing {

class FakeNode;

class FakeMailbox : public Mailbox {
 public:
  FakeMailbox(FakeNode& node, Term pid, std::optional<Atom> name, Handler handler)
      : node_(node), pid_(std::move(pid)), name_(name), handler_(std::move(handler)) {}

  const Term& pid() const override { return pid_; }
  std::optional<Atom> registered_name() const override { return name_; }
  void send(const Term& to_pid, Term message) override;
  void send(Atom name, Atom node, Term message) override;
  Term monitor(const Term& pid) override;
  void demonitor(const Term& ref) override;
  void link(const Term&) override {}
  void unlink(const Term&) override {}
  void close(Term reason = Term::atom("normal")) override;

  bool closed() const { return closed_; }
  void receive(const Term& message) {
    if (!closed_) handler_(message);
  }

 private:
  FakeNode& node_;
  Term pid_;
  std::optional<Atom> name_;
  Handler handler_;
  bool closed_ = false;
};

class FakeNode : public Node {
 public:
  // A message that left for another node.
  struct Sent {
    Term from;                    // the sending mailbox's pid, or [] if none
    Term to;                      // a pid, or the registered name as an atom
    std::optional<Atom> to_node;  // set when sent to a registered name
    Term message;
  };

  explicit FakeNode(boost::asio::io_context& io, std::string name = "cpp@localhost")
      : io_(io), name_(name) {}

  // --- what a test drives ---

  // A pid of another node, as that node would make it.
  Term remote_pid(std::string_view node, std::uint32_t id) {
    return Term::pid(PidValue{Atom(node), id, 0, 1});
  }
  // Delivers message to a local pid or registered name, as if it came from
  // the network (from node `origin`, when given).
  void deliver(const Term& to, const Term& message, std::optional<Atom> origin = std::nullopt) {
    boost::asio::post(io_, [this, to, message, origin] {
      FakeMailbox* mailbox = find(to);
      if (!mailbox) {
        ++undeliverable;
        return;
      }
      origin_ = origin;
      mailbox->receive(message);
      origin_.reset();
    });
  }
  // Connection up or down: runs the node-event handlers.
  void node_event(std::string_view node, bool up) {
    Atom atom(node);
    if (up) {
      connected_.insert(atom);
    } else {
      connected_.erase(atom);
    }
    auto handlers = event_handlers_;
    for (const auto& [id, handler] : handlers) handler(atom, up);
  }
  // A remote process ended: DOWN goes to the mailboxes monitoring it.
  void remote_down(const Term& pid, Term reason) { fire_monitors(pid, std::move(reason)); }

  std::vector<Sent> sent;
  std::vector<std::pair<LogLevel, std::string>> logs;
  // Local messages whose receiver had ended (or never existed).
  int undeliverable = 0;

  // Messages sent so far to `to` (a pid, or a registered name as an atom).
  std::vector<Term> sent_to(const Term& to) const {
    std::vector<Term> messages;
    for (const Sent& s : sent) {
      if (s.to == to) messages.push_back(s.message);
    }
    return messages;
  }
  bool monitored(const Term& pid) const {
    for (const auto& [ref, monitor] : monitors_) {
      if (monitor.target == pid) return true;
    }
    return false;
  }

  // --- Node ---

  bool start() override { return true; }
  void stop() override {}
  Atom name() const override { return name_; }
  std::uint32_t creation() const override { return 1; }
  std::uint16_t port() const override { return 0; }

  std::shared_ptr<Mailbox> spawn(Mailbox::Handler handler,
                                 std::optional<Atom> name = std::nullopt) override {
    if (name && names_.contains(*name)) return nullptr;
    Term pid = Term::pid(PidValue{name_, next_pid_++, 0, 1});
    auto mailbox = std::make_shared<FakeMailbox>(*this, pid, name, std::move(handler));
    mailboxes_[pid] = mailbox;
    if (name) names_[*name] = pid;
    return mailbox;
  }

  void send(const Term& to_pid, Term message) override { route(Term(), to_pid, message); }
  void send(Atom name, Atom node, Term message) override {
    route_named(Term(), name, node, message);
  }

  Term make_ref() override { return Term::reference(RefValue{name_, 1, {next_ref_++, 0, 0}}); }

  std::vector<Atom> connected_nodes() const override {
    return std::vector<Atom>(connected_.begin(), connected_.end());
  }
  void connect(Atom) override {}
  int on_node_event(NodeEventHandler handler) override {
    event_handlers_[next_handler_] = std::move(handler);
    return next_handler_++;
  }
  void remove_node_event_handler(int id) override { event_handlers_.erase(id); }

  void log(LogLevel level, const std::string& message) override {
    logs.emplace_back(level, message);
  }
  boost::asio::io_context& io() override { return io_; }
  std::optional<Atom> message_origin() const override { return origin_; }

  // --- used by FakeMailbox ---

  void route(const Term& from, const Term& to, const Term& message) {
    if (to.is_pid() && to.as_pid().node == name_) {
      deliver(to, message);
    } else {
      sent.push_back(Sent{from, to, std::nullopt, message});
    }
  }
  void route_named(const Term& from, Atom name, Atom node, const Term& message) {
    if (node == name_) {
      deliver(Term::atom(name), message);
    } else {
      sent.push_back(Sent{from, Term::atom(name), node, message});
    }
  }
  Term add_monitor(const Term& watcher, const Term& target) {
    Term ref = make_ref();
    monitors_[ref] = Monitor{watcher, target};
    bool local = target.as_pid().node == name_;
    if (local && !find(target)) fire_monitors(target, Term::atom("noproc"));
    return ref;
  }
  void remove_monitor(const Term& ref) { monitors_.erase(ref); }
  void closed(const Term& pid, Term reason) {
    for (auto it = names_.begin(); it != names_.end(); ++it) {
      if (it->second == pid) {
        names_.erase(it);
        break;
      }
    }
    mailboxes_.erase(pid);
    fire_monitors(pid, std::move(reason));
  }

 private:
  struct Monitor {
    Term watcher;
    Term target;
  };

  FakeMailbox* find(const Term& to) {
    Term pid = to;
    if (to.is_atom()) {
      auto it = names_.find(to.as_atom());
      if (it == names_.end()) return nullptr;
      pid = it->second;
    }
    auto it = mailboxes_.find(pid);
    if (it == mailboxes_.end()) return nullptr;
    auto mailbox = it->second.lock();
    return mailbox ? mailbox.get() : nullptr;
  }
  void fire_monitors(const Term& pid, const Term& reason) {
    for (auto it = monitors_.begin(); it != monitors_.end();) {
      if (it->second.target != pid) {
        ++it;
        continue;
      }
      deliver(it->second.watcher,
              Term::tuple({Term::atom("DOWN"), it->first, Term::atom("process"), pid, reason}));
      it = monitors_.erase(it);
    }
  }

  boost::asio::io_context& io_;
  Atom name_;
  std::optional<Atom> origin_;
  std::uint32_t next_pid_ = 1;
  std::uint32_t next_ref_ = 1;
  int next_handler_ = 0;
  std::map<Term, std::weak_ptr<FakeMailbox>> mailboxes_;
  std::map<Atom, Term> names_;
  std::map<Term, Monitor> monitors_;
  std::set<Atom> connected_;
  std::map<int, NodeEventHandler> event_handlers_;
};

inline void FakeMailbox::send(const Term& to_pid, Term message) {
  node_.route(pid_, to_pid, message);
}
inline void FakeMailbox::send(Atom name, Atom node, Term message) {
  node_.route_named(pid_, name, node, message);
}
inline Term FakeMailbox::monitor(const Term& pid) {
  return node_.add_monitor(pid_, pid);
}
inline void FakeMailbox::demonitor(const Term& ref) {
  node_.remove_monitor(ref);
}
inline void FakeMailbox::close(Term reason) {
  if (closed_) return;
  closed_ = true;
  node_.closed(pid_, std::move(reason));
}

}  // namespace presence::testing
