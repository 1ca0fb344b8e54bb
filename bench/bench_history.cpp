// Benchmarks of the snapshot history (history.h, sqlite_history.h). Inputs are
// generate_manifest(N, 301) and generate_manifest(N, 302), alternated so that every refresh
// publishes a new snapshot; the database lives in a temporary directory on the same disk as
// /tmp.
//
//   BM_RecordSqlite        what the recorder thread does per snapshot: make_history_entry()
//                          (copies of the manifest and payload), SqliteHistoryStore::record()
//                          (one INSERT, one WAL commit with fsync) and prune() to 10 entries.
//                          N = 1 000 and 10 000. `entry_bytes` is manifest + payload.
//   BM_Publish/N/0         Registry::refresh_from_text() of the alternating contents without a
//                          history: the anchor. `publish_us` is the mean time from the call to
//                          the listener seeing the new snapshot (what an SSE subscriber waits
//                          for); the iteration time also includes the post-publish work
//                          (refining small bodies).
//   BM_Publish/N/1         the same with a HistoryRecorder on a SQLite store (retention 10):
//                          recording runs on the recorder's thread while the next refresh runs.
//                          The recorder is flushed after the timed loop; `recorded` counts the
//                          entries written.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include <benchmark/benchmark.h>

#include "bench_utils.h"
#include "cortex_connectors/history.h"
#include "cortex_connectors/registry.h"
#include "cortex_connectors/sqlite_history.h"
#include "manifest_generator.h"

using cortex_connectors::bench::TempDir;

namespace {

namespace cc = cortex_connectors;
using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view kKey = "bench-key-0123456789abcdef012345";

std::shared_ptr<cc::HistoryStore> open_store(const TempDir& dir) {
  auto store = cc::SqliteHistoryStore::open((dir.path() / cc::kHistoryDatabaseName).string());
  if (!store) return nullptr;
  return std::shared_ptr<cc::HistoryStore>(std::move(*store));
}

void BM_RecordSqlite(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  cc::RegistryOptions options;
  options.signing_key = std::string(kKey);
  cc::Registry registry(options);
  const std::string manifest = cc::bench::generate_manifest(n, 301);
  auto snap = registry.refresh_from_text(manifest);
  TempDir dir{"history"};
  auto store = open_store(dir);
  if (!snap || !store) {
    state.SkipWithError("setup failed");
    return;
  }
  auto copy = std::make_shared<cc::Snapshot>(**snap);
  std::size_t bytes = 0;
  for (auto _ : state) {
    ++copy->version;
    cc::HistoryEntry e = cc::make_history_entry(*copy, manifest);
    bytes = e.manifest.size() + e.payload.size();
    if (!store->record(e) ||
        !store->prune({10, std::chrono::seconds(0)}, std::chrono::system_clock::now())) {
      state.SkipWithError("record failed");
      break;
    }
  }
  state.counters["entry_bytes"] = static_cast<double>(bytes);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
}

void BM_Publish(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const bool with_history = state.range(1) != 0;
  const std::string a = cc::bench::generate_manifest(n, 301);
  const std::string b = cc::bench::generate_manifest(n, 302);
  TempDir dir{"history"};
  cc::RegistryOptions options;
  options.signing_key = std::string(kKey);
  std::shared_ptr<cc::HistoryRecorder> recorder;
  if (with_history) {
    auto store = open_store(dir);
    if (!store) {
      state.SkipWithError("cannot open the store");
      return;
    }
    cc::HistoryRecorderOptions ho;
    ho.retention.max_entries = 10;
    recorder = std::make_shared<cc::HistoryRecorder>(std::move(store), ho);
    options.history = recorder;
  }
  cc::Registry registry(options);
  std::atomic<std::int64_t> published_at{0};
  registry.subscribe([&](const std::shared_ptr<const cc::Snapshot>&) {
    published_at = SteadyClock::now().time_since_epoch().count();
  });
  if (!registry.refresh_from_text(a)) {
    state.SkipWithError("the first refresh failed");
    return;
  }
  if (recorder) recorder->flush();
  bool a_current = true;
  double publish_ns = 0;
  for (auto _ : state) {
    a_current = !a_current;
    const auto start = SteadyClock::now();
    auto snap = registry.refresh_from_text(a_current ? a : b);
    if (!snap) {
      state.SkipWithError("refresh failed");
      break;
    }
    publish_ns += static_cast<double>(published_at.load() - start.time_since_epoch().count());
    benchmark::DoNotOptimize(snap);
  }
  state.counters["publish_us"] = publish_ns / 1000.0 / static_cast<double>(state.iterations());
  if (recorder) {
    recorder->flush();
    state.counters["recorded"] = static_cast<double>(recorder->status().recorded);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(a.size()));
}

}  // namespace

BENCHMARK(BM_RecordSqlite)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Publish)
    ->Args({1000, 0})
    ->Args({1000, 1})
    ->Args({10000, 0})
    ->Args({10000, 1})
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
