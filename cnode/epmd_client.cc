#include "cnode/epmd_client.h"

#include <cstdlib>
#include <memory>
#include <utility>

#include "cnode/asio.h"
#include "cnode/dist_bytes.h"

namespace presence::epmd {
namespace {

using boost::asio::ip::tcp;

constexpr char kAlive2Request = 'x';
constexpr char kAlive2XResponse = 'v';
constexpr char kAlive2Response = 'y';
constexpr char kPortPlease2Request = 'z';
constexpr char kPort2Response = 'w';
constexpr std::uint8_t kHiddenNodeType = 72;
constexpr std::uint8_t kTcpIpV4 = 0;

std::string with_length(const std::string& body) {
  std::string framed;
  dist::put_u16(&framed, static_cast<std::uint16_t>(body.size()));
  return framed + body;
}

// The state of one blocking registration attempt, driven by its own steps.
struct Attempt {
  Attempt(tcp::socket& socket, std::string request, std::chrono::milliseconds timeout)
      : socket(socket),
        resolver(socket.get_executor()),
        deadline(socket.get_executor(), timeout),
        request(std::move(request)) {}

  tcp::socket& socket;
  tcp::resolver resolver;
  boost::asio::steady_timer deadline;
  std::string request;
  std::string answer = std::string(2, '\0');
  std::string error;
  bool done = false;

  void finish(std::string why) {
    if (done) return;
    done = true;
    error = std::move(why);
    deadline.cancel();
    resolver.cancel();
    if (!error.empty()) {
      boost::system::error_code ignored;
      socket.close(ignored);
    }
  }
};

void read_alive2_rest(Attempt& attempt) {
  // 'v' answers carry a 32-bit creation, the older 'y' a 16-bit one.
  std::size_t rest = attempt.answer[0] == kAlive2Response ? 2 : 4;
  attempt.answer.resize(2 + rest);
  boost::asio::async_read(attempt.socket, boost::asio::buffer(&attempt.answer[2], rest),
                          [&attempt](boost::system::error_code ec, std::size_t) {
                            if (ec) return attempt.finish("EPMD closed: " + ec.message());
                            attempt.finish("");
                          });
}

void read_alive2_head(Attempt& attempt) {
  boost::asio::async_read(attempt.socket, boost::asio::buffer(attempt.answer),
                          [&attempt](boost::system::error_code ec, std::size_t) {
                            if (ec) return attempt.finish("EPMD closed: " + ec.message());
                            if (attempt.answer[1] != 0) {
                              return attempt.finish("the name is already registered at EPMD");
                            }
                            read_alive2_rest(attempt);
                          });
}

void send_alive2(Attempt& attempt) {
  boost::asio::async_write(attempt.socket, boost::asio::buffer(attempt.request),
                           [&attempt](boost::system::error_code ec, std::size_t) {
                             if (ec) return attempt.finish("EPMD write: " + ec.message());
                             read_alive2_head(attempt);
                           });
}

void connect_epmd(Attempt& attempt, const tcp::resolver::results_type& endpoints) {
  boost::asio::async_connect(attempt.socket, endpoints,
                             [&attempt](boost::system::error_code ec, const tcp::endpoint&) {
                               if (ec) return attempt.finish("EPMD unreachable: " + ec.message());
                               send_alive2(attempt);
                             });
}

}  // namespace

std::uint16_t default_port() {
  const char* text = std::getenv("ERL_EPMD_PORT");
  if (text == nullptr) return 4369;
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value <= 0 || value > 65535) return 4369;
  return static_cast<std::uint16_t>(value);
}

std::string encode_alive2_request(std::uint16_t listen_port, std::string_view alive) {
  std::string body(1, kAlive2Request);
  dist::put_u16(&body, listen_port);
  dist::put_u8(&body, kHiddenNodeType);
  dist::put_u8(&body, kTcpIpV4);
  dist::put_u16(&body, kDistVersion);
  dist::put_u16(&body, kDistVersion);
  dist::put_u16(&body, static_cast<std::uint16_t>(alive.size()));
  body += alive;
  dist::put_u16(&body, 0);  // no extra data
  return with_length(body);
}

std::string encode_port_please2_request(std::string_view alive) {
  return with_length(std::string(1, kPortPlease2Request) + std::string(alive));
}

std::optional<Alive2Response> parse_alive2_response(std::string_view bytes) {
  if (bytes.size() < 2) return std::nullopt;
  bool ok = bytes[1] == 0;
  if (bytes[0] == kAlive2XResponse && bytes.size() >= 6) {
    return Alive2Response{ok, dist::get_u32(bytes.data() + 2)};
  }
  if (bytes[0] == kAlive2Response && bytes.size() >= 4) {
    return Alive2Response{ok, dist::get_u16(bytes.data() + 2)};
  }
  return std::nullopt;
}

std::optional<PortResponse> parse_port_response(std::string_view bytes) {
  if (bytes.size() < 2 || bytes[0] != kPort2Response) return std::nullopt;
  if (bytes[1] != 0) return PortResponse{};
  if (bytes.size() < 10) return std::nullopt;
  return PortResponse{true, dist::get_u16(bytes.data() + 2), dist::get_u16(bytes.data() + 6),
                      dist::get_u16(bytes.data() + 8)};
}

std::string Registration::register_node(const std::string& host, std::uint16_t port,
                                        std::string_view alive, std::uint16_t listen_port,
                                        std::chrono::milliseconds timeout) {
  close();
  io_.restart();
  Attempt attempt(socket_, encode_alive2_request(listen_port, alive), timeout);
  attempt.deadline.async_wait([&attempt](boost::system::error_code ec) {
    if (!ec) attempt.finish("EPMD did not answer in time");
  });
  attempt.resolver.async_resolve(
      host, std::to_string(port),
      [&attempt](boost::system::error_code ec, const tcp::resolver::results_type& endpoints) {
        if (ec) return attempt.finish("cannot resolve the EPMD host: " + ec.message());
        connect_epmd(attempt, endpoints);
      });
  io_.run();
  if (!attempt.error.empty()) return attempt.error;

  auto answer = parse_alive2_response(attempt.answer);
  if (!answer) {
    close();
    return "EPMD sent an unexpected answer";
  }
  creation_ = answer->creation;
  return "";
}

void Registration::close() {
  boost::system::error_code ignored;
  socket_.close(ignored);
}

}  // namespace presence::epmd
