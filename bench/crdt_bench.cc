// Timings and memory of the tracker CRDT on the data that
// bench/tracker_state_bench.exs gives Phoenix.Tracker.State, so the two can be
// compared figure by figure.
//
// Data shape (as in the Elixir script):
//   replicas   A = {'a@127.0.0.1', 1} receives; B = {'b@127.0.0.1', 2} is the
//              source of every presence in the merge and extract figures.
//   presence i topic "topic:<i mod 100>", pid <client@127.0.0.1.i.0> of
//              creation 1, key "user:<i>", meta #{phx_ref => <i as 16
//              lower-case hex digits>, name => "user <i>"}.
//   Presences are joined in order of i; every 10,000 joins the state is
//   compacted and its delta reset, as a shard's broadcasts would do.
//
// Merges take their transfer or delta as decoded from the external format,
// as a replica receives it. Timed sections exclude setup (each iteration
// works on a fresh copy made outside the timing). The heap keeps freed memory
// for reuse, as presence_node's does (cnode/heap_policy.h), so an iteration
// does not pay for faulting in again the pages the previous one gave back.
// Memory is counted by a replacement of the global operator new/delete
// (usable bytes of every live allocation) and cross-checked with mallinfo2
// (arena and mmapped bytes in use).
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <utility>

#include "cnode/heap_policy.h"
#include "crdt/clock.h"
#include "crdt/state.h"
#include "crdt/wire.h"
#include "term/codec.h"
#include "term/term.h"

namespace {

std::atomic<std::int64_t> live_bytes{0};

void* counted_alloc(std::size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  live_bytes.fetch_add(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  return p;
}

void counted_free(void* p) {
  if (p == nullptr) return;
  live_bytes.fetch_sub(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}

}  // namespace

void* operator new(std::size_t size) {
  return counted_alloc(size);
}
void* operator new[](std::size_t size) {
  return counted_alloc(size);
}
void operator delete(void* p) noexcept {
  counted_free(p);
}
void operator delete[](void* p) noexcept {
  counted_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  counted_free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  counted_free(p);
}

namespace presence {
namespace {

const bool heap_policy_set = (retain_freed_memory(), true);

// What malloc holds, from its arenas and its mmapped blocks.
std::size_t heap_in_use() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

constexpr int kTopics = 100;
constexpr int kBatch = 10'000;

const ReplicaRef& replica_a() {
  static const ReplicaRef ref{Atom("a@127.0.0.1"), 1};
  return ref;
}

const ReplicaRef& replica_b() {
  static const ReplicaRef ref{Atom("b@127.0.0.1"), 2};
  return ref;
}

PresenceValue presence(int i) {
  static const Atom client("client@127.0.0.1");
  char ref[17];
  std::snprintf(ref, sizeof ref, "%016x", static_cast<unsigned>(i));
  return {Term::pid(PidValue{client, static_cast<std::uint32_t>(i), 0, 1}),
          Term::binary("topic:" + std::to_string(i % kTopics)),
          Term::binary("user:" + std::to_string(i)),
          Term::map({{Term::atom("phx_ref"), Term::binary(ref)},
                     {Term::atom("name"), Term::binary("user " + std::to_string(i))}})};
}

void join_each(State* state, int from, int to) {
  for (int i = from; i < to; ++i) {
    PresenceValue p = presence(i);
    state->join(p.pid, p.topic, p.key, p.meta);
  }
}

// Joins presences from..to-1, compacting and resetting the delta after every
// kBatch joins.
void join_range(State* state, int from, int to) {
  while (from < to) {
    const int batch_end = std::min(to, (from / kBatch + 1) * kBatch);
    join_each(state, from, batch_end);
    state->compact();
    state->reset_delta();
    from = batch_end;
  }
}

State build(const ReplicaRef& replica, int count) {
  State state(replica);
  join_range(&state, 0, count);
  return state;
}

State knowing_b() {
  State state(replica_a());
  state.replica_up(replica_b());
  return state;
}

// The timed part of an iteration, measured by hand so that the untimed setup
// and teardown (copies of 100,000-presence states) stay out.
template <class F>
void time_iteration(benchmark::State& bench, F&& body) {
  const auto start = std::chrono::steady_clock::now();
  body();
  const auto stop = std::chrono::steady_clock::now();
  bench.SetIterationTime(std::chrono::duration<double>(stop - start).count());
}

// What a replica merges is always decoded from a peer's message: a transfer
// or a delta as it arrives, in its own freshly decoded terms (not sharing
// the sender's, as extract's result does).
WholeState as_received(const WholeState& transfer) {
  DecodeResult term = decode_whole(encode(encode_whole_state(transfer)));
  return decode_whole_state(term.term()).value();
}

Delta as_received(const Delta& delta) {
  DecodeResult term = decode_whole(encode(encode_delta(delta)));
  return decode_delta(term.term()).value();
}

// Built once, on first use; setup of the fixtures is never timed.
struct Fixtures {
  State source_100k = build(replica_b(), 100'000);
  WholeState transfer_100k = as_received(source_100k.extract(replica_a(), knowing_b().context()));
};

const Fixtures& fixtures() {
  static const Fixtures fixtures;
  return fixtures;
}

// A holding presences 0..49,999 (merged from B when B had only those), and
// B's transfer of 100,000 presences for it.
struct OverlapFixture {
  State holder = knowing_b();
  WholeState transfer;
  OverlapFixture() {
    State half = build(replica_b(), 50'000);
    holder.merge(as_received(half.extract(replica_a(), holder.context())));
    join_range(&half, 50'000, 100'000);
    transfer = as_received(half.extract(replica_a(), holder.context()));
  }
};

// A holding B's 100,000 presences, and B's next delta of 1,000 joins.
struct DeltaFixture {
  State holder = knowing_b();
  Delta delta;
  DeltaFixture() {
    holder.merge(fixtures().transfer_100k);
    State source = fixtures().source_100k;
    source.reset_delta();
    join_each(&source, 100'000, 101'000);
    delta = as_received(extract(source.delta(), replica_a(), holder.context()));
  }
};

// 1,000,000 presences joined on A, and the heap they took.
struct MillionFixture {
  double bytes = 0;
  double mallinfo_bytes = 0;
  State state{replica_a()};
  MillionFixture() {
    const std::int64_t before = live_bytes.load();
    const std::size_t heap_before = heap_in_use();
    join_range(&state, 0, 1'000'000);
    bytes = static_cast<double>(live_bytes.load() - before);
    mallinfo_bytes = static_cast<double>(heap_in_use() - heap_before);
  }
};

// Each figure is the median of 9 runs of a few iterations, like the
// Elixir script's median of 9 runs: on a shared machine a median of fewer
// runs moves a lot from one invocation to the next.
void median_of_runs(benchmark::internal::Benchmark* bench) {
  bench->UseManualTime()->Iterations(3)->Repetitions(9)->ReportAggregatesOnly(true);
}

// A, which knows B but holds nothing, merges B's 100,000 presences.
void BM_MergeIntoEmpty(benchmark::State& bench) {
  const WholeState& transfer = fixtures().transfer_100k;
  for (auto _ : bench) {
    State receiver = knowing_b();
    MergeResult result;
    time_iteration(bench, [&] { result = receiver.merge(transfer); });
    if (result.joins.size() != 100'000) bench.SkipWithError("wrong number of joins");
  }
}
BENCHMARK(BM_MergeIntoEmpty)->Apply(median_of_runs)->Unit(benchmark::kMillisecond);

// A holds presences 0..49,999 and merges B's 100,000 presences.
void BM_MergeIntoOverlap(benchmark::State& bench) {
  static const OverlapFixture fixture;
  for (auto _ : bench) {
    State receiver = fixture.holder;
    MergeResult result;
    time_iteration(bench, [&] { result = receiver.merge(fixture.transfer); });
    if (result.joins.size() != 50'000 || receiver.size() != 100'000) {
      bench.SkipWithError("wrong merge result");
    }
  }
}
BENCHMARK(BM_MergeIntoOverlap)->Apply(median_of_runs)->Unit(benchmark::kMillisecond);

// A holds B's 100,000 presences and merges B's delta of 1,000 new ones.
void BM_MergeDelta(benchmark::State& bench) {
  static const DeltaFixture fixture;
  for (auto _ : bench) {
    State receiver = fixture.holder;
    MergeResult result;
    time_iteration(bench, [&] { result = receiver.merge(fixture.delta); });
    if (result.joins.size() != 1'000 || receiver.size() != 101'000) {
      bench.SkipWithError("wrong merge result");
    }
  }
}
BENCHMARK(BM_MergeDelta)->Apply(median_of_runs)->Unit(benchmark::kMicrosecond);

// B's whole state extracted for a transfer to A.
void BM_Extract(benchmark::State& bench) {
  const State& source = fixtures().source_100k;
  const Context asker = knowing_b().context();
  for (auto _ : bench) {
    WholeState whole;
    time_iteration(bench, [&] { whole = source.extract(replica_a(), asker); });
    if (whole.values.size() != 100'000) bench.SkipWithError("wrong extract size");
  }
}
BENCHMARK(BM_Extract)->Apply(median_of_runs)->Unit(benchmark::kMillisecond);

// get_by_topic of a 10,000-presence topic among 1,000,000 presences, and the
// memory those presences take. The time is that of building the list, as the
// Elixir figure is (the BEAM frees a dropped list in a later collection, at
// no cost to the call); what dropping the list costs here (a count update per
// meta) is the release_us counter.
void BM_GetByTopic(benchmark::State& bench) {
  static const MillionFixture fixture;
  const Term topic = Term::binary("topic:0");
  double release_seconds = 0;
  for (auto _ : bench) {
    std::vector<KeyMeta> list;
    time_iteration(bench, [&] { list = fixture.state.get_by_topic(topic); });
    if (list.size() != 10'000) bench.SkipWithError("wrong topic size");
    const auto start = std::chrono::steady_clock::now();
    list = {};
    release_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  bench.counters["release_us"] = release_seconds * 1e6 / static_cast<double>(bench.iterations());
  bench.counters["bytes_per_presence"] = fixture.bytes / 1'000'000;
  bench.counters["mallinfo_bytes_per_presence"] = fixture.mallinfo_bytes / 1'000'000;
}
BENCHMARK(BM_GetByTopic)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.5)
    ->Repetitions(9)
    ->ReportAggregatesOnly(true);

// Memory of a 100,000-presence state (B's, built by joins; the merged copy
// on A would share its terms with the transfer).
void BM_BytesPerPresence100k(benchmark::State& bench) {
  for (auto _ : bench) {
    const std::int64_t before = live_bytes.load();
    const std::size_t heap_before = heap_in_use();
    State state = build(replica_b(), 100'000);
    bench.counters["bytes_per_presence"] =
        static_cast<double>(live_bytes.load() - before) / 100'000;
    bench.counters["mallinfo_bytes_per_presence"] =
        static_cast<double>(heap_in_use() - heap_before) / 100'000;
    benchmark::DoNotOptimize(state);
  }
}
BENCHMARK(BM_BytesPerPresence100k)->Unit(benchmark::kMillisecond)->Iterations(1);

// The transfer_ack payload of a 100,000-presence whole state: to a term and
// its external format, and back.
void BM_WireEncode(benchmark::State& bench) {
  const WholeState& whole = fixtures().transfer_100k;
  std::size_t size = 0;
  for (auto _ : bench) {
    std::string bytes = encode(encode_whole_state(whole));
    size = bytes.size();
    benchmark::DoNotOptimize(bytes);
  }
  bench.counters["bytes"] = static_cast<double>(size);
}
BENCHMARK(BM_WireEncode)->Unit(benchmark::kMillisecond)->Iterations(5);

void BM_WireDecode(benchmark::State& bench) {
  const std::string bytes = encode(encode_whole_state(fixtures().transfer_100k));
  for (auto _ : bench) {
    DecodeResult term = decode_whole(bytes);
    WireResult<WholeState> whole = decode_whole_state(term.term());
    if (!whole.ok() || whole.value().values.size() != 100'000) {
      bench.SkipWithError("decode failed");
    }
    benchmark::DoNotOptimize(whole);
  }
  bench.counters["bytes"] = static_cast<double>(bytes.size());
}
BENCHMARK(BM_WireDecode)->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace
}  // namespace presence
