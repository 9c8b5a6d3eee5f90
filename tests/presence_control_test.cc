// The control process `presence`, called as a gen_server from another C++
// node and from a real Erlang node.
#include <gtest/gtest.h>

#include "cnode/control.h"
#include "tests/support/erl_node.h"
#include "tests/support/tracker_cluster.h"

namespace presence {
namespace {

using namespace std::chrono_literals;
using testing::ClusterNode;
using testing::connect_all;
using testing::ErlNode;
using testing::fast_tracker_options;
using testing::run_until;

const Term kTracker = Term::atom("Test.Presence");
const Term kTopic = Term::binary("room:1");
const Term kOk = Term::atom("ok");

Term bin(std::string_view text) {
  return Term::binary(text);
}
Term error(Term reason) {
  return Term::tuple({Term::atom("error"), std::move(reason)});
}

class PresenceControlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(testing::ensure_epmd()); }
  void SetUp() override {
    ASSERT_TRUE(a.ready() && b.ready());
    ASSERT_TRUE(connect_all({&a, &b}));
  }

  // gen_server:call({presence, a}, request) made from a process of b.
  Term call(const Term& request) {
    std::optional<Term> reply;
    Term ref = b.node().make_ref();
    auto caller = b.node().spawn([&](const Term& message) {
      if (message.is_tuple(2) && message[0] == ref) reply = message[1];
    });
    caller->send(
        Atom("presence"), a.node().name(),
        Term::tuple({Term::atom("$gen_call"), Term::tuple({caller->pid(), ref}), request}));
    run_until({&a, &b}, [&] { return reply.has_value(); });
    caller->close();
    return reply.value_or(Term::atom("no_reply"));
  }

  ClusterNode a{fast_tracker_options(), true};
  ClusterNode b;
};

TEST_F(PresenceControlTest, TrackWithoutPidMakesASessionOfTheCppNode) {
  Term meta = Term::map({{Term::atom("n"), Term::integer(1)}});
  Term reply = call(Term::tuple({Term::atom("track"), kTracker, kTopic, bin("alice"), meta}));
  ASSERT_TRUE(reply.is_tuple(3) && reply[0] == kOk) << reply.to_string();
  Term pid = reply[1];
  ASSERT_TRUE(pid.is_pid());
  EXPECT_EQ(pid.as_pid().node, a.node().name());

  Term list = call(Term::tuple({Term::atom("list"), kTracker, kTopic}));
  ASSERT_TRUE(list.is_list() && list.size() == 1) << list.to_string();
  EXPECT_EQ(list[0][0], bin("alice"));
  EXPECT_EQ(*list[0][1].find("phx_ref"), reply[2]);
  ASSERT_TRUE(run_until({&a, &b}, [&] { return b.tracker().list(kTopic).size() == 1; }));

  EXPECT_EQ(call(Term::tuple({Term::atom("close"), pid})), kOk);
  EXPECT_TRUE(call(Term::tuple({Term::atom("list"), kTracker, kTopic})).is_nil());
  ASSERT_TRUE(run_until({&a, &b}, [&] { return b.tracker().list(kTopic).empty(); }));
}

TEST_F(PresenceControlTest, TrackUpdateAndUntrackOfAnyPid) {
  auto process = b.node().spawn([](const Term&) {});  // a remote pid, from a's view
  Term pid = process->pid();
  Term meta = Term::map({{Term::atom("status"), bin("online")}});
  Term tracked = call(Term::tuple({Term::atom("track"), kTracker, pid, kTopic, bin("bob"), meta}));
  ASSERT_TRUE(tracked.is_tuple(2) && tracked[0] == kOk) << tracked.to_string();

  EXPECT_EQ(call(Term::tuple({Term::atom("track"), kTracker, pid, kTopic, bin("bob"), meta})),
            error(Term::tuple({Term::atom("already_tracked"), pid, kTopic, bin("bob")})));

  Term away = Term::map({{Term::atom("status"), bin("away")}});
  Term updated = call(Term::tuple({Term::atom("update"), kTracker, pid, kTopic, bin("bob"), away}));
  ASSERT_TRUE(updated.is_tuple(2) && updated[0] == kOk) << updated.to_string();
  Term by_key = call(Term::tuple({Term::atom("get_by_key"), kTracker, kTopic, bin("bob")}));
  ASSERT_TRUE(by_key.is_list() && by_key.size() == 1) << by_key.to_string();
  EXPECT_EQ(by_key[0][0], pid);
  EXPECT_EQ(*by_key[0][1].find("status"), bin("away"));
  EXPECT_EQ(*by_key[0][1].find("phx_ref_prev"), tracked[1]);
  EXPECT_EQ(*by_key[0][1].find("phx_ref"), updated[1]);

  EXPECT_EQ(call(Term::tuple({Term::atom("untrack"), kTracker, pid, kTopic, bin("bob")})), kOk);
  EXPECT_TRUE(call(Term::tuple({Term::atom("list"), kTracker, kTopic})).is_nil());
  call(Term::tuple({Term::atom("track"), kTracker, pid, kTopic, bin("bob"), meta}));
  EXPECT_EQ(call(Term::tuple({Term::atom("untrack"), kTracker, pid})), kOk);
  EXPECT_TRUE(call(Term::tuple({Term::atom("list"), kTracker, kTopic})).is_nil());
}

TEST_F(PresenceControlTest, RemoteTrackedPidLeavesWhenItEnds) {
  auto process = b.node().spawn([](const Term&) {});
  Term meta = Term::map({});
  call(Term::tuple({Term::atom("track"), kTracker, process->pid(), kTopic, bin("bob"), meta}));
  ASSERT_EQ(a.tracker().list(kTopic).size(), 1u);
  process->close();
  ASSERT_TRUE(run_until({&a, &b}, [&] { return a.tracker().list(kTopic).empty(); }));
}

TEST_F(PresenceControlTest, FailuresAreErrorTuples) {
  Term meta = Term::map({});
  EXPECT_EQ(call(Term::tuple({Term::atom("list"), Term::atom("Nope"), kTopic})),
            error(Term::tuple({Term::atom("unknown_tracker"), Term::atom("Nope")})));
  EXPECT_EQ(call(Term::tuple(
                {Term::atom("update"), kTracker, b.node().make_ref(), kTopic, bin("x"), meta}))[0],
            Term::atom("error"));
  auto process = b.node().spawn([](const Term&) {});
  EXPECT_EQ(
      call(Term::tuple({Term::atom("update"), kTracker, process->pid(), kTopic, bin("x"), meta})),
      error(Term::atom("nopresence")));
  EXPECT_EQ(call(Term::tuple({Term::atom("track"), kTracker, kTopic, bin("x"), bin("meta")})),
            error(Term::tuple({Term::atom("badmap"), bin("meta")})));
  Term odd = Term::tuple({Term::atom("dance"), kTracker});
  EXPECT_EQ(call(odd), error(Term::tuple({Term::atom("badarg"), odd})));
  EXPECT_EQ(call(Term::atom("hello")),
            error(Term::tuple({Term::atom("badarg"), Term::atom("hello")})));
}

TEST_F(PresenceControlTest, TrackerNamedWithElixirPrefixOrBinary) {
  EXPECT_TRUE(
      call(Term::tuple({Term::atom("list"), Term::atom("Elixir.Test.Presence"), kTopic})).is_nil());
  EXPECT_TRUE(call(Term::tuple({Term::atom("list"), bin("Test.Presence"), kTopic})).is_nil());
}

TEST_F(PresenceControlTest, ReplicasListsTheKnownReplicasWithTheirStatus) {
  ASSERT_TRUE(run_until({&a, &b}, [&] { return !a.tracker().replicas().empty(); }));
  Term replicas = call(Term::tuple({Term::atom("replicas"), kTracker}));
  ASSERT_TRUE(replicas.is_list() && replicas.size() == 1) << replicas.to_string();
  EXPECT_EQ(replicas[0][0][0], Term::atom(b.node().name()));
  EXPECT_TRUE(replicas[0][0][1].is_integer());
  EXPECT_EQ(replicas[0][1], Term::atom("up"));
}

TEST_F(PresenceControlTest, GracefulPermdownTellsThePeers) {
  call(Term::tuple({Term::atom("track"), kTracker, kTopic, bin("alice"), Term::map({})}));
  ASSERT_TRUE(run_until({&a, &b}, [&] { return b.tracker().list(kTopic).size() == 1; }));
  EXPECT_EQ(call(Term::tuple({Term::atom("graceful_permdown"), kTracker})), kOk);
  ASSERT_TRUE(run_until(
      {&a, &b}, [&] { return b.tracker().list(kTopic).empty(); }, 1s));
}

TEST(PresenceControlFromBeamTest, ErlangNodeTracksAndKillsASession) {
  ASSERT_TRUE(testing::ensure_epmd());
  ClusterNode a{fast_tracker_options(), true};
  ASSERT_TRUE(a.ready());
  ErlNode::Options beam_options;
  beam_options.name = testing::unique_node_name("trk_beam");
  beam_options.cookie = testing::kClusterCookie;
  ErlNode beam(beam_options);
  ASSERT_TRUE(beam.ready()) << beam.output();

  auto gen_call = [&](Term request) {
    Term server = Term::tuple({Term::atom("presence"), Term::atom(a.node().name())});
    auto reply =
        a.test_node().rpc(beam.node_name(), "gen_server", "call", {server, std::move(request)});
    return reply.value_or(Term::atom("no_reply"));
  };
  Term tracked = gen_call(Term::tuple(
      {Term::atom("track"), Term::atom("Test.Presence"), kTopic, bin("alice"), Term::map({})}));
  ASSERT_TRUE(tracked.is_tuple(3) && tracked[0] == kOk) << tracked.to_string();
  EXPECT_EQ(a.tracker().list(kTopic).size(), 1u);

  a.test_node().rpc(beam.node_name(), "erlang", "exit", {tracked[1], Term::atom("kill")});
  ASSERT_TRUE(a.test_node().run_until([&] { return a.tracker().list(kTopic).empty(); }));
}

}  // namespace
}  // namespace presence
