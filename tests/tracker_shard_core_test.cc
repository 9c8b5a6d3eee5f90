// ShardCore without sockets: a recording output, explicit times, and a
// small in-memory "network" that carries broadcasts between cores.
#include "cnode/tracker_shard_core.h"

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "crdt/wire.h"
#include "term/codec.h"

namespace presence {
namespace {

struct Recorder : ShardOutput {
  std::vector<Term> broadcasts;
  std::vector<std::pair<Atom, Term>> directs;
  std::vector<Term> monitors;
  std::vector<Term> demonitors;
  std::vector<TrackerDiff> diffs;
  std::vector<std::pair<ReplicaEvent, ReplicaRef>> events;
  std::vector<std::string> logs;
  std::uint32_t refs = 0;
  Atom node;

  void broadcast(Term message) override { broadcasts.push_back(std::move(message)); }
  void direct_broadcast(Atom to, Term message) override {
    directs.emplace_back(to, std::move(message));
  }
  void monitor(const Term& pid) override { monitors.push_back(pid); }
  void demonitor(const Term& pid) override { demonitors.push_back(pid); }
  void diff(const TrackerDiff& diff) override { diffs.push_back(diff); }
  void replica_event(ReplicaEvent event, const ReplicaRef& replica) override {
    events.emplace_back(event, replica);
  }
  Term make_ref() override { return Term::reference({node, 1, {++refs, 0, 0}}); }
  void log(LogLevel, const std::string& message) override { logs.push_back(message); }
  std::string origin(const Term&) override { return "node 'origin@h'"; }
};

TrackerOptions small_options() {
  TrackerOptions options;
  options.name = Atom("Elixir.T");
  options.pubsub_server = Atom("Elixir.P");
  options.broadcast_period = std::chrono::milliseconds(100);
  options.max_silent_periods = 2;
  options.down_period = std::chrono::milliseconds(1000);
  options.permdown_period = std::chrono::milliseconds(5000);
  options.log_level = LogLevel::kInfo;
  return options;
}

Term pid(const char* node, std::uint32_t id) {
  return Term::pid({Atom(node), id, 0, 1});
}
Term bin(std::string_view text) {
  return Term::binary(text);
}
Term meta(std::string_view name) {
  return Term::map({{Term::atom("name"), bin(name)}});
}

// A replica: its core and what it said.
struct Peer {
  Peer(const char* node, std::int64_t vsn, TrackerOptions options = small_options()) {
    out.node = Atom(node);
    core = std::make_unique<ShardCore>(Atom("Elixir.T_shard0"), ReplicaRef{Atom(node), vsn},
                                       pid(node, 1), options, out);
  }
  Atom node() const { return core->replica().node; }
  Recorder out;
  std::unique_ptr<ShardCore> core;
};

// Delivers everything the peers said, in rounds, until all are quiet.
void deliver(std::vector<Peer*> peers, std::int64_t now) {
  bool moved = true;
  while (moved) {
    moved = false;
    for (Peer* from : peers) {
      auto broadcasts = std::exchange(from->out.broadcasts, {});
      auto directs = std::exchange(from->out.directs, {});
      for (const Term& message : broadcasts) {
        for (Peer* to : peers) {
          if (to != from) to->core->handle_message(message, now);
        }
        moved = true;
      }
      for (const auto& [node, message] : directs) {
        for (Peer* to : peers) {
          if (to->node() == node) to->core->handle_message(message, now);
        }
        moved = true;
      }
    }
  }
}

std::vector<Term> keys(const std::vector<KeyMeta>& list) {
  std::vector<Term> out;
  for (const KeyMeta& entry : list) out.push_back(entry.key);
  return out;
}

const Term kTopic = Term::binary("room:1");

TEST(TrackerShardCoreTest, TrackReturnsAPhxRefAndReportsTheJoin) {
  Peer a("a@h", 1);
  ShardReply reply = a.core->track(pid("a@h", 10), kTopic, bin("alice"), meta("Alice"));
  ASSERT_TRUE(reply.ok);
  ASSERT_TRUE(reply.value.is_binary());
  EXPECT_EQ(reply.value.as_binary().size(), 16u);

  auto list = a.core->list(kTopic);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(*list[0].meta.find("phx_ref"), reply.value);
  EXPECT_EQ(*list[0].meta.find("name"), bin("Alice"));

  ASSERT_EQ(a.out.diffs.size(), 1u);
  const TopicDiff& diff = a.out.diffs[0].at(kTopic);
  ASSERT_EQ(diff.joins.size(), 1u);
  EXPECT_EQ(diff.joins[0].key, bin("alice"));
  EXPECT_TRUE(diff.leaves.empty());
}

TEST(TrackerShardCoreTest, PhxRefsAreDistinct) {
  Peer a("a@h", 1);
  Term first = a.core->track(pid("a@h", 10), kTopic, bin("x"), meta("x")).value;
  Term second = a.core->track(pid("a@h", 10), kTopic, bin("y"), meta("y")).value;
  EXPECT_NE(first, second);
}

TEST(TrackerShardCoreTest, ProcessIsMonitoredOnceWhileItHasPresences) {
  Peer a("a@h", 1);
  Term p = pid("a@h", 10);
  a.core->track(p, kTopic, bin("x"), meta("x"));
  a.core->track(p, bin("room:2"), bin("x"), meta("x"));
  EXPECT_EQ(a.out.monitors, std::vector<Term>{p});

  a.core->untrack(p, kTopic, bin("x"));
  EXPECT_TRUE(a.out.demonitors.empty());
  a.core->untrack(p, bin("room:2"), bin("x"));
  EXPECT_EQ(a.out.demonitors, std::vector<Term>{p});
}

TEST(TrackerShardCoreTest, DuplicateTrackIsAlreadyTracked) {
  Peer a("a@h", 1);
  Term p = pid("a@h", 10);
  ASSERT_TRUE(a.core->track(p, kTopic, bin("u1"), meta("u1")).ok);
  ShardReply again = a.core->track(p, kTopic, bin("u1"), meta("u1"));
  EXPECT_FALSE(again.ok);
  EXPECT_EQ(again.value, Term::tuple({Term::atom("already_tracked"), p, kTopic, bin("u1")}));
  EXPECT_TRUE(a.core->track(p, bin("another:topic"), bin("u1"), meta("u1")).ok);
  EXPECT_TRUE(a.core->track(p, kTopic, bin("anotherkey"), meta("u1")).ok);
}

TEST(TrackerShardCoreTest, TrackWithAMetaThatIsNotAMapIsRefused) {
  Peer a("a@h", 1);
  ShardReply reply = a.core->track(pid("a@h", 10), kTopic, bin("u1"), bin("meta"));
  EXPECT_FALSE(reply.ok);
  EXPECT_EQ(reply.value, Term::tuple({Term::atom("badmap"), bin("meta")}));
  EXPECT_TRUE(a.core->list(kTopic).empty());
}

TEST(TrackerShardCoreTest, UpdateSetsPhxRefPrevAndReportsLeaveAndJoin) {
  Peer a("a@h", 1);
  Term p = pid("a@h", 10);
  Term ref = a.core->track(p, kTopic, bin("u1"), meta("u1")).value;
  a.out.diffs.clear();

  ShardReply updated = a.core->update(p, kTopic, bin("u1"), [](const Term& old) {
    return old.map_put(Term::atom("status"), bin("away"));
  });
  ASSERT_TRUE(updated.ok);
  EXPECT_NE(updated.value, ref);

  ASSERT_EQ(a.out.diffs.size(), 1u);
  const TopicDiff& diff = a.out.diffs[0].at(kTopic);
  ASSERT_EQ(diff.leaves.size(), 1u);
  EXPECT_EQ(*diff.leaves[0].meta.find("phx_ref"), ref);
  ASSERT_EQ(diff.joins.size(), 1u);
  EXPECT_EQ(*diff.joins[0].meta.find("phx_ref_prev"), ref);
  EXPECT_EQ(*diff.joins[0].meta.find("phx_ref"), updated.value);
  EXPECT_EQ(*diff.joins[0].meta.find("status"), bin("away"));
  EXPECT_EQ(*diff.joins[0].meta.find("name"), bin("u1"));

  auto list = a.core->list(kTopic);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].meta, diff.joins[0].meta);
}

TEST(TrackerShardCoreTest, UpdateWithoutPresenceIsNopresence) {
  Peer a("a@h", 1);
  ShardReply reply =
      a.core->update(pid("a@h", 10), kTopic, bin("u1"), [](const Term& m) { return m; });
  EXPECT_FALSE(reply.ok);
  EXPECT_EQ(reply.value, Term::atom("nopresence"));
}

TEST(TrackerShardCoreTest, EndedProcessLeavesEveryPresence) {
  Peer a("a@h", 1);
  Term p = pid("a@h", 10);
  a.core->track(p, kTopic, bin("x"), meta("x"));
  a.core->track(p, bin("room:2"), bin("y"), meta("y"));
  a.core->track(pid("a@h", 11), kTopic, bin("z"), meta("z"));
  a.out.diffs.clear();

  a.core->pid_down(p);
  EXPECT_EQ(keys(a.core->list(kTopic)), std::vector<Term>{bin("z")});
  EXPECT_TRUE(a.core->list(bin("room:2")).empty());
  ASSERT_EQ(a.out.diffs.size(), 1u);
  EXPECT_EQ(a.out.diffs[0].at(kTopic).leaves.size(), 1u);
  EXPECT_EQ(a.out.diffs[0].at(bin("room:2")).leaves.size(), 1u);
}

TEST(TrackerShardCoreTest, HeartbeatCarriesTheDeltaOfLocalChanges) {
  Peer a("a@h", 1);
  a.core->track(pid("a@h", 10), kTopic, bin("alice"), meta("Alice"));
  a.core->heartbeat(0);
  ASSERT_EQ(a.out.broadcasts.size(), 1u);
  const Term& message = a.out.broadcasts[0];
  ASSERT_TRUE(message.is_tuple(5));
  EXPECT_EQ(message[1], Term::atom("heartbeat"));
  EXPECT_EQ(message[2], encode_replica_ref(a.core->replica()));
  auto delta = decode_delta(message[3]);
  ASSERT_TRUE(delta.ok()) << delta.error().message();
  ASSERT_EQ(delta.value().values.size(), 1u);
  EXPECT_EQ(delta.value().values.begin()->second.key, bin("alice"));
  auto clocks = decode_replica_clock(message[4]);
  ASSERT_TRUE(clocks.ok());
  EXPECT_EQ(clocks.value().context.at(a.core->replica()), 1);
  EXPECT_FALSE(a.core->state().has_delta());
}

TEST(TrackerShardCoreTest, QuietShardSendsEmptyHeartbeatEveryMaxSilentPeriods) {
  Peer a("a@h", 1);  // max_silent_periods 2
  std::vector<bool> sent;
  for (int tick = 0; tick < 7; ++tick) {
    a.core->heartbeat(tick * 100);
    sent.push_back(!a.out.broadcasts.empty());
    if (!a.out.broadcasts.empty()) {
      EXPECT_EQ(a.out.broadcasts[0][3], Term::atom("empty"));
    }
    a.out.broadcasts.clear();
  }
  // The first tick speaks at once, then every third tick (two silent ones).
  EXPECT_EQ(sent, (std::vector<bool>{true, false, false, true, false, false, true}));
}

TEST(TrackerShardCoreTest, PresencesReplicateThroughHeartbeats) {
  Peer a("a@h", 1), b("b@h", 2);
  a.core->track(pid("a@h", 10), kTopic, bin("alice"), meta("Alice"));
  a.core->heartbeat(0);
  deliver({&a, &b}, 0);

  EXPECT_EQ(keys(b.core->list(kTopic)), std::vector<Term>{bin("alice")});
  ASSERT_EQ(b.out.events.size(), 1u);
  EXPECT_EQ(b.out.events[0].first, ReplicaEvent::kUp);
  ASSERT_NE(b.core->replicas().fetch_by_ref(a.core->replica()), nullptr);
  bool joined = false;
  for (const auto& diff : b.out.diffs) joined = joined || diff.contains(kTopic);
  EXPECT_TRUE(joined);

  a.core->untrack(pid("a@h", 10), kTopic, bin("alice"));
  a.core->heartbeat(100);
  deliver({&a, &b}, 100);
  EXPECT_TRUE(b.core->list(kTopic).empty());
}

TEST(TrackerShardCoreTest, UpdatesReplicateWithPhxRefPrev) {
  Peer a("a@h", 1), b("b@h", 2);
  Term p = pid("a@h", 10);
  Term ref = a.core->track(p, kTopic, bin("alice"), meta("Alice")).value;
  a.core->heartbeat(0);
  deliver({&a, &b}, 0);
  a.core->update(p, kTopic, bin("alice"), [](const Term&) { return meta("Alice 2"); });
  a.core->heartbeat(100);
  deliver({&a, &b}, 100);

  auto list = b.core->list(kTopic);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(*list[0].meta.find("name"), bin("Alice 2"));
  EXPECT_EQ(*list[0].meta.find("phx_ref_prev"), ref);
}

TEST(TrackerShardCoreTest, LateJoinerGetsStateThroughTransfer) {
  Peer a("a@h", 1);
  a.core->track(pid("a@h", 10), kTopic, bin("alice"), meta("Alice"));
  a.core->heartbeat(0);  // the delta goes to nobody
  a.out.broadcasts.clear();

  Peer b("b@h", 2);
  // b's first tick announces it; a learns of b and a's next heartbeat
  // (empty: nothing changed) lets b learn of a and of a's clock.
  b.core->heartbeat(0);
  deliver({&a, &b}, 0);
  // a's next heartbeat is an empty one after max_silent_periods; b asks
  // for a transfer on its next clock sample after hearing it.
  for (int tick = 1; tick <= 6; ++tick) {
    a.core->heartbeat(tick * 100);
    b.core->heartbeat(tick * 100);
    deliver({&a, &b}, tick * 100);
  }
  EXPECT_EQ(keys(b.core->list(kTopic)), std::vector<Term>{bin("alice")});
  bool asked = false;
  for (const auto& log : a.out.logs) asked = asked || log.find("transfer_req from") != log.npos;
  EXPECT_TRUE(asked);
}

TEST(TrackerShardCoreTest, SilentReplicaGoesDownThenComesBack) {
  Peer a("a@h", 1), b("b@h", 2);
  a.core->track(pid("a@h", 10), kTopic, bin("alice"), meta("Alice"));
  a.core->heartbeat(0);
  deliver({&a, &b}, 0);
  b.out.diffs.clear();

  b.core->heartbeat(1001);  // down_period 1000
  EXPECT_TRUE(b.core->list(kTopic).empty());
  EXPECT_EQ(b.core->replicas().entries().at(Atom("a@h")).status, Replica::Status::kDown);
  ASSERT_FALSE(b.out.diffs.empty());
  EXPECT_EQ(b.out.diffs.back().at(kTopic).leaves.size(), 1u);

  b.out.broadcasts.clear();
  for (int tick = 0; tick < 3; ++tick) a.core->heartbeat(1100 + tick);  // an empty one
  deliver({&a, &b}, 1200);
  EXPECT_EQ(keys(b.core->list(kTopic)), std::vector<Term>{bin("alice")});
  EXPECT_EQ(b.core->replicas().entries().at(Atom("a@h")).status, Replica::Status::kUp);
}

TEST(TrackerShardCoreTest, SilentReplicaIsRemovedAfterPermdownPeriod) {
  Peer a("a@h", 1), b("b@h", 2);
  a.core->track(pid("a@h", 10), kTopic, bin("alice"), meta("Alice"));
  a.core->heartbeat(0);
  deliver({&a, &b}, 0);

  b.core->heartbeat(5001);  // permdown_period 5000, skipping down
  EXPECT_TRUE(b.core->replicas().empty());
  EXPECT_EQ(b.core->state().size(), 0u);
  std::vector<ReplicaEvent> events;
  for (const auto& [event, ref] : b.out.events) events.push_back(event);
  EXPECT_EQ(events, (std::vector<ReplicaEvent>{ReplicaEvent::kUp, ReplicaEvent::kDown,
                                               ReplicaEvent::kPermdown}));
}

TEST(TrackerShardCoreTest, NewVsnPermdownsTheOldReplica) {
  Peer b("b@h", 2);
  {
    Peer a("a@h", 1);
    a.core->track(pid("a@h", 10), kTopic, bin("old"), meta("old"));
    a.core->heartbeat(0);
    deliver({&a, &b}, 0);
  }
  EXPECT_EQ(keys(b.core->list(kTopic)), std::vector<Term>{bin("old")});

  Peer restarted("a@h", 3);
  restarted.core->track(pid("a@h", 20), kTopic, bin("new"), meta("new"));
  restarted.core->heartbeat(100);
  deliver({&restarted, &b}, 100);
  EXPECT_EQ(keys(b.core->list(kTopic)), std::vector<Term>{bin("new")});
  EXPECT_EQ(b.core->replicas().entries().at(Atom("a@h")).ref.vsn, 3);
  EXPECT_EQ(b.core->state().size(), 1u);
}

TEST(TrackerShardCoreTest, GracefulPermdownDropsTheReplicaAtOnce) {
  Peer a("a@h", 1), b("b@h", 2);
  a.core->track(pid("a@h", 10), kTopic, bin("alice"), meta("Alice"));
  a.core->heartbeat(0);
  deliver({&a, &b}, 0);
  b.out.diffs.clear();

  a.core->broadcast_graceful_permdown();
  deliver({&a, &b}, 1);
  EXPECT_TRUE(b.core->list(kTopic).empty());
  EXPECT_TRUE(b.core->replicas().empty());
  EXPECT_EQ(b.core->state().size(), 0u);
  ASSERT_EQ(b.out.diffs.size(), 1u);
  EXPECT_EQ(b.out.diffs[0].at(kTopic).leaves.size(), 1u);
}

TEST(TrackerShardCoreTest, MalformedDeltaIsDroppedWithoutTouchingState) {
  Peer b("b@h", 2);
  ReplicaRef a{Atom("a@h"), 1};
  Term clocks = encode_replica_clock({a, {{a, 1}}});
  Term bad_delta =
      Term::map({{Term::atom("__struct__"), Term::atom("Elixir.Phoenix.Tracker.State")}});
  Term message = Term::tuple(
      {Term::atom("pub"), Term::atom("heartbeat"), encode_replica_ref(a), bad_delta, clocks});
  EXPECT_TRUE(b.core->handle_message(message, 0));
  EXPECT_TRUE(b.core->replicas().empty());  // not even marked up
  EXPECT_TRUE(b.out.events.empty());
  ASSERT_EQ(b.out.logs.size(), 1u);
  EXPECT_NE(b.out.logs[0].find("replica {a@h,1}"), std::string::npos) << b.out.logs[0];
}

TEST(TrackerShardCoreTest, MalformedReplicaRefIsDroppedAndLoggedWithTheNode) {
  Peer b("b@h", 2);
  Term message = Term::tuple({Term::atom("pub"), Term::atom("graceful_permdown"),
                              Term::tuple({pid("x@h", 5), Term::atom("nope")})});
  EXPECT_TRUE(b.core->handle_message(message, 0));
  ASSERT_EQ(b.out.logs.size(), 1u);
  EXPECT_NE(b.out.logs[0].find("origin@h"), std::string::npos) << b.out.logs[0];
}

TEST(TrackerShardCoreTest, MessageClaimingThisNodeIsDropped) {
  Peer b("b@h", 2);
  ReplicaRef impostor{Atom("b@h"), 9};
  b.core->handle_message(
      Term::tuple({Term::atom("pub"), Term::atom("heartbeat"), encode_replica_ref(impostor),
                   Term::atom("empty"), encode_replica_clock({impostor, {{impostor, 0}}})}),
      0);
  EXPECT_TRUE(b.core->replicas().empty());
  EXPECT_EQ(b.out.logs.size(), 1u);
}

TEST(TrackerShardCoreTest, OtherMessagesAreNotTrackerMessages) {
  Peer b("b@h", 2);
  EXPECT_FALSE(b.core->handle_message(Term::atom("hello"), 0));
  EXPECT_FALSE(b.core->handle_message(Term::tuple({Term::atom("join"), bin("x"), bin("y")}), 0));
  EXPECT_TRUE(b.out.logs.empty());
}

TEST(TrackerShardCoreTest, TransferAckFromWholeStateMerges) {
  Peer a("a@h", 1, [] {
    TrackerOptions options = small_options();
    options.max_delta_sizes = {1};  // every generation overflows: whole states
    return options;
  }());
  // Two heartbeats: the only generation left covers the second change, so
  // it cannot serve a replica that has seen nothing.
  a.core->track(pid("a@h", 10), kTopic, bin("alice"), meta("Alice"));
  a.core->heartbeat(0);
  a.core->track(pid("a@h", 11), kTopic, bin("bob"), meta("Bob"));
  a.core->heartbeat(0);
  a.out.broadcasts.clear();

  Peer b("b@h", 2);
  b.core->heartbeat(0);
  deliver({&a, &b}, 0);
  // a's next heartbeat is an empty one after max_silent_periods; b asks
  // for a transfer on its next clock sample after hearing it.
  for (int tick = 1; tick <= 6; ++tick) {
    a.core->heartbeat(tick * 100);
    b.core->heartbeat(tick * 100);
    deliver({&a, &b}, tick * 100);
  }
  EXPECT_EQ(keys(b.core->list(kTopic)), (std::vector<Term>{bin("alice"), bin("bob")}));
  bool whole = false;
  for (const auto& log : a.out.logs) whole = whole || log.find("whole state") != log.npos;
  EXPECT_TRUE(whole);
}

Term read_golden(const char* name) {
  std::ifstream file(std::string(PRESENCE_GOLDEN_DIR) + "/phoenix_pubsub-2.1.3/" + name,
                     std::ios::binary);
  std::stringstream bytes;
  bytes << file.rdbuf();
  auto decoded = decode_whole(bytes.str());
  EXPECT_TRUE(decoded.ok()) << name;
  return decoded.ok() ? decoded.term() : Term();
}

TEST(TrackerShardCoreTest, PhoenixHeartbeatDeltaIsMerged) {
  Term envelope = read_golden("04_heartbeat_delta_3_joins.etf");
  ASSERT_TRUE(envelope.is_tuple(4));
  Peer b("b@vm", 2);
  ASSERT_TRUE(b.core->handle_message(envelope[2], 0));
  EXPECT_TRUE(b.out.logs.size() <= 1u);  // the replica-up event line only
  EXPECT_EQ(keys(b.core->list(bin("room:1"))), (std::vector<Term>{bin("alice"), bin("bob")}));
  EXPECT_EQ(keys(b.core->list(bin("room:2"))), std::vector<Term>{Term::integer(42)});
}

TEST(TrackerShardCoreTest, PhoenixGracefulPermdownIsHonoured) {
  Peer b("b@vm", 2);
  ASSERT_TRUE(b.core->handle_message(read_golden("04_heartbeat_delta_3_joins.etf")[2], 0));
  ASSERT_TRUE(b.core->handle_message(read_golden("10_graceful_permdown.etf")[2], 1));
  EXPECT_TRUE(b.core->list(bin("room:1")).empty());
  EXPECT_TRUE(b.core->replicas().empty());
}

TEST(TrackerShardCoreTest, PhoenixWholeStateTransferIsMerged) {
  Term ack = read_golden("08b_transfer_ack_normal_mode.etf")[2];
  auto sender = decode_replica_ref(ack[3]);
  ASSERT_TRUE(sender.ok());
  Peer r("r@vm", 123456789);
  // The sender is known from a heartbeat first, as in a real exchange.
  r.core->handle_message(
      Term::tuple({Term::atom("pub"), Term::atom("heartbeat"), ack[3], Term::atom("empty"),
                   encode_replica_clock({sender.value(), {{sender.value(), 6}}})}),
      0);
  ASSERT_TRUE(r.core->handle_message(ack, 1));
  EXPECT_EQ(keys(r.core->list(bin("room:1"))), std::vector<Term>{bin("alice")});
  EXPECT_EQ(keys(r.core->list(bin("room:2"))), std::vector<Term>{Term::integer(42)});
}

// Phoenix answers a transfer_req by extracting for the asker's node name,
// which matches no replica ref: the asker gets its own presences back too.
// An answer without them would still carry their tags, and a delta
// generation the asker builds from it would tell a third replica it had
// seen presences it never received.
TEST(TrackerShardCoreTest, TransferAnswerKeepsTheAskersOwnPresencesAsPhoenixDoes) {
  Peer a("a@h", 1);
  Peer b("b@h", 2);
  a.core->heartbeat(0);
  b.core->heartbeat(0);
  deliver({&a, &b}, 0);
  b.core->track(pid("b@h", 20), kTopic, bin("bob"), meta("Bob"));
  b.core->heartbeat(100);
  deliver({&a, &b}, 100);
  ASSERT_EQ(keys(a.core->list(kTopic)), std::vector<Term>{bin("bob")});

  a.out.directs.clear();
  const ReplicaRef asker = b.core->replica();
  a.core->handle_message(
      Term::tuple({Term::atom("pub"), Term::atom("transfer_req"), b.out.make_ref(),
                   encode_replica_ref(asker), encode_replica_clock(b.core->state().clocks())}),
      200);

  ASSERT_EQ(a.out.directs.size(), 1u);
  const Term& ack = a.out.directs[0].second;
  ASSERT_TRUE(ack.is_tuple(5)) << ack.to_string();
  auto extracted = decode_extracted(ack[4]);
  ASSERT_TRUE(extracted.ok());
  std::size_t askers_values = 0;
  std::visit(
      [&](const auto& answer) {
        for (const auto& [tag, value] : answer.values) askers_values += tag.replica == asker;
      },
      extracted.value());
  EXPECT_EQ(askers_values, 1u);
}

}  // namespace
}  // namespace presence
