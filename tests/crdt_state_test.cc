#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "crdt/state.h"
#include "term/term.h"

namespace presence {
namespace {

ReplicaRef ref(const char* name) {
  return {Atom(name), 1};
}

Term pid(std::uint32_t n) {
  return Term::pid({Atom("t@vm"), n, 0, 1});
}
Term bin(const char* text) {
  return Term::binary(text);
}
Term atom(const char* text) {
  return Term::atom(text);
}
Term meta() {
  return Term::map({});
}
Term meta(const char* key, Term value) {
  return Term::map({{Term::atom(key), std::move(value)}});
}

const Term kLobby = Term::binary("lobby");

std::vector<Term> keys(const std::vector<Presence>& presences) {
  std::vector<Term> result;
  for (const Presence& p : presences) result.push_back(p.key);
  std::sort(result.begin(), result.end());
  return result;
}

std::vector<Term> keys(const std::vector<KeyMeta>& entries) {
  std::vector<Term> result;
  for (const KeyMeta& entry : entries) result.push_back(entry.key);
  return result;
}

std::vector<Term> terms(std::initializer_list<Term> list) {
  return list;
}

void connect(State* a, State* b) {
  a->replica_up(b->replica());
  b->replica_up(a->replica());
}

Context ctx(std::initializer_list<std::pair<const char*, Clock>> entries) {
  Context context;
  for (const auto& [name, clock] : entries) context[ref(name)] = clock;
  return context;
}

std::vector<Tag> cloud_tags(const Clouds& clouds) {
  std::vector<Tag> tags;
  for (const auto& [replica, cloud] : clouds) {
    for (Clock clock : cloud) tags.push_back({replica, clock});
  }
  return tags;
}

// A copy of a merge's changes, to compare States by what they list.
std::vector<std::tuple<Term, Term, Term, Term, Tag>> contents(const State& state) {
  std::vector<std::tuple<Term, Term, Term, Term, Tag>> rows;
  for (const Presence& p : state.online_list())
    rows.emplace_back(p.topic, p.pid, p.key, p.meta, p.tag);
  return rows;
}

TEST(CrdtState, NewStateKnowsOnlyItselfAndHasNothingToExtract) {
  State a(ref("a"));
  EXPECT_EQ(a.context(), ctx({{"a", 0}}));
  EXPECT_EQ(a.replicas(), (Replicas{{ref("a"), ReplicaStatus::kUp}}));
  EXPECT_FALSE(a.has_delta());
  EXPECT_EQ(a.delta().range, (Range{ctx({{"a", 0}}), ctx({{"a", 0}})}));
  EXPECT_TRUE(a.extract(a.replica(), a.context()).values.empty());
}

TEST(CrdtState, JoinedPresenceIsListedUntilItLeaves) {
  State a(ref("a"));
  ASSERT_TRUE(a.join(pid(1), kLobby, atom("john"), meta()));
  EXPECT_EQ(a.get_by_topic(kLobby), (std::vector<KeyMeta>{{atom("john"), meta()}}));
  ASSERT_TRUE(a.leave(pid(1), kLobby, atom("john")));
  EXPECT_TRUE(a.get_by_topic(kLobby).empty());
  EXPECT_EQ(a.size(), 0u);
}

TEST(CrdtState, JoinStampsConsecutiveTagsAndRecordsThemInTheDelta) {
  State a(ref("a"));
  EXPECT_EQ(a.join(pid(1), kLobby, bin("k1"), meta()), (Tag{ref("a"), 1}));
  EXPECT_EQ(a.join(pid(1), kLobby, bin("k2"), meta()), (Tag{ref("a"), 2}));
  EXPECT_TRUE(a.has_delta());
  EXPECT_EQ(a.context(), ctx({{"a", 2}}));
  EXPECT_EQ(a.delta().range, (Range{ctx({{"a", 0}}), ctx({{"a", 2}})}));
  EXPECT_EQ(cloud_tags(a.delta().clouds), (std::vector<Tag>{{ref("a"), 1}, {ref("a"), 2}}));
  EXPECT_EQ(a.delta().values.at({ref("a"), 2}), (PresenceValue{pid(1), kLobby, bin("k2"), meta()}));
  EXPECT_EQ(delta_size(a.delta()), 4u);
}

TEST(CrdtState, JoinOfATrackedPresenceIsRefusedAndChangesNothing) {
  State a(ref("a"));
  ASSERT_TRUE(a.join(pid(1), kLobby, bin("k"), meta()));
  EXPECT_FALSE(a.join(pid(1), kLobby, bin("k"), meta("x", atom("y"))));
  EXPECT_EQ(a.context(), ctx({{"a", 1}}));
  EXPECT_EQ(a.get_by_topic(kLobby), (std::vector<KeyMeta>{{bin("k"), meta()}}));
}

TEST(CrdtState, LeaveKeepsTheTagAsATombstoneInTheDeltaAndBumpsTheClock) {
  State a(ref("a"));
  a.join(pid(1), kLobby, bin("k"), meta());
  a.reset_delta();
  const std::optional<Presence> left = a.leave(pid(1), kLobby, bin("k"));
  ASSERT_TRUE(left);
  EXPECT_EQ(left->tag, (Tag{ref("a"), 1}));
  EXPECT_TRUE(a.delta().values.empty());
  EXPECT_EQ(cloud_tags(a.delta().clouds), (std::vector<Tag>{{ref("a"), 1}, {ref("a"), 2}}));
  EXPECT_EQ(a.delta().range, (Range{ctx({{"a", 1}}), ctx({{"a", 2}})}));
  EXPECT_TRUE(a.has_delta());
}

TEST(CrdtState, LeaveOfAnUntrackedPresenceChangesNothing) {
  State a(ref("a"));
  EXPECT_FALSE(a.leave(pid(1), kLobby, bin("k")));
  EXPECT_TRUE(a.leave(pid(1)).empty());
  EXPECT_EQ(a.context(), ctx({{"a", 0}}));
  EXPECT_FALSE(a.has_delta());
}

TEST(CrdtState, LeaveJoinGivesTheNewMetaANewTagAfterTwoBumps) {
  State a(ref("a"));
  a.join(pid(1), kLobby, bin("k"), meta("n", Term::integer(1)));
  a.join(pid(2), kLobby, bin("other"), meta());
  a.reset_delta();
  EXPECT_EQ(a.leave_join(pid(1), kLobby, bin("k"), meta("n", Term::integer(2))),
            (Tag{ref("a"), 4}));
  // As golden 05: the old tag and both bumps in clouds, the new value alone.
  EXPECT_EQ(cloud_tags(a.delta().clouds),
            (std::vector<Tag>{{ref("a"), 1}, {ref("a"), 3}, {ref("a"), 4}}));
  ASSERT_EQ(a.delta().values.size(), 1u);
  EXPECT_EQ(a.delta().values.at({ref("a"), 4}).meta, meta("n", Term::integer(2)));
  EXPECT_EQ(a.get_by_pid(pid(1), kLobby, bin("k"))->meta, meta("n", Term::integer(2)));
  EXPECT_FALSE(a.leave_join(pid(9), kLobby, bin("k"), meta()));
}

TEST(CrdtState, LeaveJoinOfAPresenceJoinedInTheSameDeltaDropsTheOldValue) {
  State a(ref("a"));
  a.join(pid(1), kLobby, bin("k"), meta());
  a.leave_join(pid(1), kLobby, bin("k"), meta("v", Term::integer(2)));
  EXPECT_EQ(a.delta().values.size(), 1u);
  EXPECT_TRUE(a.delta().values.contains({ref("a"), 3}));
}

TEST(CrdtState, LeaveByPidUntracksEveryPresenceOfThePid) {
  State a(ref("a"));
  a.join(pid(1), bin("t2"), bin("k"), meta());
  a.join(pid(1), bin("t1"), bin("k"), meta());
  a.join(pid(2), bin("t1"), bin("k"), meta());
  const std::vector<Presence> left = a.leave(pid(1));
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].topic, bin("t1"));
  EXPECT_EQ(left[1].topic, bin("t2"));
  EXPECT_TRUE(a.get_by_pid(pid(1)).empty());
  EXPECT_EQ(a.size(), 1u);
  EXPECT_EQ(a.context(), ctx({{"a", 5}}));
}

TEST(CrdtState, UsersFromOtherReplicasMergeAndMergingTwiceChangesNothing) {
  State a(ref("a"));
  State b(ref("b"));
  connect(&a, &b);
  a.join(pid(1), kLobby, atom("alice"), meta());
  b.join(pid(2), kLobby, atom("bob"), meta());

  MergeResult merged = a.merge(b.extract(a.replica(), a.context()));
  ASSERT_EQ(merged.joins.size(), 1u);
  EXPECT_EQ(merged.joins[0].key, atom("bob"));
  EXPECT_TRUE(merged.leaves.empty());
  EXPECT_EQ(keys(a.online_list()), terms({atom("alice"), atom("bob")}));

  const auto before = contents(a);
  const Context context_before = a.context();
  merged = a.merge(b.extract(a.replica(), a.context()));
  EXPECT_TRUE(merged.joins.empty());
  EXPECT_TRUE(merged.leaves.empty());
  EXPECT_EQ(contents(a), before);
  EXPECT_EQ(a.context(), context_before);

  merged = b.merge(a.extract(b.replica(), b.context()));
  ASSERT_EQ(merged.joins.size(), 1u);
  EXPECT_EQ(merged.joins[0].key, atom("alice"));
  merged = b.merge(a.extract(b.replica(), b.context()));
  EXPECT_TRUE(merged.joins.empty());
  EXPECT_EQ(contents(a), contents(b));
}

TEST(CrdtState, RemoveIsObservedThroughAWholeStateTransfer) {
  State a(ref("a"));
  State b(ref("b"));
  connect(&a, &b);
  a.join(pid(1), kLobby, atom("alice"), meta());
  b.join(pid(2), kLobby, atom("bob"), meta());
  a.merge(b.extract(a.replica(), a.context()));
  b.merge(a.extract(b.replica(), b.context()));

  a.leave(pid(1), kLobby, atom("alice"));
  MergeResult merged = b.merge(a.extract(b.replica(), b.context()));
  EXPECT_TRUE(merged.joins.empty());
  ASSERT_EQ(merged.leaves.size(), 1u);
  EXPECT_EQ(merged.leaves[0].key, atom("alice"));
  EXPECT_EQ(keys(b.online_list()), terms({atom("bob")}));
  EXPECT_TRUE(b.get_by_pid(pid(1)).empty());

  merged = b.merge(a.extract(b.replica(), b.context()));
  EXPECT_TRUE(merged.joins.empty() && merged.leaves.empty());
}

TEST(CrdtState, RemoteUpdateArrivesAsALeaveOfTheOldAndAJoinOfTheNewMeta) {
  State a(ref("a"));
  State b(ref("b"));
  connect(&a, &b);
  b.join(pid(3), kLobby, atom("carol"), meta());
  a.merge(b.extract(a.replica(), a.context()));

  b.leave_join(pid(3), kLobby, atom("carol"), meta("updated", atom("true")));
  MergeResult merged = a.merge(b.extract(a.replica(), a.context()));
  ASSERT_EQ(merged.joins.size(), 1u);
  ASSERT_EQ(merged.leaves.size(), 1u);
  EXPECT_EQ(merged.joins[0].meta, meta("updated", atom("true")));
  EXPECT_EQ(merged.leaves[0].meta, meta());
  EXPECT_EQ(a.get_by_pid(pid(3)).size(), 1u);
  EXPECT_EQ(a.get_by_key(kLobby, atom("carol")),
            (std::vector<PidMeta>{{pid(3), meta("updated", atom("true"))}}));

  merged = a.merge(b.extract(a.replica(), a.context()));
  EXPECT_TRUE(merged.joins.empty() && merged.leaves.empty());
}

TEST(CrdtState, DownReplicaIsHiddenUntilItComesBackUp) {
  State a(ref("a"));
  State b(ref("b"));
  connect(&a, &b);
  a.join(pid(1), kLobby, atom("alice"), meta());
  b.join(pid(2), kLobby, atom("bob"), meta());
  a.merge(b.extract(a.replica(), a.context()));

  a.join(pid(3), kLobby, atom("carol"), meta());
  a.leave(pid(1), kLobby, atom("alice"));
  a.join(pid(4), kLobby, atom("david"), meta());

  const std::vector<Presence> down = a.replica_down(ref("b"));
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].key, atom("bob"));
  EXPECT_EQ(keys(a.online_list()), terms({atom("carol"), atom("david")}));
  EXPECT_EQ(keys(a.get_by_topic(kLobby)), terms({atom("carol"), atom("david")}));
  EXPECT_EQ(a.tracked_values(kLobby).size(), 3u);

  MergeResult merged = a.merge(b.extract(a.replica(), a.context()));
  EXPECT_TRUE(merged.joins.empty() && merged.leaves.empty());
  EXPECT_EQ(keys(a.online_list()), terms({atom("carol"), atom("david")}));

  const std::vector<Presence> up = a.replica_up(ref("b"));
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].key, atom("bob"));
  EXPECT_EQ(keys(a.online_list()), terms({atom("bob"), atom("carol"), atom("david")}));
}

TEST(CrdtState, ClocksLeaveOutDownReplicas) {
  State a(ref("a"));
  a.replica_up(ref("b"));
  a.replica_up(ref("c"));
  a.replica_down(ref("b"));
  EXPECT_EQ(a.clocks(), (ReplicaClock{ref("a"), ctx({{"a", 0}, {"c", 0}})}));
  EXPECT_EQ(a.context(), ctx({{"a", 0}, {"b", 0}, {"c", 0}}));
}

State connected_to(const char* name, std::initializer_list<const char*> others) {
  State state(ref(name));
  for (const char* other : others) state.replica_up(ref(other));
  return state;
}

TEST(CrdtState, JoinsAreObservedThroughAThirdReplica) {
  State a = connected_to("a", {"b", "c"});
  State b = connected_to("b", {"a", "c"});
  State c = connected_to("c", {"a", "b"});
  a.join(pid(1), kLobby, atom("alice"), meta());
  EXPECT_EQ(c.merge(a.extract(c.replica(), c.context())).joins.size(), 1u);

  // netsplit between a and c
  EXPECT_TRUE(a.replica_down(ref("c")).empty());
  EXPECT_EQ(c.replica_down(ref("a")).size(), 1u);

  a.join(pid(2), kLobby, atom("bob"), meta());
  MergeResult merged = b.merge(a.extract(b.replica(), b.context()));
  EXPECT_EQ(keys(merged.joins), terms({atom("alice"), atom("bob")}));
  merged = c.merge(b.extract(c.replica(), c.context()));
  EXPECT_EQ(keys(merged.joins), terms({atom("bob")}));
  EXPECT_TRUE(merged.leaves.empty());
}

TEST(CrdtState, RemovesAreObservedThroughAThirdReplica) {
  State a = connected_to("a", {"b", "c"});
  State b = connected_to("b", {"a", "c"});
  State c = connected_to("c", {"a", "b"});
  a.join(pid(1), kLobby, atom("alice"), meta());
  c.merge(a.extract(c.replica(), c.context()));
  a.replica_down(ref("c"));
  c.replica_down(ref("a"));

  a.join(pid(2), kLobby, atom("bob"), meta());
  b.merge(a.extract(b.replica(), b.context()));
  EXPECT_EQ(keys(c.merge(b.extract(c.replica(), c.context())).joins), terms({atom("bob")}));

  a.leave(pid(2), kLobby, atom("bob"));
  EXPECT_EQ(keys(b.merge(a.extract(b.replica(), b.context())).leaves), terms({atom("bob")}));
  MergeResult merged = c.merge(b.extract(c.replica(), c.context()));
  EXPECT_TRUE(merged.joins.empty());
  EXPECT_EQ(keys(merged.leaves), terms({atom("bob")}));
}

TEST(CrdtState, GetByPidFindsPresencesWhateverTheTopic) {
  State state(ref("node1"));
  EXPECT_TRUE(state.get_by_pid(pid(1)).empty());
  state.join(pid(1), bin("topic"), bin("key1"), meta());
  const Presence expected{bin("topic"), pid(1), bin("key1"), meta(), {ref("node1"), 1}};
  EXPECT_EQ(state.get_by_pid(pid(1)), std::vector<Presence>{expected});
  EXPECT_EQ(state.get_by_pid(pid(1), bin("topic"), bin("key1")), expected);
  EXPECT_FALSE(state.get_by_pid(pid(1), bin("notopic"), bin("key1")));
  EXPECT_FALSE(state.get_by_pid(pid(1), bin("notopic"), bin("nokey")));
  EXPECT_FALSE(state.get_by_pid(pid(2), bin("topic"), bin("key1")));
}

TEST(CrdtState, GetByKeyListsEveryPidOfTheKeyInPidOrder) {
  State state(ref("node1"));
  EXPECT_TRUE(state.get_by_key(bin("topic"), bin("key1")).empty());
  state.join(pid(7), bin("topic"), bin("key1"), meta("device", atom("ios")));
  state.join(pid(3), bin("topic"), bin("key1"), meta("device", atom("browser")));
  state.join(pid(7), bin("topic"), bin("key2"), meta("device", atom("ios")));
  EXPECT_EQ(state.get_by_key(bin("topic"), bin("key1")),
            (std::vector<PidMeta>{{pid(3), meta("device", atom("browser"))},
                                  {pid(7), meta("device", atom("ios"))}}));
  EXPECT_TRUE(state.get_by_key(bin("another_topic"), bin("key1")).empty());
  EXPECT_TRUE(state.get_by_key(bin("topic"), bin("another_key")).empty());
}

TEST(CrdtState, GetByTopicHidesEachDownReplica) {
  State s1 = connected_to("node1", {"node2", "node3"});
  State s2 = connected_to("node2", {"node1", "node3"});
  State s3 = connected_to("node3", {"node1", "node2"});
  EXPECT_EQ(s1.context(), ctx({{"node1", 0}, {"node2", 0}, {"node3", 0}}));

  EXPECT_TRUE(s1.get_by_topic(bin("topic")).empty());
  s1.join(pid(1), bin("topic"), bin("key1"), meta());
  s1.join(pid(1), bin("topic"), bin("key2"), meta());
  s2.join(pid(2), bin("topic"), bin("user2"), meta());
  s3.join(pid(3), bin("topic"), bin("user3"), meta());
  EXPECT_EQ(keys(s1.get_by_topic(bin("topic"))), terms({bin("key1"), bin("key2")}));

  s1.merge(s2.extract(s1.replica(), s1.context()));
  s1.merge(s3.extract(s1.replica(), s1.context()));
  EXPECT_EQ(keys(s1.get_by_topic(bin("topic"))),
            terms({bin("key1"), bin("key2"), bin("user2"), bin("user3")}));
  s1.replica_down(s2.replica());
  EXPECT_EQ(keys(s1.get_by_topic(bin("topic"))), terms({bin("key1"), bin("key2"), bin("user3")}));
  s1.replica_down(s3.replica());
  EXPECT_EQ(keys(s1.get_by_topic(bin("topic"))), terms({bin("key1"), bin("key2")}));
  EXPECT_TRUE(s1.get_by_topic(bin("another:topic")).empty());
}

TEST(CrdtState, ListsComeInPhoenixsOrderOfTopicPidAndKey) {
  State state(ref("a"));
  state.join(pid(9), bin("t"), bin("a"), meta());
  state.join(pid(2), bin("t"), bin("z"), meta());
  state.join(pid(2), bin("t"), bin("b"), meta());
  state.join(pid(1), bin("s"), bin("x"), meta());
  EXPECT_EQ(keys(state.get_by_topic(bin("t"))), terms({bin("b"), bin("z"), bin("a")}));
  std::vector<Term> listed;
  for (const Presence& p : state.online_list()) listed.push_back(p.key);
  EXPECT_EQ(listed, terms({bin("x"), bin("b"), bin("z"), bin("a")}));
}

TEST(CrdtState, RemoveDownReplicasDeletesItsPresencesForGood) {
  State s1(ref("node1"));
  State s2(ref("node2"));
  connect(&s1, &s2);
  s1.join(pid(1), kLobby, atom("alice"), meta());
  s2.join(pid(2), kLobby, atom("bob"), meta());
  s2.merge(s1.extract(s2.replica(), s2.context()));
  EXPECT_EQ(keys(s2.online_list()), terms({atom("alice"), atom("bob")}));

  s2.replica_down(ref("node1"));
  EXPECT_EQ(s2.get_by_pid(pid(1)).size(), 1u);
  s2.remove_down_replicas(ref("node1"));
  EXPECT_TRUE(s2.get_by_pid(pid(1)).empty());
  EXPECT_FALSE(s2.context().contains(ref("node1")));
  EXPECT_FALSE(s2.clouds().contains(ref("node1")));
  EXPECT_EQ(s2.replicas().at(ref("node1")), ReplicaStatus::kDown);

  EXPECT_TRUE(s2.replica_up(ref("node1")).empty());
  EXPECT_EQ(keys(s2.online_list()), terms({atom("bob")}));
}

TEST(CrdtState, RemoveDownReplicasAlsoPrunesTheLocalDelta) {
  State a(ref("a"));
  State b(ref("b"));
  connect(&a, &b);
  b.join(pid(2), kLobby, atom("bob"), meta());
  a.merge(b.extract(a.replica(), a.context()));
  b.leave(pid(2), kLobby, atom("bob"));
  a.merge(b.extract(a.replica(), a.context()));  // records b's tag in a's delta
  ASSERT_TRUE(a.delta().clouds.contains(ref("b")));
  a.remove_down_replicas(ref("b"));
  EXPECT_FALSE(a.delta().clouds.contains(ref("b")));
}

TEST(CrdtState, DeltasMergeAndAdvanceTheClocksWithEmptyCloudsAfterwards) {
  State a(ref("a"));
  State b(ref("b"));
  connect(&a, &b);
  a.join(pid(1), kLobby, atom("alice"), meta());
  b.join(pid(2), kLobby, atom("bob"), meta());

  EXPECT_EQ(keys(b.merge(a.delta()).joins), terms({atom("alice")}));
  EXPECT_EQ(b.clocks(), (ReplicaClock{ref("b"), ctx({{"a", 1}, {"b", 1}})}));

  a.reset_delta();
  a.leave(pid(1), kLobby, atom("alice"));
  EXPECT_EQ(keys(b.merge(a.delta()).leaves), terms({atom("alice")}));
  EXPECT_EQ(b.clocks(), (ReplicaClock{ref("b"), ctx({{"a", 2}, {"b", 1}})}));

  a.join(pid(1), kLobby, atom("alice"), meta());
  EXPECT_EQ(keys(b.merge(a.delta()).joins), terms({atom("alice")}));
  EXPECT_EQ(b.clocks(), (ReplicaClock{ref("b"), ctx({{"a", 3}, {"b", 1}})}));
  for (const auto& [replica, cloud] : b.clouds()) EXPECT_TRUE(cloud.empty()) << replica.to_string();
}

TEST(CrdtState, MergeIgnoresValuesOfReplicasItDoesNotKnow) {
  State a(ref("a"));
  State b(ref("b"));
  b.join(pid(2), kLobby, atom("bob"), meta());
  MergeResult merged = a.merge(b.delta());
  EXPECT_TRUE(merged.joins.empty());
  EXPECT_EQ(a.size(), 0u);
  EXPECT_FALSE(a.context().contains(ref("b")));
  EXPECT_FALSE(a.clouds().contains(ref("b")));
}

TEST(CrdtState, MergeOfAnOutOfOrderDeltaKeepsItsTagsAsCloudsUntilTheGapFills) {
  State a(ref("a"));
  State b(ref("b"));
  connect(&a, &b);
  b.join(pid(2), kLobby, atom("first"), meta());
  const Delta first = b.delta();
  b.reset_delta();
  b.join(pid(3), kLobby, atom("second"), meta());

  EXPECT_EQ(keys(a.merge(b.delta()).joins), terms({atom("second")}));
  EXPECT_EQ(a.context().at(ref("b")), 0);
  EXPECT_EQ(a.clouds().at(ref("b")), (Cloud{2}));

  EXPECT_EQ(keys(a.merge(first).joins), terms({atom("first")}));
  EXPECT_EQ(a.context().at(ref("b")), 2);
  EXPECT_TRUE(a.clouds().at(ref("b")).empty());
}

TEST(CrdtState, ExtractLeavesOutTheAskersOwnValuesAndReplicasItDoesNotKnow) {
  State a = connected_to("a", {"b", "c"});
  State b = connected_to("b", {"a"});
  State c = connected_to("c", {"a"});
  a.join(pid(1), kLobby, atom("alice"), meta());
  b.join(pid(2), kLobby, atom("bob"), meta());
  c.join(pid(3), kLobby, atom("carol"), meta());
  a.merge(b.delta());
  a.merge(c.delta());

  const WholeState for_b = a.extract(b.replica(), b.context());
  EXPECT_EQ(for_b.context, ctx({{"a", 1}, {"b", 1}}));
  ASSERT_EQ(for_b.values.size(), 1u);
  EXPECT_EQ(for_b.values.begin()->second.key, atom("alice"));
  EXPECT_FALSE(for_b.clouds.contains(ref("c")));
  EXPECT_EQ(for_b.replicas, a.replicas());
  EXPECT_EQ(for_b.range, Range{});
}

TEST(CrdtState, ExtractedContextHoldsOnlyReplicasTheRemoteKnows) {
  State s1 = connected_to("s1", {"s2"});
  State s2 = connected_to("s2", {"s1", "s3"});
  State s3(ref("s3"));
  s1.join(pid(1), kLobby, bin("user1"), meta());
  s2.join(pid(2), kLobby, bin("user2"), meta());
  s3.join(pid(3), kLobby, bin("user3"), meta());
  s1.merge(s2.delta());
  s2.merge(s1.delta());
  s2.merge(s3.delta());
  EXPECT_EQ(s2.extract(s1.replica(), s1.context()).context, ctx({{"s1", 1}, {"s2", 1}}));
}

TEST(CrdtState, CompactFoldsContiguousDotsAndKeepsTheRest) {
  State a(ref("a"));
  State b(ref("b"));
  connect(&a, &b);
  Delta remote;
  remote.replica = ref("b");
  remote.clouds[ref("b")] = {1, 2, 4};
  remote.range = {ctx({{"b", 0}}), ctx({{"b", 4}})};
  a.merge(remote);
  EXPECT_EQ(a.context().at(ref("b")), 2);
  EXPECT_EQ(a.clouds().at(ref("b")), (Cloud{4}));
}

TEST(CrdtState, LocalTagsStayInCloudsUntilCompacted) {
  State a(ref("a"));
  a.join(pid(1), kLobby, bin("k"), meta());
  EXPECT_EQ(a.clouds().at(ref("a")), (Cloud{1}));
  a.compact();
  EXPECT_TRUE(a.clouds().at(ref("a")).empty());
  EXPECT_EQ(a.context().at(ref("a")), 1);
}

TEST(CrdtState, ResetDeltaStartsAnEmptyDeltaAtTheOwnClock) {
  State a(ref("a"));
  a.join(pid(1), kLobby, bin("k"), meta());
  a.reset_delta();
  EXPECT_FALSE(a.has_delta());
  EXPECT_EQ(a.delta(), empty_delta(ref("a"), 1));
  EXPECT_EQ(delta_size(a.delta()), 0u);
}

TEST(CrdtState, DeltasWithNonContiguousRangesAreNotMerged) {
  State s(ref("s1"));
  s.join(pid(1), kLobby, bin("user1"), meta());
  const Delta d2 = s.delta();
  s.join(pid(2), kLobby, bin("user2"), meta());
  s.reset_delta();
  s.join(pid(3), kLobby, bin("user3"), meta());
  const Delta d4 = s.delta();
  EXPECT_FALSE(merge_deltas(d2, d4));
  EXPECT_FALSE(merge_deltas(d4, d2));
}

TEST(CrdtState, MergingDeltasUnionsValuesAndClouds) {
  State s1(ref("s1"));
  State s2(ref("s2"));
  s1.join(pid(1), kLobby, bin("user1"), meta());
  s1.join(pid(1), bin("private"), bin("user1"), meta());
  s2.join(pid(2), kLobby, bin("user2"), meta());
  s2.join(pid(2), bin("private"), bin("user2"), meta());

  const std::optional<Delta> merged = merge_deltas(s1.delta(), s2.delta());
  ASSERT_TRUE(merged);
  EXPECT_EQ(merged->values,
            (Values{{{ref("s1"), 1}, {pid(1), kLobby, bin("user1"), meta()}},
                    {{ref("s1"), 2}, {pid(1), bin("private"), bin("user1"), meta()}},
                    {{ref("s2"), 1}, {pid(2), kLobby, bin("user2"), meta()}},
                    {{ref("s2"), 2}, {pid(2), bin("private"), bin("user2"), meta()}}}));
  EXPECT_EQ(cloud_tags(merged->clouds),
            (std::vector<Tag>{{ref("s1"), 1}, {ref("s1"), 2}, {ref("s2"), 1}, {ref("s2"), 2}}));
  EXPECT_EQ(merged->range, (Range{ctx({{"s1", 0}, {"s2", 0}}), ctx({{"s1", 2}, {"s2", 2}})}));
  EXPECT_EQ(merged->replica, ref("s1"));
}

TEST(CrdtState, MergingDeltasDropsObservedRemovesAndKeepsTheirTombstones) {
  State s1(ref("s1"));
  State s2(ref("s2"));
  connect(&s1, &s2);
  // concurrent add wins
  s1.join(pid(1), kLobby, bin("user1"), meta());
  s1.join(pid(1), bin("private"), bin("user1"), meta());
  s2.join(pid(1), kLobby, bin("user1"), meta());
  s2.leave(pid(1), kLobby, bin("user1"));

  const std::optional<Delta> delta1 = merge_deltas(s1.delta(), s2.delta());
  ASSERT_TRUE(delta1);
  EXPECT_EQ(delta1->values,
            (Values{{{ref("s1"), 1}, {pid(1), kLobby, bin("user1"), meta()}},
                    {{ref("s1"), 2}, {pid(1), bin("private"), bin("user1"), meta()}}}));
  EXPECT_EQ(cloud_tags(delta1->clouds),
            (std::vector<Tag>{{ref("s1"), 1}, {ref("s1"), 2}, {ref("s2"), 1}, {ref("s2"), 2}}));
  // merging a duplicate keeps the delta as it is
  EXPECT_EQ(merge_deltas(*delta1, s2.delta()), delta1);

  s2.merge(*delta1);
  s2.leave(pid(1), bin("private"), bin("user1"));
  // observed remove
  const std::optional<Delta> delta2 = merge_deltas(*delta1, s2.delta());
  ASSERT_TRUE(delta2);
  EXPECT_EQ(delta2->values, (Values{{{ref("s1"), 1}, {pid(1), kLobby, bin("user1"), meta()}}}));
  EXPECT_EQ(cloud_tags(delta2->clouds),
            (std::vector<Tag>{
                {ref("s1"), 1}, {ref("s1"), 2}, {ref("s2"), 1}, {ref("s2"), 2}, {ref("s2"), 3}}));
}

TEST(CrdtState, ExtractOfADeltaKeepsOnlyWhatTheRemoteCanUse) {
  State a = connected_to("a", {"b", "c"});
  State b(ref("b"));
  State c(ref("c"));
  b.join(pid(2), kLobby, atom("bob"), meta());
  c.join(pid(3), kLobby, atom("carol"), meta());
  a.join(pid(1), kLobby, atom("alice"), meta());
  std::optional<Delta> merged = merge_deltas(a.delta(), b.delta());
  merged = merge_deltas(*merged, c.delta());
  ASSERT_TRUE(merged);

  const Delta for_b = extract(*merged, ref("b"), ctx({{"a", 0}, {"b", 1}}));
  ASSERT_EQ(for_b.values.size(), 1u);
  EXPECT_EQ(for_b.values.begin()->second.key, atom("alice"));
  EXPECT_FALSE(for_b.clouds.contains(ref("c")));
  EXPECT_EQ(for_b.range, (Range{ctx({{"a", 0}, {"b", 0}}), ctx({{"a", 1}, {"b", 1}})}));
}

TEST(CrdtState, RemoveDownReplicasOfADeltaDropsItsRangeCloudAndValues) {
  State a(ref("a"));
  State b(ref("b"));
  a.join(pid(1), kLobby, atom("alice"), meta());
  b.join(pid(2), kLobby, atom("bob"), meta());
  Delta merged = *merge_deltas(a.delta(), b.delta());
  remove_down_replicas(&merged, ref("b"));
  EXPECT_EQ(merged.values.size(), 1u);
  EXPECT_FALSE(merged.clouds.contains(ref("b")));
  EXPECT_EQ(merged.range, (Range{ctx({{"a", 0}}), ctx({{"a", 1}})}));
}

TEST(CrdtState, CopiesAreIndependent) {
  State a(ref("a"));
  a.join(pid(1), kLobby, atom("alice"), meta());
  State copy = a;
  copy.leave(pid(1), kLobby, atom("alice"));
  copy.join(pid(2), kLobby, atom("bob"), meta());
  EXPECT_EQ(keys(a.online_list()), terms({atom("alice")}));
  EXPECT_EQ(keys(copy.online_list()), terms({atom("bob")}));
}

// Random joins, updates and leaves over few topics, keys and pids, checked
// after every step against a plain ordered model: exercises every index
// through inserts, chain hand-overs and hash-table deletions.
TEST(CrdtState, IndexesAgreeWithAPlainModelThroughRandomChurn) {
  using Key = std::tuple<Term, Term, Term>;  // topic, pid, key (Phoenix's order)
  std::map<Key, Term> model;
  State state(ref("a"));
  std::mt19937 rng(42);
  auto pick = [&](int n) { return static_cast<std::uint32_t>(rng() % n); };

  for (int step = 0; step < 8000; ++step) {
    const Term topic = Term::binary("t" + std::to_string(pick(5)));
    const Term p = pid(pick(40));
    const Term key = Term::integer(pick(8));
    const Term value = Term::map({{atom("step"), Term::integer(step)}});
    const Key k{topic, p, key};
    switch (pick(4)) {
      case 0:
      case 1:
        EXPECT_EQ(state.join(p, topic, key, value).has_value(), !model.contains(k));
        model.emplace(k, value);
        break;
      case 2:
        EXPECT_EQ(state.leave_join(p, topic, key, value).has_value(), model.contains(k));
        if (model.contains(k)) model[k] = value;
        break;
      default:
        EXPECT_EQ(state.leave(p, topic, key).has_value(), model.erase(k) == 1);
        break;
    }
    if (step % 500 == 0) state.compact();

    ASSERT_EQ(state.size(), model.size()) << "step " << step;
    std::vector<KeyMeta> by_topic;
    std::vector<PidMeta> by_key;
    std::vector<Presence> by_pid;
    for (const auto& [entry, entry_meta] : model) {
      const auto& [t, entry_pid, entry_key] = entry;
      if (t == topic) by_topic.push_back({entry_key, entry_meta});
      if (t == topic && entry_key == key) by_key.push_back({entry_pid, entry_meta});
      if (entry_pid == p) by_pid.push_back({t, entry_pid, entry_key, entry_meta, {}});
    }
    ASSERT_EQ(state.get_by_topic(topic), by_topic) << "step " << step;
    ASSERT_EQ(state.get_by_key(topic, key), by_key) << "step " << step;
    std::vector<Presence> listed = state.get_by_pid(p);
    std::sort(by_pid.begin(), by_pid.end(), [](const Presence& x, const Presence& y) {
      return std::tie(x.topic, x.key) < std::tie(y.topic, y.key);
    });
    ASSERT_EQ(listed.size(), by_pid.size());
    for (std::size_t i = 0; i < listed.size(); ++i) {
      ASSERT_EQ(listed[i].key, by_pid[i].key);
      ASSERT_EQ(listed[i].meta, by_pid[i].meta);
    }
  }
  EXPECT_EQ(state.online_list().size(), model.size());
}

}  // namespace
}  // namespace presence
