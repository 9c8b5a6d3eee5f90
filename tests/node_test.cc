// The C++ node against real Erlang nodes and a real EPMD: handshakes both
// ways, messages, links and monitors, connection loss, reconnection,
// discovery, ticks, wrong cookies and long names.
#include "cnode/node.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "cnode/asio.h"
#include "cnode/dist_control.h"
#include "cnode/dist_handshake.h"
#include "tests/support/erl_node.h"
#include "tests/support/test_node.h"

namespace presence {
namespace {

using testing::ErlNode;
using testing::TestNode;
using namespace std::chrono_literals;

const std::string kCookie = "node_test_cookie";

// Names unique to this test process, since other test programs may share
// the EPMD.
std::string unique(const std::string& base) {
  static int counter = 0;
  return base + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

std::string short_host() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::string name(host);
  return name.substr(0, name.find('.'));
}

// An Erlang atom literal.
std::string erl_atom(std::string_view text) {
  return "'" + std::string(text) + "'";
}

Term atom(std::string_view text) {
  return Term::atom(text);
}

// Answers {echo, From, M} with From ! {echoed, M}.
const char* const kEchoServer =
    "register(echo, spawn(fun Loop() -> receive {From, M} -> From ! {echoed, M}, Loop() end "
    "end))";

// On {monitor, From, Target}: monitors Target, tells From {monitoring, Target}, then
// {down, Object, Reason} with what the 'DOWN' message names.
const char* const kProber =
    "register(prober, spawn(fun Loop() -> receive {monitor, From, Target} -> "
    "Ref = erlang:monitor(process, Target), From ! {monitoring, Target}, "
    "receive {'DOWN', Ref, process, Object, Reason} -> From ! {down, Object, Reason} "
    "after 5000 -> From ! {no_down, Target} end, Loop() end end))";

// On {link, From, Target} or {link_unlink, From, Target}: links (and
// unlinks), tells From, then reports the exit signal it gets, or none.
const char* const kLinker =
    "register(linker, spawn(fun Loop() -> process_flag(trap_exit, true), receive "
    "{link, From, Target} -> link(Target), From ! {linked, Target}, "
    "receive {'EXIT', Target, R} -> From ! {exit, Target, R} after 5000 -> "
    "From ! {no_exit, Target} end, Loop(); "
    "{link_unlink, From, Target} -> link(Target), unlink(Target), From ! {unlinked, Target}, "
    "receive {'EXIT', Target, R} -> From ! {exit, Target, R} after 1000 -> "
    "From ! {no_exit, Target} end, Loop() end end))";

// A process that waits for {stop, Reason} and exits with Reason.
const char* const kVictim =
    "register(victim, spawn(fun() -> receive {stop, R} -> exit(R) end end))";

// Records every message a mailbox receives.
struct Inbox {
  std::vector<Term> messages;
  std::shared_ptr<Mailbox> mailbox;

  Inbox(Node& node, std::optional<Atom> name = std::nullopt) {
    mailbox = node.spawn([this](const Term& message) { messages.push_back(message); }, name);
  }
  const Term& pid() const { return mailbox->pid(); }
  bool has(const Term& message) const {
    return std::find(messages.begin(), messages.end(), message) != messages.end();
  }
  // The first message that is a tuple starting with `tag`, or nullptr.
  const Term* tagged(std::string_view tag) const {
    for (const Term& message : messages) {
      if (message.is_tuple() && message.size() > 0 && message[0].is_atom(tag)) return &message;
    }
    return nullptr;
  }
  std::string dump() const {
    std::string text;
    for (const Term& message : messages) text += message.to_string() + "\n";
    return text;
  }
};

class NodeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(testing::ensure_epmd()); }

  static NodeOptions cpp_options() {
    NodeOptions options;
    options.name = unique("nt_cpp");
    options.cookie = kCookie;
    options.reconnect_min = 100ms;
    options.reconnect_max = 400ms;
    options.discovery_interval = 300ms;
    return options;
  }

  static std::unique_ptr<ErlNode> start_beam(std::string script, std::string cookie = kCookie,
                                             std::vector<std::string> extra_args = {}) {
    return start_beam_named(unique("nt_beam"), std::move(script), std::move(cookie),
                            std::move(extra_args));
  }

  static std::unique_ptr<ErlNode> start_beam_named(std::string name, std::string script,
                                                   std::string cookie = kCookie,
                                                   std::vector<std::string> extra_args = {}) {
    ErlNode::Options options;
    options.name = std::move(name);
    options.cookie = std::move(cookie);
    options.script = std::move(script);
    options.extra_args = std::move(extra_args);
    return std::make_unique<ErlNode>(std::move(options));
  }

  static std::string name_of(TestNode& cpp) { return std::string(cpp.node().name().text()); }
};

TEST_F(NodeTest, PingFromBeamGetsPong) {
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  Inbox inbox(cpp.node(), Atom("inbox"));
  std::string me = erl_atom(name_of(cpp));

  auto beam = start_beam("spawn(fun() -> R = net_adm:ping(" + me + "), {inbox, " + me +
                         "} ! {ping, node(), R} end)");
  ASSERT_TRUE(beam->ready()) << beam->output();

  ASSERT_TRUE(cpp.run_until([&] { return !inbox.messages.empty(); }, 10s)) << beam->output();
  EXPECT_EQ(inbox.messages[0], Term::tuple({atom("ping"), atom(beam->node_name()), atom("pong")}));
  EXPECT_TRUE(cpp.connected_to(beam->node_name()));
  EXPECT_TRUE(cpp.logged("node up: " + beam->node_name()));
}

TEST_F(NodeTest, PingFromCppGetsYes) {
  auto beam = start_beam("ok");
  ASSERT_TRUE(beam->ready()) << beam->output();
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  Inbox inbox(cpp.node());

  Term ref = cpp.node().make_ref();
  inbox.mailbox->send(Atom("net_kernel"), Atom(beam->node_name()),
                      Term::tuple({atom("$gen_call"), Term::tuple({inbox.pid(), ref}),
                                   Term::tuple({atom("is_auth"), atom(name_of(cpp))})}));

  ASSERT_TRUE(cpp.run_until(
      [&] {
        return inbox.has(Term::tuple({ref, atom("yes")}));
      },
      10s))
      << inbox.dump();
  EXPECT_TRUE(cpp.connected_to(beam->node_name()));
}

TEST_F(NodeTest, MessagesRoundTripThroughARegisteredNameAndAPid) {
  auto beam = start_beam(kEchoServer);
  ASSERT_TRUE(beam->ready()) << beam->output();
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  Inbox inbox(cpp.node());

  Term payload =
      Term::map({{Term::binary("key"), Term::list({Term::integer(1), Term::floating(2.5)})},
                 {atom("big"), Term::big_integer(BigIntValue{false, {0, 0, 0, 0, 0, 0, 0, 0, 1}})},
                 {atom("me"), inbox.pid()},
                 {atom("text"), Term::binary("h\xc3\xa9llo")}});
  // Sent before any connection exists: it waits for the handshake.
  inbox.mailbox->send(Atom("echo"), Atom(beam->node_name()), Term::tuple({inbox.pid(), payload}));

  Term expected = Term::tuple({atom("echoed"), payload});
  ASSERT_TRUE(cpp.run_until([&] { return inbox.has(expected); }, 10s)) << inbox.dump();
}

TEST_F(NodeTest, LargeAndManyMessagesRoundTripInOrder) {
  auto beam = start_beam(kEchoServer);
  ASSERT_TRUE(beam->ready()) << beam->output();
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  Inbox inbox(cpp.node());
  constexpr int kSmall = 2000;

  std::string big(4 << 20, 'x');
  for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>(i / 4096);
  std::vector<Term> sent;
  for (int i = 0; i < kSmall; ++i) {
    sent.push_back(i == kSmall / 2 ? Term::binary(big) : Term::integer(i));
    inbox.mailbox->send(Atom("echo"), Atom(beam->node_name()),
                        Term::tuple({inbox.pid(), sent.back()}));
  }

  ASSERT_TRUE(cpp.run_until([&] { return inbox.messages.size() == kSmall; }, 20s))
      << inbox.messages.size();
  for (int i = 0; i < kSmall; ++i) {
    ASSERT_EQ(inbox.messages[i], Term::tuple({atom("echoed"), sent[i]})) << i;
  }
}

TEST_F(NodeTest, MonitorOfMissingProcessGetsNoproc) {
  auto beam = start_beam(kProber);
  ASSERT_TRUE(beam->ready()) << beam->output();
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  Inbox inbox(cpp.node());
  auto gone = cpp.node().spawn([](const Term&) {});
  Term gone_pid = gone->pid();
  gone->close();

  // From C++: at once.
  Term ref = inbox.mailbox->monitor(gone_pid);
  Term local_down = Term::tuple({atom("DOWN"), ref, atom("process"), gone_pid, atom("noproc")});
  ASSERT_TRUE(cpp.run_until([&] { return inbox.has(local_down); }, 2s)) << inbox.dump();

  // From the BEAM, by pid and by name.
  Term by_name = Term::tuple({atom("nosuch"), atom(name_of(cpp))});
  for (const Term& target : {gone_pid, by_name}) {
    inbox.mailbox->send(Atom("prober"), Atom(beam->node_name()),
                        Term::tuple({atom("monitor"), inbox.pid(), target}));
    Term down = Term::tuple({atom("down"), target, atom("noproc")});
    ASSERT_TRUE(cpp.run_until([&] { return inbox.has(down); }, 10s)) << inbox.dump();
  }
}

TEST_F(NodeTest, BeamMonitorFiresWhenMailboxCloses) {
  auto beam = start_beam(kProber);
  ASSERT_TRUE(beam->ready()) << beam->output();
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  Inbox inbox(cpp.node());
  auto target = cpp.node().spawn([](const Term&) {});
  Term target_pid = target->pid();

  inbox.mailbox->send(Atom("prober"), Atom(beam->node_name()),
                      Term::tuple({atom("monitor"), inbox.pid(), target_pid}));
  ASSERT_TRUE(cpp.run_until(
      [&] {
        return inbox.has(Term::tuple({atom("monitoring"), target_pid}));
      },
      10s));
  target->close(atom("gone_away"));

  Term down = Term::tuple({atom("down"), target_pid, atom("gone_away")});
  ASSERT_TRUE(cpp.run_until([&] { return inbox.has(down); }, 5s)) << inbox.dump();
}

TEST_F(NodeTest, BeamMonitorByNameFiresWhenMailboxCloses) {
  auto beam = start_beam(kProber);
  ASSERT_TRUE(beam->ready()) << beam->output();
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  Inbox inbox(cpp.node());
  auto target = cpp.node().spawn([](const Term&) {}, Atom("named_target"));
  Term by_name = Term::tuple({atom("named_target"), atom(name_of(cpp))});

  inbox.mailbox->send(Atom("prober"), Atom(beam->node_name()),
                      Term::tuple({atom("monitor"), inbox.pid(), by_name}));
  ASSERT_TRUE(cpp.run_until(
      [&] {
        return inbox.has(Term::tuple({atom("monitoring"), by_name}));
      },
      10s));
  target->close(atom("gone_away"));

  Term down = Term::tuple({atom("down"), by_name, atom("gone_away")});
  ASSERT_TRUE(cpp.run_until([&] { return inbox.has(down); }, 5s)) << inbox.dump();
}

TEST_F(NodeTest, LinkedBeamProcessGetsExitWhenMailboxCloses) {
  auto beam = start_beam(kLinker);
  ASSERT_TRUE(beam->ready()) << beam->output();
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  Inbox inbox(cpp.node());
  auto target = cpp.node().spawn([](const Term&) {});
  Term target_pid = target->pid();

  inbox.mailbox->send(Atom("linker"), Atom(beam->node_name()),
                      Term::tuple({atom("link"), inbox.pid(), target_pid}));
  ASSERT_TRUE(cpp.run_until(
      [&] {
        return inbox.has(Term::tuple({atom("linked"), target_pid}));
      },
      10s));
  target->close(atom("bye"));

  Term exit = Term::tuple({atom("exit"), target_pid, atom("bye")});
  ASSERT_TRUE(cpp.run_until([&] { return inbox.has(exit); }, 5s)) << inbox.dump();
}

TEST_F(NodeTest, DroppedMailboxEndsWithReasonNormal) {
  auto beam = start_beam(kLinker);
  ASSERT_TRUE(beam->ready()) << beam->output();
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  Inbox inbox(cpp.node());
  auto target = cpp.node().spawn([](const Term&) {});
  Term target_pid = target->pid();

  inbox.mailbox->send(Atom("linker"), Atom(beam->node_name()),
                      Term::tuple({atom("link"), inbox.pid(), target_pid}));
  ASSERT_TRUE(cpp.run_until(
      [&] {
        return inbox.has(Term::tuple({atom("linked"), target_pid}));
      },
      10s));
  target.reset();

  Term exit = Term::tuple({atom("exit"), target_pid, atom("normal")});
  ASSERT_TRUE(cpp.run_until([&] { return inbox.has(exit); }, 5s)) << inbox.dump();
}

TEST_F(NodeTest, BeamLinkToMissingProcessGetsNoproc) {
  auto beam = start_beam(kLinker);
  ASSERT_TRUE(beam->ready()) << beam->output();
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  Inbox inbox(cpp.node());
  auto gone = cpp.node().spawn([](const Term&) {});
  Term gone_pid = gone->pid();
  gone->close();

  inbox.mailbox->send(Atom("linker"), Atom(beam->node_name()),
                      Term::tuple({atom("link"), inbox.pid(), gone_pid}));
  Term exit = Term::tuple({atom("exit"), gone_pid, atom("noproc")});
  ASSERT_TRUE(cpp.run_until([&] { return inbox.has(exit); }, 10s)) << inbox.dump();
}

TEST_F(NodeTest, UnlinkFromBeamStopsExitSignals) {
  auto beam = start_beam(kLinker);
  ASSERT_TRUE(beam->ready()) << beam->output();
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  Inbox inbox(cpp.node());
  auto target = cpp.node().spawn([](const Term&) {});
  Term target_pid = target->pid();

  inbox.mailbox->send(Atom("linker"), Atom(beam->node_name()),
                      Term::tuple({atom("link_unlink"), inbox.pid(), target_pid}));
  ASSERT_TRUE(cpp.run_until(
      [&] {
        return inbox.has(Term::tuple({atom("unlinked"), target_pid}));
      },
      10s));
  target->close(atom("bye"));

  ASSERT_TRUE(cpp.run_until([&] { return inbox.tagged("no_exit") || inbox.tagged("exit"); }, 5s));
  EXPECT_TRUE(inbox.has(Term::tuple({atom("no_exit"), target_pid}))) << inbox.dump();
}

TEST_F(NodeTest, ExitAndDownOfALinkedAndMonitoredBeamProcessArrive) {
  auto beam = start_beam(kVictim);
  ASSERT_TRUE(beam->ready()) << beam->output();
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  Inbox inbox(cpp.node());
  auto victim = cpp.rpc(beam->node_name(), "erlang", "whereis", {atom("victim")});
  ASSERT_TRUE(victim && victim->is_pid());

  inbox.mailbox->link(*victim);
  Term ref = inbox.mailbox->monitor(*victim);
  // The rpc goes through the same connection, after the link and monitor.
  cpp.rpc(beam->node_name(), "erlang", "send",
          {atom("victim"), Term::tuple({atom("stop"), atom("on_purpose")})});

  Term exit = Term::tuple({atom("EXIT"), *victim, atom("on_purpose")});
  Term down = Term::tuple({atom("DOWN"), ref, atom("process"), *victim, atom("on_purpose")});
  ASSERT_TRUE(cpp.run_until([&] { return inbox.has(exit) && inbox.has(down); }, 5s))
      << inbox.dump();
}

TEST_F(NodeTest, ExitSignalFromBeamArrivesAsMessage) {
  auto beam = start_beam("ok");
  ASSERT_TRUE(beam->ready()) << beam->output();
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  Inbox inbox(cpp.node());

  cpp.rpc(beam->node_name(), "erlang", "exit", {inbox.pid(), atom("please_stop")});
  ASSERT_TRUE(cpp.run_until([&] { return inbox.tagged("EXIT") != nullptr; }, 5s));
  const Term& exit = *inbox.tagged("EXIT");
  EXPECT_TRUE(exit.is_tuple(3) && exit[1].is_pid() && exit[2] == atom("please_stop"))
      << exit.to_string();
}

TEST_F(NodeTest, ConnectionLossDeliversNoconnection) {
  auto beam = start_beam(kVictim);
  ASSERT_TRUE(beam->ready()) << beam->output();
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  std::vector<std::pair<std::string, bool>> events;
  cpp.node().on_node_event(
      [&](Atom node, bool up) { events.emplace_back(std::string(node.text()), up); });
  Inbox inbox(cpp.node());
  auto victim = cpp.rpc(beam->node_name(), "erlang", "whereis", {atom("victim")});
  ASSERT_TRUE(victim && victim->is_pid());
  inbox.mailbox->link(*victim);
  Term ref = inbox.mailbox->monitor(*victim);
  cpp.run_for(200ms);

  std::string beam_name = beam->node_name();
  beam->kill();

  Term exit = Term::tuple({atom("EXIT"), *victim, atom("noconnection")});
  Term down = Term::tuple({atom("DOWN"), ref, atom("process"), *victim, atom("noconnection")});
  ASSERT_TRUE(cpp.run_until([&] { return inbox.has(exit) && inbox.has(down); }, 5s))
      << inbox.dump();
  EXPECT_FALSE(cpp.connected_to(beam_name));
  EXPECT_TRUE(cpp.logged("node down: " + beam_name));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), std::make_pair(beam_name, false));
}

TEST_F(NodeTest, ReconnectsWithBackoffWhenConfiguredNodeComesBack) {
  std::string beam_short = unique("nt_beam");
  std::string beam_name = beam_short + "@" + short_host();
  NodeOptions options = cpp_options();
  options.connect = {beam_name};
  TestNode cpp(options);
  ASSERT_TRUE(cpp.started());

  // Not there yet: attempts fail, and go on.
  cpp.run_for(500ms);
  EXPECT_TRUE(cpp.logged("handshake with " + beam_name + " failed"));

  auto beam = start_beam_named(beam_short, "ok");
  ASSERT_TRUE(beam->ready()) << beam->output();
  ASSERT_TRUE(cpp.run_until([&] { return cpp.connected_to(beam_name); }, 5s));

  beam->kill();
  ASSERT_TRUE(cpp.run_until([&] { return !cpp.connected_to(beam_name); }, 5s));
  beam = start_beam_named(beam_short, "ok");
  ASSERT_TRUE(beam->ready()) << beam->output();
  ASSERT_TRUE(cpp.run_until([&] { return cpp.connected_to(beam_name); }, 5s));
}

TEST_F(NodeTest, NodeStartedLaterIsDiscoveredThroughAnotherNode) {
  auto first = start_beam("ok");
  ASSERT_TRUE(first->ready()) << first->output();
  NodeOptions options = cpp_options();
  options.connect = {first->node_name()};
  TestNode cpp(options);
  ASSERT_TRUE(cpp.started());
  ASSERT_TRUE(cpp.run_until([&] { return cpp.connected_to(first->node_name()); }, 5s));

  auto later = start_beam("pong = net_adm:ping(" + erl_atom(first->node_name()) + ")");
  ASSERT_TRUE(later->ready()) << later->output();
  ASSERT_TRUE(cpp.run_until([&] { return cpp.connected_to(later->node_name()); }, 5s));
}

// Runs two nodes of this thread in turns until done() holds.
bool run_both_until(TestNode& a, TestNode& b, const std::function<bool()>& done,
                    std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    a.run_for(5ms);
    b.run_for(5ms);
  }
  return true;
}

TEST_F(NodeTest, CppNodesConnectingToEachOtherAtOnceEndWithOneConnection) {
  TestNode a(cpp_options());
  TestNode b(cpp_options());
  ASSERT_TRUE(a.started() && b.started());
  Inbox inbox_a(a.node(), Atom("inbox"));
  Inbox inbox_b(b.node(), Atom("inbox"));

  a.node().connect(b.node().name());
  b.node().connect(a.node().name());
  ASSERT_TRUE(run_both_until(
      a, b, [&] { return a.connected_to(name_of(b)) && b.connected_to(name_of(a)); }, 10s));

  inbox_a.mailbox->send(Atom("inbox"), b.node().name(), atom("from_a"));
  inbox_b.mailbox->send(Atom("inbox"), a.node().name(), atom("from_b"));
  ASSERT_TRUE(run_both_until(
      a, b, [&] { return inbox_b.has(atom("from_a")) && inbox_a.has(atom("from_b")); }, 5s));
  EXPECT_EQ(a.node().connected_nodes().size(), 1u);
  EXPECT_EQ(b.node().connected_nodes().size(), 1u);
}

TEST_F(NodeTest, CppNodesFindEachOtherThroughABeamNode) {
  auto beam = start_beam("ok");
  ASSERT_TRUE(beam->ready()) << beam->output();
  NodeOptions options_a = cpp_options();
  options_a.connect = {beam->node_name()};
  NodeOptions options_b = cpp_options();
  options_b.connect = {beam->node_name()};
  TestNode a(options_a);
  TestNode b(options_b);
  ASSERT_TRUE(a.started() && b.started());

  ASSERT_TRUE(run_both_until(
      a, b, [&] { return a.connected_to(name_of(b)) && b.connected_to(name_of(a)); }, 10s));
}

TEST_F(NodeTest, WrongCookieIsRefusedInBothDirections) {
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  std::string me = erl_atom(name_of(cpp));
  auto beam = start_beam("spawn(fun() -> pang = net_adm:ping(" + me + ") end)", "other_cookie");
  ASSERT_TRUE(beam->ready()) << beam->output();

  // The BEAM connects with the wrong cookie.
  std::string refused = "handshake with " + beam->node_name() + " failed: wrong cookie";
  ASSERT_TRUE(cpp.run_until([&] { return cpp.logged(refused); }, 10s));

  // This node connects with its cookie, which the BEAM does not share.
  EXPECT_FALSE(cpp.connect(beam->node_name(), 3s));
  EXPECT_TRUE(cpp.logged("handshake with " + beam->node_name() +
                         " failed: connection closed "
                         "while awaiting the challenge ack (wrong cookie?)"));
}

TEST_F(NodeTest, LongNamesWork) {
  NodeOptions options = cpp_options();
  options.name += "@127.0.0.1";
  options.long_names = true;
  TestNode cpp(options);
  ASSERT_TRUE(cpp.started());
  Inbox inbox(cpp.node(), Atom("inbox"));
  std::string me = erl_atom(name_of(cpp));

  ErlNode::Options beam_options;
  beam_options.name = unique("nt_beam") + "@127.0.0.1";
  beam_options.long_names = true;
  beam_options.cookie = kCookie;
  beam_options.script =
      "spawn(fun() -> R = net_adm:ping(" + me + "), {inbox, " + me + "} ! {ping, R} end)";
  ErlNode beam(beam_options);
  ASSERT_TRUE(beam.ready()) << beam.output();

  ASSERT_TRUE(cpp.run_until([&] { return !inbox.messages.empty(); }, 10s)) << beam.output();
  EXPECT_EQ(inbox.messages[0], Term::tuple({atom("ping"), atom("pong")}));
  EXPECT_EQ(beam.node_name(), beam_options.name);
}

TEST_F(NodeTest, TicksKeepAnIdleConnectionUp) {
  auto beam = start_beam("ok", kCookie, {"-kernel", "net_ticktime", "2"});
  ASSERT_TRUE(beam->ready()) << beam->output();
  NodeOptions options = cpp_options();
  options.tick_time = 2s;
  options.discovery_interval = 1h;  // no traffic but ticks
  TestNode cpp(options);
  ASSERT_TRUE(cpp.started());
  ASSERT_TRUE(cpp.connect(beam->node_name()));

  cpp.run_for(5s);
  EXPECT_TRUE(cpp.connected_to(beam->node_name()));
  EXPECT_FALSE(cpp.logged("node down"));
}

TEST_F(NodeTest, SilentPeerIsDroppedAfterTheTickTime) {
  auto beam = start_beam("ok");
  ASSERT_TRUE(beam->ready()) << beam->output();
  NodeOptions options = cpp_options();
  options.tick_time = 2s;
  TestNode cpp(options);
  ASSERT_TRUE(cpp.started());
  auto os_pid = cpp.rpc(beam->node_name(), "os", "getpid", {});
  std::string pid_text;
  ASSERT_TRUE(os_pid && os_pid->as_string(&pid_text));

  ::kill(std::stoi(pid_text), SIGSTOP);
  bool dropped = cpp.run_until([&] { return !cpp.connected_to(beam->node_name()); }, 5s);
  ::kill(std::stoi(pid_text), SIGCONT);
  ASSERT_TRUE(dropped);
  EXPECT_TRUE(cpp.logged("node down: " + beam->node_name() + " (no answer within the tick time)"));
}

TEST_F(NodeTest, PeerThatStopsReadingIsDroppedOnceItsQueueIsFull) {
  auto beam = start_beam(kEchoServer);
  ASSERT_TRUE(beam->ready()) << beam->output();
  NodeOptions options = cpp_options();
  options.max_send_queue = 1 << 20;
  TestNode cpp(options);
  ASSERT_TRUE(cpp.started());
  auto os_pid = cpp.rpc(beam->node_name(), "os", "getpid", {});
  std::string pid_text;
  ASSERT_TRUE(os_pid && os_pid->as_string(&pid_text));
  Inbox inbox(cpp.node());

  // 64 MiB in all: far more than the socket buffers and the queue hold.
  ::kill(std::stoi(pid_text), SIGSTOP);
  const Term payload = Term::binary(std::string(64 << 10, 'q'));
  for (int i = 0; i < 1024; ++i) {
    inbox.mailbox->send(Atom("echo"), Atom(beam->node_name()), Term::tuple({inbox.pid(), payload}));
  }
  bool dropped = cpp.run_until([&] { return !cpp.connected_to(beam->node_name()); }, 10s);
  ::kill(std::stoi(pid_text), SIGCONT);
  ASSERT_TRUE(dropped);
  EXPECT_TRUE(cpp.logged("node down: " + beam->node_name() + " (it reads too slowly: "));

  // The peer is usable again once it reads.
  ASSERT_TRUE(cpp.connect(beam->node_name()));
  inbox.mailbox->send(Atom("echo"), Atom(beam->node_name()),
                      Term::tuple({inbox.pid(), Term::atom("after")}));
  EXPECT_TRUE(cpp.run_until(
      [&] {
        return inbox.has(Term::tuple({atom("echoed"), atom("after")}));
      },
      10s))
      << inbox.dump();
}

TEST_F(NodeTest, RpcFromBeamAnswersNodeAndNodesAndRefusesTheRest) {
  auto beam = start_beam("ok");
  ASSERT_TRUE(beam->ready()) << beam->output();
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  Term me = atom(name_of(cpp));

  // rpc:call/4 spawns erpc:execute_call/4 on the target; block_call/4 and
  // C nodes call rex.
  for (const char* function : {"call", "block_call"}) {
    auto node =
        cpp.rpc(beam->node_name(), "rpc", function, {me, atom("erlang"), atom("node"), Term()});
    ASSERT_TRUE(node) << function;
    EXPECT_EQ(*node, me) << function;

    auto nodes = cpp.rpc(beam->node_name(), "rpc", function,
                         {me, atom("erlang"), atom("nodes"), Term::list({atom("connected")})});
    ASSERT_TRUE(nodes) << function;
    EXPECT_EQ(*nodes, Term::list({atom(beam->node_name())})) << function;

    Term args = Term::list({Term::list({Term::integer(1)})});
    auto other =
        cpp.rpc(beam->node_name(), "rpc", function, {me, atom("lists"), atom("reverse"), args});
    Term frame = Term::tuple({atom("lists"), atom("reverse"), args, Term()});
    Term undef = Term::tuple(
        {atom("badrpc"),
         Term::tuple({atom("EXIT"), Term::tuple({atom("undef"), Term::list({frame})})})});
    ASSERT_TRUE(other) << function;
    EXPECT_EQ(*other, undef) << function;
  }

  Term call_nodes =
      Term::tuple({atom("call"), atom("erlang"), atom("nodes"), Term(), atom("user")});
  auto visible = cpp.rpc(beam->node_name(), "gen_server", "call",
                         {Term::tuple({atom("rex"), me}), call_nodes});
  ASSERT_TRUE(visible);
  EXPECT_EQ(*visible, Term::list({atom(beam->node_name())}));
}

TEST_F(NodeTest, SendsFromAnotherThreadArriveInOrder) {
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  Inbox inbox(cpp.node(), Atom("inbox"));
  constexpr int kCount = 200;

  std::thread sender([&] {
    for (int i = 0; i < kCount; ++i) {
      if (i % 2 == 0) {
        cpp.node().send(inbox.pid(), Term::integer(i));
      } else {
        cpp.node().send(Atom("inbox"), cpp.node().name(), Term::integer(i));
      }
    }
  });
  bool all = cpp.run_until([&] { return inbox.messages.size() == kCount; }, 5s);
  sender.join();
  ASSERT_TRUE(all) << inbox.messages.size();
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(inbox.messages[i], Term::integer(i));
}

TEST_F(NodeTest, TakenNameFailsToStart) {
  NodeOptions options = cpp_options();
  TestNode first(options);
  ASSERT_TRUE(first.started());
  TestNode second(options);
  EXPECT_FALSE(second.started());
  EXPECT_TRUE(second.logged("already registered"));
}

TEST_F(NodeTest, SpawnRefusesATakenName) {
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  auto first = cpp.node().spawn([](const Term&) {}, Atom("box"));
  ASSERT_TRUE(first);
  EXPECT_EQ(cpp.node().spawn([](const Term&) {}, Atom("box")), nullptr);
  first->close();
  cpp.run_for(10ms);
  EXPECT_NE(cpp.node().spawn([](const Term&) {}, Atom("box")), nullptr);
}

// ---- A hand-made peer that writes raw packets ----

// Plays a BEAM node's part of the handshake over a blocking socket on its
// own thread, then writes whatever the test gives it.
class RawPeer {
 public:
  RawPeer(std::uint16_t port, std::string name) : name_(std::move(name)) {
    thread_ = std::thread([this, port] { run(port); });
  }
  ~RawPeer() {
    ::shutdown(fd_.load(), SHUT_RDWR);  // unblocks a read that never ends
    thread_.join();
  }
  void write_after_handshake(std::vector<std::string> packets) { packets_ = std::move(packets); }
  void go() { go_ = true; }
  bool done() const { return done_; }

 private:
  void run(std::uint16_t port) {
    using boost::asio::ip::tcp;
    boost::asio::io_context io;
    tcp::socket socket(io);
    boost::system::error_code ec;
    socket.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port), ec);
    if (ec) return;
    fd_ = socket.native_handle();
    if (!handshake(socket)) return;
    while (!go_) std::this_thread::sleep_for(1ms);
    for (const std::string& packet : packets_)
      boost::asio::write(socket, boost::asio::buffer(packet), ec);
    done_ = true;
    char byte;
    socket.read_some(boost::asio::buffer(&byte, 1), ec);  // until shut down
  }

  bool handshake(boost::asio::ip::tcp::socket& socket) {
    using namespace dist;
    boost::system::error_code ec;
    boost::asio::write(socket, boost::asio::buffer(frame(encode_name({kLocalFlags, 1, name_}))),
                       ec);
    auto status = parse_status(read_message(socket));
    auto challenge = parse_challenge(read_message(socket));
    if (!status || *status != "ok" || !challenge) return false;
    ChallengeReply reply{42, challenge_digest(challenge->challenge, kCookie)};
    boost::asio::write(socket, boost::asio::buffer(frame(encode_challenge_reply(reply))), ec);
    auto ack = parse_challenge_ack(read_message(socket));
    return ack && *ack == challenge_digest(42, kCookie);
  }

  static std::string read_message(boost::asio::ip::tcp::socket& socket) {
    boost::system::error_code ec;
    unsigned char length[2];
    boost::asio::read(socket, boost::asio::buffer(length), ec);
    if (ec) return "";
    std::string body((length[0] << 8) | length[1], '\0');
    boost::asio::read(socket, boost::asio::buffer(body), ec);
    return ec ? "" : body;
  }

  std::string name_;
  std::vector<std::string> packets_;
  std::atomic<int> fd_{-1};
  std::atomic<bool> go_{false};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

TEST_F(NodeTest, MalformedPacketIsDroppedAndTheConnectionKept) {
  TestNode cpp(cpp_options());
  ASSERT_TRUE(cpp.started());
  Inbox inbox(cpp.node(), Atom("inbox"));
  std::string peer = unique("nt_raw") + "@" + short_host();
  RawPeer raw(cpp.node().port(), peer);
  ASSERT_TRUE(cpp.run_until([&] { return cpp.connected_to(peer); }, 5s));

  Term from = Term::pid(PidValue{Atom(peer), 1, 0, 1});
  Term message = atom("after_garbage");
  std::string garbage("\x00\x00\x00\x04p\x83\xff\x01", 8);
  raw.write_after_handshake(
      {garbage, dist::encode_packet(dist::reg_send_control(from, atom("inbox")), &message)});
  raw.go();

  ASSERT_TRUE(cpp.run_until([&] { return inbox.has(message); }, 5s));
  EXPECT_TRUE(cpp.logged("dropped a malformed control message from " + peer));
  EXPECT_TRUE(cpp.connected_to(peer));
}

}  // namespace
}  // namespace presence
