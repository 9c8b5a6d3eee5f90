#include "cnode/dist_control.h"

#include <cstddef>

#include "cnode/dist_bytes.h"
#include "term/codec.h"

namespace presence::dist {
namespace {

using Kind = Signal::Kind;

constexpr int kAbsent = -1;
constexpr int kFromPayload = -2;  // the field is the term after the control message

// Where each operation keeps its fields (indexes into the control tuple).
struct Layout {
  std::int64_t op;
  Kind kind;
  std::size_t arity;
  int from;
  int to;
  int id;
  int payload;
  int options = kAbsent;
};

constexpr Layout kLayouts[] = {
    {kOpLink, Kind::kLink, 3, 1, 2, kAbsent, kAbsent},
    {kOpSend, Kind::kSend, 3, kAbsent, 2, kAbsent, kFromPayload},
    {kOpExit, Kind::kExit, 4, 1, 2, kAbsent, 3},
    {kOpUnlink, Kind::kUnlink, 3, 1, 2, kAbsent, kAbsent},
    {kOpNodeLink, Kind::kIgnored, 1, kAbsent, kAbsent, kAbsent, kAbsent},
    {kOpRegSend, Kind::kRegSend, 4, 1, 3, kAbsent, kFromPayload},
    {kOpGroupLeader, Kind::kIgnored, 3, kAbsent, kAbsent, kAbsent, kAbsent},
    {kOpExit2, Kind::kExit2, 4, 1, 2, kAbsent, 3},
    {kOpSendTT, Kind::kSend, 4, kAbsent, 2, kAbsent, kFromPayload},
    {kOpExitTT, Kind::kExit, 5, 1, 2, kAbsent, 4},
    {kOpRegSendTT, Kind::kRegSend, 5, 1, 3, kAbsent, kFromPayload},
    {kOpExit2TT, Kind::kExit2, 5, 1, 2, kAbsent, 4},
    {kOpMonitorP, Kind::kMonitor, 4, 1, 2, 3, kAbsent},
    {kOpDemonitorP, Kind::kDemonitor, 4, 1, 2, 3, kAbsent},
    {kOpMonitorPExit, Kind::kMonitorExit, 5, 1, 2, 3, 4},
    {kOpSendSender, Kind::kSend, 3, 1, 2, kAbsent, kFromPayload},
    {kOpSendSenderTT, Kind::kSend, 4, 1, 2, kAbsent, kFromPayload},
    {kOpPayloadExit, Kind::kExit, 3, 1, 2, kAbsent, kFromPayload},
    {kOpPayloadExitTT, Kind::kExit, 4, 1, 2, kAbsent, kFromPayload},
    {kOpPayloadExit2, Kind::kExit2, 3, 1, 2, kAbsent, kFromPayload},
    {kOpPayloadExit2TT, Kind::kExit2, 4, 1, 2, kAbsent, kFromPayload},
    {kOpPayloadMonitorPExit, Kind::kMonitorExit, 4, 1, 2, 3, kFromPayload},
    {kOpAliasSend, Kind::kAliasSend, 3, 1, 2, kAbsent, kFromPayload},
    {kOpAliasSendTT, Kind::kAliasSend, 4, 1, 2, kAbsent, kFromPayload},
    {kOpUnlinkId, Kind::kUnlink, 4, 2, 3, 1, kAbsent},
    {kOpUnlinkIdAck, Kind::kIgnored, 4, kAbsent, kAbsent, kAbsent, kAbsent},
    {kOpSpawnRequest, Kind::kSpawnRequest, 6, 2, 4, 1, kFromPayload, 5},
    {kOpSpawnRequestTT, Kind::kSpawnRequest, 7, 2, 4, 1, kFromPayload, 5},
};

const Layout* find_layout(std::int64_t op) {
  for (const Layout& layout : kLayouts) {
    if (layout.op == op) return &layout;
  }
  return nullptr;
}

bool is_process(const Term& term) {
  return term.is_pid() || term.is_atom();
}

// Whether the fields have the kinds their operation needs.
bool fields_well_typed(const Signal& signal, const Layout& layout) {
  switch (signal.kind) {
    case Kind::kSend:
      return signal.to.is_pid() && (layout.from == kAbsent || signal.from.is_pid());
    case Kind::kRegSend:
      return signal.from.is_pid() && signal.to.is_atom();
    case Kind::kAliasSend:
      return signal.from.is_pid();
    case Kind::kLink:
    case Kind::kExit:
    case Kind::kExit2:
      return signal.from.is_pid() && signal.to.is_pid();
    case Kind::kUnlink:
      return signal.from.is_pid() && signal.to.is_pid() &&
             (!signal.has_id || signal.id.is_integer());
    case Kind::kMonitor:
    case Kind::kDemonitor:
      return signal.from.is_pid() && is_process(signal.to) && signal.id.is_reference();
    case Kind::kMonitorExit:
      return is_process(signal.from) && signal.to.is_pid() && signal.id.is_reference();
    case Kind::kSpawnRequest:
      return signal.from.is_pid() && signal.id.is_reference() && signal.to.is_tuple(3) &&
             signal.spawn_options.is_proper_list() && signal.payload.is_proper_list();
    case Kind::kIgnored:
      return true;
  }
  return false;
}

Term tuple_of(ControlOp op, std::initializer_list<Term> rest) {
  std::vector<Term> elements{Term::integer(op)};
  elements.insert(elements.end(), rest.begin(), rest.end());
  return Term::tuple(std::move(elements));
}

}  // namespace

std::optional<Signal> parse_signal(const Term& control, const Term* payload, std::string* error) {
  if (!control.is_tuple() || control.size() == 0 || !control[0].is_integer()) {
    *error = "control message is not a tuple starting with an operation: " + control.to_string();
    return std::nullopt;
  }
  const Layout* layout = find_layout(control[0].as_integer());
  if (layout == nullptr) {
    *error = "unknown control operation " + std::to_string(control[0].as_integer());
    return std::nullopt;
  }
  if (control.size() < layout->arity || (layout->payload == kFromPayload && payload == nullptr)) {
    *error = "control message has too few parts: " + control.to_string();
    return std::nullopt;
  }

  Signal signal;
  signal.kind = layout->kind;
  if (layout->from >= 0) signal.from = control[layout->from];
  if (layout->to >= 0) signal.to = control[layout->to];
  if (layout->id >= 0) {
    signal.id = control[layout->id];
    signal.has_id = true;
  }
  if (layout->payload >= 0) signal.payload = control[layout->payload];
  if (layout->payload == kFromPayload) signal.payload = *payload;
  if (layout->options >= 0) signal.spawn_options = control[layout->options];
  if (!fields_well_typed(signal, *layout)) {
    *error = "control message has fields of the wrong kind: " + control.to_string();
    return std::nullopt;
  }
  return signal;
}

Term send_control(const Term& to) {
  return tuple_of(kOpSend, {Term::atom(""), to});
}

Term send_sender_control(const Term& from, const Term& to) {
  return tuple_of(kOpSendSender, {from, to});
}

Term reg_send_control(const Term& from, const Term& to_name) {
  return tuple_of(kOpRegSend, {from, Term::atom(""), to_name});
}

Term link_control(const Term& from, const Term& to) {
  return tuple_of(kOpLink, {from, to});
}

Term unlink_control(const Term& from, const Term& to) {
  return tuple_of(kOpUnlink, {from, to});
}

Term unlink_id_control(const Term& id, const Term& from, const Term& to) {
  return tuple_of(kOpUnlinkId, {id, from, to});
}

Term unlink_id_ack_control(const Term& id, const Term& from, const Term& to) {
  return tuple_of(kOpUnlinkIdAck, {id, from, to});
}

Term exit_control(const Term& from, const Term& to, const Term& reason) {
  return tuple_of(kOpExit, {from, to, reason});
}

Term monitor_control(const Term& from, const Term& to, const Term& ref) {
  return tuple_of(kOpMonitorP, {from, to, ref});
}

Term demonitor_control(const Term& from, const Term& to, const Term& ref) {
  return tuple_of(kOpDemonitorP, {from, to, ref});
}

Term monitor_exit_control(const Term& from, const Term& to, const Term& ref, const Term& reason) {
  return tuple_of(kOpMonitorPExit, {from, to, ref, reason});
}

Term spawn_reply_control(const Term& request, const Term& to, int flags, const Term& result) {
  return tuple_of(kOpSpawnReply, {request, to, Term::integer(flags), result});
}

std::string encode_packet(const Term& control, const Term* message) {
  std::string packet(4, '\0');
  packet.push_back('p');
  encode(control, &packet);
  if (message != nullptr) encode(*message, &packet);
  std::string length;
  put_u32(&length, static_cast<std::uint32_t>(packet.size() - 4));
  packet.replace(0, 4, length);
  return packet;
}

}  // namespace presence::dist
