// Benchmarks of parsing and RFC 8785 canonicalization, on generate_document() inputs of 1 KB,
// 100 KB and 10 MB (the Arg is the approximate document size in bytes). Bytes processed is
// always the size of the input JSON text, so MB/s compare directly across benchmarks.
//
//   BM_ParseJson      parse_json(text): padding copy + simdjson DOM parse + building the Json tree.
//   BM_CanonicalJson  canonical_json(json) of an already parsed Json: key sort + serializer only.
//   BM_Canonicalize   canonicalize(text): padding copy + simdjson DOM parse + serializing straight
//                     from the DOM (no Json tree), the whole text -> canonical path.
#include <string>

#include <benchmark/benchmark.h>

#include "bench_utils.h"
#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"

namespace {

using cortex_connectors::bench::arg_bytes;
using cortex_connectors::bench::cached_document;
using cortex_connectors::bench::set_bytes_processed;

void BM_ParseJson(benchmark::State& state) {
  const std::string& text = cached_document(arg_bytes(state));
  for (auto _ : state) {
    auto parsed = cortex_connectors::parse_json(text);
    if (!parsed) {
      state.SkipWithError("parse_json failed");
      break;
    }
    benchmark::DoNotOptimize(parsed);
  }
  set_bytes_processed(state, text.size());
}

void BM_CanonicalJson(benchmark::State& state) {
  const std::string& text = cached_document(arg_bytes(state));
  const auto parsed = cortex_connectors::parse_json(text);
  if (!parsed) {
    state.SkipWithError("parse_json failed");
    return;
  }
  for (auto _ : state) {
    auto canonical = cortex_connectors::canonical_json(*parsed);
    if (!canonical) {
      state.SkipWithError("canonical_json failed");
      break;
    }
    benchmark::DoNotOptimize(canonical);
  }
  set_bytes_processed(state, text.size());
}

void BM_Canonicalize(benchmark::State& state) {
  const std::string& text = cached_document(arg_bytes(state));
  for (auto _ : state) {
    auto canonical = cortex_connectors::canonicalize(text);
    if (!canonical) {
      state.SkipWithError("canonicalize failed");
      break;
    }
    benchmark::DoNotOptimize(canonical);
  }
  set_bytes_processed(state, text.size());
}

BENCHMARK(BM_ParseJson)->Arg(1 << 10)->Arg(100 << 10)->Arg(10 << 20);
BENCHMARK(BM_CanonicalJson)->Arg(1 << 10)->Arg(100 << 10)->Arg(10 << 20);
BENCHMARK(BM_Canonicalize)->Arg(1 << 10)->Arg(100 << 10)->Arg(10 << 20);

}  // namespace

BENCHMARK_MAIN();
