#include "cnode/tracker_options.h"

#include <gtest/gtest.h>

#include "cnode/options.h"

namespace presence {
namespace {

TrackerOptions parse_ok(std::string_view text, std::optional<Atom> pubsub = std::nullopt) {
  auto result = parse_tracker_flag(text, pubsub);
  if (auto* error = std::get_if<std::string>(&result)) {
    ADD_FAILURE() << "refused: " << *error;
    return {};
  }
  return std::get<TrackerOptions>(result);
}

std::string parse_error(std::string_view text, std::optional<Atom> pubsub = std::nullopt) {
  auto result = parse_tracker_flag(text, pubsub);
  if (auto* error = std::get_if<std::string>(&result)) return *error;
  ADD_FAILURE() << "accepted: " << text;
  return {};
}

TEST(TrackerOptionsTest, NameAloneTakesPhoenixDefaults) {
  auto options = parse_ok("MyApp.Presence", Atom("Elixir.MyApp.PubSub"));
  EXPECT_EQ(options.name, Atom("Elixir.MyApp.Presence"));
  EXPECT_EQ(options.pubsub_server, Atom("Elixir.MyApp.PubSub"));
  EXPECT_EQ(options.pool_size, 1);
  EXPECT_EQ(options.broadcast_period.count(), 1500);
  EXPECT_EQ(options.max_silent_periods, 10);
  EXPECT_EQ(options.effective_down_period().count(), 30'000);
  EXPECT_EQ(options.permdown_period.count(), 1'200'000);
  EXPECT_EQ(options.clock_sample_periods, 2);
  EXPECT_EQ(options.max_delta_sizes, (std::vector<std::size_t>{100, 1000, 10'000}));
  EXPECT_FALSE(options.log_level.has_value());
  EXPECT_FALSE(options.permdown_on_shutdown);
}

TEST(TrackerOptionsTest, EveryOptionIsRead) {
  auto options = parse_ok(
      "MyApp.Presence,pubsub_server=MyApp.PubSub,pool_size=4,broadcast_period=300,"
      "max_silent_periods=3,down_period=5000,permdown_period=9000,clock_sample_periods=5,"
      "max_delta_sizes=10:20,log_level=info,permdown_on_shutdown=true");
  EXPECT_EQ(options.pubsub_server, Atom("Elixir.MyApp.PubSub"));
  EXPECT_EQ(options.pool_size, 4);
  EXPECT_EQ(options.broadcast_period.count(), 300);
  EXPECT_EQ(options.max_silent_periods, 3);
  EXPECT_EQ(options.effective_down_period().count(), 5000);
  EXPECT_EQ(options.permdown_period.count(), 9000);
  EXPECT_EQ(options.clock_sample_periods, 5);
  EXPECT_EQ(options.max_delta_sizes, (std::vector<std::size_t>{10, 20}));
  EXPECT_EQ(options.log_level, LogLevel::kInfo);
  EXPECT_TRUE(options.permdown_on_shutdown);
}

TEST(TrackerOptionsTest, ExplicitPubsubServerOverridesTheDefault) {
  auto options = parse_ok("t,pubsub_server=other", Atom("Elixir.MyApp.PubSub"));
  EXPECT_EQ(options.name, Atom("t"));
  EXPECT_EQ(options.pubsub_server, Atom("other"));
}

TEST(TrackerOptionsTest, DefaultDownPeriodFollowsBroadcastAndSilentPeriods) {
  auto options = parse_ok("t,pubsub_server=p,broadcast_period=100,max_silent_periods=4");
  EXPECT_EQ(options.effective_down_period().count(), 800);
}

TEST(TrackerOptionsTest, ElixirAliasesGetTheElixirPrefix) {
  EXPECT_EQ(module_atom("MyApp.Presence"), Atom("Elixir.MyApp.Presence"));
  EXPECT_EQ(module_atom("Elixir.MyApp.Presence"), Atom("Elixir.MyApp.Presence"));
  EXPECT_EQ(module_atom("my_tracker"), Atom("my_tracker"));
}

TEST(TrackerOptionsTest, MissingPubsubServerIsRefused) {
  EXPECT_NE(parse_error("MyApp.Presence").find("pubsub_server"), std::string::npos);
}

TEST(TrackerOptionsTest, DownPeriodShorterThanTwoBroadcastPeriodsIsRefused) {
  EXPECT_NE(parse_error("t,pubsub_server=p,broadcast_period=100,down_period=199")
                .find("down_period must be at least twice as large as the broadcast_period"),
            std::string::npos);
  parse_ok("t,pubsub_server=p,broadcast_period=100,down_period=200");
}

TEST(TrackerOptionsTest, PermdownPeriodNotAboveDownPeriodIsRefused) {
  EXPECT_NE(parse_error("t,pubsub_server=p,down_period=5000,permdown_period=5000")
                .find("permdown_period must be at least larger than the down_period"),
            std::string::npos);
}

TEST(TrackerOptionsTest, MalformedItemsAreRefusedWithTheirName) {
  EXPECT_NE(parse_error("t,pubsub_server=p,pool_size=0").find("pool_size"), std::string::npos);
  EXPECT_NE(parse_error("t,pubsub_server=p,pool_size=2x").find("pool_size"), std::string::npos);
  EXPECT_NE(parse_error("t,pubsub_server=p,colour=red").find("colour"), std::string::npos);
  EXPECT_NE(parse_error("t,pubsub_server=p,pool_size").find("option=value"), std::string::npos);
  EXPECT_NE(parse_error("t,pubsub_server=p,max_delta_sizes=1::2").find("max_delta_sizes"),
            std::string::npos);
  EXPECT_NE(parse_error("t,pubsub_server=p,log_level=loud").find("log_level"), std::string::npos);
  EXPECT_NE(parse_error("t,pubsub_server=p,permdown_on_shutdown=yes").find("permdown"),
            std::string::npos);
  EXPECT_NE(parse_error(",pubsub_server=p").find("NAME"), std::string::npos);
}

TEST(TrackerOptionsTest, HelpTextNamesEveryOption) {
  std::string help = kTrackerFlagHelp;
  for (const char* option : {"pubsub_server", "pool_size", "broadcast_period", "max_silent_periods",
                             "down_period", "permdown_period", "clock_sample_periods",
                             "max_delta_sizes", "log_level", "permdown_on_shutdown"}) {
    EXPECT_NE(help.find(option), std::string::npos) << option;
  }
}

std::optional<std::string> parse_command_line(std::vector<const char*> arguments,
                                              ProgramOptions* options) {
  arguments.insert(arguments.begin(), "presence_node");
  return parse_options(static_cast<int>(arguments.size()), arguments.data(), options);
}

TEST(TrackerCommandLineTest, TrackerDefaultsToTheFirstPubsubWhateverTheFlagOrder) {
  ProgramOptions options;
  auto error = parse_command_line(
      {"--tracker", "MyApp.Presence,pool_size=2", "--pubsub", "MyApp.PubSub", "--pubsub",
       "Other.PubSub,pool_size=3", "--tracker=Second,pubsub_server=Other.PubSub", "--control"},
      &options);
  ASSERT_FALSE(error) << *error;
  ASSERT_EQ(options.pubsubs.size(), 2u);
  EXPECT_EQ(options.pubsubs[1].pool_size, 3);
  ASSERT_EQ(options.trackers.size(), 2u);
  EXPECT_EQ(options.trackers[0].name, Atom("Elixir.MyApp.Presence"));
  EXPECT_EQ(options.trackers[0].pubsub_server, Atom("Elixir.MyApp.PubSub"));
  EXPECT_EQ(options.trackers[0].pool_size, 2);
  EXPECT_EQ(options.trackers[1].pubsub_server, Atom("Elixir.Other.PubSub"));
  EXPECT_TRUE(options.control);
}

TEST(TrackerCommandLineTest, TrackerOnAPubsubThatIsNotStartedIsRefused) {
  ProgramOptions options;
  auto error = parse_command_line(
      {"--pubsub", "MyApp.PubSub", "--tracker", "T,pubsub_server=Missing.PubSub"}, &options);
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("Missing.PubSub"), std::string::npos);
  ProgramOptions without_pubsub;
  EXPECT_TRUE(parse_command_line({"--tracker", "T"}, &without_pubsub));
}

TEST(TrackerCommandLineTest, InvalidTrackerOptionsStopTheCommandLine) {
  ProgramOptions options;
  auto error = parse_command_line(
      {"--pubsub", "P", "--tracker", "T,broadcast_period=100,down_period=100"}, &options);
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("down_period must be at least twice"), std::string::npos);
}

TEST(TrackerCommandLineTest, MalformedPubsubFlagIsRefused) {
  ProgramOptions options;
  EXPECT_TRUE(parse_command_line({"--pubsub", "P,pool=2"}, &options));
  ProgramOptions empty;
  EXPECT_TRUE(parse_command_line({"--pubsub", ",pool_size=2"}, &empty));
}

}  // namespace
}  // namespace presence
