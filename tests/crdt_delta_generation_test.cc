#include <gtest/gtest.h>

#include <algorithm>
#include <variant>
#include <vector>

#include "crdt/delta_generation.h"
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
Term meta() {
  return Term::map({});
}

const Term kLobby = Term::binary("lobby");
const std::vector<std::size_t> kSizes = {2, 5, 6};

Context ctx(std::initializer_list<std::pair<const char*, Clock>> entries) {
  Context context;
  for (const auto& [name, clock] : entries) context[ref(name)] = clock;
  return context;
}

std::vector<Term> keys(const Delta& delta) {
  std::vector<Term> result;
  for (const auto& entry : delta.values) result.push_back(entry.second.key);
  std::sort(result.begin(), result.end());
  return result;
}

std::vector<Term> bins(std::initializer_list<const char*> texts) {
  std::vector<Term> result;
  for (const char* text : texts) result.push_back(bin(text));
  return result;
}

std::vector<Tag> tags(const Delta& delta) {
  std::vector<Tag> result;
  for (const auto& [replica, cloud] : delta.clouds) {
    for (Clock clock : cloud) result.push_back({replica, clock});
  }
  return result;
}

std::vector<Tag> tags(std::initializer_list<std::pair<const char*, Clock>> entries) {
  std::vector<Tag> result;
  for (const auto& [name, clock] : entries) result.push_back({ref(name), clock});
  return result;
}

TEST(CrdtDeltaGeneration, GenerationsGrowUpToTheirSizeThenTakeOverTheLevelBelow) {
  State s1(ref("s1"));
  State s2(ref("s2"));
  s1.join(pid(1), kLobby, bin("user1"), meta());
  std::vector<Delta> gens = push(s1, {}, s1.delta(), kSizes);
  ASSERT_EQ(gens.size(), 3u);
  EXPECT_EQ(gens[0], gens[1]);
  EXPECT_EQ(gens[1], gens[2]);
  EXPECT_EQ(keys(gens[0]), bins({"user1"}));
  EXPECT_EQ(tags(gens[0]), tags({{"s1", 1}}));
  // pushing a duplicate changes nothing
  EXPECT_EQ(push(s1, gens, s1.delta(), kSizes), gens);

  s1.reset_delta();
  s1.join(pid(2), kLobby, bin("user2"), meta());
  gens = push(s1, gens, s1.delta(), kSizes);
  EXPECT_EQ(keys(gens[0]), bins({"user2"}));
  EXPECT_EQ(keys(gens[1]), bins({"user1", "user2"}));
  EXPECT_EQ(keys(gens[2]), bins({"user1", "user2"}));
  EXPECT_EQ(tags(gens[0]), tags({{"s1", 2}}));
  EXPECT_EQ(tags(gens[1]), tags({{"s1", 1}, {"s1", 2}}));
  EXPECT_EQ(tags(gens[2]), tags({{"s1", 1}, {"s1", 2}}));

  s1.reset_delta();
  s1.join(pid(3), kLobby, bin("user3"), meta());
  gens = push(s1, gens, s1.delta(), kSizes);
  EXPECT_EQ(gens[0], s1.delta());
  EXPECT_EQ(keys(gens[1]), bins({"user2", "user3"}));
  EXPECT_EQ(keys(gens[2]), bins({"user1", "user2", "user3"}));
  EXPECT_EQ(tags(gens[1]), tags({{"s1", 2}, {"s1", 3}}));
  EXPECT_EQ(tags(gens[2]), tags({{"s1", 1}, {"s1", 2}, {"s1", 3}}));

  s1.reset_delta();
  s1.join(pid(4), kLobby, bin("user4"), meta());
  gens = push(s1, gens, s1.delta(), kSizes);
  EXPECT_EQ(keys(gens[0]), bins({"user4"}));
  EXPECT_EQ(keys(gens[1]), bins({"user3", "user4"}));
  EXPECT_EQ(keys(gens[2]), bins({"user2", "user3", "user4"}));
  EXPECT_EQ(tags(gens[2]), tags({{"s1", 2}, {"s1", 3}, {"s1", 4}}));

  // a remote delta
  s2.join(pid(5), kLobby, bin("user5"), meta());
  gens = push(s1, gens, s2.delta(), kSizes);
  EXPECT_EQ(keys(gens[0]), bins({"user5"}));
  EXPECT_EQ(keys(gens[1]), bins({"user4", "user5"}));
  EXPECT_EQ(keys(gens[2]), bins({"user3", "user4", "user5"}));
  EXPECT_EQ(tags(gens[0]), tags({{"s2", 1}}));
  EXPECT_EQ(tags(gens[1]), tags({{"s1", 4}, {"s2", 1}}));
  EXPECT_EQ(tags(gens[2]), tags({{"s1", 3}, {"s1", 4}, {"s2", 1}}));

  // its tombstone
  s2.leave(pid(5));
  gens = push(s1, gens, s2.delta(), kSizes);
  EXPECT_TRUE(keys(gens[0]).empty());
  EXPECT_EQ(keys(gens[1]), bins({"user4"}));
  EXPECT_EQ(keys(gens[2]), bins({"user3", "user4"}));
  EXPECT_EQ(tags(gens[0]), tags({{"s2", 1}, {"s2", 2}}));
  EXPECT_EQ(tags(gens[1]), tags({{"s1", 4}, {"s2", 1}, {"s2", 2}}));
  EXPECT_EQ(tags(gens[2]), tags({{"s1", 3}, {"s1", 4}, {"s2", 1}, {"s2", 2}}));
}

TEST(CrdtDeltaGeneration, NonContiguousDeltasLeaveTheGenerationsAlone) {
  State s1(ref("s1"));
  State s3(ref("s3"));
  s1.join(pid(1), kLobby, bin("user1"), meta());
  s3.join(pid(3), kLobby, bin("user3"), meta());
  const Delta old_s3 = s3.delta();
  s3.reset_delta();
  s3.join(pid(4), kLobby, bin("user3"), meta());
  s3.reset_delta();
  s3.join(pid(5), kLobby, bin("user3"), meta());

  const std::vector<std::size_t> sizes = {5, 10, 15};
  const std::vector<Delta> gens = push(s1, {}, old_s3, sizes);
  EXPECT_EQ(gens[0], gens[1]);
  EXPECT_EQ(gens[1], gens[2]);
  EXPECT_EQ(push(s1, gens, s3.delta(), sizes), gens);
}

TEST(CrdtDeltaGeneration, GenerationsOfAnotherShapeStartOver) {
  State s1(ref("s1"));
  s1.join(pid(1), kLobby, bin("user1"), meta());
  const std::vector<Delta> gens = push(s1, {Delta{}}, s1.delta(), kSizes);
  ASSERT_EQ(gens.size(), 3u);
  EXPECT_EQ(gens[2], s1.delta());
}

TEST(CrdtDeltaGeneration, RemoveDownReplicasPrunesEveryGeneration) {
  State s1(ref("s1"));
  State s2(ref("s2"));
  State s3(ref("s3"));
  s3.replica_up(ref("s2"));
  s2.join(pid(2), kLobby, bin("user2"), meta());
  std::vector<Delta> gens = push(s1, {}, s2.delta(), {5, 10, 15});
  remove_down_replicas(&gens, ref("s2"));
  for (const Delta& gen : gens) {
    EXPECT_TRUE(gen.values.empty());
    EXPECT_FALSE(gen.clouds.contains(ref("s2")));
  }
  const MergeResult merged = s3.merge(gens[0]);
  EXPECT_TRUE(merged.joins.empty() && merged.leaves.empty());
  EXPECT_TRUE(s3.get_by_topic(kLobby).empty());
}

TEST(CrdtDeltaGeneration, WholeStateIsExtractedWhenThereAreNoGenerations) {
  State s(ref("r1"));
  s.join(pid(1), kLobby, bin("user1"), meta());
  const Extracted extracted = extract(s, {}, ref("r2"), ctx({{"r1", 1}}));
  ASSERT_TRUE(std::holds_alternative<WholeState>(extracted));
  const WholeState& whole = std::get<WholeState>(extracted);
  EXPECT_EQ(whole, s.extract(ref("r2"), ctx({{"r1", 1}})));
  EXPECT_EQ(whole.context, ctx({{"r1", 1}}));
  EXPECT_EQ(whole.clouds, (Clouds{{ref("r1"), Cloud{1}}}));
  EXPECT_EQ(whole.values, (Values{{{ref("r1"), 1}, {pid(1), kLobby, bin("user1"), meta()}}}));
}

TEST(CrdtDeltaGeneration, TheFirstGenerationCoveringTheAskersContextIsExtracted) {
  State s(ref("r1"));
  s.reset_delta();
  s.join(pid(1), kLobby, bin("user1"), meta());
  const Delta d2 = s.delta();
  s.reset_delta();
  s.join(pid(1), kLobby, bin("user2"), meta());
  const Delta d3 = s.delta();
  const Extracted extracted = extract(s, {d2, d3}, ref("r2"), ctx({{"r1", 1}}));
  ASSERT_TRUE(std::holds_alternative<Delta>(extracted));
  EXPECT_EQ(std::get<Delta>(extracted), d3);
}

TEST(CrdtDeltaGeneration, AGenerationEmptyOnTheAskersReplicasIsNotExtracted) {
  State s(ref("r1"));
  s.join(pid(1), kLobby, bin("user1"), meta());
  const Delta d1 = s.delta();
  State reset = s;
  reset.reset_delta();
  const Delta d2 = reset.delta();

  Delta d3 = d1;
  d3.range.start[ref("r2")] = 0;
  d3.range.end[ref("r2")] = 1;
  d3.values[{ref("r2"), 1}] = {pid(1), kLobby, bin("user2"), meta()};

  Delta expected = d3;
  expected.clouds = {};
  expected.range = {ctx({{"r2", 0}}), ctx({{"r2", 1}})};
  expected.values = {{{ref("r2"), 1}, {pid(1), kLobby, bin("user2"), meta()}}};
  const Extracted extracted = extract(s, {d2, d3}, ref("r3"), ctx({{"r2", 0}}));
  ASSERT_TRUE(std::holds_alternative<Delta>(extracted));
  EXPECT_EQ(std::get<Delta>(extracted), expected);
}

TEST(CrdtDeltaGeneration, AGenerationTheAskerHasFullySeenIsSkipped) {
  State s(ref("r1"));
  s.join(pid(1), kLobby, bin("user1"), meta());
  Delta d1 = s.delta();
  s.join(pid(1), kLobby, bin("user2"), meta());
  const Delta d2 = s.delta();
  d1.range.start[ref("r2")] = 0;
  d1.range.end[ref("r2")] = 1;
  const Extracted extracted = extract(s, {d1, d2}, ref("r3"), ctx({{"r1", 1}}));
  ASSERT_TRUE(std::holds_alternative<Delta>(extracted));
  EXPECT_EQ(std::get<Delta>(extracted), d2);
}

TEST(CrdtDeltaGeneration, AnAskerAheadOfEveryGenerationGetsTheWholeState) {
  State s(ref("r1"));
  s.join(pid(1), kLobby, bin("user1"), meta());
  const Delta d1 = s.delta();
  const Extracted extracted = extract(s, {d1}, ref("r2"), ctx({{"r1", 1}, {"r2", 0}}));
  EXPECT_TRUE(std::holds_alternative<WholeState>(extracted));
}

}  // namespace
}  // namespace presence
