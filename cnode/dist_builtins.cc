// NodeCore: the processes every node has, and discovery of nodes that join
// the cluster later.
//
// net_kernel answers net_adm:ping/1. The built-in functions erlang:node/0
// and erlang:nodes/0,1, all a peer asks of a C node, answer both rpc
// protocols: gen_server calls to rex (rpc:block_call/4, and what C nodes
// use) and spawn requests for erpc:execute_call/4 (rpc:call/4 and
// erpc:call/4 since OTP 23). Anything else is refused as undefined.
#include <algorithm>
#include <utility>

#include "cnode/dist_node.h"

namespace presence {
namespace {

bool is_gen_call(const Term& message) {
  return message.is_tuple(3) && message[0].is_atom("$gen_call");
}

Term atoms(const std::vector<Atom>& nodes) {
  std::vector<Term> list;
  for (Atom node : nodes) list.push_back(Term::atom(node));
  return Term::list(std::move(list));
}

// The stack of an exception raised by module:function(args).
Term stack_of(const Term& module, const Term& function, const Term& args) {
  return Term::list({Term::tuple({module, function, args, Term()})});
}

bool has_option(const Term& options, std::string_view name) {
  for (const Term& option : options.elements()) {
    if (option.is_atom(name)) return true;
    if (option.is_tuple() && option.size() > 0 && option[0].is_atom(name)) return true;
  }
  return false;
}

}  // namespace

void NodeCore::handle_net_kernel(const Term& message) {
  if (!is_gen_call(message)) return;
  const Term& request = message[2];
  if (request.is_tuple(2) && request[0].is_atom("is_auth")) {
    reply_to_call(*net_kernel_, message[1], Term::atom("yes"));
  }
}

void NodeCore::handle_rex(const Term& message) {
  if (!is_gen_call(message)) return;
  const Term& request = message[2];
  bool call =
      request.is_tuple(5) && (request[0].is_atom("call") || request[0].is_atom("block_call"));
  Term error = Term::atom("undef");
  std::optional<Term> value;
  if (call) value = apply_builtin(request[1], request[2], request[3], &error);
  if (value) return reply_to_call(*rex_, message[1], std::move(*value));

  Term reason = call ? Term::tuple({error, stack_of(request[1], request[2], request[3])})
                     : Term::atom("unsupported");
  reply_to_call(*rex_, message[1],
                Term::tuple({Term::atom("badrpc"), Term::tuple({Term::atom("EXIT"), reason})}));
}

// erpc:execute_call(Ref, M, F, A) would exit with {Ref, return, Value} or
// {Ref, error, Reason, Stack}: the reply says a process was spawned, and
// its monitor and link fire at once with that reason. erpc:execute_cast/3
// (rpc:cast) does nothing. Other functions cannot run here: notsup.
void NodeCore::handle_spawn_request(const dist::Signal& signal) {
  Atom peer = signal.from.as_pid().node;
  Term erpc = Term::atom("erpc");
  bool call = signal.to == Term::tuple({erpc, Term::atom("execute_call"), Term::integer(4)}) &&
              signal.payload.size() == 4;
  bool cast = signal.to == Term::tuple({erpc, Term::atom("execute_cast"), Term::integer(3)});
  if (!call && !cast) {
    Term refused = dist::spawn_reply_control(signal.id, signal.from, 0, Term::atom("notsup"));
    return send_to_node(peer, refused, nullptr, false);
  }

  Term reason = Term::atom("normal");
  if (call) {
    const Term& args = signal.payload;
    Term error;
    auto value = apply_builtin(args[1], args[2], args[3], &error);
    reason = value ? Term::tuple({args[0], Term::atom("return"), *value})
                   : Term::tuple({args[0], Term::atom("error"), error,
                                  stack_of(args[1], args[2], args[3])});
  }
  Term pid = new_pid();
  bool link = has_option(signal.spawn_options, "link");
  bool monitor = has_option(signal.spawn_options, "monitor");
  int flags = (link ? 1 : 0) | (monitor ? 2 : 0);
  send_to_node(peer, dist::spawn_reply_control(signal.id, signal.from, flags, pid), nullptr, false);
  if (monitor) {
    send_to_node(peer, dist::monitor_exit_control(pid, signal.from, signal.id, reason), nullptr,
                 false);
  }
  if (link) send_to_node(peer, dist::exit_control(pid, signal.from, reason), nullptr, false);
}

std::optional<Term> NodeCore::apply_builtin(const Term& module, const Term& function,
                                            const Term& args, Term* error) const {
  *error = Term::atom("undef");
  if (!module.is_atom("erlang") || !args.is_proper_list()) return std::nullopt;
  if (function.is_atom("node") && args.size() == 0) return Term::atom(name_);
  if (!function.is_atom("nodes") || args.size() > 1) return std::nullopt;

  Term kinds = args.size() == 0 ? Term::list({Term::atom("visible")}) : args[0];
  if (kinds.is_atom()) kinds = Term::list({kinds});
  auto nodes = nodes_of_kinds(kinds);
  if (nodes) return atoms(*nodes);
  *error = Term::atom("badarg");
  return std::nullopt;
}

// As erlang:nodes/1: a list of visible, hidden, connected, this and known.
// "Visible" peers are those that announce themselves as published.
std::optional<std::vector<Atom>> NodeCore::nodes_of_kinds(const Term& kinds) const {
  if (!kinds.is_proper_list()) return std::nullopt;
  std::vector<Atom> nodes;
  auto add = [&nodes](Atom node) {
    if (std::find(nodes.begin(), nodes.end(), node) == nodes.end()) nodes.push_back(node);
  };
  for (const Term& kind : kinds.elements()) {
    if (!kind.is_atom()) return std::nullopt;
    bool all = kind.is_atom("connected") || kind.is_atom("known");
    bool visible = kind.is_atom("visible");
    bool hidden = kind.is_atom("hidden");
    if (kind.is_atom("this") || kind.is_atom("known")) add(name_);
    if (!all && !visible && !hidden && !kind.is_atom("this")) return std::nullopt;
    for (const auto& [node, connection] : connections_) {
      if (!connection->up()) continue;
      bool published = (connection->peer_flags() & dist::kFlagPublished) != 0;
      if (all || (visible && published) || (hidden && !published)) add(node);
    }
  }
  return nodes;
}

// Replies to the discovery calls: {Ref, Nodes}.
void NodeCore::handle_system(const Term& message) {
  if (!message.is_tuple(2) || !message[0].is_reference() || !message[1].is_proper_list()) return;
  for (const Term& node : message[1].elements()) {
    if (node.is_atom()) connect(node.as_atom());
  }
}

// Asks every connected node which nodes it is connected to (hidden ones
// included, so that C nodes find each other too); the answers arrive at
// the system process.
void NodeCore::discover() {
  Term request =
      Term::tuple({Term::atom("call"), Term::atom("erlang"), Term::atom("nodes"),
                   Term::list({Term::list({Term::atom("connected")})}), Term::atom("user")});
  for (Atom node : connected_nodes()) {
    Term from = Term::tuple({system_->pid(), make_ref()});
    route_named(system_->pid(), Atom("rex"), node,
                Term::tuple({Term::atom("$gen_call"), from, request}));
  }
  schedule_discovery();
}

void NodeCore::schedule_discovery() {
  after(options_.discovery_interval, [this] { discover(); });
}

}  // namespace presence
