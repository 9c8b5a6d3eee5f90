// Helpers for the processes of this node that take messages from peers:
// recognising monitor notifications, and describing a message that was
// dropped in one bounded log line.
#pragma once

#include <cstddef>
#include <string>

#include "term/term.h"

namespace presence {

// {'DOWN', Ref, process, Pid, Reason}, as a monitor delivers it.
bool is_down_message(const Term& message);

// The term rendered for a log line, cut to about max_chars.
std::string brief_term(const Term& term, std::size_t max_chars = 200);

// "node 'name'" for the node of the first pid or reference found near the
// top of message (where every protocol of the cluster puts its sender),
// else "an unknown node". Used only to name the origin of dropped input.
std::string origin_of(const Term& message);

}  // namespace presence
