// The pure parts of the distribution protocol: handshake messages and
// digest, EPMD messages, control messages, cookie lookup, log levels.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cnode/dist_control.h"
#include "cnode/dist_handshake.h"
#include "cnode/epmd_client.h"
#include "cnode/log.h"
#include "term/codec.h"

namespace presence {
namespace {

using namespace dist;

Term pid(std::string_view node, std::uint32_t id) {
  return Term::pid(PidValue{Atom(node), id, 0, 7});
}

Term ref(std::string_view node, std::uint32_t word) {
  return Term::reference(RefValue{Atom(node), 7, {word, 0, 0}});
}

// ---- Handshake ----

TEST(Handshake, DigestIsMd5OfCookieAndDecimalChallenge) {
  // Values from erlang:md5(["secret" | integer_to_list(12345)]) and
  // erlang:md5(["c" | integer_to_list(4294967295)]).
  Digest expected{212, 4, 125, 62, 86, 230, 214, 214, 63, 125, 22, 184, 92, 210, 250, 136};
  EXPECT_EQ(challenge_digest(12345, "secret"), expected);
  Digest unsigned_max{182, 185, 66, 142, 240, 121, 252, 137, 234, 4, 187, 38, 187, 241, 160, 218};
  EXPECT_EQ(challenge_digest(4294967295u, "c"), unsigned_max);
}

TEST(Handshake, NameMessageHasTheVersion6Layout) {
  std::string body = encode_name({kLocalFlags, 0x01020304, "a@h"});
  ASSERT_EQ(body.size(), 1u + 8 + 4 + 2 + 3);
  EXPECT_EQ(body[0], 'N');
  EXPECT_EQ(body.substr(9, 4), std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(body.substr(13, 2), std::string("\x00\x03", 2));
  auto parsed = parse_name(body);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->flags, kLocalFlags);
  EXPECT_EQ(parsed->creation, 0x01020304u);
  EXPECT_EQ(parsed->name, "a@h");
}

TEST(Handshake, ChallengeRoundTrips) {
  auto parsed = parse_challenge(encode_challenge({kMandatoryFlags, 99, 5, "b@h"}));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->flags, kMandatoryFlags);
  EXPECT_EQ(parsed->challenge, 99u);
  EXPECT_EQ(parsed->creation, 5u);
  EXPECT_EQ(parsed->name, "b@h");
}

TEST(Handshake, ReplyAndAckRoundTrip) {
  Digest digest = challenge_digest(1, "x");
  auto reply = parse_challenge_reply(encode_challenge_reply({77, digest}));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->challenge, 77u);
  EXPECT_EQ(reply->digest, digest);
  EXPECT_EQ(parse_challenge_ack(encode_challenge_ack(digest)), digest);
  EXPECT_EQ(parse_status(encode_status("ok_simultaneous")), "ok_simultaneous");
}

TEST(Handshake, FrameAddsTwoByteLength) {
  EXPECT_EQ(frame("sok"), std::string("\x00\x03sok", 5));
}

TEST(Handshake, TruncatedOrForeignMessagesAreRefused) {
  std::string name = encode_name({kLocalFlags, 1, "a@h"});
  EXPECT_FALSE(parse_name(name.substr(0, name.size() - 1)));
  EXPECT_FALSE(parse_name("n" + name.substr(1)));
  EXPECT_FALSE(parse_challenge(name));
  EXPECT_FALSE(parse_challenge_reply("r\x01\x02"));
  EXPECT_FALSE(parse_challenge_ack("a" + std::string(15, 'x')));
  EXPECT_FALSE(parse_status(""));
}

TEST(Handshake, MissingMandatoryFlagsAreNamed) {
  EXPECT_EQ(missing_mandatory_flags(kLocalFlags), "");
  EXPECT_EQ(missing_mandatory_flags(kFlagMandatory25Digest), "");
  EXPECT_EQ(missing_mandatory_flags(kMandatoryFlags & ~kFlagMapTag & ~kFlagUtf8Atoms),
            "UTF8_ATOMS, MAP_TAG");
}

TEST(Handshake, NodeNamesHaveOneAtBetweenTwoParts) {
  EXPECT_TRUE(is_node_name("a@h"));
  EXPECT_TRUE(is_node_name("cpp@127.0.0.1"));
  EXPECT_FALSE(is_node_name("a"));
  EXPECT_FALSE(is_node_name("@h"));
  EXPECT_FALSE(is_node_name("a@"));
  EXPECT_FALSE(is_node_name("a@b@c"));
}

TEST(Handshake, LocalFlagsAreHiddenWithoutAtomCacheOrFragments) {
  EXPECT_EQ(kLocalFlags & kFlagPublished, 0u);
  EXPECT_EQ(kLocalFlags & kFlagDistHdrAtomCache, 0u);
  EXPECT_EQ(kLocalFlags & kFlagAtomCache, 0u);
  EXPECT_EQ(kLocalFlags & kFlagFragments, 0u);
  EXPECT_EQ(kLocalFlags & kMandatoryFlags, kMandatoryFlags);
}

// ---- EPMD ----

TEST(Epmd, Alive2RequestRegistersAHiddenVersion6Node) {
  std::string request = epmd::encode_alive2_request(0x1234, "cpp");
  std::string expected(
      "\x00\x10"
      "x\x12\x34"
      "H\x00\x00\x06\x00\x06\x00\x03"
      "cpp\x00\x00",
      18);
  EXPECT_EQ(request, expected);
}

TEST(Epmd, Alive2ResponsesOfBothForms) {
  auto x = epmd::parse_alive2_response(std::string("v\x00\x00\x00\x01\x02", 6));
  ASSERT_TRUE(x);
  EXPECT_TRUE(x->ok);
  EXPECT_EQ(x->creation, 0x102u);
  auto old = epmd::parse_alive2_response(std::string("y\x00\x00\x03", 4));
  ASSERT_TRUE(old);
  EXPECT_EQ(old->creation, 3u);
  auto taken = epmd::parse_alive2_response(std::string("v\x01\x00\x00\x00\x00", 6));
  ASSERT_TRUE(taken);
  EXPECT_FALSE(taken->ok);
  EXPECT_FALSE(epmd::parse_alive2_response("v"));
}

TEST(Epmd, PortPleaseRequestAndAnswer) {
  EXPECT_EQ(epmd::encode_port_please2_request("beam"), std::string("\x00\x05zbeam", 7));
  std::string found(
      "w\x00\x12\x34M\x00\x00\x06\x00\x06\x00\x04"
      "beam\x00\x00",
      18);
  auto port = epmd::parse_port_response(found);
  ASSERT_TRUE(port);
  EXPECT_TRUE(port->found);
  EXPECT_EQ(port->port, 0x1234);
  EXPECT_EQ(port->highest_version, 6);
  auto missing = epmd::parse_port_response(std::string("w\x01", 2));
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->found);
  EXPECT_FALSE(epmd::parse_port_response("x"));
}

// ---- Control messages ----

TEST(Control, TraceTokenAndPayloadFormsFoldIntoPlainSignals) {
  Term from = pid("a@h", 1);
  Term to = pid("b@h", 2);
  Term token = Term::atom("token");
  Term reason = Term::atom("bye");
  std::string error;

  auto exit_tt = parse_signal(Term::tuple({Term::integer(kOpExitTT), from, to, token, reason}),
                              nullptr, &error);
  ASSERT_TRUE(exit_tt) << error;
  EXPECT_EQ(exit_tt->kind, Signal::Kind::kExit);
  EXPECT_EQ(exit_tt->payload, reason);

  auto payload_exit2 =
      parse_signal(Term::tuple({Term::integer(kOpPayloadExit2), from, to}), &reason, &error);
  ASSERT_TRUE(payload_exit2) << error;
  EXPECT_EQ(payload_exit2->kind, Signal::Kind::kExit2);
  EXPECT_EQ(payload_exit2->from, from);
  EXPECT_EQ(payload_exit2->payload, reason);

  Term message = Term::binary("hi");
  auto reg_send_tt = parse_signal(
      Term::tuple({Term::integer(kOpRegSendTT), from, Term::atom(""), Term::atom("box"), token}),
      &message, &error);
  ASSERT_TRUE(reg_send_tt) << error;
  EXPECT_EQ(reg_send_tt->kind, Signal::Kind::kRegSend);
  EXPECT_EQ(reg_send_tt->to, Term::atom("box"));
  EXPECT_EQ(reg_send_tt->payload, message);
}

TEST(Control, MonitorsMayNameTheirTarget) {
  std::string error;
  auto monitor = parse_signal(
      Term::tuple({Term::integer(kOpMonitorP), pid("a@h", 1), Term::atom("rex"), ref("a@h", 3)}),
      nullptr, &error);
  ASSERT_TRUE(monitor) << error;
  EXPECT_EQ(monitor->kind, Signal::Kind::kMonitor);
  EXPECT_EQ(monitor->to, Term::atom("rex"));
  EXPECT_EQ(monitor->id, ref("a@h", 3));
}

TEST(Control, UnlinkIdCarriesItsId) {
  std::string error;
  auto unlink = parse_signal(
      Term::tuple({Term::integer(kOpUnlinkId), Term::integer(42), pid("a@h", 1), pid("b@h", 2)}),
      nullptr, &error);
  ASSERT_TRUE(unlink) << error;
  EXPECT_EQ(unlink->kind, Signal::Kind::kUnlink);
  EXPECT_TRUE(unlink->has_id);
  EXPECT_EQ(unlink->id, Term::integer(42));
  EXPECT_EQ(unlink->from, pid("a@h", 1));
}

TEST(Control, SpawnRequestCarriesFunctionArgumentsAndOptions) {
  std::string error;
  Term mfa = Term::tuple({Term::atom("erpc"), Term::atom("execute_call"), Term::integer(4)});
  Term args = Term::list({ref("a@h", 1), Term::atom("erlang"), Term::atom("node"), Term()});
  Term control = Term::tuple({Term::integer(kOpSpawnRequest), ref("a@h", 2), pid("a@h", 9),
                              pid("a@h", 3), mfa, Term::list({Term::atom("monitor")})});
  auto spawn = parse_signal(control, &args, &error);
  ASSERT_TRUE(spawn) << error;
  EXPECT_EQ(spawn->kind, Signal::Kind::kSpawnRequest);
  EXPECT_EQ(spawn->id, ref("a@h", 2));
  EXPECT_EQ(spawn->from, pid("a@h", 9));
  EXPECT_EQ(spawn->to, mfa);
  EXPECT_EQ(spawn->payload, args);
  EXPECT_EQ(spawn->spawn_options, Term::list({Term::atom("monitor")}));
}

TEST(Control, MalformedControlMessagesAreRefusedWithAReason) {
  std::string error;
  EXPECT_FALSE(parse_signal(Term::atom("hello"), nullptr, &error));
  EXPECT_NE(error.find("not a tuple"), std::string::npos);
  EXPECT_FALSE(parse_signal(Term::tuple({Term::integer(99)}), nullptr, &error));
  EXPECT_EQ(error, "unknown control operation 99");
  EXPECT_FALSE(
      parse_signal(Term::tuple({Term::integer(kOpSend), Term::atom("")}), nullptr, &error));
  EXPECT_NE(error.find("too few parts"), std::string::npos);
  Term message = Term::atom("m");
  EXPECT_FALSE(parse_signal(Term::tuple({Term::integer(kOpSend), Term::atom(""), Term::atom("x")}),
                            &message, &error));
  EXPECT_NE(error.find("wrong kind"), std::string::npos);
}

TEST(Control, PacketIsLengthPassThroughAndTerms) {
  Term control = send_control(pid("b@h", 2));
  Term message = Term::tuple({Term::atom("hello"), Term::integer(1)});
  std::string packet = encode_packet(control, &message);
  std::string terms = encode(control) + encode(message);
  ASSERT_EQ(packet.size(), 5 + terms.size());
  EXPECT_EQ(static_cast<std::size_t>(static_cast<unsigned char>(packet[3])), 1 + terms.size());
  EXPECT_EQ(packet[4], 'p');
  EXPECT_EQ(packet.substr(5), terms);
}

// ---- Cookie and log level ----

class CookieTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = std::filesystem::temp_directory_path() / ("cookie_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(home_);
    saved_home_ = std::getenv("HOME") ? std::getenv("HOME") : "";
    const char* cookie = std::getenv("ERLANG_COOKIE");
    saved_cookie_ = cookie ? std::optional<std::string>(cookie) : std::nullopt;
    ::setenv("HOME", home_.c_str(), 1);
    ::unsetenv("ERLANG_COOKIE");
  }
  void TearDown() override {
    ::setenv("HOME", saved_home_.c_str(), 1);
    if (saved_cookie_) ::setenv("ERLANG_COOKIE", saved_cookie_->c_str(), 1);
    std::filesystem::remove_all(home_);
  }

  std::filesystem::path home_;
  std::string saved_home_;
  std::optional<std::string> saved_cookie_;
};

TEST_F(CookieTest, ExplicitThenEnvironmentThenFile) {
  EXPECT_EQ(find_cookie(""), std::nullopt);
  std::ofstream(home_ / ".erlang.cookie") << "FILECOOKIE\n";
  EXPECT_EQ(find_cookie(""), "FILECOOKIE");
  ::setenv("ERLANG_COOKIE", "ENVCOOKIE", 1);
  EXPECT_EQ(find_cookie(""), "ENVCOOKIE");
  EXPECT_EQ(find_cookie("FLAG"), "FLAG");
}

TEST(LogLevel, ParsesNamesInAnyCase) {
  EXPECT_EQ(parse_log_level("DEBUG"), LogLevel::kDebug);
  EXPECT_EQ(parse_log_level("warn"), LogLevel::kWarning);
  EXPECT_EQ(parse_log_level("error"), LogLevel::kError);
  EXPECT_EQ(parse_log_level("loud"), std::nullopt);
}

}  // namespace
}  // namespace presence
