// A :pg scope on the C++ node, a peer of the scopes of the same name on the
// BEAM nodes it is connected to.
//
// The scope is a registered mailbox speaking OTP's pg protocol (OTP 23 and
// later):
//
//   {discover, PeerScope}                          "tell me your groups"
//   {'$gen_cast', {sync, PeerScope, [{Group, [Pid]}]}}   all of a peer's groups
//   {join, PeerScope, Group, Pid | [Pid]}          a peer's process joined
//   {leave, PeerScope, Pid | [Pid], [Group]}       a peer's processes left
//
// A BEAM scope crashes on any other message, so these four are all this
// class ever sends. The C++ node is hidden: BEAM scopes do not see it come up
// and never discover it on their own. The scope therefore sends discover to
// every node that connects, and keeps asking (with backoff) until that node's
// scope answers, since the BEAM scope may start after the connection does.
//
// Groups are arbitrary terms; a process may join a group several times and
// then appears as often in its members, as in pg. Members of a peer scope
// vanish when it goes down, including when its connection is lost.
//
// Threading: every method runs on the node thread (see cnode/node.h), and
// change handlers are called there.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cnode/asio.h"
#include "cnode/node.h"
#include "term/term.h"

namespace presence {

struct PgScopeOptions {
  // The registered name of the scope on every node; Phoenix.PubSub's PG2
  // adapter uses 'Elixir.Phoenix.PubSub'.
  Atom scope{"Elixir.Phoenix.PubSub"};
  // A connected node whose scope has not answered is sent discover again
  // after rediscover_min, doubling up to rediscover_max.
  std::chrono::milliseconds rediscover_min{250};
  std::chrono::milliseconds rediscover_max{5000};
};

class PgScope : public std::enable_shared_from_this<PgScope> {
 public:
  enum class Change { kJoin, kLeave };
  // Called after the members of `group` changed: `pids` joined or left
  // (local or remote). Runs on the node thread.
  using ChangeHandler =
      std::function<void(Change change, const Term& group, std::span<const Term> pids)>;

  // Registers the scope on `node` (which must outlive it) and discovers the
  // nodes already connected. Returns nullptr, after logging, when the name is
  // taken. Node thread.
  static std::shared_ptr<PgScope> start(Node& node, PgScopeOptions options = {});
  // Closes the scope's mailbox: peers see it go down and drop its members.
  // Node thread.
  ~PgScope();
  PgScope(const PgScope&) = delete;
  PgScope& operator=(const PgScope&) = delete;

  const Term& pid() const;
  Atom scope() const { return options_.scope; }

  // Adds a process of this node to group and tells every peer. The process
  // is monitored: when it ends it leaves all its groups. Returns false (and
  // changes nothing) when pid is not a pid of this node.
  bool join(const Term& group, const Term& pid);
  // Removes one membership of pid in group. Returns false when pid was not a
  // member (as pg's not_joined).
  bool leave(const Term& group, const Term& pid);

  // Members on every node, most recent first, as pg:get_members/2.
  std::vector<Term> get_members(const Term& group) const;
  std::vector<Term> get_local_members(const Term& group) const;
  std::vector<Term> which_groups() const;
  std::vector<Term> which_local_groups() const;
  // Peer scope processes this scope exchanges membership with.
  std::vector<Term> peers() const;

  // Returns an id for remove_change_handler.
  int on_change(ChangeHandler handler);
  void remove_change_handler(int id);

 private:
  struct Members {
    std::vector<Term> all;    // most recent first
    std::vector<Term> local;  // the subset on this node
  };
  struct LocalProcess {
    Term monitor_ref;
    std::vector<Term> groups;  // one entry per membership
  };
  struct Peer {
    Term monitor_ref;
    std::map<Term, std::vector<Term>> groups;
  };
  struct Discovery {
    std::unique_ptr<boost::asio::steady_timer> timer;
    std::chrono::milliseconds delay;
    std::uint64_t generation = 0;  // tells a stale timer completion apart
  };

  PgScope(Node& node, PgScopeOptions options);
  void attach(std::shared_ptr<Mailbox> mailbox);

  void handle_message(const Term& message);
  // Each returns false when the message is malformed.
  bool dispatch(const Term& message);
  bool handle_sync(const Term& peer, const Term& groups);
  bool handle_join(const Term& peer, const Term& group, const Term& pid_or_pids);
  bool handle_leave(const Term& peer, const Term& pid_or_pids, const Term& groups);
  void handle_discover(const Term& peer);
  void handle_down(const Term& ref, const Term& pid, const Term& reason);
  void handle_node_event(Atom node, bool up);
  void drop_malformed(const Term& message);

  Peer& known_peer(const Term& peer);
  void drop_peer(const Term& peer);
  void local_process_down(const Term& pid);

  void start_discovery(Atom node);
  void stop_discovery(Atom node);
  void send_discover(Atom node);
  void schedule_discover(Atom node);

  void add_members(const Term& group, std::span<const Term> pids, bool local);
  void remove_members(const Term& group, std::span<const Term> pids);
  void notify(Change change, const Term& group, std::span<const Term> pids);
  void broadcast_to_peers(const Term& message);
  Term local_groups_term() const;

  Node& node_;
  PgScopeOptions options_;
  std::shared_ptr<Mailbox> mailbox_;
  int node_event_id_ = -1;

  std::map<Term, Members> groups_;
  std::unordered_map<Term, LocalProcess, TermHash> local_;
  std::unordered_map<Term, Peer, TermHash> peers_;
  std::unordered_map<Atom, Discovery> discovery_;
  std::uint64_t discovery_generation_ = 0;

  int next_handler_id_ = 0;
  std::map<int, ChangeHandler> change_handlers_;
};

}  // namespace presence
