// Phoenix.PubSub on the C++ node: the PG2 adapter protocol against an
// in-memory node, then against real Erlang nodes running OTP's pg and a
// process that does what Phoenix's PG2 worker and broadcast do.
#include "cnode/pubsub.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>

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
const Atom kAdapter("Elixir.MyApp.PubSub.Adapter");

Term forward(std::string_view topic, const Term& message) {
  return Term::tuple({Term::atom("forward_to_local"), Term::binary(topic), message, kScopeName});
}

TEST(PubSubNames, ModuleNamesGetTheElixirPrefix) {
  EXPECT_EQ(pubsub_name("MyApp.PubSub"), Atom("Elixir.MyApp.PubSub"));
  EXPECT_EQ(pubsub_name("Elixir.MyApp.PubSub"), Atom("Elixir.MyApp.PubSub"));
  EXPECT_EQ(pubsub_name("my_pubsub"), Atom("my_pubsub"));
}

TEST(PubSubNames, AdapterNameIsModuleConcatOfNameAndAdapter) {
  EXPECT_EQ(adapter_name(Atom("Elixir.MyApp.PubSub")), kAdapter);
  EXPECT_EQ(adapter_name(Atom("my_pubsub")), Atom("Elixir.my_pubsub.Adapter"));
}

TEST(PubSubNames, PoolGroupsAreTheAdapterThenNumberedFromTwo) {
  std::vector<Atom> expected = {kAdapter, Atom("Elixir.MyApp.PubSub.Adapter_2"),
                                Atom("Elixir.MyApp.PubSub.Adapter_3")};
  EXPECT_EQ(adapter_groups(kAdapter, 3), expected);
  EXPECT_EQ(adapter_groups(kAdapter, 1), std::vector<Atom>{kAdapter});
}

class PubSubTest : public ::testing::Test {
 protected:
  std::shared_ptr<PubSub> start(int pool_size = 1) {
    PubSubOptions options;
    options.name = "MyApp.PubSub";
    options.pool_size = pool_size;
    return PubSub::start(node, scope, options);
  }
  void settle() {
    io.restart();
    io.poll();
  }
  // A subscriber that records what it gets.
  PubSub::SubscriptionId record(const std::string& topic, std::vector<Term>& into) {
    return pubsub->subscribe(topic, [&into](const Term& message) { into.push_back(message); });
  }
  // Tells the scope that other nodes run adapters in `group`.
  void remote_adapters(const Term& peer, std::vector<Term> pids) {
    Term groups = Term::list({Term::tuple({Term::atom(kAdapter), Term::list(std::move(pids))})});
    node.deliver(scope->pid(),
                 Term::tuple({Term::atom("$gen_cast"),
                              Term::tuple({Term::atom("sync"), peer, std::move(groups)})}));
    settle();
  }
  std::size_t warnings() const {
    return std::count_if(node.logs.begin(), node.logs.end(),
                         [](const auto& log) { return log.first == LogLevel::kWarning; });
  }

  boost::asio::io_context io;
  FakeNode node{io};
  std::shared_ptr<PgScope> scope = PgScope::start(node);
  std::shared_ptr<PubSub> pubsub = start();
  Term message = Term::tuple({Term::atom("hello"), Term::integer(1)});
};

TEST_F(PubSubTest, StartJoinsTheRegisteredAdapterToItsGroup) {
  ASSERT_NE(pubsub, nullptr);
  EXPECT_EQ(pubsub->name(), Atom("Elixir.MyApp.PubSub"));
  EXPECT_EQ(pubsub->adapter(), kAdapter);
  auto members = scope->get_local_members(Term::atom(kAdapter));
  ASSERT_EQ(members.size(), 1u);

  std::vector<Term> got;
  record("t", got);
  node.deliver(Term::atom(kAdapter), forward("t", message));
  settle();
  EXPECT_EQ(got, std::vector<Term>{message});
}

TEST_F(PubSubTest, EveryGroupOfThePoolHasARegisteredMember) {
  pubsub.reset();
  pubsub = start(3);
  ASSERT_NE(pubsub, nullptr);
  std::vector<Term> got;
  record("t", got);
  for (Atom group : adapter_groups(kAdapter, 3)) {
    EXPECT_EQ(scope->get_local_members(Term::atom(group)).size(), 1u) << group.text();
    node.deliver(Term::atom(group), forward("t", message));
  }
  settle();
  EXPECT_EQ(got.size(), 3u);
}

TEST_F(PubSubTest, StartFailsWhenTheAdapterNameIsTaken) {
  EXPECT_EQ(start(), nullptr);
  EXPECT_FALSE(node.logs.empty());
}

TEST_F(PubSubTest, StoppingLeavesTheGroups) {
  pubsub.reset();
  EXPECT_TRUE(scope->which_groups().empty());
}

TEST_F(PubSubTest, ForwardReachesOnlySubscribersOfItsTopic) {
  std::vector<Term> room1, room2;
  record("room:1", room1);
  record("room:2", room2);
  node.deliver(Term::atom(kAdapter), forward("room:1", message));
  settle();
  EXPECT_EQ(room1, std::vector<Term>{message});
  EXPECT_TRUE(room2.empty());
}

TEST_F(PubSubTest, BroadcastForwardsToEveryRemoteAdapterAndDeliversLocally) {
  Term peer_a = node.remote_pid("a@host", 1), adapter_a = node.remote_pid("a@host", 2);
  Term peer_b = node.remote_pid("b@host", 1), adapter_b = node.remote_pid("b@host", 2);
  remote_adapters(peer_a, {adapter_a});
  remote_adapters(peer_b, {adapter_b});
  std::vector<Term> got;
  record("room:1", got);

  pubsub->broadcast("room:1", message);
  settle();
  EXPECT_EQ(node.sent_to(adapter_a), std::vector<Term>{forward("room:1", message)});
  EXPECT_EQ(node.sent_to(adapter_b), std::vector<Term>{forward("room:1", message)});
  EXPECT_EQ(got, std::vector<Term>{message});
}

TEST_F(PubSubTest, BroadcastFromSkipsTheSendingSubscription) {
  std::vector<Term> sender, other;
  auto from = record("room:1", sender);
  record("room:1", other);
  pubsub->broadcast_from(from, "room:1", message);
  settle();
  EXPECT_TRUE(sender.empty());
  EXPECT_EQ(other, std::vector<Term>{message});
}

TEST_F(PubSubTest, LocalBroadcastStaysOnThisNode) {
  remote_adapters(node.remote_pid("a@host", 1), {node.remote_pid("a@host", 2)});
  std::size_t sent_before = node.sent.size();
  std::vector<Term> got;
  record("room:1", got);
  pubsub->local_broadcast("room:1", message);
  settle();
  EXPECT_EQ(got, std::vector<Term>{message});
  EXPECT_EQ(node.sent.size(), sent_before);
}

TEST_F(PubSubTest, DirectBroadcastGoesToTheAdapterNameOnThatNode) {
  std::vector<Term> got;
  record("room:1", got);
  pubsub->direct_broadcast(Atom("a@host"), "room:1", message);
  settle();
  ASSERT_EQ(node.sent.size(), 1u);
  EXPECT_EQ(node.sent[0].to, Term::atom(kAdapter));
  EXPECT_EQ(node.sent[0].to_node, Atom("a@host"));
  EXPECT_EQ(node.sent[0].message, forward("room:1", message));
  EXPECT_TRUE(got.empty());
}

TEST_F(PubSubTest, DirectBroadcastToThisNodeIsDeliveredLocally) {
  std::vector<Term> got;
  record("room:1", got);
  pubsub->direct_broadcast(node.name(), "room:1", message);
  settle();
  EXPECT_EQ(got, std::vector<Term>{message});
  EXPECT_TRUE(node.sent.empty());
}

TEST_F(PubSubTest, MalformedForwardsAreDroppedAndLoggedWithTheirNode) {
  std::vector<Term> got;
  record("room:1", got);
  Term stranger = node.remote_pid("stranger@host", 9);
  std::vector<Term> garbage = {
      Term::atom("junk"),
      Term::tuple({Term::atom("forward_to_local"), Term::integer(1), message, kScopeName}),
      Term::tuple({Term::atom("forward_to_local"), Term::binary("room:1"), message}),
      Term::tuple(
          {Term::atom("forward_to_local"), Term::binary("room:1"), stranger, Term::integer(3)}),
  };
  for (const Term& bad : garbage) node.deliver(Term::atom(kAdapter), bad);
  settle();
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(warnings(), garbage.size());
  EXPECT_NE(node.logs.back().second.find("stranger@host"), std::string::npos);

  node.deliver(Term::atom(kAdapter), forward("room:1", message));
  settle();
  EXPECT_EQ(got, std::vector<Term>{message});
}

TEST_F(PubSubTest, ProcessSubscriberIsSentMessagesUntilItEnds) {
  std::vector<Term> got;
  auto subscriber = node.spawn([&](const Term& m) { got.push_back(m); });
  ASSERT_NE(pubsub->subscribe("room:1", subscriber->pid()), 0u);
  pubsub->local_broadcast("room:1", message);
  settle();
  EXPECT_EQ(got, std::vector<Term>{message});

  subscriber->close();
  settle();
  pubsub->local_broadcast("room:1", message);
  settle();
  EXPECT_EQ(node.undeliverable, 0) << "a message went to the ended subscriber";
}

TEST_F(PubSubTest, SubscribingANonPidIsRefused) {
  EXPECT_EQ(pubsub->subscribe("room:1", Term::atom("nobody")), 0u);
}

TEST_F(PubSubTest, ProcessOfAnotherNodeIsSubscribedUntilItsNodeGoesDown) {
  Term remote = node.remote_pid("a@host", 5);
  ASSERT_NE(pubsub->subscribe("room:1", remote), 0u);
  pubsub->local_broadcast("room:1", message);
  settle();
  EXPECT_EQ(node.sent_to(remote), std::vector<Term>{message});

  node.remote_down(remote, Term::atom("noconnection"));
  settle();
  pubsub->local_broadcast("room:1", message);
  settle();
  EXPECT_EQ(node.sent_to(remote).size(), 1u);
}

TEST_F(PubSubTest, ControlRequestsSubscribeBroadcastAndUnsubscribe) {
  Term name = Term::atom("Elixir.MyApp.PubSub");
  Term topic = Term::binary("room:1");
  Term watcher = node.remote_pid("ct@host", 5);
  auto subscribed =
      pubsub->handle_request(Term::tuple({Term::atom("subscribe"), name, topic, watcher}));
  ASSERT_TRUE(subscribed.has_value());
  ASSERT_TRUE(subscribed->is_tuple(2)) << subscribed->to_string();
  settle();

  EXPECT_EQ(pubsub->handle_request(Term::tuple({Term::atom("broadcast"), name, topic, message})),
            Term::atom("ok"));
  EXPECT_EQ(
      pubsub->handle_request(Term::tuple({Term::atom("local_broadcast"), name, topic, message})),
      Term::atom("ok"));
  EXPECT_EQ(pubsub->handle_request(Term::tuple(
                {Term::atom("direct_broadcast"), Term::atom("b@host"), name, topic, message})),
            Term::atom("ok"));
  EXPECT_EQ(
      pubsub->handle_request(Term::tuple({Term::atom("unsubscribe"), name, (*subscribed)[1]})),
      Term::atom("ok"));
  pubsub->local_broadcast("room:1", message);
  settle();
  EXPECT_EQ(node.sent_to(watcher), (std::vector<Term>{message, message}));
  EXPECT_EQ(node.sent_to(Term::atom(kAdapter)), std::vector<Term>{forward("room:1", message)});
}

TEST_F(PubSubTest, ControlRequestsForAnotherPubSubAreNotServed) {
  Term request = Term::tuple(
      {Term::atom("broadcast"), Term::atom("Elixir.Other.PubSub"), Term::binary("t"), message});
  EXPECT_FALSE(pubsub->handle_request(request).has_value());
  EXPECT_FALSE(pubsub->handle_request(Term::atom("broadcast")).has_value());
}

TEST_F(PubSubTest, ControlRequestsCannotEndTheNodesOwnSubscriptions) {
  std::vector<Term> got;
  auto id = record("room:1", got);
  Term badarg = Term::tuple({Term::atom("error"), Term::atom("badarg")});
  auto reply = pubsub->handle_request(Term::tuple(
      {Term::atom("unsubscribe"), Term::atom("Elixir.MyApp.PubSub"), Term::integer(id)}));
  EXPECT_EQ(reply, badarg);
  pubsub->local_broadcast("room:1", message);
  settle();
  EXPECT_EQ(got.size(), 1u);
}

TEST_F(PubSubTest, ControlRequestsWithBadArgumentsAreRefused) {
  Term badarg = Term::tuple({Term::atom("error"), Term::atom("badarg")});
  Term name = Term::atom("Elixir.MyApp.PubSub");
  EXPECT_EQ(pubsub->handle_request(
                Term::tuple({Term::atom("broadcast"), name, Term::atom("not_binary"), message})),
            badarg);
  EXPECT_EQ(pubsub->handle_request(Term::tuple(
                {Term::atom("subscribe"), name, Term::binary("t"), Term::atom("not_pid")})),
            badarg);
}

TEST_F(PubSubTest, UnsubscribedHandlerGetsNothingMore) {
  std::vector<Term> got;
  auto id = record("room:1", got);
  pubsub->unsubscribe(id);
  pubsub->local_broadcast("room:1", message);
  settle();
  EXPECT_TRUE(got.empty());
}

TEST_F(PubSubTest, HandlerMayUnsubscribeAnotherDuringDelivery) {
  std::vector<Term> second;
  PubSub::SubscriptionId second_id = 0;
  int first_calls = 0;
  pubsub->subscribe("room:1", [&](const Term&) {
    ++first_calls;
    pubsub->unsubscribe(second_id);
  });
  second_id = record("room:1", second);
  settle();
  // A handler runs on the node thread, where unsubscribe takes effect at once.
  boost::asio::post(io, [&] { pubsub->local_broadcast("room:1", message); });
  settle();
  EXPECT_EQ(first_calls, 1);
  EXPECT_TRUE(second.empty());
}

TEST_F(PubSubTest, ThrowingSubscriberDoesNotStopTheOthers) {
  pubsub->subscribe("room:1", [](const Term&) { throw std::runtime_error("boom"); });
  std::vector<Term> got;
  record("room:1", got);
  pubsub->local_broadcast("room:1", message);
  settle();
  EXPECT_EQ(got, std::vector<Term>{message});
  EXPECT_EQ(node.logs.back().first, LogLevel::kError);
}

TEST_F(PubSubTest, CallsFromAnotherThreadRunOnTheNodeThread) {
  std::thread::id handler_thread;
  std::thread caller([&] {
    pubsub->subscribe("room:1", [&](const Term&) { handler_thread = std::this_thread::get_id(); });
    pubsub->local_broadcast("room:1", message);
  });
  caller.join();
  EXPECT_EQ(handler_thread, std::thread::id());
  settle();
  EXPECT_EQ(handler_thread, std::this_thread::get_id());
}

// --- against OTP's pg and an emulated Phoenix PG2 worker on real nodes ---

constexpr const char* kCookie = "pubsub_test_cookie";

// What a Phoenix node running `{Phoenix.PubSub, name: MyApp.PubSub}` does on
// the wire: a pg scope, a worker registered and joined as the adapter that
// hands forwards to a local "subscriber" (here `collector`, which answers
// {get, From, Ref} with everything it got), and `broadcaster`, which sends
// as PG2.broadcast/4 and direct_broadcast/5 do.
constexpr const char* kPhoenixEmulation = R"(
  {ok, _} = pg:start('Elixir.Phoenix.PubSub'),
  Adapter = 'Elixir.MyApp.PubSub.Adapter',
  Collect = fun Collect(Acc) ->
    receive
      {get, From, Ref} -> From ! {Ref, lists:reverse(Acc)}, Collect(Acc);
      M -> Collect([M | Acc])
    end
  end,
  register(collector, spawn(fun() -> Collect([]) end)),
  Worker = fun Worker() ->
    receive
      {forward_to_local, T, M, D} -> collector ! {T, M, D}, Worker();
      _ -> Worker()
    end
  end,
  W = spawn(Worker),
  register(Adapter, W),
  ok = pg:join('Elixir.Phoenix.PubSub', Adapter, W),
  Broadcast = fun Broadcast() ->
    receive
      {broadcast, T, M} ->
        [P ! {forward_to_local, T, M, 'Elixir.Phoenix.PubSub'}
         || P <- pg:get_members('Elixir.Phoenix.PubSub', Adapter), node(P) =/= node()],
        Broadcast();
      {direct, N, T, M} ->
        {Adapter, N} ! {forward_to_local, T, M, 'Elixir.Phoenix.PubSub'},
        Broadcast()
    end
  end,
  register(broadcaster, spawn(Broadcast)))";

class PubSubBeamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(testing::ensure_epmd()); }

  void start(bool long_names) {
    std::string suffix = std::to_string(::getpid());
    std::string host = long_names ? "@127.0.0.1" : "";
    NodeOptions options;
    options.name = "pubsub_cpp_" + suffix + host;
    options.long_names = long_names;
    options.cookie = kCookie;
    cpp = std::make_unique<TestNode>(options);
    ASSERT_TRUE(cpp->started());

    ErlNode::Options beam_options;
    beam_options.name = "pubsub_beam_" + suffix + host;
    beam_options.long_names = long_names;
    beam_options.cookie = kCookie;
    beam_options.script = kPhoenixEmulation;
    beam = std::make_unique<ErlNode>(beam_options);
    ASSERT_TRUE(beam->ready()) << beam->output();

    scope = PgScope::start(cpp->node());
    PubSubOptions pubsub_options;
    pubsub_options.name = "MyApp.PubSub";
    pubsub = PubSub::start(cpp->node(), scope, pubsub_options);
    ASSERT_NE(pubsub, nullptr);
    ASSERT_TRUE(cpp->connect(beam->node_name()));
  }
  void SetUp() override { start(false); }

  Atom beam_atom() const { return Atom(beam->node_name()); }
  Term our_adapter() const { return scope->get_local_members(Term::atom(kAdapter)).front(); }
  bool beam_lists_our_adapter() {
    auto members =
        cpp->rpc(beam->node_name(), "pg", "get_members", {kScopeName, Term::atom(kAdapter)});
    if (!members || !members->is_list()) return false;
    for (const Term& pid : members->elements()) {
      if (pid == our_adapter()) return true;
    }
    return false;
  }
  bool we_list_beam_adapter() { return scope->get_members(Term::atom(kAdapter)).size() == 2; }
  void send_to_beam(std::string_view name, Term message) {
    cpp->node().send(Atom(name), beam_atom(), std::move(message));
  }
  // What the BEAM subscriber got, each as {Topic, Message, Dispatcher}.
  std::vector<Term> collected() {
    std::optional<Term> reply;
    Term ref = cpp->node().make_ref();
    auto mailbox = cpp->node().spawn([&](const Term& m) {
      if (m.is_tuple(2) && m[0] == ref) reply = m[1];
    });
    mailbox->send(Atom("collector"), beam_atom(),
                  Term::tuple({Term::atom("get"), mailbox->pid(), ref}));
    cpp->run_until([&] { return reply.has_value(); });
    mailbox->close();
    if (!reply || !reply->is_list()) return {};
    return std::vector<Term>(reply->elements().begin(), reply->elements().end());
  }
  bool beam_collected(const std::string& topic, const Term& message) {
    for (const Term& entry : collected()) {
      if (entry == Term::tuple({Term::binary(topic), message, kScopeName})) return true;
    }
    return false;
  }

  std::unique_ptr<TestNode> cpp;
  std::unique_ptr<ErlNode> beam;
  std::shared_ptr<PgScope> scope;
  std::shared_ptr<PubSub> pubsub;
};

// Terms that stress the codec on the way through both nodes.
std::vector<Term> demanding_terms() {
  Term nested = Term::atom("core");
  for (int depth = 0; depth < 200; ++depth) {
    nested = Term::list({Term::integer(depth), Term::tuple({nested})});
  }
  std::vector<std::pair<Term, Term>> entries;
  for (int i = 0; i < 100; ++i) {
    entries.emplace_back(Term::binary("key" + std::to_string(i)),
                         Term::map({{Term::atom("n"), Term::integer(i * 1'000'000'007LL)}}));
  }
  return {
      Term::binary(std::string(1 << 20, 'x')),
      nested,
      Term::map(std::move(entries)),
      Term::tuple({Term::floating(-0.125), Term::integer(-(1LL << 62)),
                   Term::big_integer(BigIntValue{true, std::vector<std::uint8_t>(20, 0xab)}),
                   Term::atom("ünïcødé"), Term::string("chars"), Term::list({}),
                   Term::bitstring("\x0f\xf0", 4)}),
  };
}

TEST_F(PubSubBeamTest, CppAdapterAppearsInTheBeamGroupWithinTwoSeconds) {
  EXPECT_TRUE(cpp->run_until([&] { return beam_lists_our_adapter(); }, 2s));
}

TEST_F(PubSubBeamTest, BeamBroadcastReachesCppSubscriber) {
  std::vector<Term> got;
  pubsub->subscribe("room:1", [&](const Term& m) { got.push_back(m); });
  ASSERT_TRUE(cpp->run_until([&] { return beam_lists_our_adapter(); }));
  Term message = Term::tuple({Term::atom("new_msg"), Term::binary("hi")});
  send_to_beam("broadcaster",
               Term::tuple({Term::atom("broadcast"), Term::binary("room:1"), message}));
  EXPECT_TRUE(cpp->run_until([&] { return !got.empty(); }));
  EXPECT_EQ(got, std::vector<Term>{message});
}

TEST_F(PubSubBeamTest, CppBroadcastReachesBeamAndLocalSubscribers) {
  std::vector<Term> got;
  pubsub->subscribe("room:1", [&](const Term& m) { got.push_back(m); });
  ASSERT_TRUE(cpp->run_until([&] { return we_list_beam_adapter(); }));
  Term message = Term::tuple({Term::atom("from_cpp"), Term::integer(7)});
  pubsub->broadcast("room:1", message);
  EXPECT_TRUE(cpp->run_until([&] { return beam_collected("room:1", message); }));
  EXPECT_EQ(got, std::vector<Term>{message});
}

TEST_F(PubSubBeamTest, DirectBroadcastsArriveInBothDirections) {
  std::vector<Term> got;
  pubsub->subscribe("room:1", [&](const Term& m) { got.push_back(m); });
  Term to_beam = Term::atom("to_beam");
  pubsub->direct_broadcast(beam_atom(), "room:1", to_beam);
  EXPECT_TRUE(cpp->run_until([&] { return beam_collected("room:1", to_beam); }));
  EXPECT_TRUE(got.empty()) << "a direct broadcast to another node was delivered here";

  Term to_cpp = Term::atom("to_cpp");
  send_to_beam("broadcaster", Term::tuple({Term::atom("direct"), Term::atom(cpp->node().name()),
                                           Term::binary("room:1"), to_cpp}));
  EXPECT_TRUE(cpp->run_until([&] { return !got.empty(); }));
  EXPECT_EQ(got, std::vector<Term>{to_cpp});
}

TEST_F(PubSubBeamTest, LargeAndNestedTermsArriveIntactBothWays) {
  std::vector<Term> got;
  pubsub->subscribe("big", [&](const Term& m) { got.push_back(m); });
  ASSERT_TRUE(cpp->run_until([&] { return we_list_beam_adapter() && beam_lists_our_adapter(); }));
  std::vector<Term> terms = demanding_terms();
  for (const Term& term : terms) pubsub->broadcast("big", term);
  for (const Term& term : terms) {
    EXPECT_TRUE(cpp->run_until([&] { return beam_collected("big", term); }))
        << term.to_string().substr(0, 200);
  }
  got.clear();
  for (const Term& term : terms) {
    send_to_beam("broadcaster", Term::tuple({Term::atom("broadcast"), Term::binary("big"), term}));
  }
  EXPECT_TRUE(cpp->run_until([&] { return got.size() == terms.size(); }));
  EXPECT_EQ(got, terms);
}

TEST_F(PubSubBeamTest, GarbageToTheAdapterIsDroppedAndServingGoesOn) {
  std::vector<Term> got;
  pubsub->subscribe("room:1", [&](const Term& m) { got.push_back(m); });
  auto sent = cpp->rpc(beam->node_name(), "erlang", "send",
                       {Term::tuple({Term::atom(kAdapter), Term::atom(cpp->node().name())}),
                        Term::tuple({Term::atom("forward_to_local"), Term::integer(1)})});
  ASSERT_TRUE(sent.has_value());
  EXPECT_TRUE(cpp->run_until([&] { return cpp->logged("dropped"); }));

  send_to_beam("broadcaster", Term::tuple({Term::atom("direct"), Term::atom(cpp->node().name()),
                                           Term::binary("room:1"), Term::atom("still_here")}));
  EXPECT_TRUE(cpp->run_until([&] { return !got.empty(); }));
}

TEST_F(PubSubBeamTest, KilledBeamNodeIsNoLongerBroadcastTo) {
  ASSERT_TRUE(cpp->run_until([&] { return we_list_beam_adapter(); }));
  beam->kill();
  EXPECT_TRUE(cpp->run_until([&] { return !we_list_beam_adapter(); }));
  EXPECT_EQ(scope->get_members(Term::atom(kAdapter)), std::vector<Term>{our_adapter()});
}

class PubSubLongNamesTest : public PubSubBeamTest {
 protected:
  void SetUp() override { start(true); }
};

TEST_F(PubSubLongNamesTest, BroadcastsFlowBothWaysWithLongNames) {
  std::vector<Term> got;
  pubsub->subscribe("room:1", [&](const Term& m) { got.push_back(m); });
  ASSERT_TRUE(cpp->run_until([&] { return we_list_beam_adapter() && beam_lists_our_adapter(); }));
  Term message = Term::atom("long");
  pubsub->broadcast("room:1", message);
  EXPECT_TRUE(cpp->run_until([&] { return beam_collected("room:1", message); }));
  send_to_beam("broadcaster",
               Term::tuple({Term::atom("broadcast"), Term::binary("room:1"), message}));
  EXPECT_TRUE(cpp->run_until([&] { return got.size() == 2; }));
}

}  // namespace
}  // namespace presence
