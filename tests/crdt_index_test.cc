// The compact indexes under the CRDT: IdTable (ids keyed through their
// records), ClockIndex (a replica's presences by clock), Values (presences
// by tag), the kept order of topic lists and lookups through the chains.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "crdt/clock_index.h"
#include "crdt/id_table.h"
#include "crdt/state.h"
#include "crdt/values.h"
#include "term/term.h"

namespace presence {
namespace {

// Keys of an IdTable under test: key[id], with hashes that can be forced to
// collide.
struct Keys {
  std::vector<std::uint64_t> key;
  std::size_t (*hash)(std::uint64_t) = [](std::uint64_t k) { return std::size_t{k * 0x9E37u}; };

  IdTable::Id add(std::uint64_t k) {
    key.push_back(k);
    return static_cast<IdTable::Id>(key.size() - 1);
  }
  auto hash_of() const {
    return [this](IdTable::Id id) { return hash(key[id]); };
  }
  IdTable::Id find(const IdTable& table, std::uint64_t k) const {
    return table.find(hash(k), [&](IdTable::Id id) { return key[id] == k; });
  }
};

TEST(IdTable, FindsEveryInsertedIdAndNoAbsentKey) {
  Keys keys;
  IdTable table;
  std::mt19937_64 rng(7);
  std::set<std::uint64_t> inserted;
  while (inserted.size() < 20'000) {
    const std::uint64_t k = rng() >> 1;
    if (!inserted.insert(k).second) continue;
    table.insert(keys.hash(k), keys.add(k), keys.hash_of());
  }
  EXPECT_EQ(table.size(), 20'000u);
  for (IdTable::Id id = 0; id < keys.key.size(); ++id) {
    ASSERT_EQ(keys.find(table, keys.key[id]), id);
  }
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t absent = (rng() >> 1) | (std::uint64_t{1} << 63);
    EXPECT_EQ(keys.find(table, absent), IdTable::kNone);
  }
}

TEST(IdTable, TheLargestIdIsFoundUnderEveryHash) {
  // Under some hashes its slot has every check bit set: it must still read
  // as an id, not as an empty or erased slot.
  for (std::size_t hash = 0; hash < 2000; ++hash) {
    IdTable table;
    table.insert(hash, IdTable::kMaxId, [&](IdTable::Id) { return hash; });
    ASSERT_EQ(table.find(hash, [](IdTable::Id id) { return id == IdTable::kMaxId; }),
              IdTable::kMaxId)
        << hash;
  }
}

TEST(IdTable, KeysWithOneHashAreToldApartByThePredicate) {
  Keys keys;
  keys.hash = [](std::uint64_t) { return std::size_t{42}; };
  IdTable table;
  for (std::uint64_t k = 0; k < 100; ++k) table.insert(42, keys.add(k), keys.hash_of());
  for (std::uint64_t k = 0; k < 100; ++k) EXPECT_EQ(keys.find(table, k), k);
  EXPECT_EQ(keys.find(table, 100), IdTable::kNone);
}

TEST(IdTable, ErasedIdsAreGoneAndLaterInsertsStayFindable) {
  Keys keys;
  keys.hash = [](std::uint64_t k) { return std::size_t{k % 97}; };  // long shared runs
  IdTable table;
  for (std::uint64_t k = 0; k < 5000; ++k) table.insert(keys.hash(k), keys.add(k), keys.hash_of());
  for (std::uint64_t k = 0; k < 5000; k += 2)
    table.erase(keys.hash(k), static_cast<IdTable::Id>(k));
  EXPECT_EQ(table.size(), 2500u);
  // Inserting again reuses erased slots and grows the table over them.
  for (std::uint64_t k = 5000; k < 12'000; ++k) {
    table.insert(keys.hash(k), keys.add(k), keys.hash_of());
  }
  for (std::uint64_t k = 0; k < 12'000; ++k) {
    const bool present = k >= 5000 || k % 2 == 1;
    EXPECT_EQ(keys.find(table, k), present ? k : IdTable::kNone) << k;
  }
  std::size_t visited = 0;
  table.for_each([&](IdTable::Id id) {
    ++visited;
    EXPECT_TRUE(id >= 5000 || id % 2 == 1);
  });
  EXPECT_EQ(visited, table.size());
}

TEST(IdTable, ReplaceGivesTheKeyANewIdInPlace) {
  Keys keys;
  IdTable table;
  const IdTable::Id first = keys.add(5);
  table.insert(keys.hash(5), first, keys.hash_of());
  const IdTable::Id second = keys.add(5);  // an equal key under another id
  table.replace(keys.hash(5), first, second);
  EXPECT_EQ(table.find(keys.hash(5), [&](IdTable::Id id) { return id == second; }), second);
  EXPECT_EQ(table.find(keys.hash(5), [&](IdTable::Id id) { return id == first; }), IdTable::kNone);
  EXPECT_EQ(table.size(), 1u);
}

TEST(IdTable, ReserveKeepsEveryIdAndMakesRoom) {
  Keys keys;
  IdTable table;
  for (std::uint64_t k = 0; k < 300; ++k) table.insert(keys.hash(k), keys.add(k), keys.hash_of());
  table.reserve(10'000, keys.hash_of());
  for (std::uint64_t k = 300; k < 10'000; ++k) {
    table.insert(keys.hash(k), keys.add(k), keys.hash_of());
  }
  for (std::uint64_t k = 0; k < 10'000; ++k) ASSERT_EQ(keys.find(table, k), k);
}

TEST(IdTable, LocateFindsPresentKeysAndInsertsAbsentOnesWhereItLooked) {
  Keys keys;
  keys.hash = [](std::uint64_t k) { return std::size_t{k % 13}; };  // crowded runs
  IdTable table;
  std::set<std::uint64_t> erased;
  for (std::uint64_t k = 0; k < 2000; ++k) {
    const IdTable::Spot spot =
        table.locate(keys.hash(k), [&](IdTable::Id id) { return keys.key[id] == k; });
    ASSERT_EQ(spot.found, IdTable::kNone);
    table.insert_at(spot, keys.add(k), keys.hash_of());
    if (k % 3 == 0) {  // erasing leaves tombstones for later inserts to reuse
      table.erase(keys.hash(k / 2), static_cast<IdTable::Id>(k / 2));
      erased.insert(k / 2);
    }
  }
  EXPECT_EQ(table.size(), 2000 - erased.size());
  for (std::uint64_t k = 0; k < 2000; ++k) {
    const IdTable::Spot spot =
        table.locate(keys.hash(k), [&](IdTable::Id id) { return keys.key[id] == k; });
    EXPECT_EQ(spot.found, erased.contains(k) ? IdTable::kNone : k) << k;
  }
}

// Clocks of a ClockIndex under test: clock[id].
struct Clocks {
  std::vector<Clock> clock;
  auto clock_of() const {
    return [this](ClockIndex::Id id) { return clock[id]; };
  }
  ClockIndex::Id add(ClockIndex* index, Clock c) {
    clock.push_back(c);
    const auto id = static_cast<ClockIndex::Id>(clock.size() - 1);
    index->insert(c, id, clock_of());
    return id;
  }
};

std::set<ClockIndex::Id> all_ids(const ClockIndex& index) {
  std::set<ClockIndex::Id> ids;
  index.for_each([&](ClockIndex::Id id) { EXPECT_TRUE(ids.insert(id).second) << id; });
  return ids;
}

TEST(ClockIndex, FindsClocksInAnyOrderAndNoAbsentOne) {
  Clocks clocks;
  ClockIndex index;
  // A run, clocks older than its start, clocks far beyond its end, then a
  // run that grows over some of those.
  for (Clock c = 1000; c < 1200; ++c) clocks.add(&index, c);
  for (Clock c = 999; c > 900; c -= 3) clocks.add(&index, c);
  for (Clock c : {Clock{5000}, Clock{1} << 40, Clock{1300}}) clocks.add(&index, c);
  for (Clock c = 1200; c < 1400; ++c) {
    if (c != 1300) clocks.add(&index, c);
  }
  EXPECT_EQ(index.size(), clocks.clock.size());
  for (ClockIndex::Id id = 0; id < clocks.clock.size(); ++id) {
    ASSERT_EQ(index.find(clocks.clock[id], clocks.clock_of()), id) << clocks.clock[id];
  }
  for (Clock absent : {Clock{0}, Clock{998}, Clock{1400}, Clock{4999}, (Clock{1} << 40) + 1}) {
    EXPECT_EQ(index.find(absent, clocks.clock_of()), ClockIndex::kNone) << absent;
  }
  EXPECT_EQ(all_ids(index).size(), clocks.clock.size());
}

TEST(ClockIndex, MatchesAMapThroughRandomInsertsAndErases) {
  Clocks clocks;
  ClockIndex index;
  std::map<Clock, ClockIndex::Id> expected;
  std::mt19937_64 rng(11);
  Clock next = 1;
  for (int step = 0; step < 20'000; ++step) {
    const auto roll = rng() % 10;
    if (roll < 5 || expected.empty()) {
      // Mostly the next clock, sometimes a late or a far one.
      Clock c = roll == 0 ? static_cast<Clock>(rng() % (next + 1000)) : next++;
      if (expected.contains(c)) continue;
      expected[c] = clocks.add(&index, c);
    } else {
      auto it = expected.begin();
      std::advance(it, static_cast<long>(rng() % expected.size()));
      index.erase(it->first, it->second, clocks.clock_of());
      expected.erase(it);
    }
    if (step % 1000 == 0) {
      for (const auto& [c, id] : expected) ASSERT_EQ(index.find(c, clocks.clock_of()), id) << c;
    }
  }
  EXPECT_EQ(index.size(), expected.size());
  std::set<ClockIndex::Id> ids;
  for (const auto& [c, id] : expected) ids.insert(id);
  EXPECT_EQ(all_ids(index), ids);
}

TEST(ClockIndex, AThinnedRunKeepsEveryRemainingClock) {
  Clocks clocks;
  ClockIndex index;
  for (Clock c = 1; c <= 10'000; ++c) clocks.add(&index, c);
  // Leaves of all but every tenth clock empty most of the run.
  for (Clock c = 1; c <= 10'000; ++c) {
    if (c % 10 != 0) index.erase(c, static_cast<ClockIndex::Id>(c - 1), clocks.clock_of());
  }
  EXPECT_EQ(index.size(), 1000u);
  for (Clock c = 10; c <= 10'000; c += 10) {
    ASSERT_EQ(index.find(c, clocks.clock_of()), static_cast<ClockIndex::Id>(c - 1)) << c;
  }
  EXPECT_EQ(index.find(11, clocks.clock_of()), ClockIndex::kNone);
  // Later clocks start a run of their own.
  for (Clock c = 10'001; c <= 10'100; ++c) clocks.add(&index, c);
  EXPECT_EQ(index.size(), 1100u);
  EXPECT_EQ(index.find(10'050, clocks.clock_of()), static_cast<ClockIndex::Id>(10'049));
}

Tag tag(const char* replica, Clock clock) {
  return {{Atom(replica), 1}, clock};
}

PresenceValue value(std::uint32_t n) {
  return {Term::pid({Atom("v@h"), n, 0, 1}), Term::binary("room"),
          Term::binary("user" + std::to_string(n)), Term::map({})};
}

TEST(Values, ListedTagsKeepTheirFirstValue) {
  Values values{{tag("a", 1), value(1)}, {tag("a", 2), value(2)}, {tag("a", 1), value(3)}};
  EXPECT_EQ(values.size(), 2u);
  EXPECT_EQ(values.at(tag("a", 1)), value(1));
  EXPECT_FALSE(values.emplace(tag("a", 2), value(4)));
  EXPECT_EQ(values.at(tag("a", 2)), value(2));
}

TEST(Values, LookupsStayRightAfterErasesMoveEntries) {
  Values values;
  for (Clock c = 1; c <= 500; ++c)
    values.emplace_new(tag("r", c), value(static_cast<std::uint32_t>(c)));
  for (Clock c = 1; c <= 500; c += 3) EXPECT_EQ(values.erase(tag("r", c)), 1u);
  EXPECT_EQ(values.erase(tag("r", 1)), 0u);
  EXPECT_EQ(values.erase_if([](const auto& entry) { return entry.first.clock % 3 == 2; }), 167u);
  for (Clock c = 1; c <= 500; ++c) {
    const PresenceValue* found = values.get(tag("r", c));
    if (c % 3 == 0) {
      ASSERT_NE(found, nullptr) << c;
      EXPECT_EQ(*found, value(static_cast<std::uint32_t>(c)));
    } else {
      EXPECT_EQ(found, nullptr) << c;
    }
  }
  EXPECT_EQ(values.size(), 166u);
}

TEST(Values, EqualityIgnoresOrderButNotValues) {
  Values forward;
  Values backward;
  for (Clock c = 1; c <= 50; ++c)
    forward.emplace(tag("r", c), value(static_cast<std::uint32_t>(c)));
  for (Clock c = 50; c >= 1; --c)
    backward.emplace(tag("r", c), value(static_cast<std::uint32_t>(c)));
  EXPECT_EQ(forward, backward);
  backward[tag("r", 7)].meta = Term::map({{Term::atom("x"), Term::integer(1)}});
  EXPECT_NE(forward, backward);
  backward.erase(tag("r", 7));
  EXPECT_NE(forward, backward);
}

TEST(Values, AtAnAbsentTagThrowsAndBracketsAddAnEmptyValue) {
  Values values;
  EXPECT_THROW(values.at(tag("a", 1)), std::out_of_range);
  values[tag("a", 1)].key = Term::binary("k");
  EXPECT_EQ(values.at(tag("a", 1)).key, Term::binary("k"));
  EXPECT_EQ(values.at(tag("a", 1)).pid, Term());
}

std::vector<Term> listed_keys(const State& state, const Term& topic) {
  std::vector<Term> keys;
  for (const KeyMeta& entry : state.get_by_topic(topic)) keys.push_back(entry.key);
  return keys;
}

TEST(TopicOrder, AListedTopicShowsLaterJoinsLeavesAndDownReplicas) {
  const Term topic = Term::binary("room");
  State a({Atom("a"), 1});
  State b({Atom("b"), 1});
  a.replica_up(b.replica());
  b.replica_up(a.replica());
  a.join(value(3).pid, topic, Term::binary("k3"), Term::map({}));
  a.join(value(1).pid, topic, Term::binary("k1"), Term::map({}));
  EXPECT_EQ(listed_keys(a, topic), (std::vector<Term>{Term::binary("k1"), Term::binary("k3")}));

  a.join(value(2).pid, topic, Term::binary("k2"), Term::map({}));
  EXPECT_EQ(listed_keys(a, topic),
            (std::vector<Term>{Term::binary("k1"), Term::binary("k2"), Term::binary("k3")}));

  a.leave(value(1).pid, topic, Term::binary("k1"));
  EXPECT_EQ(listed_keys(a, topic), (std::vector<Term>{Term::binary("k2"), Term::binary("k3")}));

  b.join(value(0).pid, topic, Term::binary("k0"), Term::map({}));
  a.merge(b.extract(a.replica(), a.context()));
  EXPECT_EQ(listed_keys(a, topic),
            (std::vector<Term>{Term::binary("k0"), Term::binary("k2"), Term::binary("k3")}));

  a.replica_down(b.replica());
  EXPECT_EQ(listed_keys(a, topic), (std::vector<Term>{Term::binary("k2"), Term::binary("k3")}));
  EXPECT_EQ(a.tracked_values(topic).size(), 3u);
  a.replica_up(b.replica());
  EXPECT_EQ(listed_keys(a, topic).size(), 3u);
}

TEST(TopicOrder, ATopicEmptiedAndRefilledListsOnlyItsNewMembers) {
  const Term topic = Term::binary("room");
  State a({Atom("a"), 1});
  a.join(value(1).pid, topic, Term::binary("old"), Term::map({}));
  EXPECT_EQ(listed_keys(a, topic).size(), 1u);
  a.leave(value(1).pid);
  EXPECT_TRUE(listed_keys(a, topic).empty());
  a.join(value(2).pid, Term::binary("other"), Term::binary("x"), Term::map({}));
  a.join(value(2).pid, topic, Term::binary("new"), Term::map({}));
  EXPECT_EQ(listed_keys(a, topic), (std::vector<Term>{Term::binary("new")}));
}

// One pid tracked under many keys of a topic, and one key tracked by many
// pids of it: lookups by {topic, pid, key} walk the two chains in turns.
TEST(PresenceLookups, LongPidAndKeyChainsFindEveryPresenceAndNoOther) {
  const Term topic = Term::binary("room");
  const Term busy_pid = value(0).pid;
  const Term shared_key = Term::binary("everyone");
  State a({Atom("a"), 1});
  for (std::uint32_t n = 1; n <= 300; ++n) {
    ASSERT_TRUE(a.join(busy_pid, topic, Term::binary("k" + std::to_string(n)), Term::map({})));
    ASSERT_TRUE(a.join(value(n).pid, topic, shared_key, Term::map({})));
  }
  ASSERT_TRUE(a.join(busy_pid, topic, shared_key, Term::map({})));
  EXPECT_FALSE(a.join(busy_pid, topic, shared_key, Term::map({})));
  EXPECT_FALSE(a.join(value(150).pid, topic, shared_key, Term::map({})));
  EXPECT_FALSE(a.join(busy_pid, topic, Term::binary("k150"), Term::map({})));

  for (std::uint32_t n = 1; n <= 300; ++n) {
    const Term key = Term::binary("k" + std::to_string(n));
    ASSERT_TRUE(a.get_by_pid(busy_pid, topic, key)) << n;
    ASSERT_TRUE(a.get_by_pid(value(n).pid, topic, shared_key)) << n;
    // The pid of one chain with the key of the other: never tracked.
    EXPECT_FALSE(a.get_by_pid(value(n).pid, topic, key)) << n;
    EXPECT_FALSE(a.get_by_pid(busy_pid, Term::binary("hall"), key)) << n;
  }
  EXPECT_EQ(a.get_by_pid(busy_pid).size(), 301u);
  EXPECT_EQ(a.get_by_key(topic, shared_key).size(), 301u);

  // Leaves from the middle and the ends of both chains.
  for (std::uint32_t n : {1u, 150u, 300u}) {
    ASSERT_TRUE(a.leave(busy_pid, topic, Term::binary("k" + std::to_string(n))));
    ASSERT_TRUE(a.leave(value(n).pid, topic, shared_key));
  }
  for (std::uint32_t n = 1; n <= 300; ++n) {
    const bool left = n == 1 || n == 150 || n == 300;
    EXPECT_EQ(a.get_by_pid(busy_pid, topic, Term::binary("k" + std::to_string(n))).has_value(),
              !left)
        << n;
    EXPECT_EQ(a.get_by_pid(value(n).pid, topic, shared_key).has_value(), !left) << n;
  }
  EXPECT_EQ(a.get_by_pid(busy_pid).size(), 298u);
  EXPECT_EQ(a.get_by_key(topic, shared_key).size(), 298u);
  EXPECT_EQ(a.leave(busy_pid).size(), 298u);
  EXPECT_EQ(a.get_by_key(topic, shared_key).size(), 297u);
}

// A replica whose clock went past what a record keeps in 32 bits: its tags
// keep their full value through merges, lists, removals and extracts.
TEST(PresenceLookups, ClocksBeyondThirtyTwoBitsKeepTheirValue) {
  const ReplicaRef b{Atom("b"), 1};
  const Clock wide = Clock{1} << 40;
  State a({Atom("a"), 1});
  a.replica_up(b);
  WholeState from_b;
  from_b.replica = b;
  from_b.context = {{b, wide + 2}};
  from_b.replicas = {{b, ReplicaStatus::kUp}};
  from_b.values = {{{b, 5}, value(1)},
                   {{b, 0xFFFFFFFE}, value(2)},
                   {{b, 0xFFFFFFFF}, value(3)},
                   {{b, wide + 1}, value(4)}};
  ASSERT_EQ(a.merge(from_b).joins.size(), 4u);
  for (std::uint32_t n = 1; n <= 4; ++n) {
    const std::optional<Presence> found = a.get_by_pid(value(n).pid, value(n).topic, value(n).key);
    ASSERT_TRUE(found) << n;
    EXPECT_EQ(found->tag, from_b.values.begin()[n - 1].first) << n;
  }
  const ReplicaRef c{Atom("c"), 1};
  EXPECT_EQ(a.extract(c, {{b, 0}}).values, from_b.values);

  // b no longer holds the two widest: a observes their removal.
  from_b.context[b] = wide + 3;
  from_b.values.erase({b, 0xFFFFFFFF});
  from_b.values.erase({b, wide + 1});
  const MergeResult removed = a.merge(from_b);
  EXPECT_TRUE(removed.joins.empty());
  ASSERT_EQ(removed.leaves.size(), 2u);
  for (const Presence& left : removed.leaves) {
    EXPECT_TRUE(left.tag.clock == 0xFFFFFFFF || left.tag.clock == wide + 1) << left.tag.clock;
  }
  EXPECT_EQ(a.get_by_topic(value(1).topic).size(), 2u);
}

// The State API takes any term as a meta (Phoenix's does); those that are
// not maps are kept beside the records.
TEST(PresenceLookups, MetasThatAreNotMapsAreKeptAndReplaced) {
  const Term topic = Term::binary("room");
  State a({Atom("a"), 1});
  ASSERT_TRUE(a.join(value(1).pid, topic, Term::binary("k1"), Term::atom("online")));
  ASSERT_TRUE(a.join(value(2).pid, topic, Term::binary("k2"), Term::integer(42)));
  ASSERT_TRUE(a.join(value(3).pid, topic, Term::binary("k3"), Term::map({})));
  EXPECT_EQ(a.get_by_pid(value(1).pid, topic, Term::binary("k1"))->meta, Term::atom("online"));
  EXPECT_EQ(a.get_by_pid(value(2).pid, topic, Term::binary("k2"))->meta, Term::integer(42));

  const Term map = Term::map({{Term::atom("status"), Term::binary("away")}});
  ASSERT_TRUE(a.leave_join(value(1).pid, topic, Term::binary("k1"), map));
  ASSERT_TRUE(a.leave_join(value(3).pid, topic, Term::binary("k3"), Term::binary("busy")));
  EXPECT_EQ(a.get_by_pid(value(1).pid, topic, Term::binary("k1"))->meta, map);
  EXPECT_EQ(a.get_by_pid(value(3).pid, topic, Term::binary("k3"))->meta, Term::binary("busy"));

  ASSERT_TRUE(a.leave(value(2).pid, topic, Term::binary("k2")));
  ASSERT_TRUE(a.join(value(4).pid, topic, Term::binary("k4"), Term::map({})));
  std::vector<Term> metas;
  for (const KeyMeta& entry : a.get_by_topic(topic)) metas.push_back(entry.meta);
  EXPECT_EQ(metas, (std::vector<Term>{map, Term::binary("busy"), Term::map({})}));
}

}  // namespace
}  // namespace presence
