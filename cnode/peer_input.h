// Helpers for the processes of this node that take messages from peers:
// recognising monitor notifications, and describing a message that was
// dropped in one bounded log line.
#pragma once

#include <cstddef>
#include <string>

#include "cnode/node.h"
#include "term/term.h"

namespace presence {

// {'DOWN', Ref, process, Pid, Reason}, as a monitor delivers it.
bool is_down_message(const Term& message);

// The term rendered for a log line, cut to about max_chars.
std::string brief_term(const Term& term, std::size_t max_chars = 200);

// Where a message being handled came from, for a log line: "node 'a@h'"
// when the node knows (Node::message_origin), else as the overload below.
std::string origin_of(const Node& node, const Term& message);

// For a node that does not know a message's origin: "an unknown node", with
// the node of the first pid or reference near the top of the message (where
// the cluster's protocols put their sender), which may not be the sender.
std::string origin_of(const Term& message);

}  // namespace presence
