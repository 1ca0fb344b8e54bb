// Benchmarks of HMAC-SHA256 signing over canonical JSON, on generate_document() inputs of 1 KB,
// 100 KB and 10 MB (the Arg is the approximate document size in bytes). Bytes processed is
// always the size of the input JSON text (not the canonical bytes, which are a little shorter), so
// MB/s compare directly across benchmarks: the ratio of two MB/s is the ratio of documents/s.
//
//   BM_RawHmacSha256        libsodium crypto_auth_hmacsha256 over the canonical bytes (the anchor
//                           the canonical JSON target was set against; portable C SHA-256).
//   BM_RawHmacSha256OpenSsl libcrypto HMAC() over the canonical bytes: the limit (the library
//                           signs with libcrypto, which uses the CPU's SHA extensions).
//   BM_SignHmacSha256       sign_hmac_sha256 over the canonical bytes (HMAC + base64url).
//   BM_VerifyHmacSha256     verify_hmac_sha256 of a good signature over the canonical bytes.
//   BM_CanonicalizeAndSign  canonicalize(text) + sign_hmac_sha256: text in, signature out.
//   BM_SerializeAndSign     canonical_json(json) + sign_hmac_sha256 from a parsed Json: the path
//                           a snapshot rebuild takes.
#include <array>
#include <map>
#include <string>
#include <string_view>

#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "bench_utils.h"
#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/signing.h"

namespace {

using cortex_connectors::bench::arg_bytes;
using cortex_connectors::bench::cached_document;
using cortex_connectors::bench::set_bytes_processed;

// 32 bytes, so the raw baseline (which takes exactly crypto_auth_hmacsha256_KEYBYTES) and the
// library hash the same key.
constexpr std::string_view kKey = "bench-key-0123456789abcdef012345";
static_assert(kKey.size() == crypto_auth_hmacsha256_KEYBYTES);

// The canonical form of cached_document(bytes), computed once, outside the timed loops.
// Empty (and the benchmark skipped) if canonicalization fails.
const std::string& cached_canonical(benchmark::State& state, std::size_t bytes) {
  static std::map<std::size_t, std::string> cache;
  auto it = cache.find(bytes);
  if (it == cache.end()) {
    auto canonical = cortex_connectors::canonicalize(cached_document(bytes));
    it = cache.emplace(bytes, canonical ? std::move(*canonical) : std::string()).first;
  }
  if (it->second.empty()) state.SkipWithError("canonicalize failed");
  return it->second;
}

const unsigned char* uchars(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());  // NOLINT
}

void BM_RawHmacSha256(benchmark::State& state) {
  if (sodium_init() < 0) {
    state.SkipWithError("sodium_init failed");
    return;
  }
  const std::size_t bytes = cached_document(arg_bytes(state)).size();
  const std::string& canonical = cached_canonical(state, arg_bytes(state));
  std::array<unsigned char, crypto_auth_hmacsha256_BYTES> mac{};
  for (auto _ : state) {
    crypto_auth_hmacsha256(mac.data(), uchars(canonical), canonical.size(), uchars(kKey));
    benchmark::DoNotOptimize(mac);
    benchmark::ClobberMemory();
  }
  set_bytes_processed(state, bytes);
}

void BM_RawHmacSha256OpenSsl(benchmark::State& state) {
  const std::size_t bytes = cached_document(arg_bytes(state)).size();
  const std::string& canonical = cached_canonical(state, arg_bytes(state));
  std::array<unsigned char, 32> mac{};
  unsigned int len = 0;
  for (auto _ : state) {
    HMAC(EVP_sha256(), kKey.data(), static_cast<int>(kKey.size()), uchars(canonical),
         canonical.size(), mac.data(), &len);
    benchmark::DoNotOptimize(mac);
    benchmark::ClobberMemory();
  }
  set_bytes_processed(state, bytes);
}

void BM_SignHmacSha256(benchmark::State& state) {
  const std::size_t bytes = cached_document(arg_bytes(state)).size();
  const std::string& canonical = cached_canonical(state, arg_bytes(state));
  const auto key = cortex_connectors::as_bytes(kKey);
  for (auto _ : state) {
    std::string signature = cortex_connectors::sign_hmac_sha256(key, canonical);
    benchmark::DoNotOptimize(signature);
  }
  set_bytes_processed(state, bytes);
}

void BM_VerifyHmacSha256(benchmark::State& state) {
  const std::size_t bytes = cached_document(arg_bytes(state)).size();
  const std::string& canonical = cached_canonical(state, arg_bytes(state));
  const auto key = cortex_connectors::as_bytes(kKey);
  const std::string signature = cortex_connectors::sign_hmac_sha256(key, canonical);
  if (!cortex_connectors::verify_hmac_sha256(key, canonical, signature)) {
    state.SkipWithError("verify_hmac_sha256 rejected a good signature");
    return;
  }
  for (auto _ : state) {
    bool ok = cortex_connectors::verify_hmac_sha256(key, canonical, signature);
    benchmark::DoNotOptimize(ok);
  }
  set_bytes_processed(state, bytes);
}

void BM_CanonicalizeAndSign(benchmark::State& state) {
  const std::string& text = cached_document(arg_bytes(state));
  const auto key = cortex_connectors::as_bytes(kKey);
  for (auto _ : state) {
    auto canonical = cortex_connectors::canonicalize(text);
    if (!canonical) {
      state.SkipWithError("canonicalize failed");
      break;
    }
    std::string signature = cortex_connectors::sign_hmac_sha256(key, *canonical);
    benchmark::DoNotOptimize(signature);
  }
  set_bytes_processed(state, text.size());
}

void BM_SerializeAndSign(benchmark::State& state) {
  const std::string& text = cached_document(arg_bytes(state));
  const auto parsed = cortex_connectors::parse_json(text);
  if (!parsed) {
    state.SkipWithError("parse_json failed");
    return;
  }
  const auto key = cortex_connectors::as_bytes(kKey);
  for (auto _ : state) {
    auto canonical = cortex_connectors::canonical_json(*parsed);
    if (!canonical) {
      state.SkipWithError("canonical_json failed");
      break;
    }
    std::string signature = cortex_connectors::sign_hmac_sha256(key, *canonical);
    benchmark::DoNotOptimize(signature);
  }
  set_bytes_processed(state, text.size());
}

BENCHMARK(BM_RawHmacSha256)->Arg(1 << 10)->Arg(100 << 10)->Arg(10 << 20);
BENCHMARK(BM_RawHmacSha256OpenSsl)->Arg(1 << 10)->Arg(100 << 10)->Arg(10 << 20);
BENCHMARK(BM_SignHmacSha256)->Arg(1 << 10)->Arg(100 << 10)->Arg(10 << 20);
BENCHMARK(BM_VerifyHmacSha256)->Arg(1 << 10)->Arg(100 << 10)->Arg(10 << 20);
BENCHMARK(BM_CanonicalizeAndSign)->Arg(1 << 10)->Arg(100 << 10)->Arg(10 << 20);
BENCHMARK(BM_SerializeAndSign)->Arg(1 << 10)->Arg(100 << 10)->Arg(10 << 20);

}  // namespace

BENCHMARK_MAIN();
