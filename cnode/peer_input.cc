#include "cnode/peer_input.h"

#include <optional>

namespace presence {
namespace {

// How deep and how wide origin_of looks: senders sit in the first few
// elements of the outer tuples, and a hostile message must not cost a walk.
constexpr int kOriginDepth = 3;
constexpr std::size_t kOriginWidth = 8;

std::optional<Atom> node_in(const Term& term, int depth) {
  if (term.is_pid()) return term.as_pid().node;
  if (term.is_reference()) return term.as_reference().node;
  if (depth == 0 || !(term.is_tuple() || term.is_list())) return std::nullopt;
  std::size_t width = 0;
  for (const Term& element : term.elements()) {
    if (++width > kOriginWidth) break;
    if (auto node = node_in(element, depth - 1)) return node;
  }
  return std::nullopt;
}

}  // namespace

bool is_down_message(const Term& message) {
  return message.is_tuple(5) && message[0].is_atom("DOWN") && message[1].is_reference() &&
         message[2].is_atom("process") && message[3].is_pid();
}

std::string brief_term(const Term& term, std::size_t max_chars) {
  std::string text = term.to_string();
  if (text.size() <= max_chars) return text;
  text.resize(max_chars);
  return text + "...";
}

std::string origin_of(const Node& node, const Term& message) {
  if (auto origin = node.message_origin()) return "node '" + std::string(origin->text()) + "'";
  return origin_of(message);
}

std::string origin_of(const Term& message) {
  auto named = node_in(message, kOriginDepth);
  if (!named) return "an unknown node";
  return "an unknown node (the message names node '" + std::string(named->text()) + "')";
}

}  // namespace presence
