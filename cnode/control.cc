#include "cnode/control.h"

#include "cnode/tracker_options.h"

namespace presence {
namespace {

const Atom kRegisteredName("presence");

Term ok() {
  return Term::atom("ok");
}
Term error(Term reason) {
  return Term::tuple({Term::atom("error"), std::move(reason)});
}
Term badarg(const Term& request) {
  return error(Term::tuple({Term::atom("badarg"), request}));
}

bool is_request(const Term& request, std::string_view tag, std::size_t arity) {
  return request.is_tuple(arity) && request[0].is_atom(tag);
}

Term key_metas(const std::vector<KeyMeta>& entries) {
  std::vector<Term> list;
  for (const KeyMeta& entry : entries) list.push_back(Term::tuple({entry.key, entry.meta}));
  return Term::list(std::move(list));
}

}  // namespace

std::shared_ptr<ControlProcess> ControlProcess::start(
    Node& node, PresenceService& service, std::vector<std::shared_ptr<PubSub>> pubsubs) {
  std::shared_ptr<ControlProcess> control(new ControlProcess(node, service, std::move(pubsubs)));
  std::weak_ptr<ControlProcess> weak = control;
  control->mailbox_ = node.spawn(
      [weak](const Term& message) {
        if (auto self = weak.lock()) self->on_message(message);
      },
      kRegisteredName);
  if (!control->mailbox_) {
    node.log(LogLevel::kError, "control process not started: 'presence' is already registered");
    return nullptr;
  }
  return control;
}

ControlProcess::~ControlProcess() {
  for (auto& [pid, session] : sessions_) session->close();
  if (mailbox_) mailbox_->close();
}

void ControlProcess::on_message(const Term& message) {
  if (!message.is_tuple(3) || !message[0].is_atom("$gen_call")) return;
  reply_to_call(*mailbox_, message[1], handle(message[2]));
}

Term ControlProcess::handle(const Term& request) {
  if (is_request(request, "close", 2)) return close_session(request[1]);
  for (const auto& pubsub : pubsubs_) {
    if (auto reply = pubsub->handle_request(request)) return *reply;
  }
  if (!request.is_tuple() || request.size() < 2 || !request[0].is_atom()) return badarg(request);

  Tracker* tracker = find_tracker(request[1]);
  if (!tracker) return error(Term::tuple({Term::atom("unknown_tracker"), request[1]}));
  if (is_request(request, "track", 5)) return track_new_session(*tracker, request);
  if (is_request(request, "track", 6)) return track(*tracker, request);
  if (is_request(request, "untrack", 5) || is_request(request, "untrack", 3)) {
    return untrack(*tracker, request);
  }
  if (is_request(request, "update", 6)) return update(*tracker, request);
  if (is_request(request, "list", 3)) return list(*tracker, request);
  if (is_request(request, "get_by_key", 4)) return get_by_key(*tracker, request);
  if (is_request(request, "replicas", 2)) return replicas(*tracker);
  if (is_request(request, "graceful_permdown", 2)) return graceful_permdown(*tracker);
  return badarg(request);
}

Term ControlProcess::track_new_session(Tracker& tracker, const Term& request) {
  std::weak_ptr<ControlProcess> weak = weak_from_this();
  auto session_pid = std::make_shared<Term>();
  auto session = node_.spawn([weak, session_pid](const Term& message) {
    // An exit signal other than normal (e.g. exit(Pid, kill)) ends the
    // session, as it ends a BEAM process that does not trap exits.
    if (!message.is_tuple(3) || !message[0].is_atom("EXIT") || message[2].is_atom("normal")) {
      return;
    }
    if (auto self = weak.lock()) self->end_session(*session_pid);
  });
  *session_pid = session->pid();
  ShardReply reply = tracker.track(session->pid(), request[2], request[3], request[4]);
  if (!reply.ok) {
    session->close();
    return error(reply.value);
  }
  sessions_.emplace(session->pid(), session);
  return Term::tuple({ok(), session->pid(), reply.value});
}

Term ControlProcess::track(Tracker& tracker, const Term& request) {
  if (!request[2].is_pid()) return badarg(request);
  ShardReply reply = tracker.track(request[2], request[3], request[4], request[5]);
  if (!reply.ok) return error(reply.value);
  return Term::tuple({ok(), reply.value});
}

Term ControlProcess::untrack(Tracker& tracker, const Term& request) {
  if (!request[2].is_pid()) return badarg(request);
  if (request.size() == 5) {
    tracker.untrack(request[2], request[3], request[4]);
  } else {
    tracker.untrack(request[2]);
  }
  return ok();
}

Term ControlProcess::update(Tracker& tracker, const Term& request) {
  if (!request[2].is_pid()) return badarg(request);
  ShardReply reply = tracker.update(request[2], request[3], request[4], request[5]);
  if (!reply.ok) return error(reply.value);
  return Term::tuple({ok(), reply.value});
}

Term ControlProcess::list(Tracker& tracker, const Term& request) {
  return key_metas(tracker.list(request[2]));
}

Term ControlProcess::get_by_key(Tracker& tracker, const Term& request) {
  std::vector<Term> list;
  for (const PidMeta& entry : tracker.get_by_key(request[2], request[3])) {
    list.push_back(Term::tuple({entry.pid, entry.meta}));
  }
  return Term::list(std::move(list));
}

Term ControlProcess::replicas(Tracker& tracker) {
  std::vector<Term> list;
  for (const Replica& replica : tracker.replicas()) {
    Term ref = Term::tuple({Term::atom(replica.ref.node), Term::integer(replica.ref.vsn)});
    list.push_back(Term::tuple({ref, Term::atom(to_string(replica.status))}));
  }
  return Term::list(std::move(list));
}

Term ControlProcess::graceful_permdown(Tracker& tracker) {
  tracker.graceful_permdown();
  return ok();
}

Term ControlProcess::close_session(const Term& pid) {
  end_session(pid);
  return ok();
}

Tracker* ControlProcess::find_tracker(const Term& name) const {
  if (name.is_atom()) return service_.tracker(module_atom(name.as_atom().text()));
  if (name.is_binary()) return service_.tracker(module_atom(name.as_binary()));
  return nullptr;
}

void ControlProcess::end_session(const Term& pid) {
  auto it = sessions_.find(pid);
  if (it == sessions_.end()) return;
  for (Tracker* tracker : service_.trackers()) tracker->untrack(pid);
  it->second->close();
  sessions_.erase(it);
}

}  // namespace presence
