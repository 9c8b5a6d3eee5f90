#include <gtest/gtest.h>

#include "cnode/replica.h"

namespace presence {
namespace {

const Atom kNode1("node1@127.0.0.1");

TEST(TrackerReplicaTest, FirstHeartbeatAddsAnUpReplica) {
  ReplicaTable table;
  auto transition = table.put_heartbeat(kNode1, 7, 1000);
  EXPECT_FALSE(transition.previous.has_value());
  EXPECT_EQ(transition.updated.status, ReplicaStatus::kUp);
  EXPECT_EQ(transition.updated.vsn, 7);
  ASSERT_NE(table.fetch_by_ref(kNode1, 7), nullptr);
  EXPECT_EQ(table.fetch_by_ref(kNode1, 7)->last_heartbeat_at, 1000);
}

TEST(TrackerReplicaTest, HeartbeatWithNewVsnReportsTheOldOne) {
  ReplicaTable table;
  table.put_heartbeat(kNode1, 7, 1000);
  auto transition = table.put_heartbeat(kNode1, 8, 2000);
  ASSERT_TRUE(transition.previous.has_value());
  EXPECT_EQ(transition.previous->vsn, 7);
  EXPECT_EQ(transition.updated.vsn, 8);
  EXPECT_EQ(table.fetch_by_ref(kNode1, 7), nullptr);
  EXPECT_NE(table.fetch_by_ref(kNode1, 8), nullptr);
}

TEST(TrackerReplicaTest, SilentReplicaGoesDownAfterDownPeriod) {
  ReplicaTable table;
  Replica replica = table.put_heartbeat(kNode1, 7, 1000).updated;
  EXPECT_EQ(table.detect_down(replica, 300, 900, 1300).updated.status, ReplicaStatus::kUp);
  auto transition = table.detect_down(replica, 300, 900, 1301);
  EXPECT_EQ(transition.previous->status, ReplicaStatus::kUp);
  EXPECT_EQ(transition.updated.status, ReplicaStatus::kDown);
  EXPECT_EQ(table.entries().at(kNode1).status, ReplicaStatus::kDown);
}

TEST(TrackerReplicaTest, SilentReplicaIsRemovedAfterPermdownPeriod) {
  ReplicaTable table;
  Replica replica = table.put_heartbeat(kNode1, 7, 1000).updated;
  auto transition = table.detect_down(replica, 300, 900, 1901);
  EXPECT_EQ(transition.updated.status, ReplicaStatus::kPermdown);
  EXPECT_TRUE(table.empty());
}

TEST(TrackerReplicaTest, HeartbeatBringsADownReplicaBackUp) {
  ReplicaTable table;
  Replica replica = table.put_heartbeat(kNode1, 7, 1000).updated;
  table.detect_down(replica, 300, 900, 1500);
  auto transition = table.put_heartbeat(kNode1, 7, 1600);
  EXPECT_EQ(transition.previous->status, ReplicaStatus::kDown);
  EXPECT_EQ(transition.updated.status, ReplicaStatus::kUp);
}

TEST(TrackerReplicaTest, ReplicaRefsFromPeersAreChecked) {
  auto ref = parse_replica_ref(replica_ref(kNode1, 42));
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(ref->name, kNode1);
  EXPECT_EQ(ref->vsn, 42);
  EXPECT_FALSE(parse_replica_ref(Term::tuple({Term::binary("n"), Term::integer(1)})));
  EXPECT_FALSE(parse_replica_ref(Term::tuple({Term::atom(kNode1), Term::atom("x")})));
  EXPECT_FALSE(parse_replica_ref(Term::atom(kNode1)));
}

TEST(TrackerReplicaTest, NewVsnsAreDistinctMicrosecondTimes) {
  std::int64_t first = new_replica_vsn();
  std::int64_t second = new_replica_vsn();
  EXPECT_NE(first, second);
  EXPECT_GT(first, std::int64_t{1'500'000'000'000'000});  // after 2017, in microseconds
}

}  // namespace
}  // namespace presence
