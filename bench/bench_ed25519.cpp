// Benchmarks of the Ed25519 signature of a snapshot next to the HMAC one, on the canonical
// service-map payload of generate_manifest(N, 301) (bench/manifest_generator.h) for N = 10,
// 1 000 and 10 000 connectors. Bytes processed is the size of the canonical payload.
//
//   BM_HmacSignPayload      sign_hmac_sha256 over the canonical payload (what every snapshot pays).
//   BM_Ed25519SignPayload   Ed25519Key::sign over the same bytes (the extra cost per snapshot
//                           with CONNECTORS_SIGNING_KEY_FILE set).
//   BM_Ed25519VerifyPayload verify_ed25519 of a good signature over the same bytes (a consumer).
//   BM_SignServiceMap       sign_service_map(payload): canonical JSON + HMAC + body; Arg 1 adds
//                           one Ed25519 key ("signatures").
#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/keys.h"
#include "cortex_connectors/manifest.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/signing.h"
#include "manifest_generator.h"

namespace cc = cortex_connectors;

namespace {

constexpr std::uint64_t kSeed = 301;
constexpr std::string_view kHmacKey = "bench-key-0123456789abcdef012345";

// The service-map payload of N generated connectors, built once per N.
const cc::Json* cached_payload(benchmark::State& state, std::size_t n) {
  static std::map<std::size_t, cc::Json> cache;
  auto it = cache.find(n);
  if (it == cache.end()) {
    auto doc = cc::parse_json(cc::bench::generate_manifest(n, kSeed));
    if (!doc) {
      state.SkipWithError("parse_json failed");
      return nullptr;
    }
    auto manifest = cc::manifest_from_json(std::move(*doc));
    if (!manifest) {
      state.SkipWithError("manifest_from_json failed");
      return nullptr;
    }
    it = cache.emplace(n, cc::build_service_map(*manifest, "2025-10-10T00:00:00Z")).first;
  }
  return &it->second;
}

const std::string* cached_canonical(benchmark::State& state, std::size_t n) {
  static std::map<std::size_t, std::string> cache;
  auto it = cache.find(n);
  if (it == cache.end()) {
    const cc::Json* payload = cached_payload(state, n);
    if (payload == nullptr) return nullptr;
    it = cache.emplace(n, cc::canonical_json(*payload).value()).first;
  }
  return &it->second;
}

const cc::Ed25519Key& bench_key() {
  static const cc::Ed25519Key key = cc::Ed25519Key::generate();
  return key;
}

std::size_t connectors(const benchmark::State& state) {
  return static_cast<std::size_t>(state.range(0));
}

void BM_HmacSignPayload(benchmark::State& state) {
  const std::string* canonical = cached_canonical(state, connectors(state));
  if (canonical == nullptr) return;
  for (auto _ : state) {
    std::string sig = cc::sign_hmac_sha256(cc::as_bytes(kHmacKey), *canonical);
    benchmark::DoNotOptimize(sig);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(canonical->size()));
}

void BM_Ed25519SignPayload(benchmark::State& state) {
  const std::string* canonical = cached_canonical(state, connectors(state));
  if (canonical == nullptr) return;
  const auto& key = bench_key();
  for (auto _ : state) {
    std::string sig = key.sign(*canonical);
    benchmark::DoNotOptimize(sig);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(canonical->size()));
}

void BM_Ed25519VerifyPayload(benchmark::State& state) {
  const std::string* canonical = cached_canonical(state, connectors(state));
  if (canonical == nullptr) return;
  const auto& key = bench_key();
  const std::string sig = key.sign(*canonical);
  for (auto _ : state) {
    bool ok = cc::verify_ed25519(key.public_key(), *canonical, sig);
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(canonical->size()));
}

void BM_SignServiceMap(benchmark::State& state) {
  const cc::Json* payload = cached_payload(state, connectors(state));
  if (payload == nullptr) return;
  std::vector<cc::Ed25519Key> keys;
  if (state.range(1) != 0) keys.push_back(bench_key());
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto signed_map = cc::sign_service_map(*payload, cc::as_bytes(kHmacKey), keys);
    bytes = signed_map->canonical_payload().size();
    benchmark::DoNotOptimize(signed_map);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(bytes));
}

BENCHMARK(BM_HmacSignPayload)->Arg(10)->Arg(1000)->Arg(10000);
BENCHMARK(BM_Ed25519SignPayload)->Arg(10)->Arg(1000)->Arg(10000);
BENCHMARK(BM_Ed25519VerifyPayload)->Arg(10)->Arg(1000)->Arg(10000);
BENCHMARK(BM_SignServiceMap)->ArgsProduct({{10, 1000, 10000}, {0, 1}});

}  // namespace

BENCHMARK_MAIN();
