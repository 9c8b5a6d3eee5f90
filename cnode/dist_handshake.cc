#include "cnode/dist_handshake.h"

#include <openssl/evp.h>

#include <cassert>
#include <random>
#include <string>
#include <utility>

#include "cnode/dist_bytes.h"

namespace presence::dist {
namespace {

constexpr std::pair<std::uint64_t, const char*> kMandatoryFlagNames[] = {
    {kFlagExtendedReferences, "EXTENDED_REFERENCES"},
    {kFlagFunTags, "FUN_TAGS"},
    {kFlagExtendedPidsPorts, "EXTENDED_PIDS_PORTS"},
    {kFlagNewFunTags, "NEW_FUN_TAGS"},
    {kFlagExportPtrTag, "EXPORT_PTR_TAG"},
    {kFlagBitBinaries, "BIT_BINARIES"},
    {kFlagNewFloats, "NEW_FLOATS"},
    {kFlagUtf8Atoms, "UTF8_ATOMS"},
    {kFlagMapTag, "MAP_TAG"},
    {kFlagBigCreation, "BIG_CREATION"},
    {kFlagHandshake23, "HANDSHAKE_23"},
};

// Reads a 16-bit length and that many bytes of name at body[offset].
std::optional<std::string> read_name(std::string_view body, std::size_t offset) {
  if (body.size() < offset + 2) return std::nullopt;
  std::size_t length = get_u16(body.data() + offset);
  if (body.size() < offset + 2 + length || length == 0) return std::nullopt;
  return std::string(body.substr(offset + 2, length));
}

std::optional<Digest> read_digest(std::string_view body, std::size_t offset) {
  if (body.size() != offset + 16) return std::nullopt;
  Digest digest;
  for (std::size_t i = 0; i < digest.size(); ++i) {
    digest[i] = static_cast<std::uint8_t>(body[offset + i]);
  }
  return digest;
}

void put_digest(std::string* out, const Digest& digest) {
  out->append(reinterpret_cast<const char*>(digest.data()), digest.size());
}

}  // namespace

bool is_node_name(std::string_view name) {
  std::size_t at = name.find('@');
  return at != std::string_view::npos && at > 0 && at + 1 < name.size() &&
         name.find('@', at + 1) == std::string_view::npos;
}

std::uint64_t expand_flags(std::uint64_t flags) {
  if (flags & kFlagMandatory25Digest) flags |= kMandatoryFlags;
  return flags;
}

std::string missing_mandatory_flags(std::uint64_t peer_flags) {
  std::uint64_t flags = expand_flags(peer_flags);
  std::string missing;
  for (const auto& [flag, name] : kMandatoryFlagNames) {
    if (flags & flag) continue;
    if (!missing.empty()) missing += ", ";
    missing += name;
  }
  return missing;
}

Digest challenge_digest(std::uint32_t challenge, std::string_view cookie) {
  std::string input(cookie);
  input += std::to_string(challenge);
  Digest digest{};
  unsigned int length = 0;
  int ok = EVP_Digest(input.data(), input.size(), digest.data(), &length, EVP_md5(), nullptr);
  assert(ok == 1 && length == digest.size());
  (void)ok;
  return digest;
}

std::uint32_t random_challenge() {
  static thread_local std::mt19937 generator{std::random_device{}()};
  return static_cast<std::uint32_t>(generator());
}

std::string encode_name(const NameMessage& message) {
  std::string body = "N";
  put_u64(&body, message.flags);
  put_u32(&body, message.creation);
  put_u16(&body, static_cast<std::uint16_t>(message.name.size()));
  body += message.name;
  return body;
}

std::string encode_status(std::string_view status) {
  return "s" + std::string(status);
}

std::string encode_challenge(const ChallengeMessage& message) {
  std::string body = "N";
  put_u64(&body, message.flags);
  put_u32(&body, message.challenge);
  put_u32(&body, message.creation);
  put_u16(&body, static_cast<std::uint16_t>(message.name.size()));
  body += message.name;
  return body;
}

std::string encode_challenge_reply(const ChallengeReply& reply) {
  std::string body = "r";
  put_u32(&body, reply.challenge);
  put_digest(&body, reply.digest);
  return body;
}

std::string encode_challenge_ack(const Digest& digest) {
  std::string body = "a";
  put_digest(&body, digest);
  return body;
}

std::string frame(std::string_view body) {
  assert(body.size() <= 0xffff);
  std::string framed;
  put_u16(&framed, static_cast<std::uint16_t>(body.size()));
  framed += body;
  return framed;
}

std::optional<NameMessage> parse_name(std::string_view body) {
  if (body.size() < 13 || body[0] != 'N') return std::nullopt;
  auto name = read_name(body, 13);
  if (!name) return std::nullopt;
  return NameMessage{get_u64(body.data() + 1), get_u32(body.data() + 9), std::move(*name)};
}

std::optional<std::string> parse_status(std::string_view body) {
  if (body.empty() || body[0] != 's') return std::nullopt;
  return std::string(body.substr(1));
}

std::optional<ChallengeMessage> parse_challenge(std::string_view body) {
  if (body.size() < 17 || body[0] != 'N') return std::nullopt;
  auto name = read_name(body, 17);
  if (!name) return std::nullopt;
  return ChallengeMessage{get_u64(body.data() + 1), get_u32(body.data() + 9),
                          get_u32(body.data() + 13), std::move(*name)};
}

std::optional<ChallengeReply> parse_challenge_reply(std::string_view body) {
  if (body.size() < 5 || body[0] != 'r') return std::nullopt;
  auto digest = read_digest(body, 5);
  if (!digest) return std::nullopt;
  return ChallengeReply{get_u32(body.data() + 1), *digest};
}

std::optional<Digest> parse_challenge_ack(std::string_view body) {
  if (body.empty() || body[0] != 'a') return std::nullopt;
  return read_digest(body, 1);
}

}  // namespace presence::dist
