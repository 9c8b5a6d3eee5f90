#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <utility>

#include "crdt/clock.h"
#include "term/term.h"

namespace presence {
namespace {

ReplicaRef ref(const char* name) {
  return {Atom(name), 1};
}

Context ctx(std::initializer_list<std::pair<const char*, Clock>> entries) {
  Context context;
  for (const auto& [name, clock] : entries) context[ref(name)] = clock;
  return context;
}

ClockSet sorted(ClockSet set) {
  std::sort(set.begin(), set.end(),
            [](const ReplicaClock& a, const ReplicaClock& b) { return a.replica < b.replica; });
  return set;
}

TEST(CrdtClock, DominatesRequiresEveryClockOfTheOtherContext) {
  const Context c1 = ctx({{"a", 1}, {"b", 2}, {"c", 3}});
  const Context c2 = ctx({{"b", 2}, {"c", 3}, {"d", 1}});
  const Context c3 = ctx({{"a", 1}, {"b", 2}});
  EXPECT_TRUE(dominates(c1, c3));
  EXPECT_FALSE(dominates(c3, c1));
  EXPECT_FALSE(dominates(c1, c2));
  EXPECT_TRUE(dominates(c1, c1));
}

TEST(CrdtClock, DominatesIsFalseForASmallerContextEvenIfItsClocksAreHigher) {
  EXPECT_FALSE(dominates(ctx({{"a", 9}}), ctx({{"a", 1}, {"b", 0}})));
  EXPECT_TRUE(dominates(ctx({{"a", 9}, {"c", 0}}), ctx({{"a", 1}, {"b", 0}})));
}

TEST(CrdtClock, DominatesOrEqualInspectsOnlyTheFirstContextsReplicas) {
  EXPECT_TRUE(dominates_or_equal({}, {}));
  EXPECT_FALSE(dominates_or_equal({}, ctx({{"a", 0}})));
  EXPECT_TRUE(dominates_or_equal(ctx({{"a", 2}}), ctx({{"a", 2}, {"b", 7}})));
  EXPECT_FALSE(dominates_or_equal(ctx({{"a", 1}}), ctx({{"a", 2}})));
  EXPECT_TRUE(dominates_or_equal(ctx({{"a", 1}, {"b", 1}}), {}));
}

TEST(CrdtClock, AppendClockKeepsOnlyClocksNoOtherDominates) {
  const ReplicaClock clock1{ref("a"), ctx({{"a", 1}, {"b", 2}, {"c", 3}})};
  const ReplicaClock clock2{ref("b"), ctx({{"b", 2}, {"c", 3}, {"d", 1}})};
  const ReplicaClock clock3{ref("c"), ctx({{"a", 1}, {"b", 2}})};

  EXPECT_EQ(sorted(append_clock({clock2, clock3}, clock1)), (ClockSet{clock2, clock3}));
  EXPECT_EQ(sorted(append_clock({clock1, clock2}, clock3)), (ClockSet{clock1, clock2}));
  EXPECT_EQ(sorted(append_clock({clock1, clock2}, clock1)), (ClockSet{clock1, clock2}));
  EXPECT_EQ(sorted(append_clock({clock1, clock2}, clock2)), (ClockSet{clock1, clock2}));
  EXPECT_EQ(sorted(append_clock({clock1, clock3}, clock2)), (ClockSet{clock1, clock2, clock3}));
  EXPECT_EQ(clockset_replicas(sorted(append_clock({clock2, clock3}, clock1))),
            (std::vector<ReplicaRef>{ref("b"), ref("c")}));
}

TEST(CrdtClock, AppendClockWithAnEmptyContextLeavesTheSetAlone) {
  const ClockSet set{{ref("a"), ctx({{"a", 1}})}};
  EXPECT_EQ(append_clock(set, {ref("b"), {}}), set);
}

TEST(CrdtClock, AppendClockOfADominatingClockReplacesTheWholeSet) {
  const ClockSet set{{ref("a"), ctx({{"a", 1}})}, {ref("b"), ctx({{"b", 1}})}};
  const ReplicaClock big{ref("c"), ctx({{"a", 1}, {"b", 1}, {"c", 0}})};
  EXPECT_EQ(append_clock(set, big), ClockSet{big});
}

TEST(CrdtClock, AppendClockPutsANewConcurrentClockFirstAndReversesTheSurvivors) {
  const ReplicaClock a{ref("a"), ctx({{"a", 2}, {"b", 0}})};
  const ReplicaClock b{ref("b"), ctx({{"a", 0}, {"b", 2}})};
  const ReplicaClock c{ref("c"), ctx({{"a", 1}, {"b", 1}, {"c", 1}})};
  EXPECT_EQ(append_clock({a, b}, c), (ClockSet{c, b, a}));
}

TEST(CrdtClock, UpperboundTakesTheMaximumOverBothReplicaSets) {
  EXPECT_EQ(upperbound(ctx({{"a", 1}, {"b", 2}, {"c", 2}}), ctx({{"a", 3}, {"b", 1}, {"d", 2}})),
            ctx({{"a", 3}, {"b", 2}, {"c", 2}, {"d", 2}}));
  EXPECT_EQ(upperbound({}, ctx({{"a", 3}, {"b", 1}})), ctx({{"a", 3}, {"b", 1}}));
  EXPECT_EQ(upperbound(ctx({{"a", 3}, {"b", 1}}), {}), ctx({{"a", 3}, {"b", 1}}));
}

TEST(CrdtClock, LowerboundTakesTheMinimumButKeepsOneSidedReplicas) {
  EXPECT_EQ(lowerbound(ctx({{"a", 1}, {"b", 2}, {"c", 2}}), ctx({{"a", 3}, {"b", 1}, {"d", 2}})),
            ctx({{"a", 1}, {"b", 1}, {"c", 2}, {"d", 2}}));
  EXPECT_EQ(lowerbound({}, ctx({{"a", 3}, {"d", 2}})), ctx({{"a", 3}, {"d", 2}}));
  EXPECT_EQ(lowerbound(ctx({{"a", 3}, {"d", 2}}), {}), ctx({{"a", 3}, {"d", 2}}));
}

TEST(CrdtClock, FilterReplicasTakesOnlyTheNamedReplicasThatExist) {
  const Context c = ctx({{"a", 1}, {"b", 2}, {"c", 3}});
  EXPECT_EQ(filter_replicas(c, {ref("a"), ref("b")}), ctx({{"a", 1}, {"b", 2}}));
  EXPECT_EQ(filter_replicas(c, {ref("a"), ref("c")}), ctx({{"a", 1}, {"c", 3}}));
  EXPECT_EQ(filter_replicas(c, {ref("a"), ref("d")}), ctx({{"a", 1}}));
  EXPECT_EQ(filter_replicas(c, {ref("d")}), Context{});
}

TEST(CrdtClock, ReplicasListsTheContextsReplicasInOrder) {
  EXPECT_TRUE(replicas({}).empty());
  EXPECT_EQ(replicas(ctx({{"b", 2}, {"a", 1}})), (std::vector<ReplicaRef>{ref("a"), ref("b")}));
}

TEST(CrdtClock, ReplicaRefsAndTagsOrderLikeTheirErlangTuples) {
  const std::vector<ReplicaRef> refs = {{Atom("b@h"), 1},
                                        {Atom("a@h"), 7},
                                        {Atom("a@h"), -3},
                                        {Atom("ab@h"), 0},
                                        {Atom("a@h"), 1796314556334940}};
  for (const ReplicaRef& x : refs) {
    for (const ReplicaRef& y : refs) {
      const Term tx = Term::tuple({Term::atom(x.node), Term::integer(x.vsn)});
      const Term ty = Term::tuple({Term::atom(y.node), Term::integer(y.vsn)});
      EXPECT_EQ(x <=> y, tx <=> ty) << x.to_string() << " vs " << y.to_string();
      const Tag gx{x, 2};
      const Tag gy{y, 1};
      EXPECT_EQ(gx <=> gy,
                Term::tuple({tx, Term::integer(2)}) <=> Term::tuple({ty, Term::integer(1)}));
    }
  }
}

TEST(CrdtClock, EqualRefsHashEqually) {
  EXPECT_EQ(ReplicaRef({Atom("n@h"), 5}).hash(), ReplicaRef({Atom("n@h"), 5}).hash());
  EXPECT_EQ(Tag({{Atom("n@h"), 5}, 3}).hash(), Tag({{Atom("n@h"), 5}, 3}).hash());
}

}  // namespace
}  // namespace presence
