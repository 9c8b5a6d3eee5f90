#include <gtest/gtest.h>

#include "cnode/replica.h"

namespace presence {
namespace {

const Atom kNode1("node1@127.0.0.1");
using Status = Replica::Status;

TEST(TrackerReplicaTest, FirstHeartbeatAddsAnUpReplica) {
  ReplicaTable table;
  auto transition = table.put_heartbeat({kNode1, 7}, 1000);
  EXPECT_FALSE(transition.previous.has_value());
  EXPECT_EQ(transition.updated.status, Status::kUp);
  EXPECT_EQ(transition.updated.ref.vsn, 7);
  ASSERT_NE(table.fetch_by_ref({kNode1, 7}), nullptr);
  EXPECT_EQ(table.fetch_by_ref({kNode1, 7})->last_heartbeat_at, 1000);
}

TEST(TrackerReplicaTest, HeartbeatWithNewVsnReportsTheOldOne) {
  ReplicaTable table;
  table.put_heartbeat({kNode1, 7}, 1000);
  auto transition = table.put_heartbeat({kNode1, 8}, 2000);
  ASSERT_TRUE(transition.previous.has_value());
  EXPECT_EQ(transition.previous->ref.vsn, 7);
  EXPECT_EQ(transition.updated.ref.vsn, 8);
  EXPECT_EQ(table.fetch_by_ref({kNode1, 7}), nullptr);
  EXPECT_NE(table.fetch_by_ref({kNode1, 8}), nullptr);
  EXPECT_EQ(table.entries().size(), 1u);
}

TEST(TrackerReplicaTest, SilentReplicaGoesDownAfterDownPeriod) {
  ReplicaTable table;
  Replica replica = table.put_heartbeat({kNode1, 7}, 1000).updated;
  EXPECT_EQ(table.detect_down(replica, 300, 900, 1300).updated.status, Status::kUp);
  auto transition = table.detect_down(replica, 300, 900, 1301);
  EXPECT_EQ(transition.previous->status, Status::kUp);
  EXPECT_EQ(transition.updated.status, Status::kDown);
  EXPECT_EQ(table.entries().at(kNode1).status, Status::kDown);
}

TEST(TrackerReplicaTest, SilentReplicaIsRemovedAfterPermdownPeriod) {
  ReplicaTable table;
  Replica replica = table.put_heartbeat({kNode1, 7}, 1000).updated;
  auto transition = table.detect_down(replica, 300, 900, 1901);
  EXPECT_EQ(transition.updated.status, Status::kPermdown);
  EXPECT_TRUE(table.empty());
}

TEST(TrackerReplicaTest, HeartbeatBringsADownReplicaBackUp) {
  ReplicaTable table;
  Replica replica = table.put_heartbeat({kNode1, 7}, 1000).updated;
  table.detect_down(replica, 300, 900, 1500);
  auto transition = table.put_heartbeat({kNode1, 7}, 1600);
  EXPECT_EQ(transition.previous->status, Status::kDown);
  EXPECT_EQ(transition.updated.status, Status::kUp);
}

TEST(TrackerReplicaTest, StatusesReadAsPhoenixAtoms) {
  EXPECT_STREQ(to_string(Status::kUp), "up");
  EXPECT_STREQ(to_string(Status::kDown), "down");
  EXPECT_STREQ(to_string(Status::kPermdown), "permdown");
}

TEST(TrackerReplicaTest, NewVsnsAreDistinctMicrosecondTimes) {
  std::int64_t first = new_replica_vsn();
  std::int64_t second = new_replica_vsn();
  EXPECT_NE(first, second);
  EXPECT_GT(first, std::int64_t{1'500'000'000'000'000});  // after 2017, in microseconds
}

}  // namespace
}  // namespace presence
