// Codec throughput: terms per second for a real Phoenix heartbeat carrying a
// delta of three joins, and for a tracker-sized map of 1000 presences.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "term/codec.h"
#include "term/term.h"

namespace presence {
namespace {

// tests/golden, found from this file's place in the tree unless
// PRESENCE_GOLDEN_DIR says otherwise.
std::filesystem::path golden_dir() {
  if (const char* dir = std::getenv("PRESENCE_GOLDEN_DIR")) return dir;
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "tests" / "golden";
}

std::string heartbeat_bytes() {
  std::ifstream in(golden_dir() / "phoenix_pubsub-2.1.3" / "04_heartbeat_delta_3_joins.etf",
                   std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// 1000 entries shaped like Phoenix.Tracker.State values:
// {{replica, clock}} => {pid, topic, key, meta}.
Term presence_map() {
  Term replica = Term::tuple({Term::atom("a@vm"), Term::integer(1796314556334940)});
  std::vector<std::pair<Term, Term>> entries;
  for (int i = 0; i < 1000; ++i) {
    Term tag = Term::tuple({replica, Term::integer(i + 1)});
    Term meta = Term::map({{Term::atom("phx_ref"), Term::binary("GO3Kku7Nisbh3gCR")},
                           {Term::atom("device"), Term::binary(i % 2 ? "web" : "ios")},
                           {Term::atom("n"), Term::integer(i)}});
    Term pid = Term::pid(PidValue{Atom("a@vm"), static_cast<std::uint32_t>(100 + i), 0, 1});
    Term value = Term::tuple({pid, Term::binary("room:" + std::to_string(i % 10)),
                              Term::binary("user" + std::to_string(i)), meta});
    entries.emplace_back(tag, value);
  }
  return Term::map(std::move(entries));
}

void report(benchmark::State& state, std::size_t bytes_per_term) {
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes_per_term));
}

void BM_DecodeHeartbeatDelta(benchmark::State& state) {
  std::string bytes = heartbeat_bytes();
  if (!decode_whole(bytes).ok()) {
    state.SkipWithError("golden heartbeat capture not found or not decodable");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(decode_whole(bytes));
  report(state, bytes.size());
}
BENCHMARK(BM_DecodeHeartbeatDelta);

void BM_EncodeHeartbeatDelta(benchmark::State& state) {
  std::string bytes = heartbeat_bytes();
  DecodeResult heartbeat = decode_whole(bytes);
  if (!heartbeat.ok()) {
    state.SkipWithError("golden heartbeat capture not found or not decodable");
    return;
  }
  std::string out;
  for (auto _ : state) {
    out.clear();
    encode(heartbeat.term(), &out);
    benchmark::DoNotOptimize(out.data());
  }
  report(state, bytes.size());
}
BENCHMARK(BM_EncodeHeartbeatDelta);

void BM_Decode1000EntryMap(benchmark::State& state) {
  std::string bytes = encode(presence_map());
  for (auto _ : state) benchmark::DoNotOptimize(decode_whole(bytes));
  report(state, bytes.size());
}
BENCHMARK(BM_Decode1000EntryMap);

void BM_Encode1000EntryMap(benchmark::State& state) {
  Term map = presence_map();
  std::string bytes = encode(map);
  std::string out;
  for (auto _ : state) {
    out.clear();
    encode(map, &out);
    benchmark::DoNotOptimize(out.data());
  }
  report(state, bytes.size());
}
BENCHMARK(BM_Encode1000EntryMap);

// Lookups in the same map: the binary search over keys in term order.
void BM_Find1000EntryMap(benchmark::State& state) {
  Term map = presence_map();
  Term replica = Term::tuple({Term::atom("a@vm"), Term::integer(1796314556334940)});
  Term key = Term::tuple({replica, Term::integer(500)});
  for (auto _ : state) benchmark::DoNotOptimize(map.find(key));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Find1000EntryMap);

}  // namespace
}  // namespace presence
