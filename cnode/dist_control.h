// Control messages: what connected nodes tell each other after the
// handshake. A packet is a 4-byte length, the pass-through byte 'p', the
// control message (a tuple whose first element is the operation) and, for
// sends and payload exits, a second term: the message or the exit reason.
// A zero-length packet is a tick.
//
// Incoming control messages are folded into Signals: the trace-token (_TT),
// payload (PAYLOAD_*) and SEND_SENDER forms differ only in where their
// fields sit, so each becomes the Signal of its plain form.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "term/term.h"

namespace presence::dist {

enum ControlOp : std::int64_t {
  kOpLink = 1,
  kOpSend = 2,
  kOpExit = 3,
  kOpUnlink = 4,
  kOpNodeLink = 5,
  kOpRegSend = 6,
  kOpGroupLeader = 7,
  kOpExit2 = 8,
  kOpSendTT = 12,
  kOpExitTT = 13,
  kOpRegSendTT = 16,
  kOpExit2TT = 18,
  kOpMonitorP = 19,
  kOpDemonitorP = 20,
  kOpMonitorPExit = 21,
  kOpSendSender = 22,
  kOpSendSenderTT = 23,
  kOpPayloadExit = 24,
  kOpPayloadExitTT = 25,
  kOpPayloadExit2 = 26,
  kOpPayloadExit2TT = 27,
  kOpPayloadMonitorPExit = 28,
  kOpSpawnRequest = 29,
  kOpSpawnRequestTT = 30,
  kOpSpawnReply = 31,
  kOpAliasSend = 33,
  kOpAliasSendTT = 34,
  kOpUnlinkId = 35,
  kOpUnlinkIdAck = 36,
};

struct Signal {
  enum class Kind {
    kSend,          // payload to `to` (a pid); `from` is [] unless SEND_SENDER
    kRegSend,       // payload to the registered name `to` (an atom)
    kAliasSend,     // payload to the alias `to`
    kLink,          // `from` links to `to`
    kUnlink,        // `from` unlinks from `to`; `id` is set for UNLINK_ID
    kExit,          // linked `from` exited with reason `payload`
    kExit2,         // `from` called exit(to, payload)
    kMonitor,       // `from` monitors `to` (pid or name) under reference `id`
    kDemonitor,     // `from` ends monitor `id` of `to`
    kMonitorExit,   // monitored `from` (pid or name) ended with reason `payload`
    kSpawnRequest,  // `from` asks for a process running `to` ({M, F, Arity}) on the
                    // arguments `payload` with `spawn_options`; `id` is the request
    kIgnored,       // understood and of no concern to a C node
  };
  Kind kind = Kind::kIgnored;
  Term from;
  Term to;
  Term id;       // monitor reference or unlink id; [] when absent
  Term payload;  // message, exit reason or spawn arguments
  Term spawn_options;
  bool has_id = false;
};

// Folds a decoded control message and the term after it (nullptr when
// there is none) into a Signal. On a malformed or unknown control message
// returns std::nullopt and sets *error to a one-line description.
std::optional<Signal> parse_signal(const Term& control, const Term* payload, std::string* error);

// Control messages this node sends.
Term send_control(const Term& to);
Term send_sender_control(const Term& from, const Term& to);
Term reg_send_control(const Term& from, const Term& to_name);
Term link_control(const Term& from, const Term& to);
Term unlink_control(const Term& from, const Term& to);
Term unlink_id_control(const Term& id, const Term& from, const Term& to);
Term unlink_id_ack_control(const Term& id, const Term& from, const Term& to);
Term exit_control(const Term& from, const Term& to, const Term& reason);
Term monitor_control(const Term& from, const Term& to, const Term& ref);
Term demonitor_control(const Term& from, const Term& to, const Term& ref);
Term monitor_exit_control(const Term& from, const Term& to, const Term& ref, const Term& reason);
// result: the new pid, or an error atom; flags: 1 linked, 2 monitored.
Term spawn_reply_control(const Term& request, const Term& to, int flags, const Term& result);

// A complete packet: length, 'p', the control message and, when message is
// not nullptr, the message.
std::string encode_packet(const Term& control, const Term* message);

}  // namespace presence::dist
