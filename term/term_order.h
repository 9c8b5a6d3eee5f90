// Internal to term/: the comparison behind Term::compare, shared with the map
// code that keeps entries sorted.
#pragma once

#include "term/term.h"

namespace presence::detail {

// Three-way comparison in Erlang term order: negative, zero or positive.
// With key_order, every integer sorts before every float (the BEAM's order
// for map keys); otherwise numbers compare by value, and an integer before a
// float of equal value so that zero means exactly equal.
int compare_terms(const Term& a, const Term& b, bool key_order);

}  // namespace presence::detail
