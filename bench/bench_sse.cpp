// Benchmarks of the SSE delta event between two snapshots of generate_manifest(N, 301)
// (bench/manifest_generator.h) for N = 10, 1 000 and 10 000 connectors, where the second
// snapshot changes one connector's endpoint. Bytes processed is the size of both payloads.
//
//   BM_SseDeltaEvent             sse_delta_event(previous, next): what the SSE hub builds once
//                                per published snapshot for the delta-mode subscribers.
//   BM_SseDeltaEventFromHistory  sse_delta_event(recorded payload, version, next): what a
//                                subscriber resuming from a recorded version is sent.
#include <map>
#include <memory>
#include <string>

#include <benchmark/benchmark.h>

#include "cortex_connectors/registry.h"
#include "cortex_connectors/sse.h"
#include "manifest_generator.h"

namespace cc = cortex_connectors;

namespace {

constexpr std::uint64_t kSeed = 301;
constexpr std::string_view kKey = "bench-key-0123456789abcdef012345";

struct Pair {
  std::shared_ptr<const cc::Snapshot> previous;
  std::shared_ptr<const cc::Snapshot> next;
};

// Two consecutive snapshots of N connectors, built once per N.
const Pair* cached_pair(benchmark::State& state) {
  static std::map<std::int64_t, Pair> cache;
  const std::int64_t n = state.range(0);
  auto it = cache.find(n);
  if (it == cache.end()) {
    cc::RegistryOptions options;
    options.signing_key = std::string(kKey);
    options.keep_manifest = false;
    options.gzip_level = 1;
    options.brotli_quality = 0;
    cc::Registry registry(std::move(options));
    std::string text = cc::bench::generate_manifest(static_cast<std::size_t>(n), kSeed);
    auto first = registry.refresh_from_text(text);
    const std::size_t at = text.find(R"("endpoint":"https://)");
    if (!first || at == std::string::npos) {
      state.SkipWithError("no first snapshot");
      return nullptr;
    }
    text.insert(at + sizeof(R"("endpoint":"https://)") - 1, "changed.");
    auto second = registry.refresh_from_text(text);
    if (!second) {
      state.SkipWithError("no second snapshot");
      return nullptr;
    }
    it = cache.emplace(n, Pair{*first, *second}).first;
  }
  return &it->second;
}

void BM_SseDeltaEvent(benchmark::State& state) {
  const Pair* pair = cached_pair(state);
  if (pair == nullptr) return;
  for (auto _ : state) {
    auto event = cc::sse_delta_event(*pair->previous, *pair->next);
    benchmark::DoNotOptimize(event);
  }
  state.SetBytesProcessed(
      static_cast<std::int64_t>(state.iterations()) *
      static_cast<std::int64_t>(pair->previous->body.size() + pair->next->body.size()));
}

void BM_SseDeltaEventFromHistory(benchmark::State& state) {
  const Pair* pair = cached_pair(state);
  if (pair == nullptr) return;
  const std::string recorded(pair->previous->canonical_payload());
  for (auto _ : state) {
    auto event = cc::sse_delta_event(recorded, pair->previous->version, *pair->next);
    benchmark::DoNotOptimize(event);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(recorded.size() + pair->next->body.size()));
}

}  // namespace

BENCHMARK(BM_SseDeltaEvent)->Arg(10)->Arg(1000)->Arg(10000);
BENCHMARK(BM_SseDeltaEventFromHistory)->Arg(10)->Arg(1000)->Arg(10000);

BENCHMARK_MAIN();
