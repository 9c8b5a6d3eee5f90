#include "cnode/dist_connection.h"

#include <algorithm>
#include <utility>

#include "cnode/asio.h"
#include "cnode/dist_bytes.h"
#include "cnode/epmd_client.h"
#include "term/codec.h"

namespace presence::dist {
namespace {

// Larger packets are refused: no legitimate peer message comes near it, and
// the length is allocated before the bytes arrive.
constexpr std::uint32_t kMaxPacketSize = 128u << 20;
constexpr std::size_t kReadChunk = 64 * 1024;
constexpr char kPassThrough = 'p';

std::string host_of(Atom node) {
  std::string_view text = node.text();
  return std::string(text.substr(text.find('@') + 1));
}

std::string alive_of(Atom node) {
  std::string_view text = node.text();
  return std::string(text.substr(0, text.find('@')));
}

}  // namespace

std::shared_ptr<Connection> Connection::open(boost::asio::io_context& io,
                                             std::weak_ptr<ConnectionOwner> owner, LocalNode local,
                                             Atom peer) {
  return std::shared_ptr<Connection>(
      new Connection(tcp::socket(io), std::move(owner), std::move(local), peer, true));
}

std::shared_ptr<Connection> Connection::accept(tcp::socket socket,
                                               std::weak_ptr<ConnectionOwner> owner,
                                               LocalNode local) {
  return std::shared_ptr<Connection>(
      new Connection(std::move(socket), std::move(owner), std::move(local), Atom(), false));
}

Connection::Connection(tcp::socket socket, std::weak_ptr<ConnectionOwner> owner, LocalNode local,
                       Atom peer, bool initiated)
    : socket_(std::move(socket)),
      resolver_(socket_.get_executor()),
      setup_timer_(socket_.get_executor()),
      tick_timer_(socket_.get_executor()),
      owner_(std::move(owner)),
      local_(std::move(local)),
      peer_(peer),
      initiated_(initiated) {}

void Connection::start() {
  setup_timer_.expires_after(local_.setup_timeout);
  setup_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (self->state_ != State::kHandshake || ec) return;
    self->on_setup_timeout();
  });
  if (initiated_) {
    step_resolve();
  } else {
    step_read_name();
  }
}

void Connection::on_setup_timeout() {
  fail(Closure::kHandshakeFailed, "handshake timed out");
}

// ---- Initiating side ----

// Find the peer's host; its EPMD knows the port.
void Connection::step_resolve() {
  // IPv4, as the distribution's default carrier (inet_tcp) listens on.
  resolver_.async_resolve(
      tcp::v4(), host_of(peer_), std::to_string(local_.epmd_port),
      [self = shared_from_this()](boost::system::error_code ec,
                                  const tcp::resolver::results_type& endpoints) {
        if (self->state_ == State::kClosed) return;
        if (ec) {
          return self->fail(Closure::kHandshakeFailed, "cannot resolve host: " + ec.message());
        }
        self->step_epmd_connect(endpoints);
      });
}

void Connection::step_epmd_connect(const tcp::resolver::results_type& endpoints) {
  boost::asio::async_connect(
      socket_, endpoints,
      [self = shared_from_this()](boost::system::error_code ec, const tcp::endpoint& endpoint) {
        if (self->state_ == State::kClosed) return;
        if (ec) return self->fail(Closure::kHandshakeFailed, "EPMD unreachable: " + ec.message());
        self->peer_endpoint_ = endpoint;
        self->step_epmd_request();
      });
}

void Connection::step_epmd_request() {
  handshake_out_ = epmd::encode_port_please2_request(alive_of(peer_));
  boost::asio::async_write(socket_, boost::asio::buffer(handshake_out_),
                           [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                             if (self->state_ == State::kClosed) return;
                             if (ec) {
                               return self->fail(Closure::kHandshakeFailed,
                                                 "EPMD write: " + ec.message());
                             }
                             self->step_epmd_answer();
                           });
}

// EPMD answers and closes, so the answer is everything up to end of file.
void Connection::step_epmd_answer() {
  in_.clear();
  boost::asio::async_read(socket_, boost::asio::dynamic_buffer(in_, 1024),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                            if (self->state_ == State::kClosed) return;
                            if (ec && ec != boost::asio::error::eof) {
                              return self->fail(Closure::kHandshakeFailed,
                                                "EPMD read: " + ec.message());
                            }
                            self->on_epmd_answer();
                          });
}

void Connection::on_epmd_answer() {
  auto answer = epmd::parse_port_response(in_);
  if (!answer) return fail(Closure::kHandshakeFailed, "EPMD sent an unexpected answer");
  if (!answer->found) return fail(Closure::kHandshakeFailed, "not registered at EPMD");
  if (answer->highest_version < epmd::kDistVersion) {
    return fail(Closure::kHandshakeFailed, "peer does not speak distribution version 6");
  }
  boost::system::error_code ignored;
  socket_.close(ignored);
  peer_endpoint_.port(answer->port);
  step_connect();
}

void Connection::step_connect() {
  socket_.async_connect(peer_endpoint_, [self = shared_from_this()](boost::system::error_code ec) {
    if (self->state_ == State::kClosed) return;
    if (ec) return self->fail(Closure::kHandshakeFailed, "connect: " + ec.message());
    self->step_send_name();
  });
}

void Connection::step_send_name() {
  boost::system::error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  NameMessage name{kLocalFlags, local_.creation, std::string(local_.name.text())};
  write_handshake(encode_name(name),
                  [](Connection& self) { self.read_handshake(&Connection::on_status, "status"); });
}

void Connection::on_status(std::string_view body) {
  auto status = parse_status(body);
  if (!status) return fail(Closure::kHandshakeFailed, "expected a status message");
  if (*status == "ok" || *status == "ok_simultaneous") return step_read_challenge();
  // The peer has a connection from this node's name up; it is stale, since
  // this node only connects when it has none.
  if (*status == "alive") return step_confirm_alive();
  if (*status == "nok") {
    return fail(Closure::kSuperseded, "simultaneous connect, the peer's connection wins");
  }
  if (*status == "not_allowed") {
    return fail(Closure::kHandshakeFailed, "the peer does not allow this node");
  }
  fail(Closure::kHandshakeFailed, "unexpected status " + *status);
}

void Connection::step_confirm_alive() {
  write_handshake(encode_status("true"), [](Connection& self) { self.step_read_challenge(); });
}

void Connection::step_read_challenge() {
  read_handshake(&Connection::on_challenge, "challenge");
}

void Connection::on_challenge(std::string_view body) {
  auto challenge = parse_challenge(body);
  if (!challenge) return fail(Closure::kHandshakeFailed, "expected a challenge message");
  if (challenge->name != peer_.text()) {
    return fail(Closure::kHandshakeFailed, "the node answering is " + challenge->name);
  }
  std::string missing = missing_mandatory_flags(challenge->flags);
  if (!missing.empty()) return fail(Closure::kHandshakeFailed, "peer lacks " + missing);

  peer_flags_ = expand_flags(challenge->flags);
  their_challenge_ = challenge->challenge;
  our_challenge_ = random_challenge();
  ChallengeReply reply{our_challenge_, challenge_digest(their_challenge_, local_.cookie)};
  write_handshake(encode_challenge_reply(reply), [](Connection& self) {
    self.read_handshake(&Connection::on_challenge_ack, "challenge ack (wrong cookie?)");
  });
}

void Connection::on_challenge_ack(std::string_view body) {
  auto digest = parse_challenge_ack(body);
  if (!digest) return fail(Closure::kHandshakeFailed, "expected a challenge ack");
  if (*digest != challenge_digest(our_challenge_, local_.cookie)) {
    return fail(Closure::kHandshakeFailed, "wrong cookie (the challenge ack does not match)");
  }
  become_up();
}

// ---- Accepting side ----

void Connection::step_read_name() {
  read_handshake(&Connection::on_name, "name");
}

void Connection::on_name(std::string_view body) {
  auto name = parse_name(body);
  if (!name || !is_node_name(name->name)) {
    return fail(Closure::kHandshakeFailed, "expected a name message");
  }
  peer_ = Atom(name->name);
  std::string missing = missing_mandatory_flags(name->flags);
  if (!missing.empty()) return refuse("not_allowed", "peer lacks " + missing);
  peer_flags_ = expand_flags(name->flags);

  auto owner = owner_.lock();
  if (!owner) return close();
  switch (owner->admit(*this)) {
    case Admission::kOk:
      return write_handshake(encode_status("ok"),
                             [](Connection& self) { self.step_send_challenge(); });
    case Admission::kOkSimultaneous:
      return write_handshake(encode_status("ok_simultaneous"),
                             [](Connection& self) { self.step_send_challenge(); });
    case Admission::kNok:
      return refuse("nok", "simultaneous connect, this node's connection wins");
    case Admission::kNotAllowed:
      return refuse("not_allowed", "not allowed");
    case Admission::kAlive:
      return write_handshake(encode_status("alive"), [](Connection& self) {
        self.read_handshake(&Connection::on_alive_answer, "answer to alive");
      });
  }
}

void Connection::on_alive_answer(std::string_view body) {
  auto status = parse_status(body);
  if (!status || *status != "true") {
    return fail(Closure::kSuperseded, "the peer keeps its existing connection");
  }
  auto owner = owner_.lock();
  if (!owner) return close();
  owner->replace(*this);
  step_send_challenge();
}

void Connection::step_send_challenge() {
  our_challenge_ = random_challenge();
  ChallengeMessage challenge{kLocalFlags, our_challenge_, local_.creation,
                             std::string(local_.name.text())};
  write_handshake(encode_challenge(challenge), [](Connection& self) {
    self.read_handshake(&Connection::on_challenge_reply, "challenge reply");
  });
}

void Connection::on_challenge_reply(std::string_view body) {
  auto reply = parse_challenge_reply(body);
  if (!reply) return fail(Closure::kHandshakeFailed, "expected a challenge reply");
  if (reply->digest != challenge_digest(our_challenge_, local_.cookie)) {
    return fail(Closure::kHandshakeFailed, "wrong cookie");
  }
  their_challenge_ = reply->challenge;
  write_handshake(encode_challenge_ack(challenge_digest(their_challenge_, local_.cookie)),
                  [](Connection& self) { self.become_up(); });
}

// ---- Handshake framing ----

void Connection::write_handshake(std::string body, Step next) {
  handshake_out_ = frame(body);
  boost::asio::async_write(
      socket_, boost::asio::buffer(handshake_out_),
      [self = shared_from_this(), next](boost::system::error_code ec, std::size_t) {
        if (self->state_ == State::kClosed) return;
        if (ec) return self->fail(Closure::kHandshakeFailed, "write: " + ec.message());
        next(*self);
      });
}

void Connection::read_handshake(BodyStep next, const char* awaiting) {
  boost::asio::async_read(
      socket_, boost::asio::buffer(length_bytes_, 2),
      [self = shared_from_this(), next, awaiting](boost::system::error_code ec, std::size_t) {
        if (self->state_ == State::kClosed) return;
        if (ec) {
          return self->fail(Closure::kHandshakeFailed,
                            std::string("connection closed while awaiting the ") + awaiting);
        }
        self->read_handshake_body(next, awaiting);
      });
}

void Connection::read_handshake_body(BodyStep next, const char* awaiting) {
  in_.assign(get_u16(length_bytes_), '\0');
  boost::asio::async_read(
      socket_, boost::asio::buffer(in_),
      [self = shared_from_this(), next, awaiting](boost::system::error_code ec, std::size_t) {
        if (self->state_ == State::kClosed) return;
        if (ec) {
          return self->fail(Closure::kHandshakeFailed,
                            std::string("connection closed while awaiting the ") + awaiting);
        }
        (self.get()->*next)(self->in_);
      });
}

// Tells the peer why, then ends the connection.
void Connection::refuse(std::string_view status, std::string why) {
  Closure closure = status == "nok" ? Closure::kSuperseded : Closure::kHandshakeFailed;
  handshake_out_ = frame(encode_status(status));
  boost::asio::async_write(socket_, boost::asio::buffer(handshake_out_),
                           [self = shared_from_this(), closure, why = std::move(why)](
                               boost::system::error_code, std::size_t) {
                             if (self->state_ == State::kClosed) return;
                             self->fail(closure, why);
                           });
}

// ---- Up ----

void Connection::become_up() {
  state_ = State::kUp;
  setup_timer_.cancel();
  last_read_ = std::chrono::steady_clock::now();
  in_.clear();
  auto owner = owner_.lock();
  if (!owner) return close();
  owner->on_up(shared_from_this());
  if (state_ != State::kUp) return;
  step_read();
  step_tick();
}

// Reads whatever has arrived, at least the rest of a packet known to be
// incomplete, so that a burst of small packets costs one read.
void Connection::step_read() {
  std::size_t kept = in_.size();
  std::size_t room = std::max(kReadChunk, still_needed_);
  in_.resize(kept + room);
  socket_.async_read_some(
      boost::asio::buffer(in_.data() + kept, room),
      [self = shared_from_this(), kept](boost::system::error_code ec, std::size_t length) {
        if (self->state_ == State::kClosed) return;
        if (ec) return self->fail(Closure::kLost, "connection closed: " + ec.message());
        self->in_.resize(kept + length);
        self->last_read_ = std::chrono::steady_clock::now();
        self->handle_packets();
        if (self->state_ != State::kUp) return;
        self->step_read();
      });
}

// Hands on every complete packet in in_ and keeps the incomplete rest.
// Zero-length packets are ticks: their arrival is all they mean.
void Connection::handle_packets() {
  std::string_view received = in_;
  std::size_t offset = 0;
  still_needed_ = 0;
  while (state_ == State::kUp && received.size() - offset >= 4) {
    std::uint32_t length = get_u32(received.data() + offset);
    if (length > kMaxPacketSize) {
      return fail(Closure::kLost, "refused a packet of " + std::to_string(length) + " bytes");
    }
    if (received.size() - offset - 4 < length) {
      still_needed_ = offset + 4 + length - received.size();
      break;
    }
    if (length > 0) dispatch_packet(received.substr(offset + 4, length));
    offset += 4 + length;
  }
  in_.erase(0, offset);
}

// A bad packet costs only itself: it is logged and dropped, and the
// connection goes on.
void Connection::dispatch_packet(std::string_view packet) {
  if (packet[0] != kPassThrough) {
    return log(LogLevel::kWarning, "dropped a packet of unknown type " +
                                       std::to_string(get_u8(packet.data())) + " from " +
                                       peer_text());
  }
  std::size_t offset = 1;
  DecodeResult control = decode(packet, &offset);
  if (!control) {
    return log(LogLevel::kWarning, "dropped a malformed control message from " + peer_text() +
                                       ": " + control.error().message());
  }
  if (offset == packet.size()) {
    if (auto owner = owner_.lock()) owner->on_control(*this, control.term(), nullptr);
    return;
  }
  DecodeResult message = decode(packet, &offset);
  if (!message) {
    return log(LogLevel::kWarning, "dropped a malformed message from " + peer_text() + ": " +
                                       message.error().message());
  }
  if (auto owner = owner_.lock()) owner->on_control(*this, control.term(), &message.term());
}

void Connection::send(std::string packet) {
  if (state_ != State::kUp || close_when_flushed_ || overflowed_) return;
  queued_bytes_ += packet.size();
  out_queue_.push_back(std::move(packet));
  if (!writing_) return step_write();
  if (queued_bytes_ <= local_.max_queued_bytes) return;
  // The caller may be walking the owner's connections: the owner hears of
  // the closure from a handler of its own.
  overflowed_ = true;
  std::string why =
      "it reads too slowly: " + std::to_string(queued_bytes_) + " bytes wait to be written to it";
  boost::asio::post(socket_.get_executor(), [self = shared_from_this(), why = std::move(why)] {
    self->fail(Closure::kLost, why);
  });
}

// Writes everything queued so far in one gather write.
void Connection::step_write() {
  writing_ = true;
  wrote_since_tick_ = true;
  out_batch_.swap(out_queue_);
  queued_bytes_ = 0;
  std::vector<boost::asio::const_buffer> buffers;
  buffers.reserve(out_batch_.size());
  for (const std::string& packet : out_batch_) buffers.push_back(boost::asio::buffer(packet));
  boost::asio::async_write(socket_, buffers,
                           [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                             if (self->state_ == State::kClosed) return;
                             if (ec) {
                               return self->fail(Closure::kLost, "write failed: " + ec.message());
                             }
                             self->writing_ = false;
                             self->out_batch_.clear();
                             if (!self->out_queue_.empty()) return self->step_write();
                             if (self->close_when_flushed_) self->close();
                           });
}

// Every quarter of the tick time: give up on a silent peer, and tick when
// nothing else was written, so that the peer does not give up on this node.
void Connection::step_tick() {
  tick_timer_.expires_after(local_.tick_time / 4);
  tick_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (self->state_ != State::kUp || ec) return;
    auto silent = std::chrono::steady_clock::now() - self->last_read_;
    if (silent > self->local_.tick_time) {
      return self->fail(Closure::kLost, "no answer within the tick time");
    }
    bool idle = !self->wrote_since_tick_;
    self->wrote_since_tick_ = false;
    if (idle) self->send(std::string(4, '\0'));
    self->step_tick();
  });
}

void Connection::close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  setup_timer_.cancel();
  tick_timer_.cancel();
  resolver_.cancel();
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

void Connection::close_after_flush() {
  if (state_ != State::kUp || !writing_) return close();
  close_when_flushed_ = true;
  setup_timer_.expires_after(local_.setup_timeout);
  setup_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->close();
  });
}

void Connection::fail(Closure closure, std::string why) {
  if (state_ == State::kClosed) return;
  close();
  if (auto owner = owner_.lock()) owner->on_closed(shared_from_this(), closure, why);
}

void Connection::log(LogLevel level, const std::string& message) {
  if (auto owner = owner_.lock()) owner->log(level, message);
}

std::string Connection::peer_text() const {
  if (peer_ == Atom()) return "an unnamed peer";
  return std::string(peer_.text());
}

}  // namespace presence::dist
