// Messages per second between a real BEAM node and the C++ node, over a real
// distribution connection on loopback (epmd must be able to start).
//
//   BeamToCpp/N   a BEAM process sends N messages to a registered C++ mailbox
//   CppToBeam/N   a C++ mailbox sends N messages to a registered BEAM process
//   RoundTrip     one message to a BEAM echo process and its answer
//
// Each message is {seq, I, Payload} with a 100-byte binary payload, about the
// size of a presence diff for one user.
#include <benchmark/benchmark.h>

#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "cnode/asio.h"
#include "cnode/node.h"
#include "tests/support/erl_node.h"

namespace presence {
namespace {

using testing::ErlNode;

constexpr const char* kCookie = "dist_bench";

// `blaster` answers {blast, To, N, Payload, From} by sending N messages to To
// and then {blasted, N} to From; `sink` answers {expect, N, From} with
// {received, N} to From once N {seq, _, _} messages arrived; `echo` returns
// every {From, Message} to From.
constexpr const char* kBeamScript = R"(
  register(blaster, spawn(fun Loop() ->
    receive {blast, To, N, Payload, From} ->
      [To ! {seq, I, Payload} || I <- lists:seq(1, N)],
      From ! {blasted, N}
    end, Loop() end)),
  register(sink, spawn(fun Loop() ->
    receive {expect, N, From} ->
      Count = fun Count(0) -> ok; Count(K) -> receive {seq, _, _} -> Count(K - 1) end end,
      Count(N),
      From ! {received, N}
    end, Loop() end)),
  register(echo, spawn(fun Loop() -> receive {From, M} -> From ! M end, Loop() end)))";

// One BEAM node and one C++ node, connected, for the whole run; the C++
// node's io_context runs on its own thread, as in a service. Destroyed (the
// BEAM node killed) at exit.
struct Cluster {
  Cluster() : work(boost::asio::make_work_guard(io)) {
    testing::ensure_epmd();
    ErlNode::Options beam_options;
    beam_options.name = "dist_bench_beam";
    beam_options.cookie = kCookie;
    beam_options.script = kBeamScript;
    beam = std::make_unique<ErlNode>(std::move(beam_options));
    NodeOptions node_options;
    node_options.name = "dist_bench_cpp";
    node_options.cookie = kCookie;
    node = Node::create(io, std::move(node_options));
    started = beam->ready() && node->start();
    thread = std::thread([this] { io.run(); });
    if (started) connected = connect();
  }
  ~Cluster() {
    boost::asio::post(io, [this] { node->stop(); });
    work.reset();
    thread.join();
    node.reset();
  }

  bool connect() {
    Atom peer(beam->node_name());
    std::promise<bool> up;
    boost::asio::post(io, [&] {
      node->on_node_event([&, done = false](Atom name, bool is_up) mutable {
        if (name == peer && is_up && !done) up.set_value(done = true);
      });
      node->connect(peer);
    });
    auto result = up.get_future();
    return result.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  }

  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work;
  std::unique_ptr<ErlNode> beam;
  std::unique_ptr<Node> node;
  bool started = false;
  bool connected = false;
  std::thread thread;
};

Cluster& cluster() {
  static Cluster instance;
  return instance;
}

bool ready(benchmark::State& state, Cluster& c) {
  if (c.connected) return true;
  state.SkipWithError("no BEAM node or no connection to it (is epmd available?)");
  return false;
}

Term payload() {
  return Term::binary(std::string(100, 'x'));
}

// A mailbox whose handler counts messages matching a predicate, and lets the
// benchmark thread wait until the count reaches a target.
class Counter {
 public:
  explicit Counter(Node& node, std::function<bool(const Term&)> counts) {
    mailbox_ = node.spawn([this, counts = std::move(counts)](const Term& message) {
      if (!counts(message)) return;
      std::lock_guard lock(mutex_);
      ++count_;
      changed_.notify_all();
    });
  }
  ~Counter() { mailbox_->close(); }
  Mailbox& mailbox() { return *mailbox_; }
  // Waits until count messages arrived since the last call.
  bool await(std::int64_t count) {
    std::unique_lock lock(mutex_);
    bool reached =
        changed_.wait_for(lock, std::chrono::seconds(60), [&] { return count_ >= count; });
    count_ = 0;
    return reached;
  }

 private:
  std::shared_ptr<Mailbox> mailbox_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::int64_t count_ = 0;
};

void BeamToCpp(benchmark::State& state) {
  Cluster& c = cluster();
  if (!ready(state, c)) return;
  const auto count = state.range(0);
  Counter received(*c.node, [](const Term& message) { return message.is_tuple(3); });
  Atom beam(c.beam->node_name());
  for (auto _ : state) {
    const Term& pid = received.mailbox().pid();
    received.mailbox().send(
        Atom("blaster"), beam,
        Term::tuple({Term::atom("blast"), pid, Term::integer(count), payload(), pid}));
    if (!received.await(count)) state.SkipWithError("messages lost");
  }
  state.SetItemsProcessed(state.iterations() * count);
}

void CppToBeam(benchmark::State& state) {
  Cluster& c = cluster();
  if (!ready(state, c)) return;
  const auto count = state.range(0);
  Counter done(*c.node, [](const Term& message) {
    return message.is_tuple(2) && message[0].is_atom("received");
  });
  Atom beam(c.beam->node_name());
  Term body = payload();
  for (auto _ : state) {
    Mailbox& mailbox = done.mailbox();
    mailbox.send(Atom("sink"), beam,
                 Term::tuple({Term::atom("expect"), Term::integer(count), mailbox.pid()}));
    for (std::int64_t i = 0; i < count; ++i) {
      mailbox.send(Atom("sink"), beam, Term::tuple({Term::atom("seq"), Term::integer(i), body}));
    }
    if (!done.await(1)) state.SkipWithError("messages lost");
  }
  state.SetItemsProcessed(state.iterations() * count);
}

void RoundTrip(benchmark::State& state) {
  Cluster& c = cluster();
  if (!ready(state, c)) return;
  Counter answers(*c.node, [](const Term&) { return true; });
  Atom beam(c.beam->node_name());
  Term body = payload();
  for (auto _ : state) {
    Mailbox& mailbox = answers.mailbox();
    mailbox.send(Atom("echo"), beam, Term::tuple({mailbox.pid(), body}));
    if (!answers.await(1)) state.SkipWithError("no answer");
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BeamToCpp)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(CppToBeam)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(RoundTrip)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace presence
