// The :pg scope: its protocol against an in-memory node (every message it
// sends is checked), then against real Erlang nodes running OTP's pg.
#include "cnode/pg.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "tests/support/erl_node.h"
#include "tests/support/fake_node.h"
#include "tests/support/test_node.h"

namespace presence {
namespace {

using testing::ErlNode;
using testing::FakeNode;
using testing::TestNode;
using namespace std::chrono_literals;

const Term kScopeName = Term::atom("Elixir.Phoenix.PubSub");

// True for the four messages a BEAM pg scope accepts from a peer.
bool is_pg_protocol(const Term& m) {
  if (m.is_tuple(2) && m[0].is_atom("discover")) return m[1].is_pid();
  if (m.is_tuple(4) && m[0].is_atom("join")) return m[1].is_pid();
  if (m.is_tuple(4) && m[0].is_atom("leave")) return m[1].is_pid() && m[3].is_proper_list();
  return m.is_tuple(2) && m[0].is_atom("$gen_cast") && m[1].is_tuple(3) &&
         m[1][0].is_atom("sync") && m[1][1].is_pid() && m[1][2].is_proper_list();
}

std::multiset<Term> as_set(const std::vector<Term>& terms) {
  return std::multiset<Term>(terms.begin(), terms.end());
}

class PgScopeTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const auto& sent : node.sent) {
      EXPECT_TRUE(is_pg_protocol(sent.message)) << "sent " << sent.message.to_string();
    }
  }

  void settle() {
    io.restart();
    io.poll();
  }
  void from_peer(const Term& message) {
    node.deliver(scope->pid(), message);
    settle();
  }
  Term sync_message(const Term& peer_scope, Term groups) {
    return Term::tuple({Term::atom("$gen_cast"),
                        Term::tuple({Term::atom("sync"), peer_scope, std::move(groups)})});
  }
  // A peer scope that has synced `groups` with us.
  void known_peer(const Term& peer_scope, Term groups = Term()) {
    from_peer(sync_message(peer_scope, std::move(groups)));
  }
  std::shared_ptr<Mailbox> local_process() {
    return node.spawn([](const Term&) {});
  }
  std::vector<Term> warnings() const {
    std::vector<Term> lines;
    for (const auto& [level, line] : node.logs) {
      if (level == LogLevel::kWarning) lines.push_back(Term::binary(line));
    }
    return lines;
  }

  boost::asio::io_context io;
  FakeNode node{io};
  std::shared_ptr<PgScope> scope = PgScope::start(node);
  Term peer = node.remote_pid("beam@host", 50);
  Term a = node.remote_pid("beam@host", 61);
  Term b = node.remote_pid("beam@host", 62);
  Term group = Term::atom("Elixir.MyApp.PubSub.Adapter");
};

TEST_F(PgScopeTest, StartFailsWhenTheScopeNameIsTaken) {
  EXPECT_EQ(PgScope::start(node), nullptr);
  EXPECT_FALSE(node.logs.empty());
}

TEST_F(PgScopeTest, DiscoverFromUnknownPeerIsAnsweredWithSyncThenDiscover) {
  auto member = local_process();
  scope->join(group, member->pid());
  from_peer(Term::tuple({Term::atom("discover"), peer}));

  Term groups = Term::list({Term::tuple({group, Term::list({member->pid()})})});
  std::vector<Term> expected = {sync_message(scope->pid(), groups),
                                Term::tuple({Term::atom("discover"), scope->pid()})};
  EXPECT_EQ(node.sent_to(peer), expected);
  EXPECT_TRUE(node.monitored(peer));
}

TEST_F(PgScopeTest, DiscoverFromKnownPeerIsAnsweredWithSyncOnly) {
  known_peer(peer);
  from_peer(Term::tuple({Term::atom("discover"), peer}));
  std::vector<Term> expected = {sync_message(scope->pid(), Term())};
  EXPECT_EQ(node.sent_to(peer), expected);
}

TEST_F(PgScopeTest, SyncMakesThePeersMembersVisible) {
  known_peer(peer, Term::list({Term::tuple({group, Term::list({a, b})})}));
  EXPECT_EQ(as_set(scope->get_members(group)), as_set({a, b}));
  EXPECT_TRUE(scope->get_local_members(group).empty());
  EXPECT_EQ(scope->which_groups(), std::vector<Term>{group});
  EXPECT_TRUE(scope->which_local_groups().empty());
  EXPECT_EQ(scope->peers(), std::vector<Term>{peer});
  EXPECT_TRUE(node.monitored(peer));
}

TEST_F(PgScopeTest, SyncReplacesEverythingKnownOfThatPeer) {
  Term g1 = Term::atom("g1"), g2 = Term::atom("g2"), g3 = Term::atom("g3");
  Term c = node.remote_pid("beam@host", 63);
  known_peer(peer, Term::list({Term::tuple({g1, Term::list({a, b})}),
                               Term::tuple({g2, Term::list({c})})}));
  known_peer(peer,
             Term::list({Term::tuple({g1, Term::list({b})}), Term::tuple({g3, Term::list({c})})}));
  EXPECT_EQ(scope->get_members(g1), std::vector<Term>{b});
  EXPECT_TRUE(scope->get_members(g2).empty());
  EXPECT_EQ(scope->get_members(g3), std::vector<Term>{c});
  EXPECT_EQ(as_set(scope->which_groups()), as_set({g1, g3}));
}

TEST_F(PgScopeTest, SyncLeavesOtherPeersMembersAlone) {
  Term other_peer = node.remote_pid("other@host", 50);
  Term c = node.remote_pid("other@host", 70);
  known_peer(other_peer, Term::list({Term::tuple({group, Term::list({c})})}));
  known_peer(peer, Term::list({Term::tuple({group, Term::list({a})})}));
  known_peer(peer, Term());
  EXPECT_EQ(scope->get_members(group), std::vector<Term>{c});
}

TEST_F(PgScopeTest, JoinAndLeaveFromKnownPeerUpdateMembersInBothForms) {
  known_peer(peer);
  from_peer(Term::tuple({Term::atom("join"), peer, group, a}));
  from_peer(Term::tuple({Term::atom("join"), peer, group, Term::list({b})}));
  EXPECT_EQ(as_set(scope->get_members(group)), as_set({a, b}));

  from_peer(Term::tuple({Term::atom("leave"), peer, a, Term::list({group})}));
  EXPECT_EQ(scope->get_members(group), std::vector<Term>{b});
  from_peer(Term::tuple({Term::atom("leave"), peer, Term::list({b}), Term::list({group})}));
  EXPECT_TRUE(scope->get_members(group).empty());
  EXPECT_TRUE(scope->which_groups().empty());
}

TEST_F(PgScopeTest, JoinFromUnknownPeerIsIgnored) {
  from_peer(Term::tuple({Term::atom("join"), peer, group, a}));
  EXPECT_TRUE(scope->get_members(group).empty());
  EXPECT_TRUE(warnings().empty());
}

TEST_F(PgScopeTest, LeaveCannotRemoveMembersOfAnotherPeer) {
  Term other_peer = node.remote_pid("other@host", 50);
  Term c = node.remote_pid("other@host", 70);
  known_peer(other_peer, Term::list({Term::tuple({group, Term::list({c})})}));
  known_peer(peer, Term::list({Term::tuple({group, Term::list({a})})}));
  from_peer(Term::tuple({Term::atom("leave"), peer, Term::list({a, c}), Term::list({group})}));
  EXPECT_EQ(scope->get_members(group), std::vector<Term>{c});
}

TEST_F(PgScopeTest, LocalJoinAndLeaveAreAnnouncedToEveryKnownPeer) {
  Term other_peer = node.remote_pid("other@host", 50);
  known_peer(peer);
  known_peer(other_peer);
  auto member = local_process();
  ASSERT_TRUE(scope->join(group, member->pid()));
  ASSERT_TRUE(scope->leave(group, member->pid()));

  std::vector<Term> expected = {
      Term::tuple({Term::atom("join"), scope->pid(), group, member->pid()}),
      Term::tuple({Term::atom("leave"), scope->pid(), member->pid(), Term::list({group})})};
  EXPECT_EQ(node.sent_to(peer), expected);
  EXPECT_EQ(node.sent_to(other_peer), expected);
}

TEST_F(PgScopeTest, LocalMembersAreListedAsLocal) {
  auto member = local_process();
  scope->join(group, member->pid());
  known_peer(peer, Term::list({Term::tuple({group, Term::list({a})})}));
  EXPECT_EQ(as_set(scope->get_members(group)), as_set({a, member->pid()}));
  EXPECT_EQ(scope->get_local_members(group), std::vector<Term>{member->pid()});
  EXPECT_EQ(scope->which_local_groups(), std::vector<Term>{group});
}

TEST_F(PgScopeTest, JoinOfAnotherNodesProcessIsRefused) {
  EXPECT_FALSE(scope->join(group, a));
  EXPECT_TRUE(scope->get_members(group).empty());
}

TEST_F(PgScopeTest, LeaveOfANonMemberReturnsFalse) {
  auto member = local_process();
  EXPECT_FALSE(scope->leave(group, member->pid()));
  scope->join(Term::atom("other"), member->pid());
  EXPECT_FALSE(scope->leave(group, member->pid()));
}

TEST_F(PgScopeTest, ProcessJoinedTwiceStaysAMemberUntilItLeavesTwice) {
  auto member = local_process();
  scope->join(group, member->pid());
  scope->join(group, member->pid());
  EXPECT_EQ(scope->get_members(group).size(), 2u);
  scope->leave(group, member->pid());
  EXPECT_EQ(scope->get_members(group), std::vector<Term>{member->pid()});
  scope->leave(group, member->pid());
  EXPECT_TRUE(scope->get_members(group).empty());
  EXPECT_FALSE(node.monitored(member->pid()));
}

TEST_F(PgScopeTest, LocalMemberEndingLeavesAllItsGroupsAndTellsPeers) {
  known_peer(peer);
  Term other_group = Term::atom("other");
  auto member = local_process();
  scope->join(group, member->pid());
  scope->join(other_group, member->pid());
  member->close();
  settle();

  EXPECT_TRUE(scope->which_groups().empty());
  std::vector<Term> sent = node.sent_to(peer);
  ASSERT_EQ(sent.size(), 3u);
  const Term& leave = sent[2];
  ASSERT_TRUE(leave.is_tuple(4));
  EXPECT_EQ(leave[0], Term::atom("leave"));
  EXPECT_EQ(leave[2], member->pid());
  EXPECT_EQ(as_set(std::vector<Term>(leave[3].elements().begin(), leave[3].elements().end())),
            as_set({group, other_group}));
}

TEST_F(PgScopeTest, PeerScopeGoingDownDropsItsMembers) {
  known_peer(peer, Term::list({Term::tuple({group, Term::list({a, b})})}));
  node.remote_down(peer, Term::atom("noconnection"));
  settle();
  EXPECT_TRUE(scope->get_members(group).empty());
  EXPECT_TRUE(scope->peers().empty());
}

TEST_F(PgScopeTest, NodeDownDropsTheMembersOfItsScope) {
  node.node_event("beam@host", true);
  known_peer(peer, Term::list({Term::tuple({group, Term::list({a})})}));
  node.node_event("beam@host", false);
  EXPECT_TRUE(scope->get_members(group).empty());
  EXPECT_FALSE(node.monitored(peer));
}

TEST_F(PgScopeTest, NodeUpSendsDiscoverToTheScopeOnThatNode) {
  node.node_event("beam@host", true);
  ASSERT_FALSE(node.sent.empty());
  const auto& sent = node.sent.front();
  EXPECT_EQ(sent.to, kScopeName);
  EXPECT_EQ(sent.to_node, Atom("beam@host"));
  EXPECT_EQ(sent.message, Term::tuple({Term::atom("discover"), scope->pid()}));
}

class PgRediscoveryTest : public PgScopeTest {
 protected:
  PgRediscoveryTest() {
    scope.reset();
    scope = PgScope::start(node, {.rediscover_min = std::chrono::milliseconds(2),
                                  .rediscover_max = std::chrono::milliseconds(4)});
  }
  std::size_t discovers_sent() const {
    return std::count_if(node.sent.begin(), node.sent.end(), [](const FakeNode::Sent& s) {
      return s.message.is_tuple(2) && s.message[0].is_atom("discover");
    });
  }
  void run_for(std::chrono::milliseconds time) {
    io.restart();
    io.run_for(time);
  }
};

TEST_F(PgRediscoveryTest, DiscoverIsRepeatedUntilThePeerScopeAnswers) {
  node.node_event("beam@host", true);
  run_for(std::chrono::milliseconds(40));
  EXPECT_GE(discovers_sent(), 3u);

  known_peer(peer);
  std::size_t before = discovers_sent();
  run_for(std::chrono::milliseconds(40));
  EXPECT_EQ(discovers_sent(), before);
}

TEST_F(PgRediscoveryTest, NodeDownStopsRediscovery) {
  node.node_event("beam@host", true);
  node.node_event("beam@host", false);
  std::size_t before = discovers_sent();
  run_for(std::chrono::milliseconds(40));
  EXPECT_EQ(discovers_sent(), before);
}

TEST_F(PgRediscoveryTest, PeerScopeRestartedWhileConnectedIsRediscovered) {
  node.node_event("beam@host", true);
  known_peer(peer);
  std::size_t before = discovers_sent();
  node.remote_down(peer, Term::atom("killed"));
  run_for(std::chrono::milliseconds(20));
  EXPECT_GT(discovers_sent(), before);
}

TEST_F(PgScopeTest, MalformedMessagesAreDroppedAndLoggedWithTheirNode) {
  known_peer(peer);
  std::vector<Term> garbage = {
      Term::atom("hello"),
      Term::tuple({Term::atom("discover"), Term::atom("not_a_pid")}),
      Term::tuple({Term::atom("join"), peer, group, Term::list({Term::integer(1)})}),
      Term::tuple({Term::atom("leave"), peer, a, Term::atom("not_a_list")}),
      sync_message(peer, Term::list({Term::atom("bad_entry")})),
      Term::tuple({Term::atom("$gen_call"), Term::tuple({a, node.make_ref()}), Term::atom("x")}),
      Term::tuple({Term::atom("$gen_cast"), Term::atom("junk")}),
  };
  for (const Term& message : garbage) from_peer(message);

  ASSERT_EQ(warnings().size(), garbage.size());
  for (const auto& line : warnings()) {
    EXPECT_NE(line.as_binary().find("dropped"), std::string_view::npos) << line.to_string();
  }
  EXPECT_NE(warnings()[2].as_binary().find("beam@host"), std::string_view::npos);
  EXPECT_EQ(node.sent.size(), 0u);

  from_peer(Term::tuple({Term::atom("join"), peer, group, a}));
  EXPECT_EQ(scope->get_members(group), std::vector<Term>{a});
}

TEST_F(PgScopeTest, DroppedMessageIsLoggedWithTheNodeItCameFrom) {
  node.deliver(scope->pid(), Term::atom("junk"), Atom("sender@host"));
  settle();
  ASSERT_EQ(warnings().size(), 1u);
  EXPECT_NE(warnings()[0].as_binary().find("node 'sender@host'"), std::string_view::npos);
}

TEST_F(PgScopeTest, ChangeHandlersSeeJoinsAndLeaves) {
  std::vector<std::string> seen;
  scope->on_change([&](PgScope::Change change, const Term& g, std::span<const Term> pids) {
    seen.push_back((change == PgScope::Change::kJoin ? "join " : "leave ") + g.to_string() + " " +
                   std::to_string(pids.size()));
  });
  known_peer(peer, Term::list({Term::tuple({group, Term::list({a, b})})}));
  node.remote_down(peer, Term::atom("noconnection"));
  settle();
  std::string name = group.to_string();
  EXPECT_EQ(seen, (std::vector<std::string>{"join " + name + " 2", "leave " + name + " 2"}));
}

// --- against OTP's pg on real Erlang nodes ---

constexpr const char* kCookie = "pg_test_cookie";
constexpr const char* kStartScope = "{ok, _} = pg:start('Elixir.Phoenix.PubSub')";
// A BEAM process registered as `member`, alive until told to stop.
constexpr const char* kStartMember = "register(member, spawn(fun() -> receive stop -> ok end end))";

NodeOptions cpp_options() {
  NodeOptions options;
  options.name = "pg_cpp_" + std::to_string(::getpid());
  options.cookie = kCookie;
  options.reconnect_min = 100ms;
  options.reconnect_max = 500ms;
  return options;
}

class PgBeamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(testing::ensure_epmd()); }

  void SetUp() override {
    ASSERT_TRUE(cpp.started());
    scope = PgScope::start(cpp.node());
    ASSERT_NE(scope, nullptr);
  }

  std::unique_ptr<ErlNode> start_beam(const std::string& script) {
    ErlNode::Options options;
    options.name = beam_name;
    options.cookie = kCookie;
    options.script = script;
    auto beam = std::make_unique<ErlNode>(options);
    EXPECT_TRUE(beam->ready()) << beam->output();
    return beam;
  }
  std::optional<Term> beam_rpc(const ErlNode& beam, std::string_view module,
                               std::string_view function, std::vector<Term> args) {
    return cpp.rpc(beam.node_name(), module, function, std::move(args));
  }
  std::vector<Term> beam_members(const ErlNode& beam) {
    auto members = beam_rpc(beam, "pg", "get_members", {kScopeName, group});
    if (!members || !members->is_list()) return {};
    return std::vector<Term>(members->elements().begin(), members->elements().end());
  }
  bool beam_lists(const ErlNode& beam, const Term& pid) {
    auto members = beam_members(beam);
    return std::find(members.begin(), members.end(), pid) != members.end();
  }
  bool cpp_lists(const Term& pid) {
    auto members = scope->get_members(group);
    return std::find(members.begin(), members.end(), pid) != members.end();
  }
  Term beam_member(const ErlNode& beam) {
    auto pid = beam_rpc(beam, "erlang", "whereis", {Term::atom("member")});
    EXPECT_TRUE(pid && pid->is_pid());
    return pid ? *pid : Term();
  }
  void beam_join(const ErlNode& beam, const Term& pid) {
    auto ok = beam_rpc(beam, "pg", "join", {kScopeName, group, pid});
    ASSERT_TRUE(ok && ok->is_atom("ok"));
  }
  Term beam_scope(const ErlNode& beam) {
    auto pid = beam_rpc(beam, "erlang", "whereis", {kScopeName});
    return pid ? *pid : Term();
  }

  std::string beam_name = "pg_beam_" + std::to_string(::getpid());
  TestNode cpp{cpp_options()};
  std::shared_ptr<PgScope> scope;
  Term group = Term::atom("Elixir.MyApp.PubSub.Adapter");
};

TEST_F(PgBeamTest, BeamScopeListsCppMemberWithinTwoSecondsOfConnecting) {
  auto beam = start_beam(kStartScope);
  auto member = cpp.node().spawn([](const Term&) {});
  scope->join(group, member->pid());
  ASSERT_TRUE(cpp.connect(beam->node_name()));
  EXPECT_TRUE(cpp.run_until([&] { return beam_lists(*beam, member->pid()); }, 2s));
}

TEST_F(PgBeamTest, CppScopeSeesBeamMembersFromSyncAndFromJoin) {
  auto beam = start_beam(std::string(kStartScope) + ", " + kStartMember +
                         ", pg:join('Elixir.Phoenix.PubSub', early, whereis(member))");
  Term beam_scope_before = beam_scope(*beam);
  ASSERT_TRUE(cpp.connect(beam->node_name()));
  Term member = beam_member(*beam);
  EXPECT_TRUE(cpp.run_until([&] { return !scope->get_members(Term::atom("early")).empty(); }));

  beam_join(*beam, member);
  EXPECT_TRUE(cpp.run_until([&] { return cpp_lists(member); }));
  EXPECT_EQ(beam_scope(*beam), beam_scope_before) << "the BEAM scope restarted";
}

TEST_F(PgBeamTest, BeamMemberEndingIsRemovedHere) {
  auto beam = start_beam(std::string(kStartScope) + ", " + kStartMember);
  ASSERT_TRUE(cpp.connect(beam->node_name()));
  Term member = beam_member(*beam);
  beam_join(*beam, member);
  ASSERT_TRUE(cpp.run_until([&] { return cpp_lists(member); }));

  beam_rpc(*beam, "erlang", "exit", {member, Term::atom("kill")});
  EXPECT_TRUE(cpp.run_until([&] { return !cpp_lists(member); }));
}

TEST_F(PgBeamTest, CppMemberEndingIsRemovedOnTheBeam) {
  auto beam = start_beam(kStartScope);
  auto member = cpp.node().spawn([](const Term&) {});
  scope->join(group, member->pid());
  ASSERT_TRUE(cpp.connect(beam->node_name()));
  ASSERT_TRUE(cpp.run_until([&] { return beam_lists(*beam, member->pid()); }));

  member->close();
  EXPECT_TRUE(cpp.run_until([&] { return !beam_lists(*beam, member->pid()); }));
}

TEST_F(PgBeamTest, LocalLeaveIsSeenOnTheBeam) {
  auto beam = start_beam(kStartScope);
  auto member = cpp.node().spawn([](const Term&) {});
  scope->join(group, member->pid());
  ASSERT_TRUE(cpp.connect(beam->node_name()));
  ASSERT_TRUE(cpp.run_until([&] { return beam_lists(*beam, member->pid()); }));

  scope->leave(group, member->pid());
  EXPECT_TRUE(cpp.run_until([&] { return !beam_lists(*beam, member->pid()); }));
}

TEST_F(PgBeamTest, KillingTheBeamNodeDropsItsMembers) {
  auto beam = start_beam(std::string(kStartScope) + ", " + kStartMember);
  ASSERT_TRUE(cpp.connect(beam->node_name()));
  Term member = beam_member(*beam);
  beam_join(*beam, member);
  ASSERT_TRUE(cpp.run_until([&] { return cpp_lists(member); }));

  beam->kill();
  EXPECT_TRUE(cpp.run_until([&] { return scope->get_members(group).empty(); }));
  EXPECT_TRUE(scope->peers().empty());
}

TEST_F(PgBeamTest, RestartedBeamNodeIsRediscovered) {
  auto beam = start_beam(kStartScope);
  auto member = cpp.node().spawn([](const Term&) {});
  scope->join(group, member->pid());
  ASSERT_TRUE(cpp.connect(beam->node_name()));
  ASSERT_TRUE(cpp.run_until([&] { return beam_lists(*beam, member->pid()); }));

  beam->kill();
  ASSERT_TRUE(cpp.run_until([&] { return scope->peers().empty(); }));
  beam = start_beam(kStartScope);
  ASSERT_TRUE(cpp.connect(beam->node_name()));
  EXPECT_TRUE(cpp.run_until([&] { return beam_lists(*beam, member->pid()); }, 2s));
  EXPECT_EQ(scope->peers().size(), 1u);
}

TEST_F(PgBeamTest, ScopeStartedAfterTheConnectionIsDiscovered) {
  auto beam = start_beam("ok");
  auto member = cpp.node().spawn([](const Term&) {});
  scope->join(group, member->pid());
  ASSERT_TRUE(cpp.connect(beam->node_name()));
  cpp.run_for(300ms);

  auto started = beam_rpc(*beam, "pg", "start", {kScopeName});
  ASSERT_TRUE(started && started->is_tuple(2)) << (started ? started->to_string() : "no reply");
  EXPECT_TRUE(cpp.run_until([&] { return beam_lists(*beam, member->pid()); }, 8s));
}

TEST_F(PgBeamTest, GarbageFromTheBeamIsDroppedAndTheScopeGoesOnServing) {
  auto beam = start_beam(std::string(kStartScope) + ", " + kStartMember);
  ASSERT_TRUE(cpp.connect(beam->node_name()));
  Term cpp_scope = Term::tuple({kScopeName, Term::atom(cpp.node().name())});
  beam_rpc(*beam, "erlang", "send", {cpp_scope, Term::atom("garbage")});
  beam_rpc(*beam, "erlang", "send",
           {cpp_scope, Term::tuple({Term::atom("join"), Term::integer(1), Term::integer(2)})});
  EXPECT_TRUE(cpp.run_until([&] { return cpp.logged("dropped"); }));

  Term member = beam_member(*beam);
  beam_join(*beam, member);
  EXPECT_TRUE(cpp.run_until([&] { return cpp_lists(member); }));
}

}  // namespace
}  // namespace presence
