// The control process: the node's trackers, driven from any BEAM node.
//
// A process registered as `presence` answers gen_server calls
// (gen_server:call({presence, CppNode}, Request)):
//
//   {track, Tracker, Topic, Key, Meta}          -> {ok, Pid, PhxRef}
//       tracks a new session process Pid of this node (it lives until
//       {close, Pid} or an exit signal, e.g. exit(Pid, kill))
//   {track, Tracker, Pid, Topic, Key, Meta}     -> {ok, PhxRef}
//       Pid may be a process of any node; it is monitored while tracked
//   {untrack, Tracker, Pid, Topic, Key}         -> ok
//   {untrack, Tracker, Pid}                     -> ok
//   {update, Tracker, Pid, Topic, Key, Meta}    -> {ok, PhxRef}
//   {list, Tracker, Topic}                      -> [{Key, Meta}]
//   {get_by_key, Tracker, Topic, Key}           -> [{Pid, Meta}]
//   {replicas, Tracker}                         -> [{{Node, Vsn}, up | down}]
//   {graceful_permdown, Tracker}                -> ok
//   {close, Pid}                                -> ok (ends a session made
//                                                  by track/5 and its presences)
//
// and the PubSub requests of the node's PubSub servers (subscribe,
// unsubscribe, broadcast, local_broadcast, direct_broadcast: see
// PubSub::handle_request).
//
// Failures are {error, Reason}, with Phoenix's reasons where it has them:
// {already_tracked, Pid, Topic, Key}, nopresence, {badmap, Meta}, and
// {unknown_tracker, Tracker}, {badarg, Request} for a malformed request.
// Tracker is an atom or binary naming a tracker as on the command line
// ('MyApp.Presence' and 'Elixir.MyApp.Presence' are the same tracker).
//
// Threading: node thread only, like the trackers it drives.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "cnode/node.h"
#include "cnode/presence.h"
#include "cnode/pubsub.h"
#include "term/term.h"

namespace presence {

class ControlProcess : public std::enable_shared_from_this<ControlProcess> {
 public:
  // Registers `presence` on node. Returns nullptr, after logging, when the
  // name is taken. node and service must outlive the control process.
  static std::shared_ptr<ControlProcess> start(Node& node, PresenceService& service,
                                               std::vector<std::shared_ptr<PubSub>> pubsubs = {});
  // Closes the sessions it made and its own process.
  ~ControlProcess();
  ControlProcess(const ControlProcess&) = delete;
  ControlProcess& operator=(const ControlProcess&) = delete;

  const Term& pid() const { return mailbox_->pid(); }

 private:
  ControlProcess(Node& node, PresenceService& service, std::vector<std::shared_ptr<PubSub>> pubsubs)
      : node_(node), service_(service), pubsubs_(std::move(pubsubs)) {}

  void on_message(const Term& message);
  Term handle(const Term& request);
  Term track_new_session(Tracker& tracker, const Term& request);
  Term track(Tracker& tracker, const Term& request);
  Term untrack(Tracker& tracker, const Term& request);
  Term update(Tracker& tracker, const Term& request);
  Term list(Tracker& tracker, const Term& request);
  Term get_by_key(Tracker& tracker, const Term& request);
  Term replicas(Tracker& tracker);
  Term graceful_permdown(Tracker& tracker);
  Term close_session(const Term& pid);
  Tracker* find_tracker(const Term& name) const;
  void end_session(const Term& pid);

  Node& node_;
  PresenceService& service_;
  std::vector<std::shared_ptr<PubSub>> pubsubs_;
  std::shared_ptr<Mailbox> mailbox_;
  // Sessions made by {track, T, Topic, Key, Meta}, by pid.
  std::unordered_map<Term, std::shared_ptr<Mailbox>, TermHash> sessions_;
};

}  // namespace presence
