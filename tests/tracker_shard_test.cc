// TrackerShard and Tracker on an in-memory node: what goes on the wire
// (names, topics, envelopes), the heartbeat timer and process monitoring.
#include <gtest/gtest.h>

#include "cnode/tracker.h"
#include "crdt/wire.h"
#include "tests/support/fake_node.h"

namespace presence {
namespace {

using namespace std::chrono_literals;
using testing::FakeNode;

const Atom kPeerNode("phx@host");
const Term kAdapter = Term::atom("Elixir.Test.PubSub.Adapter");
const Term kShardTopic = Term::binary("phx_presence:Elixir.Test.Presence_shard0");
const Term kTopic = Term::binary("room:1");

TrackerOptions options() {
  TrackerOptions options;
  options.name = Atom("Elixir.Test.Presence");
  options.pubsub_server = Atom("Elixir.Test.PubSub");
  options.broadcast_period = 200ms;
  options.max_silent_periods = 0;  // an (empty) heartbeat every period
  options.down_period = 1000ms;
  return options;
}

class TrackerShardTest : public ::testing::Test {
 protected:
  TrackerShardTest() {
    // A Phoenix node's adapter joins the group, as pg would report it.
    Term peer_scope = node.remote_pid(kPeerNode.text(), 1);
    Term groups = Term::list({Term::tuple({kAdapter, Term::list({peer_adapter})})});
    node.deliver(scope->pid(),
                 Term::tuple({Term::atom("$gen_cast"),
                              Term::tuple({Term::atom("sync"), peer_scope, groups})}));
    run_for(1ms);
  }

  void run_for(std::chrono::milliseconds time) {
    io.restart();
    io.run_for(time);
  }

  // The tracker messages sent to the peer's adapter, out of their envelope.
  std::vector<Term> sent_to_peer() {
    std::vector<Term> messages;
    for (const Term& message : node.sent_to(peer_adapter)) {
      EXPECT_TRUE(message.is_tuple(4)) << message.to_string();
      EXPECT_EQ(message[0], Term::atom("forward_to_local"));
      EXPECT_EQ(message[1], kShardTopic);
      EXPECT_EQ(message[3], Term::atom("Elixir.Phoenix.PubSub"));
      messages.push_back(message[2]);
    }
    return messages;
  }

  boost::asio::io_context io;
  FakeNode node{io, "cpp@host"};
  Term peer_adapter = node.remote_pid(kPeerNode.text(), 2);
  std::shared_ptr<PgScope> scope = PgScope::start(node);
  std::shared_ptr<PubSub> pubsub = PubSub::start(node, scope, {.name = "Test.PubSub"});
};

TEST_F(TrackerShardTest, ShardsAreRegisteredUnderPhoenixNames) {
  TrackerOptions pooled = options();
  pooled.pool_size = 3;
  auto tracker = Tracker::start(node, pubsub, pooled);
  ASSERT_NE(tracker, nullptr);
  EXPECT_EQ(tracker->shard(0).name(), Atom("Elixir.Test.Presence_shard0"));
  EXPECT_EQ(tracker->shard(2).name(), Atom("Elixir.Test.Presence_shard2"));
  EXPECT_EQ(node.spawn([](const Term&) {}, Atom("Elixir.Test.Presence_shard1")), nullptr);
  EXPECT_EQ(Tracker::start(node, pubsub, pooled), nullptr);  // the names are taken
}

TEST_F(TrackerShardTest, InvalidOptionsDoNotStart) {
  TrackerOptions bad = options();
  bad.down_period = 100ms;  // less than 2 * broadcast_period
  EXPECT_EQ(Tracker::start(node, pubsub, bad), nullptr);
  EXPECT_FALSE(node.logs.empty());
}

TEST_F(TrackerShardTest, HeartbeatsGoToPeersInsideForwardToLocal) {
  auto tracker = Tracker::start(node, pubsub, options());
  ASSERT_NE(tracker, nullptr);
  run_for(60ms);  // the first heartbeat comes within a quarter period (50 ms)
  auto messages = sent_to_peer();
  ASSERT_EQ(messages.size(), 1u);
  const Term& heartbeat = messages[0];
  ASSERT_TRUE(heartbeat.is_tuple(5)) << heartbeat.to_string();
  EXPECT_EQ(heartbeat[1], Term::atom("heartbeat"));
  auto ref = decode_replica_ref(heartbeat[2]);
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref.value().node, node.name());
  EXPECT_EQ(heartbeat[3], Term::atom("empty"));

  run_for(210ms);
  EXPECT_EQ(sent_to_peer().size(), 2u);
}

TEST_F(TrackerShardTest, TrackedProcessEndingLeavesItsPresences) {
  auto tracker = Tracker::start(node, pubsub, options());
  auto process = node.spawn([](const Term&) {});
  ASSERT_TRUE(tracker->track(process->pid(), kTopic, Term::binary("a"), Term::map({})).ok);
  EXPECT_TRUE(node.monitored(process->pid()));
  process->close();
  run_for(1ms);
  EXPECT_TRUE(tracker->list(kTopic).empty());
}

TEST_F(TrackerShardTest, RemoteTrackedProcessLeavesOnNoconnection) {
  auto tracker = Tracker::start(node, pubsub, options());
  Term remote = node.remote_pid(kPeerNode.text(), 40);
  ASSERT_TRUE(tracker->track(remote, kTopic, Term::binary("a"), Term::map({})).ok);
  EXPECT_TRUE(node.monitored(remote));
  node.remote_down(remote, Term::atom("noconnection"));
  run_for(1ms);
  EXPECT_TRUE(tracker->list(kTopic).empty());
}

TEST_F(TrackerShardTest, UntrackingTheLastPresenceStopsMonitoring) {
  auto tracker = Tracker::start(node, pubsub, options());
  Term remote = node.remote_pid(kPeerNode.text(), 40);
  tracker->track(remote, kTopic, Term::binary("a"), Term::map({}));
  tracker->untrack(remote);
  EXPECT_FALSE(node.monitored(remote));
}

TEST_F(TrackerShardTest, GracefulPermdownIsBroadcastAndStopsHeartbeats) {
  auto tracker = Tracker::start(node, pubsub, options());
  run_for(60ms);
  tracker->graceful_permdown();
  run_for(1ms);
  auto messages = sent_to_peer();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[1],
            Term::tuple({Term::atom("pub"), Term::atom("graceful_permdown"), messages[0][2]}));
  run_for(450ms);
  EXPECT_EQ(sent_to_peer().size(), 2u);
}

TEST_F(TrackerShardTest, ShutdownSaysGoodbyeOnlyWithPermdownOnShutdown) {
  auto goodbyes = [&] {
    int count = 0;
    for (const Term& message : sent_to_peer()) {
      count += message[1] == Term::atom("graceful_permdown") ? 1 : 0;
    }
    return count;
  };
  auto quiet = Tracker::start(node, pubsub, options());
  quiet->shutdown();
  run_for(1ms);
  EXPECT_EQ(goodbyes(), 0);
  quiet.reset();

  TrackerOptions polite = options();
  polite.permdown_on_shutdown = true;
  auto tracker = Tracker::start(node, pubsub, polite);
  tracker->shutdown();
  run_for(1ms);
  EXPECT_EQ(goodbyes(), 1);
}

TEST_F(TrackerShardTest, ShutdownLeavesTheIoContextNoWork) {
  auto tracker = Tracker::start(node, pubsub, options());
  run_for(60ms);
  tracker->shutdown();
  auto start = std::chrono::steady_clock::now();
  run_for(2000ms);  // returns at once when nothing is left to run
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1000ms);
}

TEST_F(TrackerShardTest, MalformedPeerInputIsLoggedWithThePeerNode) {
  auto tracker = Tracker::start(node, pubsub, options());
  Term forward = Term::tuple({Term::atom("forward_to_local"), kShardTopic,
                              Term::tuple({Term::atom("pub"), Term::atom("heartbeat"),
                                           Term::atom("junk"), Term::atom("empty"), Term()}),
                              Term::atom("Elixir.Phoenix.PubSub")});
  node.deliver(kAdapter, forward, kPeerNode);
  run_for(1ms);
  bool logged = false;
  for (const auto& [level, line] : node.logs) {
    logged = logged || (level == LogLevel::kWarning && line.find("phx@host") != line.npos);
  }
  EXPECT_TRUE(logged);
  EXPECT_TRUE(tracker->replicas().empty());
}

}  // namespace
}  // namespace presence
