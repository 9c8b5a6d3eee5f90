// NodeCore: message delivery, links and monitors, and the distribution
// connections it owns.
#include "cnode/dist_node.h"

#include <algorithm>
#include <utility>

namespace presence {
namespace {

const Term kNoproc = Term::atom("noproc");
const Term kNoconnection = Term::atom("noconnection");

Term exit_message(const Term& from, const Term& reason) {
  return Term::tuple({Term::atom("EXIT"), from, reason});
}

Term down_message(const Term& ref, const Term& target, const Term& reason) {
  return Term::tuple({Term::atom("DOWN"), ref, Term::atom("process"), target, reason});
}

Atom node_of(const Term& pid) {
  return pid.is_pid() ? pid.as_pid().node : Atom();
}

}  // namespace

// ---- Delivery ----

// Local messages go through the io_context, so a handler never runs inside
// another one and messages between two mailboxes keep their order.
void NodeCore::deliver(const Term& to_pid, Term message, std::optional<Atom> origin) {
  auto mailbox = find_mailbox(to_pid);
  if (!mailbox) return;
  boost::asio::post(io_, [core = weak_from_this(), weak = std::weak_ptr<LocalMailbox>(mailbox),
                          message = std::move(message), origin = origin.value_or(name())] {
    auto self = core.lock();
    auto mailbox = weak.lock();
    if (!self || !mailbox) return;
    self->message_origin_ = origin;
    mailbox->deliver(message);
    self->message_origin_.reset();
  });
}

void NodeCore::send_to_node(Atom node, const Term& control, const Term* message,
                            bool connect_if_needed) {
  auto it = connections_.find(node);
  if (it == connections_.end() && !connect_if_needed) return;
  std::string packet = dist::encode_packet(control, message);
  if (it != connections_.end() && it->second->up()) return it->second->send(std::move(packet));
  if (stopping_) return;
  outbox_[node].push_back(std::move(packet));
  connect(node);
}

void NodeCore::route(const Term& from, const Term& to_pid, Term message) {
  if (!to_pid.is_pid()) return;
  if (is_local(to_pid)) return deliver(to_pid, std::move(message));
  // A pid of an earlier incarnation of this node names nobody.
  if (node_of(to_pid) == name_) return;
  // SEND_SENDER names the sender, when the connection is known to take it.
  auto it = connections_.find(node_of(to_pid));
  bool with_sender = it != connections_.end() && it->second->up() &&
                     (it->second->flags() & dist::kFlagSendSender) != 0;
  Term control = with_sender ? dist::send_sender_control(from, to_pid) : dist::send_control(to_pid);
  send_to_node(node_of(to_pid), control, &message, true);
}

void NodeCore::route_named(const Term& from, Atom name, Atom node, Term message) {
  if (node == name_) {
    if (auto pid = whereis(name)) deliver(*pid, std::move(message));
    return;
  }
  send_to_node(node, dist::reg_send_control(from, Term::atom(name)), &message, true);
}

// ---- Links and monitors made by local mailboxes ----

void NodeCore::monitor(const Term& watcher, const Term& target, const Term& ref) {
  if (!target.is_pid() || (node_of(target) == name_ && !find_mailbox(target))) {
    return deliver(watcher, down_message(ref, target, kNoproc));
  }
  add_monitor(ref, Monitor{watcher, target, target});
  if (is_local(target)) return;
  send_to_node(node_of(target), dist::monitor_control(watcher, target, ref), nullptr, true);
}

void NodeCore::demonitor(const Term& watcher, const Term& ref) {
  auto it = monitors_.find(ref);
  if (it == monitors_.end() || it->second.watcher != watcher) return;
  Monitor monitor = *remove_monitor(ref);
  if (is_local(monitor.target)) return;
  send_to_node(node_of(monitor.target), dist::demonitor_control(watcher, monitor.target, ref),
               nullptr, false);
}

void NodeCore::link(const Term& pid, const Term& other) {
  if (!other.is_pid() || other == pid) return;
  if (node_of(other) == name_ && !find_mailbox(other)) {
    return deliver(pid, exit_message(other, kNoproc));
  }
  if (!links_[pid].insert(other).second) return;
  if (is_local(other)) {
    links_[other].insert(pid);
    return;
  }
  send_to_node(node_of(other), dist::link_control(pid, other), nullptr, true);
}

void NodeCore::unlink(const Term& pid, const Term& other) {
  auto it = links_.find(pid);
  if (it == links_.end() || it->second.erase(other) == 0) return;
  if (it->second.empty()) links_.erase(it);
  if (is_local(other)) {
    auto back = links_.find(other);
    if (back != links_.end() && back->second.erase(pid) > 0 && back->second.empty()) {
      links_.erase(back);
    }
    return;
  }
  // UNLINK_ID is what every node since OTP 23 expects; the peer answers
  // with UNLINK_ID_ACK, which needs no action here.
  Term id = Term::integer(next_unlink_id_++);
  send_to_node(node_of(other), dist::unlink_id_control(id, pid, other), nullptr, false);
}

void NodeCore::add_monitor(const Term& ref, Monitor monitor) {
  if (is_local(monitor.target)) monitors_of_target_[monitor.target].insert(ref);
  if (is_local(monitor.watcher)) monitors_of_watcher_[monitor.watcher].insert(ref);
  monitors_[ref] = std::move(monitor);
}

std::optional<NodeCore::Monitor> NodeCore::remove_monitor(const Term& ref) {
  auto it = monitors_.find(ref);
  if (it == monitors_.end()) return std::nullopt;
  Monitor monitor = std::move(it->second);
  monitors_.erase(it);
  for (auto* index : {&monitors_of_target_, &monitors_of_watcher_}) {
    for (const Term& pid : {monitor.target, monitor.watcher}) {
      auto entry = index->find(pid);
      if (entry == index->end()) continue;
      entry->second.erase(ref);
      if (entry->second.empty()) index->erase(entry);
    }
  }
  return monitor;
}

// ---- A local process ended ----

void NodeCore::fire_links(const Term& pid, const Term& reason) {
  auto it = links_.find(pid);
  if (it == links_.end()) return;
  std::set<Term> partners = std::move(it->second);
  links_.erase(it);
  for (const Term& partner : partners) {
    if (!is_local(partner)) {
      send_to_node(node_of(partner), dist::exit_control(pid, partner, reason), nullptr, false);
      continue;
    }
    auto back = links_.find(partner);
    if (back != links_.end() && back->second.erase(pid) > 0 && back->second.empty()) {
      links_.erase(back);
    }
    deliver(partner, exit_message(pid, reason));
  }
}

void NodeCore::fire_monitors(const Term& pid, const Term& reason) {
  auto it = monitors_of_target_.find(pid);
  if (it == monitors_of_target_.end()) return;
  std::set<Term> refs = it->second;
  for (const Term& ref : refs) {
    auto monitor = remove_monitor(ref);
    if (!monitor) continue;
    if (is_local(monitor->watcher)) {
      deliver(monitor->watcher, down_message(ref, monitor->target, reason));
      continue;
    }
    send_to_node(
        node_of(monitor->watcher),
        dist::monitor_exit_control(monitor->target_as_given, monitor->watcher, ref, reason),
        nullptr, false);
  }
}

// Monitors the ended process held on others are of no use any more.
void NodeCore::drop_own_monitors(const Term& pid) {
  auto it = monitors_of_watcher_.find(pid);
  if (it == monitors_of_watcher_.end()) return;
  std::set<Term> refs = it->second;
  for (const Term& ref : refs) demonitor(pid, ref);
}

// ---- Signals from peers ----

void NodeCore::on_control(dist::Connection& connection, const Term& control, const Term* message) {
  std::string error;
  auto signal = dist::parse_signal(control, message, &error);
  if (!signal) {
    return log(LogLevel::kWarning, "dropped a control message from " +
                                       std::string(connection.peer().text()) + ": " + error);
  }
  handle_signal(*signal, connection.peer());
}

void NodeCore::handle_signal(const dist::Signal& signal, Atom origin) {
  using Kind = dist::Signal::Kind;
  switch (signal.kind) {
    case Kind::kSend:
      if (is_local(signal.to)) deliver(signal.to, signal.payload, origin);
      return;
    case Kind::kRegSend:
      if (auto pid = whereis(signal.to.as_atom())) deliver(*pid, signal.payload, origin);
      return;
    case Kind::kAliasSend:
      // This node makes no aliases; a pid of its own is honoured as one.
      if (is_local(signal.to)) deliver(signal.to, signal.payload, origin);
      return;
    case Kind::kLink:
      return handle_link(signal);
    case Kind::kUnlink:
      return handle_unlink(signal);
    case Kind::kExit:
      return handle_exit(signal, true);
    case Kind::kExit2:
      return handle_exit(signal, false);
    case Kind::kMonitor:
      return handle_monitor(signal);
    case Kind::kDemonitor:
      remove_monitor(signal.id);
      return;
    case Kind::kMonitorExit:
      return handle_monitor_exit(signal);
    case Kind::kSpawnRequest:
      return handle_spawn_request(signal);
    case Kind::kIgnored:
      return;
  }
}

void NodeCore::handle_link(const dist::Signal& signal) {
  if (is_local(signal.to) && find_mailbox(signal.to)) {
    links_[signal.to].insert(signal.from);
    return;
  }
  send_to_node(node_of(signal.from), dist::exit_control(signal.to, signal.from, kNoproc), nullptr,
               false);
}

void NodeCore::handle_unlink(const dist::Signal& signal) {
  auto it = links_.find(signal.to);
  if (it != links_.end() && it->second.erase(signal.from) > 0 && it->second.empty()) {
    links_.erase(it);
  }
  if (!signal.has_id) return;
  send_to_node(node_of(signal.from), dist::unlink_id_ack_control(signal.id, signal.to, signal.from),
               nullptr, false);
}

// Every mailbox traps exits, so an exit signal becomes a message. A link
// exit counts only while the link exists; exit/2 always does.
void NodeCore::handle_exit(const dist::Signal& signal, bool linked_only) {
  if (!is_local(signal.to)) return;
  if (linked_only) {
    auto it = links_.find(signal.to);
    if (it == links_.end() || it->second.erase(signal.from) == 0) return;
    if (it->second.empty()) links_.erase(it);
  }
  deliver(signal.to, exit_message(signal.from, signal.payload));
}

void NodeCore::handle_monitor(const dist::Signal& signal) {
  std::optional<Term> target;
  if (signal.to.is_atom()) {
    target = whereis(signal.to.as_atom());
  } else if (is_local(signal.to) && find_mailbox(signal.to)) {
    target = signal.to;
  }
  if (!target) {
    return send_to_node(node_of(signal.from),
                        dist::monitor_exit_control(signal.to, signal.from, signal.id, kNoproc),
                        nullptr, false);
  }
  add_monitor(signal.id, Monitor{signal.from, *target, signal.to});
}

void NodeCore::handle_monitor_exit(const dist::Signal& signal) {
  auto it = monitors_.find(signal.id);
  if (it == monitors_.end() || it->second.watcher != signal.to) return;
  Monitor monitor = *remove_monitor(signal.id);
  deliver(monitor.watcher, down_message(signal.id, monitor.target, signal.payload));
}

// Ends every link and monitor between local processes and processes of
// `peer`, and forgets what was waiting to be sent there.
void NodeCore::connection_lost(Atom peer) {
  outbox_.erase(peer);
  for (auto it = links_.begin(); it != links_.end();) {
    std::set<Term>& partners = it->second;
    for (auto partner = partners.begin(); partner != partners.end();) {
      if (node_of(*partner) != peer) {
        ++partner;
        continue;
      }
      deliver(it->first, exit_message(*partner, kNoconnection));
      partner = partners.erase(partner);
    }
    it = partners.empty() ? links_.erase(it) : std::next(it);
  }

  std::vector<Term> refs;
  for (const auto& [ref, monitor] : monitors_) {
    if (node_of(monitor.watcher) == peer || node_of(monitor.target) == peer) refs.push_back(ref);
  }
  for (const Term& ref : refs) {
    Monitor monitor = *remove_monitor(ref);
    if (is_local(monitor.watcher)) {
      deliver(monitor.watcher, down_message(ref, monitor.target, kNoconnection));
    }
  }
}

// ---- Connections ----

void NodeCore::connect(Atom node) {
  if (stopping_ || !started_ || node == name_ || connections_.count(node) > 0) return;
  if (!dist::is_node_name(node.text())) {
    return log(LogLevel::kWarning,
               "cannot connect to '" + std::string(node.text()) + "': not a node name (name@host)");
  }
  auto connection = dist::Connection::open(io_, weak_from_this(), local_node(), node);
  connections_[node] = connection;
  connection->start();
}

dist::Admission NodeCore::admit(dist::Connection& connection) {
  auto self = connection.shared_from_this();
  unnamed_.erase(self);
  Atom peer = connection.peer();
  if (peer == name_ || stopping_) return dist::Admission::kNotAllowed;
  auto it = connections_.find(peer);
  if (it == connections_.end()) {
    connections_[peer] = self;
    return dist::Admission::kOk;
  }
  if (it->second->up()) return dist::Admission::kAlive;
  // Both sides connect at once: the connection started by the node with
  // the greater name wins, on both sides.
  if (name_.text() > peer.text()) return dist::Admission::kNok;
  it->second->close();
  it->second = self;
  return dist::Admission::kOkSimultaneous;
}

void NodeCore::replace(dist::Connection& connection) {
  Atom peer = connection.peer();
  auto it = connections_.find(peer);
  if (it != connections_.end()) {
    bool was_up = it->second->up();
    it->second->close();
    if (was_up) {
      log(LogLevel::kWarning, "node down: " + std::string(peer.text()) +
                                  " (it reconnected, so the old connection was stale)");
      connection_lost(peer);
      fire_node_event(peer, false);
    }
  }
  connections_[peer] = connection.shared_from_this();
}

void NodeCore::on_up(const std::shared_ptr<dist::Connection>& connection) {
  Atom peer = connection->peer();
  auto it = connections_.find(peer);
  if (it == connections_.end() || it->second != connection) return connection->close();
  last_failure_.erase(peer);
  backoff_.erase(peer);
  log(LogLevel::kInfo, "node up: " + std::string(peer.text()));
  auto queued = outbox_.find(peer);
  if (queued != outbox_.end()) {
    std::vector<std::string> packets = std::move(queued->second);
    outbox_.erase(queued);
    for (std::string& packet : packets) connection->send(std::move(packet));
  }
  fire_node_event(peer, true);
}

void NodeCore::on_closed(const std::shared_ptr<dist::Connection>& connection, dist::Closure closure,
                         const std::string& why) {
  Atom peer = connection->peer();
  unnamed_.erase(connection);
  auto it = connections_.find(peer);
  if (it == connections_.end() || it->second != connection) {
    std::string who = peer == Atom() ? "an unnamed peer" : std::string(peer.text());
    return log(LogLevel::kDebug, "connection with " + who + " ended: " + why);
  }
  connections_.erase(it);
  if (closure == dist::Closure::kSuperseded) {
    log(LogLevel::kDebug, "connection with " + std::string(peer.text()) + " ended: " + why);
    return await_simultaneous(peer);
  }
  if (closure == dist::Closure::kLost) {
    log(LogLevel::kWarning, "node down: " + std::string(peer.text()) + " (" + why + ")");
  } else {
    log_failure(peer, why);
  }
  connection_lost(peer);
  fire_node_event(peer, false);
  schedule_reconnect(peer);
}

// Repeats of the same failure (a node that stays away, a cookie that stays
// wrong) are logged at debug level only.
void NodeCore::log_failure(Atom peer, const std::string& why) {
  std::string line = "handshake with " + std::string(peer.text()) + " failed: " + why;
  auto [it, first] = last_failure_.try_emplace(peer, why);
  bool repeat = !first && it->second == why;
  it->second = why;
  log(repeat ? LogLevel::kDebug : LogLevel::kWarning, line);
}

// The peer refused this node's connection because its own, in the other
// direction, wins. If that one does not come, what waited for the peer is
// given up as for a failed connection.
void NodeCore::await_simultaneous(Atom peer) {
  after(local_node().setup_timeout, [this, peer] {
    if (connections_.count(peer) > 0) return;
    connection_lost(peer);
    fire_node_event(peer, false);
    schedule_reconnect(peer);
  });
}

void NodeCore::schedule_reconnect(Atom peer) {
  if (stopping_ || configured_.count(peer) == 0 || !reconnect_pending_.insert(peer).second) return;
  auto [it, first] = backoff_.try_emplace(peer, options_.reconnect_min);
  std::chrono::milliseconds delay = it->second;
  it->second = std::min(delay * 2, options_.reconnect_max);
  after(delay, [this, peer] {
    reconnect_pending_.erase(peer);
    connect(peer);
  });
}

void NodeCore::fire_node_event(Atom node, bool up) {
  std::vector<int> ids;
  for (const auto& [id, handler] : node_handlers_) ids.push_back(id);
  for (int id : ids) {
    auto it = node_handlers_.find(id);
    if (it == node_handlers_.end()) continue;
    Node::NodeEventHandler handler = it->second;  // it may remove itself
    handler(node, up);
  }
}

// Runs action on the node thread after delay, unless the node stops first.
void NodeCore::after(std::chrono::milliseconds delay, std::function<void()> action) {
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, delay);
  timers_.insert(timer);
  timer->async_wait(
      [weak = weak_from_this(), timer, action = std::move(action)](boost::system::error_code ec) {
        auto self = weak.lock();
        if (!self) return;
        self->timers_.erase(timer);
        if (ec || self->stopping_) return;
        action();
      });
}

}  // namespace presence
