#include "cnode/pg.h"

#include <algorithm>
#include <cassert>
#include <optional>
#include <set>
#include <string>

#include "cnode/peer_input.h"

namespace presence {
namespace {

const Atom kDiscover("discover");
const Atom kSync("sync");
const Atom kJoin("join");
const Atom kLeave("leave");
const Atom kGenCast("$gen_cast");

bool is_local(const Term& pid, Atom node) {
  return pid.as_pid().node == node;
}

// Pid | [Pid] as pg sends it; nullopt if it is neither.
std::optional<std::vector<Term>> pid_or_pids(const Term& term) {
  if (term.is_pid()) return std::vector<Term>{term};
  if (!term.is_proper_list()) return std::nullopt;
  std::vector<Term> pids(term.elements().begin(), term.elements().end());
  if (!std::all_of(pids.begin(), pids.end(), [](const Term& t) { return t.is_pid(); })) {
    return std::nullopt;
  }
  return pids;
}

// [{Group, [Pid]}] as a sync carries it; nullopt if malformed. A group
// listed twice keeps its last entry, as maps:from_list/1 does in pg.
std::optional<std::map<Term, std::vector<Term>>> sync_groups(const Term& term) {
  if (!term.is_proper_list()) return std::nullopt;
  std::map<Term, std::vector<Term>> groups;
  for (const Term& entry : term.elements()) {
    if (!entry.is_tuple(2) || !entry[1].is_proper_list()) return std::nullopt;
    auto pids = pid_or_pids(entry[1]);
    if (!pids) return std::nullopt;
    groups[entry[0]] = std::move(*pids);
  }
  return groups;
}

// Removes one occurrence of each of `pids` from `from`, as Erlang's `--`.
// Returns the pids actually removed.
std::vector<Term> subtract(std::vector<Term>& from, std::span<const Term> pids) {
  std::vector<Term> removed;
  for (const Term& pid : pids) {
    auto it = std::find(from.begin(), from.end(), pid);
    if (it == from.end()) continue;
    from.erase(it);
    removed.push_back(pid);
  }
  return removed;
}

void prepend(std::vector<Term>& to, std::span<const Term> pids) {
  to.insert(to.begin(), pids.begin(), pids.end());
}

}  // namespace

std::shared_ptr<PgScope> PgScope::start(Node& node, PgScopeOptions options) {
  std::shared_ptr<PgScope> scope(new PgScope(node, std::move(options)));
  std::weak_ptr<PgScope> weak = scope;
  auto mailbox = node.spawn(
      [weak](const Term& message) {
        if (auto self = weak.lock()) self->handle_message(message);
      },
      scope->options_.scope);
  if (!mailbox) {
    node.log(LogLevel::kError, "pg scope " + std::string(scope->options_.scope.text()) +
                                   ": the name is already registered on this node");
    return nullptr;
  }
  scope->attach(std::move(mailbox));
  return scope;
}

PgScope::PgScope(Node& node, PgScopeOptions options) : node_(node), options_(std::move(options)) {}

void PgScope::attach(std::shared_ptr<Mailbox> mailbox) {
  mailbox_ = std::move(mailbox);
  std::weak_ptr<PgScope> weak = weak_from_this();
  node_event_id_ = node_.on_node_event([weak](Atom node, bool up) {
    if (auto self = weak.lock()) self->handle_node_event(node, up);
  });
  for (Atom node : node_.connected_nodes()) start_discovery(node);
}

PgScope::~PgScope() {
  if (node_event_id_ >= 0) node_.remove_node_event_handler(node_event_id_);
  if (mailbox_) mailbox_->close();
}

const Term& PgScope::pid() const {
  return mailbox_->pid();
}

// --- local API ---

bool PgScope::join(const Term& group, const Term& pid) {
  if (!pid.is_pid() || !is_local(pid, node_.name())) return false;
  auto [it, inserted] = local_.try_emplace(pid);
  if (inserted) it->second.monitor_ref = mailbox_->monitor(pid);
  it->second.groups.push_back(group);
  add_members(group, std::span(&pid, 1), true);
  broadcast_to_peers(Term::tuple({Term::atom(kJoin), this->pid(), group, pid}));
  return true;
}

bool PgScope::leave(const Term& group, const Term& pid) {
  auto it = local_.find(pid);
  if (it == local_.end()) return false;
  auto& groups = it->second.groups;
  auto position = std::find(groups.begin(), groups.end(), group);
  if (position == groups.end()) return false;
  groups.erase(position);
  if (groups.empty()) {
    mailbox_->demonitor(it->second.monitor_ref);
    local_.erase(it);
  }
  remove_members(group, std::span(&pid, 1));
  broadcast_to_peers(Term::tuple({Term::atom(kLeave), this->pid(), pid, Term::list({group})}));
  return true;
}

std::vector<Term> PgScope::get_members(const Term& group) const {
  auto it = groups_.find(group);
  return it == groups_.end() ? std::vector<Term>{} : it->second.all;
}

std::vector<Term> PgScope::get_local_members(const Term& group) const {
  auto it = groups_.find(group);
  return it == groups_.end() ? std::vector<Term>{} : it->second.local;
}

std::vector<Term> PgScope::which_groups() const {
  std::vector<Term> groups;
  for (const auto& [group, members] : groups_) groups.push_back(group);
  return groups;
}

std::vector<Term> PgScope::which_local_groups() const {
  std::vector<Term> groups;
  for (const auto& [group, members] : groups_) {
    if (!members.local.empty()) groups.push_back(group);
  }
  return groups;
}

std::vector<Term> PgScope::peers() const {
  std::vector<Term> peers;
  for (const auto& [pid, peer] : peers_) peers.push_back(pid);
  return peers;
}

int PgScope::on_change(ChangeHandler handler) {
  int id = next_handler_id_++;
  change_handlers_.emplace(id, std::move(handler));
  return id;
}

void PgScope::remove_change_handler(int id) {
  change_handlers_.erase(id);
}

// --- messages from peers ---

void PgScope::handle_message(const Term& message) {
  if (!dispatch(message)) drop_malformed(message);
}

bool PgScope::dispatch(const Term& message) {
  if (message.is_tuple(2) && message[0].is_atom(kGenCast.text())) {
    const Term& request = message[1];
    return request.is_tuple(3) && request[0].is_atom(kSync.text()) && request[1].is_pid() &&
           handle_sync(request[1], request[2]);
  }
  if (message.is_tuple(2) && message[0].is_atom(kDiscover.text()) && message[1].is_pid()) {
    handle_discover(message[1]);
    return true;
  }
  if (message.is_tuple(4) && message[0].is_atom(kJoin.text()) && message[1].is_pid()) {
    return handle_join(message[1], message[2], message[3]);
  }
  if (message.is_tuple(4) && message[0].is_atom(kLeave.text()) && message[1].is_pid()) {
    return handle_leave(message[1], message[2], message[3]);
  }
  if (is_down_message(message)) {
    handle_down(message[1], message[3], message[4]);
    return true;
  }
  return false;
}

void PgScope::handle_discover(const Term& peer) {
  stop_discovery(peer.as_pid().node);
  mailbox_->send(peer, Term::tuple({Term::atom(kGenCast),
                                    Term::tuple({Term::atom(kSync), pid(), local_groups_term()})}));
  if (peers_.contains(peer)) return;
  known_peer(peer);
  mailbox_->send(peer, Term::tuple({Term::atom(kDiscover), pid()}));
}

bool PgScope::handle_sync(const Term& peer, const Term& groups_term) {
  auto groups = sync_groups(groups_term);
  if (!groups) return false;
  stop_discovery(peer.as_pid().node);
  Peer& known = known_peer(peer);
  std::map<Term, std::vector<Term>> old_groups = std::move(known.groups);
  known.groups = *groups;

  std::set<Term> touched;
  for (const auto& [group, pids] : old_groups) touched.insert(group);
  for (const auto& [group, pids] : *groups) touched.insert(group);
  for (const Term& group : touched) {
    auto old_it = old_groups.find(group);
    auto new_it = groups->find(group);
    std::span<const Term> old_pids, new_pids;
    if (old_it != old_groups.end()) old_pids = old_it->second;
    if (new_it != groups->end()) new_pids = new_it->second;
    if (std::equal(old_pids.begin(), old_pids.end(), new_pids.begin(), new_pids.end())) continue;
    remove_members(group, old_pids);
    add_members(group, new_pids, false);
  }
  return true;
}

bool PgScope::handle_join(const Term& peer, const Term& group, const Term& pids_term) {
  auto pids = pid_or_pids(pids_term);
  if (!pids) return false;
  // A join from a scope not (or no longer) known is a race with its
  // disconnection; pg ignores it too, and its next sync will be complete.
  auto it = peers_.find(peer);
  if (it == peers_.end()) return true;
  prepend(it->second.groups[group], *pids);
  add_members(group, *pids, false);
  return true;
}

bool PgScope::handle_leave(const Term& peer, const Term& pids_term, const Term& groups) {
  auto pids = pid_or_pids(pids_term);
  if (!pids || !groups.is_proper_list()) return false;
  auto it = peers_.find(peer);
  if (it == peers_.end()) return true;
  auto& peer_groups = it->second.groups;
  for (const Term& group : groups.elements()) {
    auto group_it = peer_groups.find(group);
    if (group_it == peer_groups.end()) continue;
    // Only what this peer contributed may leave: a bogus leave cannot
    // remove another node's members.
    std::vector<Term> removed = subtract(group_it->second, *pids);
    if (group_it->second.empty()) peer_groups.erase(group_it);
    remove_members(group, removed);
  }
  return true;
}

void PgScope::handle_down(const Term& ref, const Term& pid, const Term& reason) {
  if (is_local(pid, node_.name())) {
    auto it = local_.find(pid);
    if (it != local_.end() && it->second.monitor_ref == ref) local_process_down(pid);
    return;
  }
  auto it = peers_.find(pid);
  if (it == peers_.end() || it->second.monitor_ref != ref) return;
  Atom node = pid.as_pid().node;
  node_.log(LogLevel::kInfo, "pg scope " + std::string(options_.scope.text()) + ": peer scope on " +
                                 std::string(node.text()) + " went down (" + brief_term(reason) +
                                 ")");
  drop_peer(pid);
  // A scope that restarted while its node stayed connected does not know
  // this hidden node: keep asking until it answers.
  if (!reason.is_atom("noconnection")) {
    auto connected = node_.connected_nodes();
    if (std::find(connected.begin(), connected.end(), node) != connected.end()) {
      start_discovery(node);
    }
  }
}

void PgScope::handle_node_event(Atom node, bool up) {
  if (up) {
    start_discovery(node);
    return;
  }
  stop_discovery(node);
  std::vector<Term> gone;
  for (const auto& [pid, peer] : peers_) {
    if (pid.as_pid().node == node) gone.push_back(pid);
  }
  for (const Term& pid : gone) {
    mailbox_->demonitor(peers_.at(pid).monitor_ref);
    drop_peer(pid);
  }
}

void PgScope::drop_malformed(const Term& message) {
  node_.log(LogLevel::kWarning, "pg scope " + std::string(options_.scope.text()) +
                                    ": dropped a message it does not understand from " +
                                    origin_of(node_, message) + ": " + brief_term(message));
}

// --- peers ---

PgScope::Peer& PgScope::known_peer(const Term& peer) {
  auto [it, inserted] = peers_.try_emplace(peer);
  if (inserted) {
    it->second.monitor_ref = mailbox_->monitor(peer);
    Atom node = peer.as_pid().node;
    node_.log(LogLevel::kInfo, "pg scope " + std::string(options_.scope.text()) +
                                   ": exchanging groups with the scope on " +
                                   std::string(node.text()));
  }
  return it->second;
}

void PgScope::drop_peer(const Term& peer) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  std::map<Term, std::vector<Term>> groups = std::move(it->second.groups);
  peers_.erase(it);
  for (const auto& [group, pids] : groups) remove_members(group, pids);
}

void PgScope::local_process_down(const Term& pid) {
  auto it = local_.find(pid);
  assert(it != local_.end());  // only called for a monitored member
  std::vector<Term> groups = std::move(it->second.groups);
  local_.erase(it);
  for (const Term& group : groups) remove_members(group, std::span(&pid, 1));
  broadcast_to_peers(Term::tuple({Term::atom(kLeave), this->pid(), pid, Term::list(groups)}));
}

// --- discovery ---

void PgScope::start_discovery(Atom node) {
  if (node == node_.name()) return;
  Discovery& discovery = discovery_[node];
  discovery.timer = std::make_unique<boost::asio::steady_timer>(node_.io());
  discovery.delay = options_.rediscover_min;
  discovery.generation = ++discovery_generation_;
  send_discover(node);
  schedule_discover(node);
}

void PgScope::stop_discovery(Atom node) {
  discovery_.erase(node);
}

void PgScope::send_discover(Atom node) {
  mailbox_->send(options_.scope, node, Term::tuple({Term::atom(kDiscover), pid()}));
}

void PgScope::schedule_discover(Atom node) {
  Discovery& discovery = discovery_.at(node);
  discovery.timer->expires_after(discovery.delay);
  std::weak_ptr<PgScope> weak = weak_from_this();
  std::uint64_t generation = discovery.generation;
  discovery.timer->async_wait([weak, node, generation](const boost::system::error_code& error) {
    auto self = weak.lock();
    if (error || !self) return;
    // The discovery may have ended, or been restarted, after this wait
    // completed but before it ran.
    auto it = self->discovery_.find(node);
    if (it == self->discovery_.end() || it->second.generation != generation) return;
    it->second.delay = std::min(it->second.delay * 2, self->options_.rediscover_max);
    self->send_discover(node);
    self->schedule_discover(node);
  });
}

// --- the group table ---

void PgScope::add_members(const Term& group, std::span<const Term> pids, bool local) {
  if (pids.empty()) return;
  Members& members = groups_[group];
  prepend(members.all, pids);
  if (local) prepend(members.local, pids);
  notify(Change::kJoin, group, pids);
}

void PgScope::remove_members(const Term& group, std::span<const Term> pids) {
  auto it = groups_.find(group);
  if (it == groups_.end()) return;
  std::vector<Term> removed = subtract(it->second.all, pids);
  subtract(it->second.local, removed);
  if (it->second.all.empty()) groups_.erase(it);
  if (!removed.empty()) notify(Change::kLeave, group, removed);
}

void PgScope::notify(Change change, const Term& group, std::span<const Term> pids) {
  // A handler may add or remove handlers.
  std::map<int, ChangeHandler> handlers = change_handlers_;
  for (const auto& [id, handler] : handlers) handler(change, group, pids);
}

void PgScope::broadcast_to_peers(const Term& message) {
  for (const auto& [peer, state] : peers_) mailbox_->send(peer, message);
}

Term PgScope::local_groups_term() const {
  std::vector<Term> entries;
  for (const auto& [group, members] : groups_) {
    if (members.local.empty()) continue;
    entries.push_back(Term::tuple({group, Term::list(members.local)}));
  }
  return Term::list(std::move(entries));
}

}  // namespace presence
