// Trackers replicating between two and three real C++ nodes (EPMD, TCP,
// handshake, pg, PubSub) in one process, with short periods.
#include "tests/support/tracker_cluster.h"

#include <gtest/gtest.h>

namespace presence {
namespace {

using namespace std::chrono_literals;
using testing::ClusterNode;
using testing::connect_all;
using testing::fast_tracker_options;
using testing::run_for;
using testing::run_until;

const Term kTopic = Term::binary("room:1");
Term bin(std::string_view text) {
  return Term::binary(text);
}
Term meta(std::string_view name) {
  return Term::map({{Term::atom("name"), bin(name)}});
}

std::vector<Term> keys(const std::vector<KeyMeta>& list) {
  std::vector<Term> out;
  for (const KeyMeta& entry : list) out.push_back(entry.key);
  return out;
}

class TrackerClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(testing::ensure_epmd()); }

  // A process of node's that stays alive for the test.
  Term process_on(ClusterNode& node) {
    processes_.push_back(node.node().spawn([](const Term&) {}));
    return processes_.back()->pid();
  }
  bool lists(ClusterNode& node, const std::vector<Term>& expected) {
    return keys(node.tracker().list(kTopic)) == expected;
  }

  std::vector<std::shared_ptr<Mailbox>> processes_;
};

TEST_F(TrackerClusterTest, PresenceTrackedOnOneNodeIsListedOnTheOther) {
  ClusterNode a, b;
  ASSERT_TRUE(a.ready() && b.ready());
  ASSERT_TRUE(connect_all({&a, &b}));

  ASSERT_TRUE(a.tracker().track(process_on(a), kTopic, bin("alice"), meta("Alice")).ok);
  EXPECT_TRUE(lists(a, {bin("alice")}));  // read-your-writes on the tracking node
  ASSERT_TRUE(run_until(
      {&a, &b}, [&] { return lists(b, {bin("alice")}); }, 3s));

  auto by_key = b.tracker().get_by_key(kTopic, bin("alice"));
  ASSERT_EQ(by_key.size(), 1u);
  EXPECT_EQ(by_key[0].pid.as_pid().node, a.node().name());
}

TEST_F(TrackerClusterTest, UntrackIsReplicated) {
  ClusterNode a, b;
  ASSERT_TRUE(a.ready() && b.ready());
  ASSERT_TRUE(connect_all({&a, &b}));
  Term pid = process_on(a);
  a.tracker().track(pid, kTopic, bin("alice"), meta("Alice"));
  a.tracker().track(pid, kTopic, bin("alice2"), meta("Alice"));
  ASSERT_TRUE(run_until(
      {&a, &b},
      [&] {
        return lists(b, {bin("alice"), bin("alice2")});
      },
      3s));

  a.tracker().untrack(pid, kTopic, bin("alice"));
  ASSERT_TRUE(run_until(
      {&a, &b}, [&] { return lists(b, {bin("alice2")}); }, 3s));
  a.tracker().untrack(pid);
  ASSERT_TRUE(run_until(
      {&a, &b}, [&] { return lists(b, {}); }, 3s));
}

TEST_F(TrackerClusterTest, UpdateIsReplicatedWithPhxRefPrev) {
  ClusterNode a, b;
  ASSERT_TRUE(a.ready() && b.ready());
  ASSERT_TRUE(connect_all({&a, &b}));
  Term pid = process_on(a);
  Term first = a.tracker().track(pid, kTopic, bin("alice"), meta("Alice")).value;
  ASSERT_TRUE(run_until(
      {&a, &b}, [&] { return lists(b, {bin("alice")}); }, 3s));

  ShardReply updated = a.tracker().update(pid, kTopic, bin("alice"), meta("Alice 2"));
  ASSERT_TRUE(updated.ok);
  ASSERT_TRUE(run_until(
      {&a, &b},
      [&] {
        auto list = b.tracker().list(kTopic);
        return list.size() == 1 && *list[0].meta.find("name") == bin("Alice 2");
      },
      3s));
  Term replicated = b.tracker().list(kTopic)[0].meta;
  EXPECT_EQ(*replicated.find("phx_ref_prev"), first);
  EXPECT_EQ(*replicated.find("phx_ref"), updated.value);
}

TEST_F(TrackerClusterTest, EndedProcessLeavesOnEveryNode) {
  ClusterNode a, b;
  ASSERT_TRUE(a.ready() && b.ready());
  ASSERT_TRUE(connect_all({&a, &b}));
  auto process = a.node().spawn([](const Term&) {});
  a.tracker().track(process->pid(), kTopic, bin("alice"), meta("Alice"));
  ASSERT_TRUE(run_until(
      {&a, &b}, [&] { return lists(b, {bin("alice")}); }, 3s));

  process->close();
  ASSERT_TRUE(run_until(
      {&a, &b}, [&] { return lists(a, {}) && lists(b, {}); }, 3s));
}

TEST_F(TrackerClusterTest, RemoteProcessTrackedHereLeavesWhenItEnds) {
  ClusterNode a, b;
  ASSERT_TRUE(a.ready() && b.ready());
  ASSERT_TRUE(connect_all({&a, &b}));
  // a tracks a process of b's, as Phoenix lets a tracker track any pid.
  auto remote = b.node().spawn([](const Term&) {});
  ASSERT_TRUE(a.tracker().track(remote->pid(), kTopic, bin("far"), meta("Far")).ok);
  ASSERT_TRUE(run_until(
      {&a, &b}, [&] { return lists(b, {bin("far")}); }, 3s));

  remote->close();
  ASSERT_TRUE(run_until(
      {&a, &b}, [&] { return lists(a, {}) && lists(b, {}); }, 3s));
}

TEST_F(TrackerClusterTest, DiffsOfReplicatedChangesReachSubscribers) {
  ClusterNode a, b;
  ASSERT_TRUE(a.ready() && b.ready());
  ASSERT_TRUE(connect_all({&a, &b}));
  std::vector<Term> joins, leaves;
  b.tracker().subscribe(kTopic, [&](const Term& topic, const TopicDiff& diff) {
    EXPECT_EQ(topic, kTopic);
    for (const auto& join : diff.joins) joins.push_back(join.key);
    for (const auto& leave : diff.leaves) leaves.push_back(leave.key);
  });
  Term pid = process_on(a);
  a.tracker().track(pid, kTopic, bin("alice"), meta("Alice"));
  a.tracker().track(pid, bin("elsewhere"), bin("bob"), meta("Bob"));
  ASSERT_TRUE(run_until(
      {&a, &b}, [&] { return !joins.empty(); }, 3s));
  a.tracker().untrack(pid, kTopic, bin("alice"));
  ASSERT_TRUE(run_until(
      {&a, &b}, [&] { return !leaves.empty(); }, 3s));
  EXPECT_EQ(joins, std::vector<Term>{bin("alice")});
  EXPECT_EQ(leaves, std::vector<Term>{bin("alice")});
}

TEST_F(TrackerClusterTest, KilledNodeGoesDownAfterDownPeriodThenPermdown) {
  TrackerOptions options = fast_tracker_options();
  options.down_period = 1000ms;
  options.permdown_period = 2500ms;
  ClusterNode a(options), b(options);
  ASSERT_TRUE(a.ready() && b.ready());
  ASSERT_TRUE(connect_all({&a, &b}));
  a.tracker().track(process_on(a), kTopic, bin("alice"), meta("Alice"));
  ASSERT_TRUE(run_until(
      {&a, &b}, [&] { return lists(b, {bin("alice")}); }, 3s));

  processes_.clear();
  a.kill();
  auto killed = std::chrono::steady_clock::now();
  // Still listed until down_period passes without a heartbeat.
  run_for({&b}, 300ms);
  EXPECT_TRUE(lists(b, {bin("alice")}));
  ASSERT_TRUE(run_until(
      {&b}, [&] { return lists(b, {}); }, 5s));
  // Silence is counted from the last heartbeat, which came at most one
  // broadcast_period before the kill.
  EXPECT_GE(std::chrono::steady_clock::now() - killed + options.broadcast_period, 1000ms);
  auto replicas = b.tracker().replicas();
  ASSERT_EQ(replicas.size(), 1u);
  EXPECT_EQ(replicas[0].status, Replica::Status::kDown);
  EXPECT_EQ(b.tracker().shard(0).core().state().size(), 1u);  // kept while down

  ASSERT_TRUE(run_until(
      {&b}, [&] { return b.tracker().replicas().empty(); }, 5s));
  EXPECT_GE(std::chrono::steady_clock::now() - killed + options.broadcast_period, 2500ms);
  EXPECT_EQ(b.tracker().shard(0).core().state().size(), 0u);
}

TEST_F(TrackerClusterTest, GracefulPermdownRemovesPresencesAtOnce) {
  TrackerOptions options = fast_tracker_options();
  options.down_period = 10s;
  options.permdown_period = 60s;
  options.permdown_on_shutdown = true;
  ClusterNode a(options), b(options);
  ASSERT_TRUE(a.ready() && b.ready());
  ASSERT_TRUE(connect_all({&a, &b}));
  a.tracker().track(process_on(a), kTopic, bin("alice"), meta("Alice"));
  ASSERT_TRUE(run_until(
      {&a, &b}, [&] { return lists(b, {bin("alice")}); }, 3s));

  a.service().shutdown();
  ASSERT_TRUE(run_until(
      {&a, &b}, [&] { return lists(b, {}); }, 2s));
  EXPECT_TRUE(b.tracker().replicas().empty());
}

TEST_F(TrackerClusterTest, ShutdownWithoutPermdownOnShutdownSaysNothing) {
  TrackerOptions options = fast_tracker_options();
  options.down_period = 10s;
  options.permdown_period = 60s;
  ClusterNode a(options), b(options);
  ASSERT_TRUE(a.ready() && b.ready());
  ASSERT_TRUE(connect_all({&a, &b}));
  a.tracker().track(process_on(a), kTopic, bin("alice"), meta("Alice"));
  ASSERT_TRUE(run_until(
      {&a, &b}, [&] { return lists(b, {bin("alice")}); }, 3s));

  a.service().shutdown();
  run_for({&a, &b}, 500ms);
  EXPECT_TRUE(lists(b, {bin("alice")}));
}

TEST_F(TrackerClusterTest, LateJoinerReceivesTheStateByTransfer) {
  ClusterNode a;
  ASSERT_TRUE(a.ready());
  Term pid = process_on(a);
  a.tracker().track(pid, kTopic, bin("alice"), meta("Alice"));
  a.tracker().track(pid, kTopic, bin("bob"), meta("Bob"));
  run_for({&a}, 300ms);  // the deltas go out to nobody

  ClusterNode b;
  ASSERT_TRUE(b.ready());
  ASSERT_TRUE(connect_all({&a, &b}));
  ASSERT_TRUE(run_until(
      {&a, &b},
      [&] {
        return lists(b, {bin("alice"), bin("bob")});
      },
      5s));
}

TEST_F(TrackerClusterTest, RestartedNodeReplacesItsOldReplica) {
  TrackerOptions options = fast_tracker_options();
  options.down_period = 10s;  // only the new vsn can explain the old presence leaving
  options.permdown_period = 60s;
  std::string short_name = testing::unique_node_name("trk_restart");
  auto a = std::make_unique<ClusterNode>(options, false, short_name);
  ClusterNode b(options);
  ASSERT_TRUE(a->ready() && b.ready());
  ASSERT_TRUE(connect_all({a.get(), &b}));
  a->tracker().track(process_on(*a), kTopic, bin("old"), meta("Old"));
  ASSERT_TRUE(run_until(
      {a.get(), &b}, [&] { return lists(b, {bin("old")}); }, 3s));
  std::int64_t old_vsn = b.tracker().replicas().at(0).ref.vsn;
  processes_.clear();
  a->kill();
  a.reset();

  // The same node name again, once EPMD has let go of it.
  std::unique_ptr<ClusterNode> restarted;
  ASSERT_TRUE(run_until(
      {&b},
      [&] {
        restarted = std::make_unique<ClusterNode>(options, false, short_name);
        return restarted->ready();
      },
      5s));
  ASSERT_TRUE(connect_all({restarted.get(), &b}));
  restarted->tracker().track(process_on(*restarted), kTopic, bin("new"), meta("New"));
  ASSERT_TRUE(run_until(
      {restarted.get(), &b}, [&] { return lists(b, {bin("new")}); }, 5s));
  auto replicas = b.tracker().replicas();
  ASSERT_EQ(replicas.size(), 1u);
  EXPECT_NE(replicas[0].ref.vsn, old_vsn);
  EXPECT_EQ(b.tracker().shard(0).core().state().size(), 1u);
}

TEST_F(TrackerClusterTest, ThreeNodesConverge) {
  ClusterNode a, b, c;
  ASSERT_TRUE(a.ready() && b.ready() && c.ready());
  ASSERT_TRUE(connect_all({&a, &b, &c}));
  a.tracker().track(process_on(a), kTopic, bin("a"), meta("A"));
  b.tracker().track(process_on(b), kTopic, bin("b"), meta("B"));
  c.tracker().track(process_on(c), kTopic, bin("c"), meta("C"));
  auto all = [&](ClusterNode& node) {
    auto list = keys(node.tracker().list(kTopic));
    std::sort(list.begin(), list.end());
    return list == std::vector<Term>{bin("a"), bin("b"), bin("c")};
  };
  ASSERT_TRUE(run_until(
      {&a, &b, &c}, [&] { return all(a) && all(b) && all(c); }, 5s));
}

TEST_F(TrackerClusterTest, PoolSpreadsTopicsOverShardsAsPhash2Does) {
  TrackerOptions options = fast_tracker_options();
  options.pool_size = 4;
  ClusterNode a(options), b(options);
  ASSERT_TRUE(a.ready() && b.ready());
  ASSERT_TRUE(connect_all({&a, &b}));
  Term pid = process_on(a);
  std::set<Atom> shards;
  for (int i = 0; i < 8; ++i) {
    Term topic = bin("topic:" + std::to_string(i));
    a.tracker().track(pid, topic, bin("k"), meta("k"));
    shards.insert(a.tracker().shard_for(topic).name());
  }
  EXPECT_GT(shards.size(), 1u);
  EXPECT_TRUE(shards.contains(Atom("Elixir.Test.Presence_shard0")) ||
              shards.contains(Atom("Elixir.Test.Presence_shard1")));
  ASSERT_TRUE(run_until(
      {&a, &b},
      [&] {
        for (int i = 0; i < 8; ++i) {
          if (b.tracker().list(bin("topic:" + std::to_string(i))).size() != 1) return false;
        }
        return true;
      },
      5s));
}

}  // namespace
}  // namespace presence
