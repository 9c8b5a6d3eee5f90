// EPMD, the port mapper every node registers with and looks peers up in.
//
// Requests travel behind a 2-byte length; answers do not:
//   ALIVE2_REQ         'x' port:16 type:8 protocol:8 high:16 low:16
//                      name_len:16 name extra_len:16 extra
//   ALIVE2_X_RESP      'v' result:8 creation:32 (older EPMDs: 'y' result:8 creation:16)
//   PORT_PLEASE2_REQ   'z' name
//   PORT2_RESP         'w' result:8 [port:16 type:8 protocol:8 high:16 low:16 ...]
// The registration lasts as long as the ALIVE2 connection stays open; EPMD
// closes a PORT_PLEASE2 connection after its answer.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "cnode/asio.h"

namespace presence::epmd {

// ERL_EPMD_PORT when set to a valid port, else 4369.
std::uint16_t default_port();

// The distribution protocol version this node speaks (lowest = highest).
inline constexpr std::uint16_t kDistVersion = 6;

std::string encode_alive2_request(std::uint16_t listen_port, std::string_view alive);
std::string encode_port_please2_request(std::string_view alive);

struct Alive2Response {
  bool ok = false;  // false: EPMD refused, usually because the name is taken
  std::uint32_t creation = 0;
};
// Parses a complete ALIVE2 answer of either form; std::nullopt if it is not
// one or is cut short.
std::optional<Alive2Response> parse_alive2_response(std::string_view bytes);

struct PortResponse {
  bool found = false;
  std::uint16_t port = 0;
  std::uint16_t highest_version = 0;
  std::uint16_t lowest_version = 0;
};
// Parses the whole answer to PORT_PLEASE2; std::nullopt if malformed.
std::optional<PortResponse> parse_port_response(std::string_view bytes);

// Holds this node's EPMD registration. Not thread-safe: used by the node
// thread only.
class Registration {
 public:
  Registration() = default;
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

  // Registers `alive` (the part of the node name before '@') for
  // listen_port, waiting at most `timeout`: this is the only blocking
  // network call of the node, made once at start. Returns an empty string
  // on success, else why it failed.
  std::string register_node(const std::string& host, std::uint16_t port, std::string_view alive,
                            std::uint16_t listen_port, std::chrono::milliseconds timeout);
  std::uint32_t creation() const { return creation_; }
  // Ends the registration by closing the connection. Idempotent.
  void close();

 private:
  // A private context: registration completes before the node's own
  // context runs, and the connection only has to stay open afterwards.
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_{io_};
  std::uint32_t creation_ = 0;
};

}  // namespace presence::epmd
