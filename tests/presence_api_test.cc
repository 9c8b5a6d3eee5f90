// The native-service API (PresenceService, Session) on real C++ nodes, from
// the node thread and from other threads, and its liveness check.
#include <gtest/gtest.h>

#include <thread>

#include "cnode/asio.h"
#include "cnode/presence.h"
#include "tests/support/tracker_cluster.h"

namespace presence {
namespace {

using namespace std::chrono_literals;
using testing::await;
using testing::ClusterNode;
using testing::connect_all;
using testing::run_until;

const char* const kTracker = "Test.Presence";

Term bin(std::string_view text) {
  return Term::binary(text);
}

TEST(PresenceMetaTest, BuildersMakeAtomKeyedMapsOfErlangValues) {
  Meta meta{{"device", "web"},        {"n", 1},
            {"ratio", 0.5},           {"online", true},
            {"kind", Atom("admin")},  {"tags", list({"a", 2})},
            {"user", Meta{{"id", 7}}}};
  Term expected = Term::map({
      {Term::atom("device"), bin("web")},
      {Term::atom("n"), Term::integer(1)},
      {Term::atom("ratio"), Term::floating(0.5)},
      {Term::atom("online"), Term::atom("true")},
      {Term::atom("kind"), Term::atom("admin")},
      {Term::atom("tags"), Term::list({bin("a"), Term::integer(2)})},
      {Term::atom("user"), Term::map({{Term::atom("id"), Term::integer(7)}})},
  });
  EXPECT_EQ(meta.term(), expected);
  EXPECT_EQ(*meta.with("n", 2).find("n"), Term::integer(2));
  EXPECT_EQ(*meta.find("n"), Term::integer(1));  // with() copies
  EXPECT_EQ(Meta().term(), Term::map({}));
  EXPECT_EQ(tuple({atom("ok"), std::string("x")}), Term::tuple({Term::atom("ok"), bin("x")}));
}

// A node whose io_context runs on its own thread, so the test thread calls
// the API as a native service's thread would.
class BackgroundNode {
 public:
  BackgroundNode() : guard_(node.test_node().io().get_executor()) {
    thread_ = std::thread([this] {
      node.test_node().io().restart();
      node.test_node().io().run();
    });
  }
  ~BackgroundNode() { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    guard_.reset();
    node.test_node().io().stop();
    thread_.join();
  }

  ClusterNode node;

 private:
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
};

class PresenceApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(testing::ensure_epmd()); }
};

TEST_F(PresenceApiTest, WritesFromAnotherThreadAreReadBackAtOnce) {
  BackgroundNode background;
  ASSERT_TRUE(background.node.ready());
  PresenceService& service = background.node.service();
  auto session = service.open_session();

  auto ref = session->track(kTracker, "room:1", "alice", Meta{{"device", "web"}}).get();
  ASSERT_TRUE(ref.ok()) << ref.error().to_string();
  EXPECT_EQ(ref->size(), 16u);

  auto view = service.presences(kTracker, "room:1").get();
  ASSERT_TRUE(view.ok());
  ASSERT_EQ(view->size(), 1u);
  const std::vector<Term>& metas = view->at(bin("alice"));
  ASSERT_EQ(metas.size(), 1u);
  EXPECT_EQ(*metas[0].find("device"), bin("web"));
  EXPECT_EQ(*metas[0].find("phx_ref"), bin(*ref));

  auto by_key = service.get_by_key(kTracker, "room:1", "alice").get();
  ASSERT_TRUE(by_key.ok());
  ASSERT_EQ(by_key->size(), 1u);
  EXPECT_EQ(by_key->at(0).pid, session->pid());

  ASSERT_TRUE(session->untrack(kTracker, "room:1", "alice").get().ok());
  EXPECT_TRUE(service.list(kTracker, "room:1").get()->empty());
}

TEST_F(PresenceApiTest, FailuresComeBackInPhoenixWords) {
  BackgroundNode background;
  ASSERT_TRUE(background.node.ready());
  PresenceService& service = background.node.service();
  auto session = service.open_session();

  ASSERT_TRUE(session->track(kTracker, "room:1", "alice").get().ok());
  auto again = session->track(kTracker, "room:1", "alice").get();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error(), Term::tuple({Term::atom("already_tracked"), session->pid(),
                                        bin("room:1"), bin("alice")}));

  auto missing = session->update(kTracker, "room:1", "bob", Meta{}).get();
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error(), Term::atom("nopresence"));

  auto unknown = service.list("Nope.Presence", "room:1").get();
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error(),
            Term::tuple({Term::atom("unknown_tracker"), Term::atom("Elixir.Nope.Presence")}));
  EXPECT_EQ(service.subscribe("Nope.Presence", std::nullopt, [](auto&, auto&) {}), nullptr);
}

TEST_F(PresenceApiTest, TrackerNamesAcceptTheElixirPrefix) {
  BackgroundNode background;
  ASSERT_TRUE(background.node.ready());
  auto session = background.node.service().open_session();
  ASSERT_TRUE(session->track("Elixir.Test.Presence", "room:1", "alice").get().ok());
  EXPECT_EQ(background.node.service().list(kTracker, "room:1").get()->size(), 1u);
}

TEST_F(PresenceApiTest, UpdateWithAFunctionSetsPhxRefPrev) {
  BackgroundNode background;
  ASSERT_TRUE(background.node.ready());
  PresenceService& service = background.node.service();
  auto session = service.open_session();
  auto first = session->track(kTracker, "room:1", "alice", Meta{{"status", "online"}}).get();
  ASSERT_TRUE(first.ok());

  auto second = session
                    ->update(kTracker, "room:1", "alice",
                             [](const Meta& meta) { return meta.with("status", "away"); })
                    .get();
  ASSERT_TRUE(second.ok());
  Term meta = service.list(kTracker, "room:1").get()->at(0).meta;
  EXPECT_EQ(*meta.find("status"), bin("away"));
  EXPECT_EQ(*meta.find("phx_ref_prev"), bin(*first));
  EXPECT_EQ(*meta.find("phx_ref"), bin(*second));
}

TEST_F(PresenceApiTest, ThrowingUpdaterLeavesThePresenceUnchanged) {
  BackgroundNode background;
  ASSERT_TRUE(background.node.ready());
  PresenceService& service = background.node.service();
  auto session = service.open_session();
  ASSERT_TRUE(session->track(kTracker, "room:1", "alice", Meta{{"n", 1}}).get().ok());
  auto failed = session
                    ->update(kTracker, "room:1", "alice",
                             [](const Meta&) -> Meta { throw std::runtime_error("no"); })
                    .get();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error(), Term::tuple({Term::atom("updater_failed"), bin("no")}));
  Term meta = service.list(kTracker, "room:1").get()->at(0).meta;
  EXPECT_EQ(*meta.find("n"), Term::integer(1));
}

TEST_F(PresenceApiTest, ClosingTheSessionUntracksEverything) {
  BackgroundNode background;
  ASSERT_TRUE(background.node.ready());
  PresenceService& service = background.node.service();
  auto session = service.open_session();
  session->track(kTracker, "room:1", "alice").get();
  session->track(kTracker, "room:2", "alice").get();

  ASSERT_TRUE(session->close().get().ok());
  EXPECT_TRUE(service.list(kTracker, "room:1").get()->empty());
  EXPECT_TRUE(service.list(kTracker, "room:2").get()->empty());
  auto after = session->track(kTracker, "room:1", "alice").get();
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.error(), Term::atom("noproc"));
}

TEST_F(PresenceApiTest, UntrackAllLeavesTheSessionOpen) {
  BackgroundNode background;
  ASSERT_TRUE(background.node.ready());
  PresenceService& service = background.node.service();
  auto session = service.open_session();
  session->track(kTracker, "room:1", "alice").get();
  session->track(kTracker, "room:2", "alice").get();
  ASSERT_TRUE(session->untrack_all().get().ok());
  EXPECT_TRUE(service.list(kTracker, "room:1").get()->empty());
  EXPECT_TRUE(session->track(kTracker, "room:1", "alice").get().ok());
  ASSERT_TRUE(session->untrack_all(kTracker).get().ok());
  EXPECT_TRUE(service.list(kTracker, "room:1").get()->empty());
}

TEST_F(PresenceApiTest, SubscribersSeeJoinsAndLeavesUntilCancelled) {
  BackgroundNode background;
  ASSERT_TRUE(background.node.ready());
  PresenceService& service = background.node.service();
  std::mutex mutex;
  std::vector<std::string> events;
  auto subscription =
      service.subscribe(kTracker, Value("room:1"), [&](const Term&, const TopicDiff& diff) {
        std::lock_guard lock(mutex);
        for (const auto& join : diff.joins) events.push_back("join " + join.key.to_string());
        for (const auto& leave : diff.leaves) events.push_back("leave " + leave.key.to_string());
      });
  ASSERT_NE(subscription, nullptr);

  auto session = service.open_session();
  session->track(kTracker, "room:1", "alice").get();
  session->track(kTracker, "room:2", "bob").get();  // another topic
  session->update(kTracker, "room:1", "alice", Meta{{"n", 2}}).get();
  session->untrack(kTracker, "room:1", "alice").get();
  subscription->cancel();
  session->track(kTracker, "room:1", "carol").get();

  std::lock_guard lock(mutex);
  EXPECT_EQ(events, (std::vector<std::string>{"join <<\"alice\">>", "join <<\"alice\">>",
                                              "leave <<\"alice\">>", "leave <<\"alice\">>"}));
}

TEST_F(PresenceApiTest, DestroyedSessionLeavesOnTheOtherNode) {
  ClusterNode a, b;
  ASSERT_TRUE(a.ready() && b.ready());
  ASSERT_TRUE(connect_all({&a, &b}));
  auto session = a.service().open_session();
  ASSERT_TRUE(await({&a, &b}, session->track(kTracker, "room:1", "alice")).ok());
  ASSERT_TRUE(run_until({&a, &b}, [&] { return b.tracker().list(bin("room:1")).size() == 1; }));

  session.reset();
  ASSERT_TRUE(run_until({&a, &b}, [&] { return b.tracker().list(bin("room:1")).empty(); }));
  EXPECT_TRUE(a.tracker().list(bin("room:1")).empty());
}

TEST_F(PresenceApiTest, SessionsReceiveMessagesSentToTheirPid) {
  ClusterNode a, b;
  ASSERT_TRUE(a.ready() && b.ready());
  ASSERT_TRUE(connect_all({&a, &b}));
  std::vector<Term> received;
  auto session =
      a.service().open_session([&](const Term& message) { received.push_back(message); });
  b.node().send(session->pid(), Term::atom("hello"));
  ASSERT_TRUE(run_until({&a, &b}, [&] { return !received.empty(); }));
  EXPECT_EQ(received[0], Term::atom("hello"));
}

Liveness check(const std::vector<ClusterNode*>& nodes, PresenceService& service, const Term& pid) {
  return await(nodes, service.confirm_alive(pid, 3s));
}

TEST_F(PresenceApiTest, ConfirmAliveTellsLiveFromGoneProcesses) {
  ClusterNode a, b;
  ASSERT_TRUE(a.ready() && b.ready());
  ASSERT_TRUE(connect_all({&a, &b}));
  auto local = a.service().open_session();
  auto remote = b.service().open_session();

  EXPECT_TRUE(check({&a, &b}, a.service(), local->pid()).alive);
  EXPECT_TRUE(check({&a, &b}, a.service(), remote->pid()).alive);

  Term local_pid = local->pid();
  Term remote_pid = remote->pid();
  await({&a, &b}, local->close());
  await({&a, &b}, remote->close());
  Liveness gone_here = check({&a, &b}, a.service(), local_pid);
  EXPECT_FALSE(gone_here.alive);
  EXPECT_EQ(gone_here.reason, Term::atom("noproc"));
  Liveness gone_there = check({&a, &b}, a.service(), remote_pid);
  EXPECT_FALSE(gone_there.alive);
  EXPECT_EQ(gone_there.reason, Term::atom("noproc"));
  EXPECT_EQ(check({&a, &b}, a.service(), bin("not a pid")).reason, Term::atom("badarg"));
}

TEST_F(PresenceApiTest, ConfirmAliveOfAProcessOnALostNodeIsNoconnection) {
  ClusterNode a;
  auto b = std::make_unique<ClusterNode>();
  ASSERT_TRUE(a.ready() && b->ready());
  ASSERT_TRUE(connect_all({&a, b.get()}));
  auto remote = b->service().open_session();
  Term remote_pid = remote->pid();
  remote.reset();
  b->kill();

  Liveness result = check({&a}, a.service(), remote_pid);
  EXPECT_FALSE(result.alive);
  EXPECT_EQ(result.reason, Term::atom("noconnection")) << result.reason.to_string();
}

}  // namespace
}  // namespace presence
