// One distribution connection: the handshake in either direction, then
// packets and ticks. A session object with one named step per asynchronous
// operation; every handler returns at once when the connection was closed
// or its operation failed.
//
// Threading: a Connection lives on the node thread; every method and every
// callback into its owner runs there.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cnode/asio.h"
#include "cnode/dist_handshake.h"
#include "cnode/node.h"
#include "term/term.h"

namespace presence::dist {

// What a connection needs to know of the local node.
struct LocalNode {
  Atom name;
  std::uint32_t creation = 0;
  std::string cookie;
  std::chrono::milliseconds tick_time{60000};
  // Bound on the whole handshake, EPMD lookup included (net_setuptime).
  std::chrono::milliseconds setup_timeout{7000};
  std::uint16_t epmd_port = 4369;
  // Bytes that may wait behind the write in progress before the peer is
  // taken for one that cannot keep up and its connection is closed.
  std::size_t max_queued_bytes = std::size_t{1} << 30;
};

// How the accepting side answers a peer that has named itself.
enum class Admission {
  kOk,              // go on
  kOkSimultaneous,  // go on; the owner dropped its own attempt to that node
  kNok,             // refuse: the owner's own attempt to that node wins
  kAlive,           // a connection is up already: ask the peer whether it is stale
  kNotAllowed,      // refuse for good
};

// Why a connection ended.
enum class Closure {
  kHandshakeFailed,  // it never came up
  kSuperseded,       // a simultaneous connection in the other direction wins
  kLost,             // it was up
};

class Connection;

// The node a connection reports to.
class ConnectionOwner {
 public:
  virtual ~ConnectionOwner() = default;
  // Accepting side, once the peer has named itself (connection.peer()).
  virtual Admission admit(Connection& connection) = 0;
  // Accepting side, after kAlive: the peer says its earlier connection is
  // gone, so this one replaces it.
  virtual void replace(Connection& connection) = 0;
  // The handshake succeeded; packets may be sent from now on.
  virtual void on_up(const std::shared_ptr<Connection>& connection) = 0;
  // A decoded control message and the term after it (nullptr if none).
  virtual void on_control(Connection& connection, const Term& control, const Term* message) = 0;
  // The connection ended by itself. Called once, and never after close().
  virtual void on_closed(const std::shared_ptr<Connection>& connection, Closure closure,
                         const std::string& why) = 0;
  virtual void log(LogLevel level, const std::string& message) = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using tcp = boost::asio::ip::tcp;

  // A connection to `peer` (name@host): its port is asked of the EPMD on
  // its host. Call start() to begin.
  static std::shared_ptr<Connection> open(boost::asio::io_context& io,
                                          std::weak_ptr<ConnectionOwner> owner, LocalNode local,
                                          Atom peer);
  // A connection accepted on the listening socket.
  static std::shared_ptr<Connection> accept(tcp::socket socket,
                                            std::weak_ptr<ConnectionOwner> owner, LocalNode local);

  void start();

  // The peer's node name; the empty atom until an accepted peer named itself.
  Atom peer() const { return peer_; }
  bool up() const { return state_ == State::kUp; }
  // The flags the peer advertised, with the OTP 25 digest flag expanded.
  std::uint64_t peer_flags() const { return peer_flags_; }
  // The flags both sides have (valid once up).
  std::uint64_t flags() const { return kLocalFlags & peer_flags_; }

  // Queues a packet made by encode_packet. Dropped unless up. When more
  // than local.max_queued_bytes wait behind the write in progress, the peer
  // is not keeping up: the connection is closed (kLost, reported to the
  // owner from a handler of its own, never from inside this call) and
  // nothing more is queued.
  void send(std::string packet);
  // Ends the connection at once, without calling the owner back.
  void close();
  // Ends the connection once the queued packets are written (bounded by
  // the setup timeout), without calling the owner back.
  void close_after_flush();

 private:
  enum class State { kHandshake, kUp, kClosed };
  using BodyStep = void (Connection::*)(std::string_view body);
  using Step = void (*)(Connection& self);

  Connection(tcp::socket socket, std::weak_ptr<ConnectionOwner> owner, LocalNode local, Atom peer,
             bool initiated);

  // Initiating side.
  void step_resolve();
  void step_epmd_connect(const tcp::resolver::results_type& endpoints);
  void step_epmd_request();
  void step_epmd_answer();
  void on_epmd_answer();
  void step_connect();
  void step_send_name();
  void on_status(std::string_view body);
  void step_confirm_alive();
  void step_read_challenge();
  void on_challenge(std::string_view body);
  void on_challenge_ack(std::string_view body);

  // Accepting side.
  void step_read_name();
  void on_name(std::string_view body);
  void on_alive_answer(std::string_view body);
  void step_send_challenge();
  void on_challenge_reply(std::string_view body);

  // Handshake messages: 2-byte length, then the body.
  void write_handshake(std::string body, Step next);
  void read_handshake(BodyStep next, const char* awaiting);
  void read_handshake_body(BodyStep next, const char* awaiting);
  void refuse(std::string_view status, std::string why);

  // Up: packets, ticks, writes.
  void become_up();
  void step_read();
  void handle_packets();
  void dispatch_packet(std::string_view packet);
  void step_write();
  void step_tick();
  void on_setup_timeout();

  void fail(Closure closure, std::string why);
  void log(LogLevel level, const std::string& message);
  std::string peer_text() const;

  tcp::socket socket_;
  tcp::resolver resolver_;
  boost::asio::steady_timer setup_timer_;
  boost::asio::steady_timer tick_timer_;
  std::weak_ptr<ConnectionOwner> owner_;
  LocalNode local_;
  Atom peer_;
  bool initiated_;
  State state_ = State::kHandshake;

  tcp::endpoint peer_endpoint_;
  std::uint64_t peer_flags_ = 0;
  std::uint32_t our_challenge_ = 0;
  std::uint32_t their_challenge_ = 0;

  // Handshake: the message being read. Up: bytes received and not handled.
  std::string in_;
  std::size_t still_needed_ = 0;  // bytes missing from the packet at the end of in_
  char length_bytes_[2] = {};
  std::string handshake_out_;
  std::vector<std::string> out_queue_;
  std::size_t queued_bytes_ = 0;  // in out_queue_
  std::vector<std::string> out_batch_;
  bool writing_ = false;
  bool overflowed_ = false;  // closing for a full queue
  bool close_when_flushed_ = false;
  bool wrote_since_tick_ = false;
  std::chrono::steady_clock::time_point last_read_;
};

}  // namespace presence::dist
