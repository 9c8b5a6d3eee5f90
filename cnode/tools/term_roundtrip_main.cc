// term_roundtrip: a port program for testing the codec from the BEAM.
//
// Speaks {packet, 4} on stdin and stdout. Each packet is decoded as one
// whole term (decode_whole) and answered with encode(term); a packet that
// does not decode is answered with the encoding of {error, Reason}, Reason
// being the DecodeErrc's name (truncated, malformed, ...). Exits when stdin
// closes.
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "term/codec.h"
#include "term/term.h"

namespace {

// Packets are test terms; anything larger is a framing error.
constexpr std::uint32_t kMaxPacket = 1u << 30;

bool read_exactly(int fd, char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::read(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool write_exactly(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool read_packet(std::string* packet) {
  unsigned char header[4];
  if (!read_exactly(0, reinterpret_cast<char*>(header), sizeof header)) return false;
  std::uint32_t size = (std::uint32_t{header[0]} << 24) | (std::uint32_t{header[1]} << 16) |
                       (std::uint32_t{header[2]} << 8) | header[3];
  if (size > kMaxPacket) return false;
  packet->resize(size);
  return read_exactly(0, packet->data(), size);
}

bool write_packet(const std::string& payload) {
  auto size = static_cast<std::uint32_t>(payload.size());
  char header[4] = {static_cast<char>(size >> 24), static_cast<char>(size >> 16),
                    static_cast<char>(size >> 8), static_cast<char>(size)};
  return write_exactly(1, header, sizeof header) && write_exactly(1, payload.data(), size);
}

std::string answer(const std::string& packet) {
  presence::DecodeResult result = presence::decode_whole(packet);
  if (result.ok()) return presence::encode(result.term());
  const char* reason = presence::to_string(result.error().code);
  return presence::encode(
      presence::Term::tuple({presence::Term::atom("error"), presence::Term::atom(reason)}));
}

}  // namespace

int main() {
  std::string packet;
  while (read_packet(&packet)) {
    if (!write_packet(answer(packet))) return 1;
  }
  return 0;
}
