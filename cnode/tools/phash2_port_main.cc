// phash2_port: erlang:phash2 computed by the C++ node, as an Erlang port
// program, so that a BEAM can check it against its own.
//
// Speaks {packet, 4} on stdin/stdout. Each request is term_to_binary of
// {Term, Range} (Range 1..2^32, answered with phash2(Term, Range)) or of
// {Term} (answered with phash2(Term)); each reply is term_to_binary of the
// hash, or of {error, Reason} for a request it cannot read. Exits 0 when
// stdin closes.
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "term/codec.h"
#include "term/phash2.h"
#include "term/term.h"

namespace presence {
namespace {

constexpr std::int64_t kMaxRange = std::int64_t{1} << 32;

std::optional<std::string> read_packet(std::FILE* in) {
  unsigned char header[4];
  if (std::fread(header, 1, 4, in) != 4) return std::nullopt;
  std::uint32_t length = std::uint32_t{header[0]} << 24 | std::uint32_t{header[1]} << 16 |
                         std::uint32_t{header[2]} << 8 | header[3];
  std::string payload(length, '\0');
  if (length > 0 && std::fread(payload.data(), 1, length, in) != length) return std::nullopt;
  return payload;
}

bool write_packet(std::FILE* out, const std::string& payload) {
  auto length = static_cast<std::uint32_t>(payload.size());
  const unsigned char header[4] = {
      static_cast<unsigned char>(length >> 24), static_cast<unsigned char>(length >> 16),
      static_cast<unsigned char>(length >> 8), static_cast<unsigned char>(length)};
  return std::fwrite(header, 1, 4, out) == 4 &&
         std::fwrite(payload.data(), 1, payload.size(), out) == payload.size() &&
         std::fflush(out) == 0;
}

Term error(std::string reason) {
  return Term::tuple({Term::atom("error"), Term::binary(reason)});
}

Term answer(const std::string& request) {
  DecodeResult decoded = decode_whole(request);
  if (!decoded) return error(decoded.error().message());
  const Term& tuple = decoded.term();
  if (tuple.is_tuple(1)) return Term::integer(phash2(tuple[0]));
  if (!tuple.is_tuple(2) || !tuple[1].is_integer()) return error("expected {Term, Range}");
  std::int64_t range = tuple[1].as_integer();
  if (range < 1 || range > kMaxRange) return error("range must be 1..2^32");
  // 2^32 does not fit the 32-bit range; phash2 takes 0 for it, as the BEAM does.
  return Term::integer(phash2(tuple[0], static_cast<std::uint32_t>(range)));
}

}  // namespace
}  // namespace presence

int main() {
  while (std::optional<std::string> request = presence::read_packet(stdin)) {
    if (!presence::write_packet(stdout, presence::encode(presence::answer(*request)))) return 1;
  }
  return 0;
}
