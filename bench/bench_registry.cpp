// Benchmarks of the Registry: the per-request read path, the unchanged-file refresh, and the
// build-time cost of a changed manifest with its compression. Inputs are generate_manifest(N, 301)
// (bench/manifest_generator.h), and generate_manifest(N, 302) where two contents alternate.
//
//   BM_CurrentAndBody               registry.current() + body size and first byte, what every
//                                   GET does before writing: an atomic shared_ptr load and
//                                   release. N = 1 000, 1 and 8 threads, no refresh running.
//   BM_CurrentAndBodyDuringRefresh  the same while a background thread (started by Setup,
//                                   joined by Teardown) calls refresh_from_text() with two
//                                   alternating N = 3 contents as fast as it can (gzip 1,
//                                   brotli 0, so that it swaps as often as it can): every
//                                   refresh publishes a new snapshot.
//                                   `refreshes_per_s` is the swap rate during the timed loop.
//   BM_RefreshUnchanged             registry.refresh() of an unchanged file (N = 3 and 10 000):
//                                   read + SHA-256 + compare, then return the current snapshot.
//   BM_ReadAndHash                  read_manifest_file() + libcrypto SHA-256 (as the library) + hex
//   of
//                                   the same file: the floor for BM_RefreshUnchanged.
//   BM_RefreshChanged               refresh_from_text() with two alternating contents (N = 3 and
//                                   10 000), default compression levels: a full rebuild and
//                                   publish per iteration. Counters give each stage's mean time
//                                   from Snapshot::timings (µs): hash_us (StageTimings::read,
//                                   SHA-256 of the text here), parse_us, validate_us, build_us,
//                                   sign_us, compress_us (gzip + brotli + ETag hash + metrics
//                                   text + moving the manifest), and the body sizes.
//   BM_Gzip                         zlib alone on the same snapshot body (gzip 9 up to 256 KiB
//                                   of body, gzip 6 above).
//   BM_Brotli/N/Q                   the library's brotli_compress (src/internal/compress.cpp) at
//                                   quality Q on that body; BM_BrotliDefaultWindow/N/Q is the
//                                   same call with brotli's default window, as it was before
//                                   the window was fitted to the body (the anchor).
//
// Bytes processed is the manifest text size, except for BM_CurrentAndBody* (none: nothing is
// copied) and BM_Gzip / BM_Brotli (the body size, the bytes compressed).
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include <benchmark/benchmark.h>
#include <brotli/encode.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "bench_utils.h"
#include "cortex_connectors/manifest.h"
#include "cortex_connectors/registry.h"
#include "cortex_connectors/snapshot.h"
#include "internal/compress.h"
#include "manifest_generator.h"

using cortex_connectors::bench::TempDir;

namespace {

namespace cc = cortex_connectors;

constexpr std::uint64_t kSeed = 301;
constexpr std::uint64_t kOtherSeed = 302;
constexpr std::string_view kKey = "bench-key-0123456789abcdef012345";
// The body size up to which the registry compresses at the best levels (src/registry.cpp).
constexpr std::size_t kSmallBody = std::size_t{256} << 10;

TempDir& temp_dir() {
  static TempDir dir{"registry"};
  return dir;
}

cc::RegistryOptions options_with_key() {
  cc::RegistryOptions options;
  options.signing_key = std::string(kKey);
  return options;
}

std::int64_t to_i64(std::size_t n) { return static_cast<std::int64_t>(n); }

// ---- current() + body ------------------------------------------------------------------------

// A registry holding one N = 1 000 snapshot; nothing refreshes it.
cc::Registry& quiet_registry() {
  static cc::Registry* registry = [] {
    auto* r = new cc::Registry(options_with_key());  // NOLINT: lives for the whole run
    (void)r->refresh_from_text(cc::bench::generate_manifest(1000, kSeed));
    return r;
  }();
  return *registry;
}

// A registry that the background thread of BM_CurrentAndBodyDuringRefresh keeps refreshing.
struct Busy {
  std::string a = cc::bench::generate_manifest(3, kSeed);
  std::string b = cc::bench::generate_manifest(3, kOtherSeed);
  cc::Registry registry{[] {
    auto options = options_with_key();
    options.gzip_level = 1;
    options.brotli_quality = 0;
    return options;
  }()};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> refreshes{0};
  std::atomic<std::uint64_t> failures{0};
  bool a_is_current = true;  // kept across runs, so that every refresh changes the content
  std::thread thread;

  Busy() { (void)registry.refresh_from_text(a); }
};

Busy& busy() {
  static Busy* b = new Busy();  // NOLINT: lives for the whole run
  return *b;
}

void start_refresher(const benchmark::State& /*state*/) {
  Busy& b = busy();
  b.stop = false;
  b.thread = std::thread([&b] {
    while (!b.stop.load(std::memory_order_relaxed)) {
      b.a_is_current = !b.a_is_current;
      if (!b.registry.refresh_from_text(b.a_is_current ? b.a : b.b)) b.failures.fetch_add(1);
      b.refreshes.fetch_add(1, std::memory_order_relaxed);
    }
  });
}

void stop_refresher(const benchmark::State& /*state*/) {
  Busy& b = busy();
  b.stop = true;
  if (b.thread.joinable()) b.thread.join();
}

void current_and_body_loop(benchmark::State& state, const cc::Registry& registry) {
  if (!registry.has_snapshot()) {
    state.SkipWithError("no snapshot");
    return;
  }
  for (auto _ : state) {
    std::shared_ptr<const cc::Snapshot> snapshot = registry.current();
    const std::string& body = snapshot->body;
    benchmark::DoNotOptimize(body.size());
    benchmark::DoNotOptimize(body.front());
  }
}

void BM_CurrentAndBody(benchmark::State& state) { current_and_body_loop(state, quiet_registry()); }

void BM_CurrentAndBodyDuringRefresh(benchmark::State& state) {
  Busy& b = busy();
  using Clock = std::chrono::steady_clock;
  const std::uint64_t refreshes_before = b.refreshes.load();
  const auto started = Clock::now();
  current_and_body_loop(state, b.registry);
  if (state.thread_index() == 0) {  // after the loop's closing barrier: every thread is done
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    state.counters["refreshes_per_s"] =
        static_cast<double>(b.refreshes.load() - refreshes_before) / seconds;
    if (b.failures.load() != 0) state.SkipWithError("a background refresh failed");
  }
}

// ---- refresh of an unchanged file -------------------------------------------------------------

// A manifest file of N connectors and a registry that has loaded it.
struct FileRegistry {
  std::string path;
  std::size_t bytes = 0;
  std::unique_ptr<cc::Registry> registry;
  std::uint64_t version = 0;
  std::string error;
};

const FileRegistry* file_registry(benchmark::State& state) {
  static std::map<std::int64_t, std::unique_ptr<FileRegistry>> cache;
  auto it = cache.find(state.range(0));
  if (it == cache.end()) {
    auto f = std::make_unique<FileRegistry>();
    const auto n = static_cast<std::size_t>(state.range(0));
    const std::string text = cc::bench::generate_manifest(n, kSeed);
    f->bytes = text.size();
    f->path = (temp_dir().path() / ("connectors-" + std::to_string(n) + ".json")).string();
    std::ofstream out(f->path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (temp_dir().path().empty() || !out) {
      f->error = "cannot write " + f->path;
    } else {
      auto options = options_with_key();
      options.manifest_path = f->path;
      f->registry = std::make_unique<cc::Registry>(std::move(options));
      if (auto snapshot = f->registry->refresh()) {
        f->version = (*snapshot)->version;
      } else {
        f->error = snapshot.error().message;
      }
    }
    it = cache.emplace(state.range(0), std::move(f)).first;
  }
  if (!it->second->error.empty()) {
    state.SkipWithError(it->second->error.c_str());
    return nullptr;
  }
  return it->second.get();
}

void BM_RefreshUnchanged(benchmark::State& state) {
  const FileRegistry* f = file_registry(state);
  if (f == nullptr) return;
  for (auto _ : state) {
    auto snapshot = f->registry->refresh();
    if (!snapshot) {
      state.SkipWithError("refresh failed");
      break;
    }
    benchmark::DoNotOptimize(*snapshot);
  }
  if (f->registry->current()->version != f->version) {
    state.SkipWithError("an unchanged refresh published a new snapshot");
  }
  state.SetBytesProcessed(state.iterations() * to_i64(f->bytes));
}

void BM_ReadAndHash(benchmark::State& state) {
  const FileRegistry* f = file_registry(state);
  if (f == nullptr) return;
  static constexpr char kHex[] = "0123456789abcdef";
  for (auto _ : state) {
    auto file = cc::read_manifest_file(f->path);
    if (!file) {
      state.SkipWithError("read_manifest_file failed");
      break;
    }
    unsigned char digest[32];
    unsigned int len = 0;
    EVP_Digest(file->content.data(), file->content.size(), digest, &len, EVP_sha256(), nullptr);
    std::string hex(2 * sizeof digest, '\0');
    for (std::size_t i = 0; i < sizeof digest; ++i) {
      hex[2 * i] = kHex[digest[i] >> 4U];
      hex[2 * i + 1] = kHex[digest[i] & 0xFU];
    }
    benchmark::DoNotOptimize(hex);
  }
  state.SetBytesProcessed(state.iterations() * to_i64(f->bytes));
}

// ---- rebuild of changed content, compression ------------------------------------------------

struct Alternating {
  std::string a;
  std::string b;
  std::unique_ptr<cc::Registry> registry;
  std::string body;  // the body of the first snapshot built, for BM_Gzip / BM_Brotli
  // Whether `a` is current: kept across runs and repetitions, so that every refresh changes the
  // content (a refresh of the current content would be BM_RefreshUnchanged).
  bool a_is_current = false;
};

Alternating& alternating(benchmark::State& state) {
  static std::map<std::int64_t, std::unique_ptr<Alternating>> cache;
  auto it = cache.find(state.range(0));
  if (it == cache.end()) {
    auto alt = std::make_unique<Alternating>();
    const auto n = static_cast<std::size_t>(state.range(0));
    alt->a = cc::bench::generate_manifest(n, kSeed);
    alt->b = cc::bench::generate_manifest(n, kOtherSeed);
    alt->registry = std::make_unique<cc::Registry>(options_with_key());
    if (auto snapshot = alt->registry->refresh_from_text(alt->a)) {
      alt->body = (*snapshot)->body;
      alt->a_is_current = true;
    }
    it = cache.emplace(state.range(0), std::move(alt)).first;
  }
  return *it->second;
}

void BM_RefreshChanged(benchmark::State& state) {
  Alternating& alt = alternating(state);
  if (alt.body.empty()) {
    state.SkipWithError("the first refresh failed");
    return;
  }
  cc::StageTimings sum;
  std::size_t body = 0;
  std::size_t gzip = 0;
  std::size_t brotli = 0;
  const std::uint64_t first_version = alt.registry->current()->version;
  for (auto _ : state) {
    alt.a_is_current = !alt.a_is_current;
    auto snapshot = alt.registry->refresh_from_text(alt.a_is_current ? alt.a : alt.b);
    if (!snapshot) {
      state.SkipWithError("refresh_from_text failed");
      break;
    }
    const cc::StageTimings& t = (*snapshot)->timings;
    sum.read += t.read;
    sum.parse += t.parse;
    sum.validate += t.validate;
    sum.build += t.build;
    sum.sign += t.sign;
    sum.compress += t.compress;
    body = (*snapshot)->body.size();
    gzip = (*snapshot)->body_gzip.size();
    brotli = (*snapshot)->body_brotli.size();
  }
  if (alt.registry->current()->version - first_version !=
      static_cast<std::uint64_t>(state.iterations())) {
    state.SkipWithError("a refresh did not publish a new snapshot");
  }
  auto mean_us = [](std::chrono::nanoseconds total) {
    return benchmark::Counter(static_cast<double>(total.count()) / 1e3,
                              benchmark::Counter::kAvgIterations);
  };
  state.counters["hash_us"] = mean_us(sum.read);
  state.counters["parse_us"] = mean_us(sum.parse);
  state.counters["validate_us"] = mean_us(sum.validate);
  state.counters["build_us"] = mean_us(sum.build);
  state.counters["sign_us"] = mean_us(sum.sign);
  state.counters["compress_us"] = mean_us(sum.compress);
  state.counters["body_bytes"] = static_cast<double>(body);
  state.counters["gzip_bytes"] = static_cast<double>(gzip);
  state.counters["brotli_bytes"] = static_cast<double>(brotli);
  state.SetBytesProcessed(state.iterations() * to_i64(alt.a.size()));
}

// src/internal/compress.cpp's gzip_compress at the level src/registry.cpp picks.
void BM_Gzip(benchmark::State& state) {
  const std::string& body = alternating(state).body;
  if (body.empty()) {
    state.SkipWithError("the first refresh failed");
    return;
  }
  const int level = body.size() <= kSmallBody ? 9 : 6;
  std::size_t compressed = 0;
  for (auto _ : state) {
    z_stream zs{};
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      state.SkipWithError("deflateInit2 failed");
      break;
    }
    std::string out(deflateBound(&zs, static_cast<uLong>(body.size())), '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));  // NOLINT: zlib API
    zs.avail_in = static_cast<uInt>(body.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());  // NOLINT
    zs.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
      state.SkipWithError("deflate failed");
      break;
    }
    compressed = out.size();
    benchmark::DoNotOptimize(out);
  }
  state.counters["level"] = level;
  state.counters["ratio"] = static_cast<double>(body.size()) / static_cast<double>(compressed);
  state.SetBytesProcessed(state.iterations() * to_i64(body.size()));
}

// brotli at quality range(1) on the snapshot body of range(0) connectors: the library's call
// (src/internal/compress.cpp, a window fitted to the body) and, as its anchor, the call it made
// before with brotli's default window (22 bits). The registry publishes a body with quality 5
// and, up to 64 KiB, replaces it with quality 11 right after.
void brotli_bench(benchmark::State& state, bool default_window) {
  const std::string& body = alternating(state).body;
  if (body.empty()) {
    state.SkipWithError("the first refresh failed");
    return;
  }
  const auto quality = static_cast<int>(state.range(1));
  std::size_t compressed = 0;
  for (auto _ : state) {
    std::string out;
    if (default_window) {
      out.resize(BrotliEncoderMaxCompressedSize(body.size()));
      std::size_t size = out.size();
      if (BrotliEncoderCompress(quality, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT, body.size(),
                                reinterpret_cast<const uint8_t*>(body.data()), &size,  // NOLINT
                                reinterpret_cast<uint8_t*>(out.data())) ==             // NOLINT
          BROTLI_FALSE) {
        state.SkipWithError("BrotliEncoderCompress failed");
        break;
      }
      out.resize(size);
    } else {
      out = cc::internal::brotli_compress(body, quality);
    }
    compressed = out.size();
    benchmark::DoNotOptimize(out);
  }
  state.counters["quality"] = quality;
  state.counters["ratio"] = static_cast<double>(body.size()) / static_cast<double>(compressed);
  state.SetBytesProcessed(state.iterations() * to_i64(body.size()));
}

void BM_Brotli(benchmark::State& state) { brotli_bench(state, false); }
void BM_BrotliDefaultWindow(benchmark::State& state) { brotli_bench(state, true); }

BENCHMARK(BM_CurrentAndBody)->Threads(1)->Threads(8);
BENCHMARK(BM_CurrentAndBodyDuringRefresh)
    ->Threads(1)
    ->Threads(8)
    ->Setup(start_refresher)
    ->Teardown(stop_refresher);
BENCHMARK(BM_RefreshUnchanged)->Arg(3)->Arg(10000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ReadAndHash)->Arg(3)->Arg(10000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RefreshChanged)->Arg(3)->Arg(10000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Gzip)->Arg(3)->Arg(10000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Brotli)->Args({3, 5})->Args({3, 11})->Args({10000, 5})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BrotliDefaultWindow)
    ->Args({3, 5})
    ->Args({3, 11})
    ->Args({10000, 5})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
