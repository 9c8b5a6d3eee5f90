// NodeCore: the processes every node has, and discovery of nodes that join
// the cluster later.
//
// net_kernel answers net_adm:ping/1; rex answers the gen_server calls of
// the rpc protocol for erlang:node/0 and erlang:nodes/0,1, which is all a
// peer asks of a C node, and {badrpc, _} otherwise. (rpc:call/4 of OTP 25
// goes through erpc, which spawns a process on the target: a C node cannot,
// so from a BEAM shell use gen_server:call({rex, Node}, {call, M, F, A,
// user}) or rpc:block_call/4.)
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

Term undef(const Term& module, const Term& function, const Term& args) {
  Term frame = Term::tuple({module, function, args, Term()});
  Term reason = Term::tuple({Term::atom("undef"), Term::list({frame})});
  return Term::tuple({Term::atom("badrpc"), Term::tuple({Term::atom("EXIT"), reason})});
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
  Term reply = call ? rpc_result(request[1], request[2], request[3])
                    : Term::tuple({Term::atom("badrpc"), Term::atom("unsupported")});
  reply_to_call(*rex_, message[1], std::move(reply));
}

Term NodeCore::rpc_result(const Term& module, const Term& function, const Term& args) const {
  if (!module.is_atom("erlang") || !args.is_proper_list()) return undef(module, function, args);
  if (function.is_atom("node") && args.size() == 0) return Term::atom(name_);
  if (function.is_atom("nodes") && args.size() <= 1) {
    Term kinds = args.size() == 0 ? Term::list({Term::atom("visible")}) : args[0];
    if (kinds.is_atom()) kinds = Term::list({kinds});
    if (auto nodes = nodes_of_kinds(kinds)) return atoms(*nodes);
    Term reason = Term::tuple({Term::atom("badarg"), Term()});
    return Term::tuple({Term::atom("badrpc"), Term::tuple({Term::atom("EXIT"), reason})});
  }
  return undef(module, function, args);
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
