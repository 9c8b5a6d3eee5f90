// The presence_node command line.
#include "cnode/options.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <vector>

namespace presence {
namespace {

struct Parsed {
  ProgramOptions options;
  std::optional<std::string> error;
};

Parsed parse(std::initializer_list<const char*> arguments) {
  std::vector<const char*> argv{"presence_node"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  Parsed parsed;
  parsed.error = parse_options(static_cast<int>(argv.size()), argv.data(), &parsed.options);
  return parsed;
}

TEST(Options, DefaultsToShortNamePresenceWithoutCookie) {
  Parsed parsed = parse({});
  ASSERT_FALSE(parsed.error) << *parsed.error;
  EXPECT_EQ(parsed.options.node.name, "presence");
  EXPECT_FALSE(parsed.options.node.long_names);
  EXPECT_EQ(parsed.options.node.cookie, "");
  EXPECT_TRUE(parsed.options.node.connect.empty());
  EXPECT_EQ(parsed.options.node.listen_port, 0);
  EXPECT_EQ(parsed.options.node.tick_time, std::chrono::seconds(60));
  EXPECT_EQ(parsed.options.node.max_send_queue, std::size_t{1024} << 20);
  EXPECT_FALSE(parsed.options.help);
}

TEST(Options, TakesValuesAsNextArgumentOrAfterEquals) {
  Parsed parsed = parse({"--name", "cpp", "--cookie=secret", "--port=4370", "--tick-time", "8"});
  ASSERT_FALSE(parsed.error) << *parsed.error;
  EXPECT_EQ(parsed.options.node.name, "cpp");
  EXPECT_EQ(parsed.options.node.cookie, "secret");
  EXPECT_EQ(parsed.options.node.listen_port, 4370);
  EXPECT_EQ(parsed.options.node.tick_time, std::chrono::seconds(8));
}

TEST(Options, MaxSendQueueIsInMebibytes) {
  Parsed parsed = parse({"--max-send-queue", "16"});
  ASSERT_FALSE(parsed.error) << *parsed.error;
  EXPECT_EQ(parsed.options.node.max_send_queue, std::size_t{16} << 20);
  EXPECT_EQ(parse({"--max-send-queue", "0"}).error,
            "--max-send-queue needs mebibytes from 1 to 1048576");
}

TEST(Options, ConnectIsRepeatable) {
  Parsed parsed = parse({"--connect", "a@host", "--connect=b@host"});
  ASSERT_FALSE(parsed.error) << *parsed.error;
  EXPECT_EQ(parsed.options.node.connect, (std::vector<std::string>{"a@host", "b@host"}));
}

TEST(Options, HostWithDotImpliesLongNames) {
  Parsed parsed = parse({"--name", "cpp@127.0.0.1"});
  ASSERT_FALSE(parsed.error) << *parsed.error;
  EXPECT_TRUE(parsed.options.node.long_names);
  EXPECT_FALSE(parse({"--name", "cpp@vm"}).options.node.long_names);
}

TEST(Options, LongNamesSwitch) {
  Parsed parsed = parse({"--name", "cpp", "--long-names"});
  ASSERT_FALSE(parsed.error) << *parsed.error;
  EXPECT_TRUE(parsed.options.node.long_names);
}

TEST(Options, HelpIsASwitch) {
  EXPECT_TRUE(parse({"--help"}).options.help);
  EXPECT_EQ(parse({"--help=yes"}).error, "--help takes no value");
}

TEST(Options, RefusesBadValuesWithAReason) {
  EXPECT_EQ(parse({"--port", "70000"}).error, "--port needs a port number, not '70000'");
  EXPECT_EQ(parse({"--port", "12x"}).error, "--port needs a port number, not '12x'");
  EXPECT_EQ(parse({"--tick-time", "0"}).error, "--tick-time needs seconds from 1 to 86400");
  EXPECT_EQ(parse({"--connect", "nohost"}).error,
            "--connect needs a node name like name@host, not 'nohost'");
  EXPECT_EQ(parse({"--name", "@host"}).error, "--name needs a name before '@'");
  EXPECT_EQ(parse({"--cookie"}).error, "--cookie needs a value (COOKIE)");
  EXPECT_EQ(parse({"--frobnicate"}).error, "unknown argument '--frobnicate'");
}

TEST(Options, UsageDocumentsEveryFlagAndVariable) {
  std::string text = usage("presence_node");
  for (const char* word : {"--name", "--long-names", "--cookie", "--connect", "--port",
                           "--tick-time", "--max-send-queue", "--help", "ERLANG_COOKIE",
                           "ERL_EPMD_PORT", "PRESENCE_LOG_LEVEL", ".erlang.cookie"}) {
    EXPECT_NE(text.find(word), std::string::npos) << word;
  }
}

}  // namespace
}  // namespace presence
