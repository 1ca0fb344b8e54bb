// Benchmarks of the manifest rebuild path, stage by stage and whole, on generate_manifest(N, 301)
// inputs (bench/manifest_generator.h) for N = 3, 100, 1 000, 10 000 and 100 000 connectors (the
// Arg), next to simdjson's bare DOM parse of the same text in the same run: the practical limit.
// Bytes processed is always the size of the manifest text, so at one N the ratio of two MB/s
// figures is the ratio of manifests per second. The `per_connector` counter is the time of one
// iteration divided by N (seconds, printed with an SI prefix: 850n is 850 ns per connector).
//
// The rebuild (what Registry does per change):
//   BM_SimdjsonDomParse  simdjson::dom::parser::parse of the text already in a padded_string,
//                        parser allocated once and reused: no tree, no checks. The limit.
//   BM_SimdjsonDomParseNewParser  the same with a new parser per call: what the library's
//                        parse costs above the 16 MiB its per-thread parser is kept for.
//   BM_ReadAndParse      read_manifest_file() from a temporary directory (page cache warm) +
//                        parse_manifest(): text -> Manifest, every rule checked, in one walk
//                        over simdjson's DOM (the walker of src/validate.cpp).
//   BM_ParseManifest     parse_manifest() alone: text -> Manifest.
//   BM_WritePayload      write_service_map_payload(Manifest): the canonical payload bytes,
//                        straight from the Manifest (no payload Json).
//   BM_Sign              sign_hmac_sha256 of those canonical bytes.
//   BM_RenderManifestMetrics  Metrics::render_manifest_text(Manifest): the per-connector
//                        Prometheus series the registry renders once per snapshot.
//   BM_WholeRebuild      sign_manifest_text(text): text in, signed body out (payload, HMAC
//                        and the body), written from simdjson's DOM of the text after one
//                        checking walk, without a Manifest. What Registry does per change,
//                        minus reading, hashing and compression.
//   BM_WholeRebuildViaManifest  parse_manifest(text) + sign_manifest_service_map(Manifest):
//                        the same bytes through the typed Manifest (the rebuild until the
//                        view-based path).
//   BM_WholeRebuildParallel  the same with ManifestLimits::parallel_connectors and
//                        write_service_map_payload's parallel_entries at 2048: from 2048
//                        connectors, half of them read and written on a second thread. The
//                        default is one thread (both 0).
// Times are real (wall-clock) times and CPU times of the whole process (both threads).
// The Json path (the public Json API; parse_manifest() falls back to it to list the findings of
// an invalid manifest), for comparison:
//   BM_JsonParse         parse_json() with the options parse_manifest() uses: the Json tree.
//   BM_JsonValidate      validate_manifest(const Json&): every rule checked and the Manifest
//                        built (then dropped); no document copy.
//   BM_JsonBuild         build_service_map(Manifest): the payload Json (freed in the loop).
//   BM_JsonCanonicalize  canonical_json(payload): the RFC 8785 bytes that are signed.
//   BM_JsonWholeRebuild  parse_json + manifest_from_json + build_service_map + sign_service_map:
//                        the rebuild as it was before the direct paths.
//
// `bench_manifest --dump DIR` instead writes the generated manifests for every N to
// DIR/connectors-<N>.manifest.json, checks each with parse_manifest() and exits.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include <benchmark/benchmark.h>
#include <simdjson.h>

#include "bench_utils.h"
#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/manifest.h"
#include "cortex_connectors/metrics.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/validate.h"
#include "internal/service_map.h"
#include "manifest_generator.h"

using cortex_connectors::bench::TempDir;

namespace {

namespace cc = cortex_connectors;

constexpr std::uint64_t kSeed = 301;
constexpr std::array<std::size_t, 5> kSizes = {3, 100, 1000, 10000, 100000};
constexpr std::string_view kKey = "bench-key-0123456789abcdef012345";
constexpr std::string_view kGeneratedAtFallback = "2025-10-10T00:00:00Z";
// BM_WholeRebuildParallel's threshold for a second thread, in connectors.
constexpr std::size_t kParallelFrom = 2048;

// The parse options parse_manifest() derives from the default ManifestLimits.
cc::JsonParseOptions manifest_parse_options() {
  const cc::ManifestLimits limits;
  cc::JsonParseOptions options;
  options.max_depth = limits.max_depth;
  options.max_document_bytes = limits.max_bytes;
  options.max_string_bytes = limits.max_string_bytes;
  options.reject_unsafe_integers = true;
  return options;
}

TempDir& temp_dir() {
  static TempDir dir{"manifest"};
  return dir;
}

bool write_file(const std::filesystem::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  return static_cast<bool>(out);
}

// Every stage's input for one N, built once, outside the timed loops, and kept for the run.
struct Input {
  std::string text;
  std::string path;  // the text, written to the temporary directory
  cc::Json document;
  cc::Manifest manifest;
  cc::Json payload;
  std::string canonical;
  std::string error;  // non-empty when the input could not be prepared
};

std::unique_ptr<Input> make_input(std::size_t connectors) {
  auto in = std::make_unique<Input>();
  in->text = cc::bench::generate_manifest(connectors, kSeed);
  if (temp_dir().path().empty()) {
    in->error = "mkdtemp failed";
    return in;
  }
  in->path = (temp_dir().path() / ("connectors-" + std::to_string(connectors) + ".json")).string();
  if (!write_file(in->path, in->text)) {
    in->error = "cannot write " + in->path;
    return in;
  }
  auto document = cc::parse_json(in->text, manifest_parse_options());
  if (!document) {
    in->error = "parse_json: " + document.error().message;
    return in;
  }
  in->document = std::move(*document);
  auto manifest = cc::manifest_from_json(in->document);
  if (!manifest) {
    in->error = "manifest_from_json: " + manifest.error().message;
    return in;
  }
  in->manifest = std::move(*manifest);
  if (auto direct = cc::parse_manifest(in->text); !direct || !(*direct == in->manifest)) {
    in->error = "parse_manifest differs from manifest_from_json(parse_json())";
    return in;
  }
  in->payload = cc::build_service_map(in->manifest, kGeneratedAtFallback);
  auto canonical = cc::canonical_json(in->payload);
  if (!canonical) {
    in->error = "canonical_json: " + canonical.error().message;
    return in;
  }
  in->canonical = std::move(*canonical);
  auto direct = cc::internal::write_service_map_payload(in->manifest, kGeneratedAtFallback);
  if (!direct || *direct != in->canonical) {
    in->error = "write_service_map_payload differs from canonical_json(build_service_map())";
    return in;
  }
  const auto key = cc::as_bytes(kKey);
  auto from_text = cc::sign_manifest_text(in->text, kGeneratedAtFallback, key);
  if (!from_text ||
      from_text->body != cc::internal::sign_canonical_payload(in->canonical, key).body) {
    in->error = "sign_manifest_text differs from signing canonical_json(build_service_map())";
  }
  return in;
}

// The Input of the benchmark's Arg, or nullptr (and the benchmark skipped) when it failed.
const Input* input(benchmark::State& state) {
  static std::map<std::size_t, std::unique_ptr<Input>> cache;
  const auto connectors = static_cast<std::size_t>(state.range(0));
  auto it = cache.find(connectors);
  if (it == cache.end()) it = cache.emplace(connectors, make_input(connectors)).first;
  if (!it->second->error.empty()) {
    state.SkipWithError(it->second->error.c_str());
    return nullptr;
  }
  return it->second.get();
}

// Bytes processed (the manifest text) and the per-connector time.
void set_counters(benchmark::State& state, const Input& in) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(in.text.size()));
  state.counters["per_connector"] = benchmark::Counter(
      static_cast<double>(state.range(0)),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// One parse of `padded` with `parser`; false, with the benchmark marked failed, on an error.
bool parse_once(simdjson::dom::parser& parser, const simdjson::padded_string& padded,
                benchmark::State& state) {
  simdjson::dom::element root;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS) {
    state.SkipWithError("simdjson parse failed");
    return false;
  }
  benchmark::DoNotOptimize(root);
  return true;
}

void BM_SimdjsonDomParse(benchmark::State& state) {
  const Input* in = input(state);
  if (in == nullptr) return;
  const simdjson::padded_string padded(in->text);
  simdjson::dom::parser parser;
  if (parser.allocate(padded.size()) != simdjson::SUCCESS) {
    state.SkipWithError("simdjson allocate failed");
    return;
  }
  for (auto _ : state) {
    if (!parse_once(parser, padded, state)) break;
  }
  set_counters(state, *in);
}

// The same parse with a new parser each time: what a thread pays for a document above the 16 MiB
// its parser is kept for (src/json.cpp, kRetainedParserBytes), as the 100 000-connector
// manifest is. Compare BM_WholeRebuild/100000 with this.
void BM_SimdjsonDomParseNewParser(benchmark::State& state) {
  const Input* in = input(state);
  if (in == nullptr) return;
  const simdjson::padded_string padded(in->text);
  for (auto _ : state) {
    simdjson::dom::parser parser;
    if (!parse_once(parser, padded, state)) break;
  }
  set_counters(state, *in);
}

void BM_ReadAndParse(benchmark::State& state) {
  const Input* in = input(state);
  if (in == nullptr) return;
  for (auto _ : state) {
    auto file = cc::read_manifest_file(in->path);
    if (!file) {
      state.SkipWithError("read_manifest_file failed");
      break;
    }
    auto manifest = cc::parse_manifest(file->content);
    if (!manifest) {
      state.SkipWithError("parse_manifest failed");
      break;
    }
    benchmark::DoNotOptimize(*manifest);
  }
  set_counters(state, *in);
}

void BM_ParseManifest(benchmark::State& state) {
  const Input* in = input(state);
  if (in == nullptr) return;
  for (auto _ : state) {
    auto manifest = cc::parse_manifest(in->text);
    if (!manifest) {
      state.SkipWithError("parse_manifest failed");
      break;
    }
    benchmark::DoNotOptimize(*manifest);
  }
  set_counters(state, *in);
}

void BM_WritePayload(benchmark::State& state) {
  const Input* in = input(state);
  if (in == nullptr) return;
  for (auto _ : state) {
    auto canonical = cc::internal::write_service_map_payload(in->manifest, kGeneratedAtFallback);
    if (!canonical) {
      state.SkipWithError("write_service_map_payload failed");
      break;
    }
    benchmark::DoNotOptimize(*canonical);
  }
  set_counters(state, *in);
}

void BM_RenderManifestMetrics(benchmark::State& state) {
  const Input* in = input(state);
  if (in == nullptr) return;
  for (auto _ : state) {
    auto text = cc::Metrics::render_manifest_text(in->manifest);
    benchmark::DoNotOptimize(text);
  }
  set_counters(state, *in);
}

void BM_JsonParse(benchmark::State& state) {
  const Input* in = input(state);
  if (in == nullptr) return;
  const auto options = manifest_parse_options();
  for (auto _ : state) {
    auto document = cc::parse_json(in->text, options);
    if (!document) {
      state.SkipWithError("parse_json failed");
      break;
    }
    benchmark::DoNotOptimize(*document);
  }
  set_counters(state, *in);
}

void BM_JsonValidate(benchmark::State& state) {
  const Input* in = input(state);
  if (in == nullptr) return;
  for (auto _ : state) {
    auto issues = cc::validate_manifest(in->document);
    if (!issues.empty()) {
      state.SkipWithError("validate_manifest reported issues");
      break;
    }
    benchmark::DoNotOptimize(issues);
  }
  set_counters(state, *in);
}

void BM_JsonBuild(benchmark::State& state) {
  const Input* in = input(state);
  if (in == nullptr) return;
  for (auto _ : state) {
    cc::Json payload = cc::build_service_map(in->manifest, kGeneratedAtFallback);
    benchmark::DoNotOptimize(payload);
  }
  set_counters(state, *in);
}

void BM_JsonCanonicalize(benchmark::State& state) {
  const Input* in = input(state);
  if (in == nullptr) return;
  for (auto _ : state) {
    auto canonical = cc::canonical_json(in->payload);
    if (!canonical) {
      state.SkipWithError("canonical_json failed");
      break;
    }
    benchmark::DoNotOptimize(*canonical);
  }
  set_counters(state, *in);
}

void BM_Sign(benchmark::State& state) {
  const Input* in = input(state);
  if (in == nullptr) return;
  const auto key = cc::as_bytes(kKey);
  for (auto _ : state) {
    std::string signature = cc::sign_hmac_sha256(key, in->canonical);
    benchmark::DoNotOptimize(signature);
  }
  set_counters(state, *in);
}

void BM_WholeRebuild(benchmark::State& state) {
  const Input* in = input(state);
  if (in == nullptr) return;
  const auto key = cc::as_bytes(kKey);
  for (auto _ : state) {
    auto signed_map = cc::sign_manifest_text(in->text, kGeneratedAtFallback, key);
    if (!signed_map) {
      state.SkipWithError("sign_manifest_text failed");
      break;
    }
    benchmark::DoNotOptimize(signed_map->body);
  }
  set_counters(state, *in);
}

void BM_WholeRebuildViaManifest(benchmark::State& state) {
  const Input* in = input(state);
  if (in == nullptr) return;
  const auto key = cc::as_bytes(kKey);
  for (auto _ : state) {
    auto manifest = cc::parse_manifest(in->text);
    if (!manifest) {
      state.SkipWithError("parse_manifest failed");
      break;
    }
    auto signed_map = cc::internal::sign_manifest_service_map(*manifest, kGeneratedAtFallback, key);
    if (!signed_map) {
      state.SkipWithError("sign_manifest_service_map failed");
      break;
    }
    benchmark::DoNotOptimize(signed_map->body);
  }
  set_counters(state, *in);
}

void BM_WholeRebuildParallel(benchmark::State& state) {
  const Input* in = input(state);
  if (in == nullptr) return;
  const auto key = cc::as_bytes(kKey);
  cc::ManifestLimits parallel;
  parallel.parallel_connectors = kParallelFrom;
  for (auto _ : state) {
    auto manifest = cc::parse_manifest(in->text, parallel);
    if (!manifest) {
      state.SkipWithError("parse_manifest failed");
      break;
    }
    auto canonical =
        cc::internal::write_service_map_payload(*manifest, kGeneratedAtFallback, kParallelFrom);
    if (!canonical) {
      state.SkipWithError("write_service_map_payload failed");
      break;
    }
    auto signed_map = cc::internal::sign_canonical_payload(std::move(*canonical), key);
    benchmark::DoNotOptimize(signed_map.body);
  }
  set_counters(state, *in);
}

void BM_JsonWholeRebuild(benchmark::State& state) {
  const Input* in = input(state);
  if (in == nullptr) return;
  const auto key = cc::as_bytes(kKey);
  const auto options = manifest_parse_options();
  for (auto _ : state) {
    auto document = cc::parse_json(in->text, options);
    if (!document) {
      state.SkipWithError("parse_json failed");
      break;
    }
    auto manifest = cc::manifest_from_json(std::move(*document));
    if (!manifest) {
      state.SkipWithError("manifest_from_json failed");
      break;
    }
    auto signed_map =
        cc::sign_service_map(cc::build_service_map(*manifest, kGeneratedAtFallback), key);
    if (!signed_map) {
      state.SkipWithError("sign_service_map failed");
      break;
    }
    benchmark::DoNotOptimize(signed_map->body);
  }
  set_counters(state, *in);
}

void connector_args(benchmark::internal::Benchmark* b) {
  for (const std::size_t n : kSizes) b->Arg(static_cast<std::int64_t>(n));
  b->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime()->UseRealTime();
}

BENCHMARK(BM_SimdjsonDomParse)->Apply(connector_args);
BENCHMARK(BM_SimdjsonDomParseNewParser)->Apply(connector_args);
BENCHMARK(BM_ReadAndParse)->Apply(connector_args);
BENCHMARK(BM_ParseManifest)->Apply(connector_args);
BENCHMARK(BM_WritePayload)->Apply(connector_args);
BENCHMARK(BM_Sign)->Apply(connector_args);
BENCHMARK(BM_RenderManifestMetrics)->Apply(connector_args);
BENCHMARK(BM_WholeRebuild)->Apply(connector_args);
BENCHMARK(BM_WholeRebuildViaManifest)->Apply(connector_args);
BENCHMARK(BM_WholeRebuildParallel)->Apply(connector_args);
BENCHMARK(BM_JsonParse)->Apply(connector_args);
BENCHMARK(BM_JsonValidate)->Apply(connector_args);
BENCHMARK(BM_JsonBuild)->Apply(connector_args);
BENCHMARK(BM_JsonCanonicalize)->Apply(connector_args);
BENCHMARK(BM_JsonWholeRebuild)->Apply(connector_args);

// --dump DIR: writes every benchmark manifest, checks it with parse_manifest(). Returns the
// process exit status.
int dump(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  int status = 0;
  for (const std::size_t n : kSizes) {
    const std::string text = cc::bench::generate_manifest(n, kSeed);
    const auto path = dir / ("connectors-" + std::to_string(n) + ".manifest.json");
    if (!write_file(path, text)) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      return 1;
    }
    const auto manifest = cc::parse_manifest(text);
    const bool deterministic = cc::bench::generate_manifest(n, kSeed) == text;
    if (!manifest) {
      status = 1;
      std::fprintf(stderr, "%s: INVALID: %s\n", path.c_str(), manifest.error().message.c_str());
      for (const auto& issue : manifest.error().issues) {
        std::fprintf(stderr, "  %s: %s\n", issue.pointer.c_str(), issue.message.c_str());
      }
      continue;
    }
    if (manifest->connectors.size() != n || !deterministic) {
      status = 1;
      std::fprintf(stderr, "%s: %zu connectors, deterministic: %s\n", path.c_str(),
                   manifest->connectors.size(), deterministic ? "yes" : "NO");
      continue;
    }
    std::printf("%s: %zu bytes, %zu connectors, valid, deterministic\n", path.c_str(), text.size(),
                manifest->connectors.size());
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--dump") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "usage: %s --dump DIR\n", argv[0]);
        return 2;
      }
      return dump(argv[i + 1]);
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
