// The CRDT against what a real phoenix_pubsub 2.1.3 node sent and listed
// (tests/golden/phoenix_pubsub-2.1.3): its heartbeats and transfer_acks,
// decoded and merged in order, must give the presences that node had, and a
// delta made here, merged into a state rebuilt from that node's transfer,
// must list exactly what the node listed after receiving it (golden 09).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "crdt/delta_generation.h"
#include "crdt/state.h"
#include "crdt/wire.h"
#include "term/codec.h"
#include "term/term.h"

namespace presence {
namespace {

const ReplicaRef kPhoenix{Atom("a@vm"), 1796314556334940};
const ReplicaRef kPhoenixOfRun08b{Atom("a@vm"), 1796314565595741};
const ReplicaRef kPeer{Atom("r@vm"), 123456789};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Term golden(const char* name) {
  const auto dir = std::filesystem::path(PRESENCE_GOLDEN_DIR) / "phoenix_pubsub-2.1.3";
  const std::string bytes = read_file(dir / name);
  EXPECT_FALSE(bytes.empty()) << name;
  DecodeResult decoded = decode_whole(bytes);
  EXPECT_TRUE(decoded.ok()) << name;
  return decoded.term();
}

// {:forward_to_local, topic, {:pub, kind, ...}, Phoenix.PubSub} => the pub
// tuple.
Term pub_of(const char* name) {
  const Term message = golden(name);
  EXPECT_TRUE(message.is_tuple(4)) << name;
  return message[2];
}

Delta heartbeat_delta(const char* name) {
  const Term pub = pub_of(name);
  const WireResult<Delta> delta = decode_delta(pub[3]);
  EXPECT_TRUE(delta.ok()) << name << ": " << delta.error().message();
  return delta.value();
}

Extracted transfer_of(const char* name) {
  const Term pub = pub_of(name);
  EXPECT_EQ(pub[1], Term::atom("transfer_ack"));
  const WireResult<Extracted> extracted = decode_extracted(pub[4]);
  EXPECT_TRUE(extracted.ok()) << name << ": " << extracted.error().message();
  return extracted.value();
}

Term bin(const char* text) {
  return Term::binary(text);
}
Term atom(const char* text) {
  return Term::atom(text);
}

// What Phoenix.Tracker.list/2 returns: [{key, meta}].
Term listed(const State& state, const Term& topic) {
  std::vector<Term> entries;
  for (const KeyMeta& entry : state.get_by_topic(topic)) {
    entries.push_back(Term::tuple({entry.key, entry.meta}));
  }
  return Term::list(std::move(entries));
}

Term alice_meta_v1() {
  return Term::map({{atom("device"), bin("web")},
                    {atom("n"), Term::integer(1)},
                    {atom("phx_ref"), bin("GO3Kku7Nisbh3gCR")}});
}

Term alice_meta_v2(const char* ref, const char* prev) {
  return Term::map({{atom("device"), bin("web")},
                    {atom("n"), Term::integer(2)},
                    {atom("phx_ref"), bin(ref)},
                    {atom("phx_ref_prev"), bin(prev)}});
}

Term bob_meta() {
  return Term::map({{atom("device"), bin("ios")}, {atom("phx_ref"), bin("GO3Kku9RCd_h3gCh")}});
}

Term answer_meta(const char* ref) {
  return Term::map(
      {{atom("phx_ref"), bin(ref)},
       {bin("string_key"), Term::list({Term::integer(1), Term::floating(2.5), atom("atom"),
                                       Term::tuple({atom("t"), bin("x")})})}});
}

Term list_of(std::vector<std::pair<Term, Term>> entries) {
  std::vector<Term> tuples;
  for (auto& [key, meta] : entries) tuples.push_back(Term::tuple({key, meta}));
  return Term::list(std::move(tuples));
}

// The peer's view: a replica that saw Phoenix's first heartbeat.
State peer_state() {
  State peer(kPeer);
  peer.replica_up(kPhoenix);
  return peer;
}

TEST(CrdtGolden, EmptyHeartbeatCarriesPhoenixsInitialClock) {
  const Term pub = pub_of("03_heartbeat_empty.etf");
  EXPECT_EQ(pub[3], atom("empty"));
  const WireResult<ReplicaClock> clock = decode_replica_clock(pub[4]);
  ASSERT_TRUE(clock.ok());
  EXPECT_EQ(clock.value(), (ReplicaClock{kPhoenix, {{kPhoenix, 0}}}));
}

TEST(CrdtGolden, PhoenixHeartbeatDeltasMergeIntoWhatPhoenixHad) {
  State peer = peer_state();

  MergeResult merged = peer.merge(heartbeat_delta("04_heartbeat_delta_3_joins.etf"));
  EXPECT_EQ(merged.joins.size(), 3u);
  EXPECT_TRUE(merged.leaves.empty());
  EXPECT_EQ(listed(peer, bin("room:1")),
            list_of({{bin("alice"), alice_meta_v1()}, {bin("bob"), bob_meta()}}));
  EXPECT_EQ(listed(peer, bin("room:2")),
            list_of({{Term::integer(42), answer_meta("GO3Kku9T-Z7h3gCx")}}));
  EXPECT_EQ(peer.context().at(kPhoenix), 3);

  merged = peer.merge(heartbeat_delta("05_heartbeat_delta_update.etf"));
  ASSERT_EQ(merged.joins.size(), 1u);
  ASSERT_EQ(merged.leaves.size(), 1u);
  EXPECT_EQ(merged.leaves[0].meta, alice_meta_v1());
  const Term alice_v2 = alice_meta_v2("GO3KkwDF7unh3gDB", "GO3Kku7Nisbh3gCR");
  EXPECT_EQ(merged.joins[0].meta, alice_v2);
  EXPECT_EQ(listed(peer, bin("room:1")),
            list_of({{bin("alice"), alice_v2}, {bin("bob"), bob_meta()}}));

  merged = peer.merge(heartbeat_delta("06_heartbeat_delta_leave.etf"));
  EXPECT_TRUE(merged.joins.empty());
  ASSERT_EQ(merged.leaves.size(), 1u);
  EXPECT_EQ(merged.leaves[0].key, bin("bob"));
  EXPECT_EQ(listed(peer, bin("room:1")), list_of({{bin("alice"), alice_v2}}));
  EXPECT_EQ(listed(peer, bin("room:2")),
            list_of({{Term::integer(42), answer_meta("GO3Kku9T-Z7h3gCx")}}));

  // Phoenix's next heartbeat (07) carries the context both sides now share.
  const WireResult<ReplicaClock> phoenix_clock =
      decode_replica_clock(pub_of("07_heartbeat_after_leave.etf")[4]);
  ASSERT_TRUE(phoenix_clock.ok());
  EXPECT_EQ(peer.clocks().context, phoenix_clock.value().context);
  for (const auto& [replica, cloud] : peer.clouds()) EXPECT_TRUE(cloud.empty());

  // The delta-generation transfer (08) holds nothing new for the peer.
  merged = peer.merge(std::get<Delta>(transfer_of("08_transfer_ack_full_state.etf")));
  EXPECT_TRUE(merged.joins.empty() && merged.leaves.empty());
}

TEST(CrdtGolden, DeltaGenerationTransferAloneRebuildsPhoenixsPresences) {
  const Extracted transfer = transfer_of("08_transfer_ack_full_state.etf");
  ASSERT_TRUE(std::holds_alternative<Delta>(transfer));
  const Delta& delta = std::get<Delta>(transfer);
  EXPECT_EQ(delta.range, (Range{{{kPhoenix, 0}}, {{kPhoenix, 6}}}));

  State fresh = peer_state();
  const MergeResult merged = fresh.merge(delta);
  EXPECT_EQ(merged.joins.size(), 2u);
  EXPECT_EQ(listed(fresh, bin("room:1")),
            list_of({{bin("alice"), alice_meta_v2("GO3KkwDF7unh3gDB", "GO3Kku7Nisbh3gCR")}}));
  EXPECT_EQ(listed(fresh, bin("room:2")),
            list_of({{Term::integer(42), answer_meta("GO3Kku9T-Z7h3gCx")}}));
  EXPECT_EQ(fresh.context().at(kPhoenix), 6);
}

TEST(CrdtGolden, WholeStateTransferRebuildsPhoenixsPresences) {
  const Extracted transfer = transfer_of("08b_transfer_ack_normal_mode.etf");
  ASSERT_TRUE(std::holds_alternative<WholeState>(transfer));
  const WholeState& whole = std::get<WholeState>(transfer);
  EXPECT_EQ(whole.context, (Context{{kPhoenixOfRun08b, 6}, {kPeer, 0}}));
  EXPECT_EQ(whole.clouds, (Clouds{{kPhoenixOfRun08b, Cloud{}}}));

  State fresh(kPeer);
  fresh.replica_up(kPhoenixOfRun08b);
  const MergeResult merged = fresh.merge(whole);
  EXPECT_EQ(merged.joins.size(), 2u);
  EXPECT_EQ(listed(fresh, bin("room:1")),
            list_of({{bin("alice"), alice_meta_v2("GO3KlSkv05bh3gBx", "GO3KlRcturrh3gCC")}}));
  EXPECT_EQ(listed(fresh, bin("room:2")),
            list_of({{Term::integer(42), answer_meta("GO3KlRehtDbh3gBh")}}));
  EXPECT_EQ(fresh.clocks().context, whole.context);
}

TEST(CrdtGolden, PeerDeltaMergedOnPhoenixsSideListsWhatPhoenixListed) {
  // Phoenix's side: its own replica rebuilt from its transfer (08), having
  // marked the peer up on the peer's first heartbeat.
  State phoenix(kPhoenix);
  phoenix.merge(std::get<Delta>(transfer_of("08_transfer_ack_full_state.etf")));
  phoenix.replica_up(kPeer);
  const WireResult<ReplicaClock> phoenix_clock =
      decode_replica_clock(pub_of("07_heartbeat_after_leave.etf")[4]);
  ASSERT_TRUE(phoenix_clock.ok());
  EXPECT_EQ(phoenix.clocks(), phoenix_clock.value());

  // The peer joins carol and sends its delta, through the wire format.
  State peer = peer_state();
  peer.merge(heartbeat_delta("04_heartbeat_delta_3_joins.etf"));
  const Term carol_pid = Term::pid({Atom("r@vm"), 200, 0, 1});
  const Term carol_meta =
      Term::map({{atom("device"), bin("cpp")}, {atom("phx_ref"), bin("cpp-ref-1")}});
  ASSERT_TRUE(peer.join(carol_pid, bin("room:1"), bin("carol"), carol_meta));
  const DecodeResult sent = decode_whole(encode(encode_delta(peer.delta())));
  ASSERT_TRUE(sent.ok());
  const WireResult<Delta> received = decode_delta(sent.term());
  ASSERT_TRUE(received.ok()) << received.error().message();

  const MergeResult merged = phoenix.merge(received.value());
  ASSERT_EQ(merged.joins.size(), 1u);
  EXPECT_EQ(merged.joins[0].key, bin("carol"));
  EXPECT_TRUE(merged.leaves.empty());
  EXPECT_EQ(listed(phoenix, bin("room:1")), golden("09_list_after_cpp_delta.etf"));
}

TEST(CrdtGolden, PhoenixsTransferRequestIsAnsweredFromTheGenerationsAsPhoenixDid) {
  // Replaying Phoenix's own deltas into generations and extracting for the
  // peer's context (which knew Phoenix at clock 0) gives the 08 answer.
  State phoenix(kPhoenix);
  phoenix.merge(std::get<Delta>(transfer_of("08_transfer_ack_full_state.etf")));
  phoenix.replica_up(kPeer);
  std::vector<Delta> generations;
  for (const char* name : {"04_heartbeat_delta_3_joins.etf", "05_heartbeat_delta_update.etf",
                           "06_heartbeat_delta_leave.etf"}) {
    generations = push(phoenix, generations, heartbeat_delta(name), kDefaultMaxDeltaSizes);
  }
  const Extracted answer = extract(phoenix, generations, kPeer, {{kPeer, 0}, {kPhoenix, 0}});
  ASSERT_TRUE(std::holds_alternative<Delta>(answer));
  EXPECT_EQ(encode_extracted(answer), pub_of("08_transfer_ack_full_state.etf")[4]);
}

}  // namespace
}  // namespace presence
