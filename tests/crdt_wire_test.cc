#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "crdt/state.h"
#include "crdt/wire.h"
#include "term/codec.h"
#include "term/term.h"

namespace presence {
namespace {

ReplicaRef ref(const char* name, std::int64_t vsn = 1) {
  return {Atom(name), vsn};
}
Term pid(std::uint32_t n) {
  return Term::pid({Atom("t@vm"), n, 0, 1});
}
Term atom(const char* text) {
  return Term::atom(text);
}
Term bin(const char* text) {
  return Term::binary(text);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Term golden(const char* name) {
  const auto dir = std::filesystem::path(PRESENCE_GOLDEN_DIR) / "phoenix_pubsub-2.1.3";
  DecodeResult decoded = decode_whole(read_file(dir / name));
  EXPECT_TRUE(decoded.ok()) << name;
  return decoded.term();
}

// A delta with a join, an update and a leave from two replicas.
Delta sample_delta() {
  State a(ref("a@vm", 1796314556334940));
  a.replica_up(ref("b@vm", 7));
  a.join(pid(1), bin("room:1"), bin("alice"),
         Term::map(
             {{atom("phx_ref"), bin("r1")}, {bin("string_key"), Term::list({Term::integer(1)})}}));
  a.join(pid(2), bin("room:1"), Term::integer(42), Term::map({}));
  a.leave_join(pid(2), bin("room:1"), Term::integer(42),
               Term::map({{atom("n"), Term::integer(2)}}));
  a.join(pid(3), bin("room:2"), bin("carol"), Term::map({}));
  a.leave(pid(3));
  return a.delta();
}

WholeState sample_whole_state() {
  State a(ref("a@vm", 1796314556334940));
  a.replica_up(ref("b@vm", 7));
  a.replica_down(ref("b@vm", 7));
  a.join(pid(1), bin("room:1"), bin("alice"), Term::map({{atom("phx_ref"), bin("r1")}}));
  a.join(pid(2), bin("room:1"), bin("bob"), Term::map({}));
  return a.extract(ref("b@vm", 7), a.context());
}

Term through_bytes(const Term& term) {
  DecodeResult decoded = decode_whole(encode(term));
  EXPECT_TRUE(decoded.ok());
  return decoded.term();
}

Term without(const Term& map, const Term& key) {
  std::vector<std::pair<Term, Term>> entries;
  for (const auto& entry : map.map_entries()) {
    if (entry.first != key) entries.push_back(entry);
  }
  return Term::map(std::move(entries));
}

Term field(const Term& map, const char* name) {
  return *map.find(Term::atom(name));
}

Term with(const Term& map, const char* name, Term value) {
  return map.map_put(Term::atom(name), std::move(value));
}

TEST(CrdtWire, ReplicaRefsTagsAndContextsRoundTrip) {
  const ReplicaRef r = ref("a@vm", 1796314556334940);
  EXPECT_EQ(encode_replica_ref(r), Term::tuple({atom("a@vm"), Term::integer(1796314556334940)}));
  EXPECT_EQ(decode_replica_ref(through_bytes(encode_replica_ref(r))).value(), r);
  const Tag tag{r, 3};
  EXPECT_EQ(decode_tag(through_bytes(encode_tag(tag))).value(), tag);
  const Context context{{r, 6}, {ref("r@vm", 123456789), 0}};
  EXPECT_EQ(decode_context(through_bytes(encode_context(context))).value(), context);
  const ReplicaClock clock{r, context};
  EXPECT_EQ(decode_replica_clock(through_bytes(encode_replica_clock(clock))).value(), clock);
}

TEST(CrdtWire, MalformedRefsTagsAndContextsAreRejected) {
  EXPECT_EQ(decode_replica_ref(atom("a@vm")).error().code, WireErrc::kBadReplica);
  EXPECT_EQ(decode_replica_ref(Term::tuple({bin("a@vm"), Term::integer(1)})).error().code,
            WireErrc::kBadReplica);
  EXPECT_EQ(decode_tag(Term::tuple({encode_replica_ref(ref("a")), Term::integer(-1)})).error().code,
            WireErrc::kBadTag);
  EXPECT_EQ(decode_context(Term::list({})).error().code, WireErrc::kBadContext);
  EXPECT_EQ(decode_context(Term::map({{encode_replica_ref(ref("a")), atom("x")}})).error().code,
            WireErrc::kBadContext);
  EXPECT_EQ(decode_replica_clock(Term::tuple({encode_replica_ref(ref("a"))})).error().code,
            WireErrc::kBadContext);
}

TEST(CrdtWire, DeltaIsTheStateStructInDeltaMode) {
  const Term term = encode_delta(sample_delta());
  EXPECT_EQ(term.map_entries().size(), 10u);
  EXPECT_EQ(field(term, "__struct__"), atom("Elixir.Phoenix.Tracker.State"));
  EXPECT_EQ(field(term, "mode"), atom("delta"));
  EXPECT_EQ(field(term, "pids"), atom("nil"));
  EXPECT_EQ(field(term, "delta"), atom("unset"));
  EXPECT_EQ(field(term, "context"), Term::map({}));
  EXPECT_EQ(field(term, "replicas"), Term::map({}));
  const Term cloud = *field(term, "clouds").find(encode_replica_ref(ref("a@vm", 1796314556334940)));
  EXPECT_EQ(field(cloud, "__struct__"), atom("Elixir.MapSet"));
  EXPECT_EQ(field(cloud, "version"), Term::integer(2));
  EXPECT_EQ(*field(cloud, "map").find(encode_tag({ref("a@vm", 1796314556334940), 2})), Term());
}

TEST(CrdtWire, DeltaRoundTripsThroughBytes) {
  const Delta delta = sample_delta();
  const WireResult<Delta> decoded = decode_delta(through_bytes(encode_delta(delta)));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message();
  EXPECT_EQ(decoded.value(), delta);
}

TEST(CrdtWire, WholeStateIsAPairOfTheNormalStructAndItsValues) {
  const WholeState whole = sample_whole_state();
  const Term term = encode_whole_state(whole);
  ASSERT_TRUE(term.is_tuple(2));
  EXPECT_EQ(field(term[0], "mode"), atom("normal"));
  EXPECT_EQ(field(term[0], "values"), atom("nil"));
  EXPECT_EQ(field(term[0], "range"), Term::tuple({Term::map({}), Term::map({})}));
  EXPECT_EQ(*field(term[0], "replicas").find(encode_replica_ref(ref("b@vm", 7))), atom("down"));
  EXPECT_EQ(term[1].map_entries().size(), 2u);

  const WireResult<WholeState> decoded = decode_whole_state(through_bytes(term));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message();
  EXPECT_EQ(decoded.value(), whole);
}

TEST(CrdtWire, ExtractedDecodesEitherShape) {
  const WireResult<Extracted> delta = decode_extracted(encode_extracted(sample_delta()));
  ASSERT_TRUE(delta.ok());
  EXPECT_EQ(std::get<Delta>(delta.value()), sample_delta());
  const WireResult<Extracted> whole = decode_extracted(encode_extracted(sample_whole_state()));
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(std::get<WholeState>(whole.value()), sample_whole_state());
}

TEST(CrdtWire, PhoenixsDeltaAndWholeStateReencodeToTheSameBytes) {
  // Golden 04 is a heartbeat with a delta, 08b a transfer_ack with a whole
  // state; re-encoding what we decoded must give back Phoenix's very bytes.
  for (const char* name : {"04_heartbeat_delta_3_joins.etf", "05_heartbeat_delta_update.etf",
                           "06_heartbeat_delta_leave.etf", "08_transfer_ack_full_state.etf",
                           "08b_transfer_ack_normal_mode.etf"}) {
    const Term message = golden(name);
    const Term& pub = message[2];
    const std::size_t at = pub[1] == atom("heartbeat") ? 3 : 4;
    const WireResult<Extracted> decoded = decode_extracted(pub[at]);
    ASSERT_TRUE(decoded.ok()) << name << ": " << decoded.error().message();
    const Term reencoded = encode_extracted(decoded.value());
    EXPECT_EQ(reencoded, pub[at]) << name;

    std::vector<Term> elements(pub.elements().begin(), pub.elements().end());
    elements[at] = reencoded;
    const Term rebuilt = Term::tuple({message[0], message[1], Term::tuple(elements), message[3]});
    const auto dir = std::filesystem::path(PRESENCE_GOLDEN_DIR) / "phoenix_pubsub-2.1.3";
    EXPECT_EQ(encode(rebuilt), read_file(dir / name)) << name;
  }
}

TEST(CrdtWire, HeartbeatClocksDecode) {
  const Term message = golden("07_heartbeat_after_leave.etf");
  const WireResult<ReplicaClock> clock = decode_replica_clock(message[2][4]);
  ASSERT_TRUE(clock.ok());
  EXPECT_EQ(clock.value().replica, ref("a@vm", 1796314556334940));
  EXPECT_EQ(clock.value().context,
            (Context{{ref("a@vm", 1796314556334940), 6}, {ref("r@vm", 123456789), 0}}));
}

struct Malformed {
  const char* what;
  Term term;
  WireErrc code;
};

std::vector<Malformed> malformed_deltas() {
  const Term good = encode_delta(sample_delta());
  const Term a_ref = encode_replica_ref(ref("a@vm", 1796314556334940));
  const Term cloud = *field(good, "clouds").find(a_ref);
  const Term some_tag = field(good, "values").map_entries()[0].first;
  auto with_cloud = [&](Term c) {
    return with(good, "clouds", Term::map({{a_ref, std::move(c)}}));
  };
  auto with_value = [&](Term v) {
    return with(good, "values", Term::map({{some_tag, std::move(v)}}));
  };
  const Term meta = Term::map({});

  std::vector<Malformed> cases = {
      {"not a map", Term::integer(1), WireErrc::kNotAStruct},
      {"no __struct__", without(good, atom("__struct__")), WireErrc::kNotAStruct},
      {"other struct", with(good, "__struct__", atom("Elixir.Phoenix.Tracker.Other")),
       WireErrc::kWrongStruct},
      {"unknown field", with(good, "extra", Term()), WireErrc::kUnknownField},
      {"replica an atom", with(good, "replica", atom("a@vm")), WireErrc::kBadReplica},
      {"replica vsn a binary", with(good, "replica", Term::tuple({atom("a@vm"), bin("1")})),
       WireErrc::kBadReplica},
      {"context a list", with(good, "context", Term::list({})), WireErrc::kBadContext},
      {"context clock negative", with(good, "context", Term::map({{a_ref, Term::integer(-1)}})),
       WireErrc::kBadContext},
      {"clouds a list", with(good, "clouds", Term::list({})), WireErrc::kBadClouds},
      {"cloud key not a ref", with(good, "clouds", Term::map({{atom("x"), cloud}})),
       WireErrc::kBadClouds},
      {"cloud not a MapSet", with_cloud(with(cloud, "__struct__", atom("Elixir.Map"))),
       WireErrc::kBadClouds},
      {"cloud version 1", with_cloud(with(cloud, "version", Term::integer(1))),
       WireErrc::kBadClouds},
      {"cloud without version", with_cloud(without(cloud, atom("version"))), WireErrc::kBadClouds},
      {"cloud map a list", with_cloud(with(cloud, "map", Term::list({}))), WireErrc::kBadClouds},
      {"cloud tag of another replica",
       with_cloud(with(cloud, "map", Term::map({{encode_tag({ref("b@vm"), 1}), Term()}}))),
       WireErrc::kBadClouds},
      {"cloud entry not []",
       with_cloud(
           with(cloud, "map",
                Term::map({{encode_tag({ref("a@vm", 1796314556334940), 1}), atom("true")}}))),
       WireErrc::kBadClouds},
      {"values a list", with(good, "values", Term::list({})), WireErrc::kBadValues},
      {"values nil", with(good, "values", atom("nil")), WireErrc::kBadValues},
      {"value key not a tag",
       with(good, "values",
            Term::map({{atom("x"), Term::tuple({pid(1), bin("t"), bin("k"), meta})}})),
       WireErrc::kBadTag},
      {"value of three", with_value(Term::tuple({pid(1), bin("t"), bin("k")})),
       WireErrc::kBadValues},
      {"value meta not a map",
       with_value(Term::tuple({pid(1), bin("t"), bin("k"), Term::list({})})), WireErrc::kBadValues},
      {"value pid not a pid", with_value(Term::tuple({atom("p"), bin("t"), bin("k"), meta})),
       WireErrc::kBadValues},
      {"pids not nil", with(good, "pids", Term::list({})), WireErrc::kBadField},
      {"mode normal", with(good, "mode", atom("normal")), WireErrc::kBadMode},
      {"mode a binary", with(good, "mode", bin("delta")), WireErrc::kBadMode},
      {"delta not unset", with(good, "delta", atom("nil")), WireErrc::kBadField},
      {"replicas status other", with(good, "replicas", Term::map({{a_ref, atom("maybe")}})),
       WireErrc::kBadReplicas},
      {"replicas a list", with(good, "replicas", Term::list({})), WireErrc::kBadReplicas},
      {"range of one", with(good, "range", Term::tuple({Term::map({})})), WireErrc::kBadRange},
      {"range end a list", with(good, "range", Term::tuple({Term::map({}), Term::list({})})),
       WireErrc::kBadRange},
  };
  for (const char* name :
       {"replica", "context", "clouds", "values", "pids", "mode", "delta", "replicas", "range"}) {
    cases.push_back({name, without(good, atom(name)), WireErrc::kMissingField});
  }
  return cases;
}

TEST(CrdtWire, EveryMalformedDeltaFieldIsRejectedWithItsReason) {
  ASSERT_TRUE(decode_delta(encode_delta(sample_delta())).ok());
  for (const Malformed& bad : malformed_deltas()) {
    const WireResult<Delta> decoded = decode_delta(bad.term);
    ASSERT_FALSE(decoded.ok()) << bad.what;
    EXPECT_EQ(decoded.error().code, bad.code) << bad.what << ": " << decoded.error().message();
    EXPECT_FALSE(decoded.error().message().empty());
    // The same struct inside a whole state is just as bad.
    EXPECT_FALSE(decode_extracted(bad.term).ok()) << bad.what;
  }
}

TEST(CrdtWire, EveryMalformedWholeStateIsRejectedWithItsReason) {
  const Term good = encode_whole_state(sample_whole_state());
  ASSERT_TRUE(decode_whole_state(good).ok());
  const Term values = good[1];
  const std::vector<Malformed> cases = {
      {"not a tuple", good[0], WireErrc::kNotAStruct},
      {"three elements", Term::tuple({good[0], values, values}), WireErrc::kNotAStruct},
      {"struct not a map", Term::tuple({Term::list({}), values}), WireErrc::kNotAStruct},
      {"wrong struct", Term::tuple({with(good[0], "__struct__", atom("Elixir.MapSet")), values}),
       WireErrc::kWrongStruct},
      {"missing field", Term::tuple({without(good[0], atom("context")), values}),
       WireErrc::kMissingField},
      {"values inside", Term::tuple({with(good[0], "values", Term::map({})), values}),
       WireErrc::kBadField},
      {"delta mode", Term::tuple({with(good[0], "mode", atom("delta")), values}),
       WireErrc::kBadMode},
      {"values a list", Term::tuple({good[0], Term::list({})}), WireErrc::kBadValues},
      {"bad replicas",
       Term::tuple({with(good[0], "replicas", Term::map({{atom("x"), atom("up")}})), values}),
       WireErrc::kBadReplicas},
  };
  for (const Malformed& bad : cases) {
    const WireResult<WholeState> decoded = decode_whole_state(bad.term);
    ASSERT_FALSE(decoded.ok()) << bad.what;
    EXPECT_EQ(decoded.error().code, bad.code) << bad.what << ": " << decoded.error().message();
    if (bad.term.is_tuple()) {
      EXPECT_FALSE(decode_extracted(bad.term).ok()) << bad.what;
    }
  }
}

TEST(CrdtWire, ANormalModeStructAloneIsNotADelta) {
  const Term whole = encode_whole_state(sample_whole_state());
  const WireResult<Extracted> decoded = decode_extracted(whole[0]);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, WireErrc::kBadMode);
}

}  // namespace
}  // namespace presence
