// The messages of the distribution handshake (protocol version 6, the 'N'
// forms that OTP 23 introduced), the flags both sides advertise in them, and
// the cookie digest. Pure functions; the connection that sends and reads
// them is in dist_connection.h.
//
// Every handshake message travels behind a 2-byte big-endian length:
//   name       'N' flags:64 creation:32 name_len:16 name
//   status     's' text          ("ok", "ok_simultaneous", "nok", "alive", ...)
//   challenge  'N' flags:64 challenge:32 creation:32 name_len:16 name
//   reply      'r' challenge:32 digest:128
//   ack        'a' digest:128
// digest = MD5(cookie ++ decimal text of the other side's challenge).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace presence::dist {

// Distribution capability flags (DFLAG_* of the protocol).
inline constexpr std::uint64_t kFlagPublished = 0x1;
inline constexpr std::uint64_t kFlagAtomCache = 0x2;
inline constexpr std::uint64_t kFlagExtendedReferences = 0x4;
inline constexpr std::uint64_t kFlagDistMonitor = 0x8;
inline constexpr std::uint64_t kFlagFunTags = 0x10;
inline constexpr std::uint64_t kFlagDistMonitorName = 0x20;
inline constexpr std::uint64_t kFlagNewFunTags = 0x80;
inline constexpr std::uint64_t kFlagExtendedPidsPorts = 0x100;
inline constexpr std::uint64_t kFlagExportPtrTag = 0x200;
inline constexpr std::uint64_t kFlagBitBinaries = 0x400;
inline constexpr std::uint64_t kFlagNewFloats = 0x800;
inline constexpr std::uint64_t kFlagDistHdrAtomCache = 0x2000;
inline constexpr std::uint64_t kFlagUtf8Atoms = 0x10000;
inline constexpr std::uint64_t kFlagMapTag = 0x20000;
inline constexpr std::uint64_t kFlagBigCreation = 0x40000;
inline constexpr std::uint64_t kFlagSendSender = 0x80000;
inline constexpr std::uint64_t kFlagExitPayload = 0x400000;
inline constexpr std::uint64_t kFlagFragments = 0x800000;
inline constexpr std::uint64_t kFlagHandshake23 = 0x1000000;
inline constexpr std::uint64_t kFlagUnlinkId = 0x2000000;
inline constexpr std::uint64_t kFlagMandatory25Digest = 0x4000000;
inline constexpr std::uint64_t kFlagSpawn = std::uint64_t{0x1} << 32;
inline constexpr std::uint64_t kFlagV4NodeContainers = std::uint64_t{0x4} << 32;

// What OTP 25 requires of every peer; kFlagMandatory25Digest stands for all
// of them at once.
inline constexpr std::uint64_t kMandatoryFlags =
    kFlagExtendedReferences | kFlagFunTags | kFlagExtendedPidsPorts | kFlagNewFunTags |
    kFlagExportPtrTag | kFlagBitBinaries | kFlagNewFloats | kFlagUtf8Atoms | kFlagMapTag |
    kFlagBigCreation | kFlagHandshake23;

// What this node advertises. Not published (it is a hidden node), and
// neither the atom cache nor fragments, so that every packet is a plain
// pass-through 'p' packet of whole terms. Spawn requests are taken so that
// rpc:call/4 (erpc since OTP 23) reaches the built-in rpc functions.
inline constexpr std::uint64_t kLocalFlags =
    kMandatoryFlags | kFlagMandatory25Digest | kFlagDistMonitor | kFlagDistMonitorName |
    kFlagSendSender | kFlagExitPayload | kFlagUnlinkId | kFlagSpawn | kFlagV4NodeContainers;

// Whether `name` is a node name: name@host, both parts non-empty.
bool is_node_name(std::string_view name);

// The peer's flags with kFlagMandatory25Digest expanded.
std::uint64_t expand_flags(std::uint64_t flags);

// The names of the mandatory flags missing from (expanded) peer flags,
// comma separated; empty when none is missing.
std::string missing_mandatory_flags(std::uint64_t peer_flags);

using Digest = std::array<std::uint8_t, 16>;

// MD5 of the cookie followed by the challenge as unsigned decimal text.
Digest challenge_digest(std::uint32_t challenge, std::string_view cookie);

// A challenge from a random source good enough for a nonce.
std::uint32_t random_challenge();

struct NameMessage {
  std::uint64_t flags = 0;
  std::uint32_t creation = 0;
  std::string name;
};

struct ChallengeMessage {
  std::uint64_t flags = 0;
  std::uint32_t challenge = 0;
  std::uint32_t creation = 0;
  std::string name;
};

struct ChallengeReply {
  std::uint32_t challenge = 0;
  Digest digest{};
};

// Encoders return the message body without its length; frame() adds it.
std::string encode_name(const NameMessage& message);
std::string encode_status(std::string_view status);
std::string encode_challenge(const ChallengeMessage& message);
std::string encode_challenge_reply(const ChallengeReply& reply);
std::string encode_challenge_ack(const Digest& digest);
std::string frame(std::string_view body);

// Parsers take a body without its length and return std::nullopt when it is
// not the expected message or is cut short.
std::optional<NameMessage> parse_name(std::string_view body);
std::optional<std::string> parse_status(std::string_view body);
std::optional<ChallengeMessage> parse_challenge(std::string_view body);
std::optional<ChallengeReply> parse_challenge_reply(std::string_view body);
std::optional<Digest> parse_challenge_ack(std::string_view body);

}  // namespace presence::dist
