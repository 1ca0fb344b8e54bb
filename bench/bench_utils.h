// Inputs shared by the benchmarks: deterministic, realistic JSON documents from a fixed seed.
//
// Nothing here touches the library; the generators only write JSON text, so the benchmarks
// measure the library alone. Same (size, seed) -> same bytes, on every machine and run.
#pragma once

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <system_error>

#include <benchmark/benchmark.h>

namespace cortex_connectors::bench {

// A private temporary directory "cortex-bench-<name>-XXXXXX", removed with the object (or at
// exit, for a static one). path() is empty when it could not be created.
class TempDir {
 public:
  explicit TempDir(std::string_view name) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / ("cortex-bench-" + std::string(name) + "-XXXXXX"))
            .string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

// The seed every benchmark uses, so figures are comparable between runs and machines.
inline constexpr std::uint64_t kSeed = 301;

// splitmix64 (Steele, Lea, Flood 2014): tiny, fast and good enough for test data.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}

  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31U);
  }
  // Uniform in [0, n). REQUIRES: n > 0. The modulo bias is irrelevant here.
  std::uint64_t below(std::uint64_t n) noexcept { return next() % n; }
  // True with probability percent / 100.
  bool chance(std::uint64_t percent) noexcept { return below(100) < percent; }
  template <class T, std::size_t N>
  const T& pick(const std::array<T, N>& items) noexcept {
    return items[static_cast<std::size_t>(below(N))];
  }

 private:
  std::uint64_t state_;
};

namespace detail {

// Appends `text` as a JSON string literal. `text` is already JSON-escaped where it needs to be
// (the pools below hold literal escapes such as \n and \u00e9 on purpose); only quotes are added.
inline void append_literal(std::string& out, std::string_view text) {
  out.push_back('"');
  out.append(text);
  out.push_back('"');
}

inline void append_uint(std::string& out, std::uint64_t value) {
  std::array<char, 24> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
  out.append(buf.data(), end);
}

inline void append_double(std::string& out, double value) {
  std::array<char, 32> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
  out.append(buf.data(), end);
}

inline void append_hex(std::string& out, std::uint64_t value, int digits) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) {
    out.push_back(kHex[static_cast<std::size_t>((value >> (4 * i)) & 0xFU)]);
  }
}

inline void key(std::string& out, std::string_view name) {
  append_literal(out, name);
  out.push_back(':');
}

// Pools of realistic values. Escapes are written as they appear in JSON text.
inline constexpr std::array<std::string_view, 12> kServices = {
    "github",     "gitlab", "jira",   "confluence", "slack",  "google-drive",
    "sharepoint", "notion", "linear", "zendesk",    "stripe", "postgres"};
inline constexpr std::array<std::string_view, 8> kKinds = {"search", "sync",  "webhook", "export",
                                                           "index",  "crawl", "query",   "stream"};
inline constexpr std::array<std::string_view, 10> kDisplayNames = {
    "Recherche d\\u00e9l\\u00e9gu\\u00e9e",                             // escaped Latin-1
    "Recherche GitHub \xe2\x80\x94 \xc3\xa9quipe \xc2\xabOps\xc2\xbb",  // raw UTF-8
    "\xd0\x9f\xd0\xbe\xd0\xb8\xd1\x81\xd0\xba \xd0\xbf\xd0\xbe \xd0\xb4\xd0\xbe\xd0\xba\xd1\x83"
    "\xd0\xbc\xd0\xb5\xd0\xbd\xd1\x82\xd0\xb0\xd0\xbc",                          // Russian
    "\xe6\xa4\x9c\xe7\xb4\xa2\xe3\x82\xb3\xe3\x83\x8d\xe3\x82\xaf\xe3\x82\xbf",  // Japanese
    "\xe6\x90\x9c\xe7\xb4\xa2\xe8\xbf\x9e\xe6\x8e\xa5\xe5\x99\xa8",              // Chinese
    "\xce\x91\xce\xbd\xce\xb1\xce\xb6\xce\xae\xcf\x84\xce\xb7\xcf\x83\xce\xb7",  // Greek
    "Deploy \xf0\x9f\x9a\x80 pipeline",                                          // raw emoji
    "Deploy \\ud83d\\ude80 pipeline",                                            // escaped pair
    "Issue tracker",
    "Customer tickets"};
inline constexpr std::array<std::string_view, 6> kDescriptions = {
    "Searches repositories, issues and pull requests.",
    "Line one\\nLine \\\"two\\\"\\tindented",
    "Reads C:\\\\data\\\\export and uploads to s3://bucket/prefix/",
    "Syncs every 15 min; see https://example.com/docs?tab=sync&lang=en#limits",
    "Legacy connector\\u0001 kept for compatibility \\u2014 do not use",
    "Caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 \xe2\x80\x94 \xe2\x82\xac 5 \xe2\x84\xa2"};
inline constexpr std::array<std::string_view, 14> kScopes = {
    "search:query", "search:read", "repo:read",   "repo:write", "issues:read",
    "issues:write", "files:read",  "files:write", "users:read", "admin:org",
    "offline",      "openid",      "email",       "profile"};
inline constexpr std::array<std::string_view, 4> kAuthTypes = {"oauth2", "api_key", "basic",
                                                               "none"};
inline constexpr std::array<std::string_view, 5> kRegions = {
    "eu-west-1", "us-east-1", "ap-northeast-1", "eu-central-1", "us-west-2"};

// One connectors-like record; members in a deliberately unsorted order, as services write them.
inline void append_record(std::string& out, SplitMix64& rng, std::uint64_t index) {
  const std::string_view service = rng.pick(kServices);
  const std::string_view kind = rng.pick(kKinds);
  out.append("{");
  key(out, "id");
  out.append("\"conn-");
  append_hex(out, index, 6);
  out.push_back('-');
  append_hex(out, rng.next(), 8);
  out.append("\",");
  key(out, "name");
  out.push_back('"');
  out.append(service).append("-").append(kind);
  out.append("\",");
  key(out, "display_name");
  append_literal(out, rng.pick(kDisplayNames));
  out.push_back(',');
  key(out, "version");
  append_uint(out, 1 + rng.below(40));
  out.push_back(',');
  key(out, "enabled");
  out.append(rng.chance(85) ? "true" : "false");
  out.push_back(',');
  key(out, "endpoint");
  out.append("\"https://api.").append(service).append(".example.com/v");
  append_uint(out, 1 + rng.below(3));
  out.append("/").append(kind).append("?region=").append(rng.pick(kRegions)).append("\",");
  key(out, "auth");
  out.append("{");
  const std::string_view auth = rng.pick(kAuthTypes);
  key(out, "type");
  append_literal(out, auth);
  if (auth == "oauth2") {
    out.append(",");
    key(out, "token_url");
    out.append("\"https://auth.").append(service).append(".example.com/oauth/token\",");
    key(out, "client_id");
    out.push_back('"');
    append_hex(out, rng.next(), 16);
    out.push_back('"');
  }
  out.append("},");
  key(out, "scopes");
  out.push_back('[');
  const std::uint64_t n_scopes = 1 + rng.below(5);
  for (std::uint64_t i = 0; i < n_scopes; ++i) {
    if (i != 0) out.push_back(',');
    append_literal(out, rng.pick(kScopes));
  }
  out.append("],");
  key(out, "timeout_ms");
  append_uint(out, 1000 * (1 + rng.below(60)));
  out.push_back(',');
  key(out, "rate_limit");
  out.append("{");
  key(out, "requests");
  append_uint(out, 10 * (1 + rng.below(100)));
  out.push_back(',');
  key(out, "per_seconds");
  append_uint(out, 60);
  out.append("},");
  key(out, "weight");
  append_double(out, static_cast<double>(rng.below(1000)) / 1000.0);
  out.push_back(',');
  key(out, "error_rate");
  append_double(out, static_cast<double>(1 + rng.below(999)) / 1e6);
  out.push_back(',');
  key(out, "description");
  append_literal(out, rng.pick(kDescriptions));
  out.push_back(',');
  key(out, "icon");
  if (rng.chance(30)) {
    out.append("null");
  } else {
    out.append("\"https://cdn.example.com/icons/").append(service).append(".svg\"");
  }
  out.push_back(',');
  key(out, "created_at");
  append_uint(out, 1'600'000'000 + rng.below(100'000'000));
  out.append("}");
}

}  // namespace detail

// Returns a compact JSON document of about `approx_bytes` (it stops after the first record that
// reaches the size, so it overshoots by less than one record, ~530 bytes): an object with a few
// header members and a "connectors" array of connectors-like records (ids, names, URLs, scope
// arrays, integers, floats, booleans, nulls, non-ASCII UTF-8 raw and as \u escapes, surrogate
// pairs, \n \t \" \\ escapes). Members are not sorted, so canonicalization has work to do.
// Deterministic for `seed`.
inline std::string generate_document(std::size_t approx_bytes, std::uint64_t seed) {
  SplitMix64 rng(seed);
  std::string out;
  out.reserve(approx_bytes + 1024);
  out.append("{");
  detail::key(out, "schema_version");
  out.append("\"2\",");
  detail::key(out, "generated_at");
  out.append("\"2024-05-01T12:00:00Z\",");
  detail::key(out, "seed");
  detail::append_uint(out, seed);
  out.append(",");
  detail::key(out, "connectors");
  out.push_back('[');
  for (std::uint64_t i = 0;; ++i) {
    if (i != 0) out.push_back(',');
    detail::append_record(out, rng, i);
    if (out.size() + 2 >= approx_bytes) break;
  }
  out.append("]}");
  return out;
}

// generate_manifest(connectors, seed), the manifest input of STYLE.md section 6, goes here with
// the manifest benchmarks; it can reuse detail::append_record for the connector fields.

// generate_document(bytes, kSeed), built once per size and kept for the whole run so that setup
// never shows in the timings. Not thread-safe: call it outside the timed loop of one thread.
inline const std::string& cached_document(std::size_t bytes) {
  static std::map<std::size_t, std::string> cache;
  auto it = cache.find(bytes);
  if (it == cache.end()) it = cache.emplace(bytes, generate_document(bytes, kSeed)).first;
  return it->second;
}

// The Arg of a size-parameterised benchmark: the approximate document size in bytes.
inline std::size_t arg_bytes(const benchmark::State& state) {
  return static_cast<std::size_t>(state.range(0));
}

// SetBytesProcessed(iterations * bytes), without the casts at every call site.
inline void set_bytes_processed(benchmark::State& state, std::size_t bytes) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(bytes));
}

}  // namespace cortex_connectors::bench
