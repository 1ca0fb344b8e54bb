#include "cortex_connectors/http.h"

#include <array>
#include <cstdint>
#include <optional>

#include <fmt/format.h>
#include <sodium.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/service_map.h"
#include "internal/compress.h"
#include "internal/digest.h"
#include "internal/sodium.h"

namespace cortex_connectors {

namespace {

constexpr std::string_view kWhitespace = " \t";

std::string_view trim(std::string_view s) noexcept {
  const auto b = s.find_first_not_of(kWhitespace);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(kWhitespace);
  return s.substr(b, e - b + 1);
}

// Parses a qvalue ("1", "0.5", "1.000"); nullopt when malformed. Returns thousandths.
std::optional<int> parse_q(std::string_view v) noexcept {
  if (v.empty() || v.size() > 5) return std::nullopt;
  if (v[0] != '0' && v[0] != '1') return std::nullopt;
  int q = (v[0] - '0') * 1000;
  if (v.size() == 1) return q;
  if (v[1] != '.') return std::nullopt;
  int scale = 100;
  for (std::size_t i = 2; i < v.size(); ++i, scale /= 10) {
    if (v[i] < '0' || v[i] > '9') return std::nullopt;
    q += (v[i] - '0') * scale;
  }
  return q <= 1000 ? std::optional<int>(q) : std::nullopt;
}

constexpr char ascii_lower_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

}  // namespace

bool ascii_iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower_char(a[i]) != ascii_lower_char(b[i])) return false;
  }
  return true;
}

std::string ascii_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = ascii_lower_char(c);
  return out;
}

std::string_view to_string(ContentEncoding encoding) noexcept {
  switch (encoding) {
    case ContentEncoding::kIdentity:
      return "identity";
    case ContentEncoding::kGzip:
      return "gzip";
    case ContentEncoding::kBrotli:
      return "br";
  }
  return "identity";
}

ContentEncoding choose_encoding(std::string_view header) noexcept {
  return choose_encoding(header, true, true);
}

ContentEncoding choose_encoding(std::string_view header, bool have_gzip,
                                bool have_brotli) noexcept {
  // q in thousandths; -1 = not mentioned.
  int q_br = -1;
  int q_gzip = -1;
  int q_identity = -1;
  int q_star = -1;
  while (!header.empty()) {
    const auto comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    const auto semi = item.find(';');
    const std::string_view coding = trim(item.substr(0, semi));
    int q = 1000;
    if (semi != std::string_view::npos) {
      const std::string_view param = trim(item.substr(semi + 1));
      if (param.size() < 2 || (param[0] != 'q' && param[0] != 'Q') || param[1] != '=') continue;
      auto parsed = parse_q(trim(param.substr(2)));
      if (!parsed) continue;  // a malformed item is ignored
      q = *parsed;
    }
    if (ascii_iequals(coding, "br")) {
      q_br = q;
    } else if (ascii_iequals(coding, "gzip") || ascii_iequals(coding, "x-gzip")) {
      q_gzip = q;
    } else if (ascii_iequals(coding, "identity")) {
      q_identity = q;
    } else if (coding == "*") {
      q_star = q;
    }
  }
  if (q_br < 0) q_br = q_star >= 0 ? q_star : 0;
  if (q_gzip < 0) q_gzip = q_star >= 0 ? q_star : 0;
  // identity is acceptable unless refused explicitly (or by "*;q=0" without an identity item).
  if (q_identity < 0) q_identity = q_star == 0 ? 0 : 1;
  if (!have_brotli) q_br = 0;
  if (!have_gzip) q_gzip = 0;
  if (q_br > 0 && q_br >= q_gzip && q_br >= q_identity) return ContentEncoding::kBrotli;
  if (q_gzip > 0 && q_gzip >= q_identity) return ContentEncoding::kGzip;
  return ContentEncoding::kIdentity;
}

bool if_none_match(std::string_view header, std::string_view etag) noexcept {
  header = trim(header);
  if (header == "*") return true;
  std::string_view target = etag;
  if (target.starts_with("W/")) target.remove_prefix(2);
  while (!header.empty()) {
    header = trim(header);
    if (header.starts_with("W/")) header.remove_prefix(2);
    if (header.empty() || header[0] != '"') return false;
    const auto close = header.find('"', 1);
    if (close == std::string_view::npos) return false;
    if (header.substr(0, close + 1) == target) return true;
    header = trim(header.substr(close + 1));
    if (header.empty()) break;
    if (header[0] != ',') return false;
    header.remove_prefix(1);
  }
  return false;
}

AuthResult check_bearer(std::string_view authorization,
                        std::span<const std::string> keys) noexcept {
  authorization = trim(authorization);
  if (authorization.empty()) return AuthResult::kMissing;
  const auto space = authorization.find(' ');
  if (space == std::string_view::npos || !ascii_iequals(authorization.substr(0, space), "bearer")) {
    return AuthResult::kMalformed;
  }
  const std::string_view token = trim(authorization.substr(space + 1));
  if (token.empty() || token.find_first_of(" \t") != std::string_view::npos) {
    return AuthResult::kMalformed;
  }
  // Compare with every key, in constant time for equal lengths, without an early exit, so the
  // timing reveals neither which key matched nor how much of one did.
  bool ok = false;
  for (const std::string& key : keys) {
    if (key.empty()) continue;
    const bool same_size = key.size() == token.size();
    // sodium_memcmp needs equal lengths; compare the key with itself when they differ so the
    // work stays the same.
    const char* other = same_size ? token.data() : key.data();
    const bool equal = sodium_memcmp(key.data(), other, key.size()) == 0;
    ok = ok || (same_size && equal);
  }
  return ok ? AuthResult::kOk : AuthResult::kForbidden;
}

std::string detail_body(std::string_view message) {
  std::string out = R"({"detail":)";
  std::string text = "[brAInwav] ";
  text.append(message);
  append_canonical_string(out, text);
  out.push_back('}');
  return out;
}

bool is_sane_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string generate_request_id() {
  struct Generator {
    std::uint64_t prefix = 0;
    std::uint64_t counter = 0;
  };
  thread_local Generator g = [] {
    internal::ensure_sodium();
    Generator fresh;
    randombytes_buf(&fresh.prefix, sizeof fresh.prefix);
    randombytes_buf(&fresh.counter, sizeof fresh.counter);
    return fresh;
  }();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '\0');
  const std::uint64_t words[2] = {g.prefix, g.counter++};
  for (std::size_t w = 0; w < 2; ++w) {
    for (std::size_t i = 0; i < 16; ++i) {
      out[w * 16 + i] = kHex[(words[w] >> (60 - 4 * i)) & 0xF];
    }
  }
  return out;
}

namespace {

bool is_lower_hex(std::string_view s) noexcept {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool all_zero(std::string_view s) noexcept { return s.find_first_not_of('0') == s.npos; }

// splitmix64 over a per-thread state seeded from the operating system once: ids need to be
// unique and unpredictable enough to not collide across processes, not secret.
std::uint64_t next_random() {
  thread_local std::uint64_t state = [] {
    internal::ensure_sodium();
    std::uint64_t seed = 0;
    randombytes_buf(&seed, sizeof seed);
    return seed;
  }();
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void append_hex(std::string& out, std::uint64_t word) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 60; i >= 0; i -= 4) out.push_back(kHex[(word >> i) & 0xF]);
}

}  // namespace

std::optional<TraceParent> parse_traceparent(std::string_view value) {
  // version "-" trace-id "-" parent-id "-" trace-flags
  constexpr std::size_t kLength = 55;
  if (value.size() < kLength) return std::nullopt;
  const std::string_view version = value.substr(0, 2);
  if (!is_lower_hex(version) || version == "ff") return std::nullopt;
  if (version == "00" ? value.size() != kLength : value.size() > kLength && value[kLength] != '-') {
    return std::nullopt;
  }
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') return std::nullopt;
  const std::string_view trace_id = value.substr(3, 32);
  const std::string_view parent_id = value.substr(36, 16);
  const std::string_view flags = value.substr(53, 2);
  if (!is_lower_hex(trace_id) || !is_lower_hex(parent_id) || !is_lower_hex(flags)) {
    return std::nullopt;
  }
  if (all_zero(trace_id) || all_zero(parent_id)) return std::nullopt;
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  TraceParent out;
  out.trace_id = std::string(trace_id);
  out.parent_id = std::string(parent_id);
  out.flags = static_cast<std::uint8_t>(nibble(flags[0]) * 16 + nibble(flags[1]));
  return out;
}

std::string format_traceparent(std::string_view trace_id, std::string_view span_id,
                               std::uint8_t flags) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "00-";
  out.append(trace_id).push_back('-');
  out.append(span_id).push_back('-');
  out.push_back(kHex[flags >> 4]);
  out.push_back(kHex[flags & 0xF]);
  return out;
}

std::string generate_trace_id() {
  std::string out;
  out.reserve(32);
  std::uint64_t high = next_random();
  const std::uint64_t low = next_random();
  if (high == 0 && low == 0) high = 1;
  append_hex(out, high);
  append_hex(out, low);
  return out;
}

std::string generate_span_id() {
  std::string out;
  out.reserve(16);
  std::uint64_t word = next_random();
  if (word == 0) word = 1;
  append_hex(out, word);
  return out;
}

namespace {

Json error_json(const Error& error) {
  Json e = Json::object();
  e.set("code", to_string(error.code));
  e.set("message", error.message);
  Json issues = Json::array();
  for (const auto& i : error.issues) {
    Json item = Json::object();
    item.set("pointer", i.pointer);
    item.set("message", i.message);
    issues.push_back(std::move(item));
  }
  e.set("issues", std::move(issues));
  return e;
}

}  // namespace

std::string health_body(const Registry& registry, std::chrono::system_clock::time_point now) {
  const auto snap = registry.current();
  const auto failure = registry.last_failure();
  Json h = Json::object();
  h.set("status", !snap ? "starting" : failure ? "degraded" : "ok");
  h.set("brand", kBrand);
  h.set("timestamp", format_rfc3339(now));
  if (snap) {
    h.set("version", snap->version);
    h.set("connectors", snap->connector_count());
    h.set("loadedAt", format_rfc3339(snap->loaded_at));
    h.set("etag", snap->etag);
  }
  if (failure) {
    Json last = error_json(failure->error);
    last.set("at", format_rfc3339(failure->at));
    last.set("consecutive", failure->consecutive);
    h.set("lastError", std::move(last));
  }
  if (auto* history = registry.history()) {
    const HistoryStatus hs = history->status();
    Json j = Json::object();
    j.set("store", hs.store);
    j.set("degraded", hs.degraded);
    if (hs.degraded) j.set("reason", hs.reason);
    j.set("latestVersion", hs.latest_version);
    j.set("pending", hs.pending);
    h.set("history", std::move(j));
  }
  return *canonical_json(h);
}

std::string unavailable_body(const Registry& registry) {
  const auto failure = registry.last_failure();
  Json body = Json::object();
  body.set("detail", failure ? "[brAInwav] connectors manifest unavailable"
                             : "[brAInwav] connectors manifest is loading");
  if (failure) body.set("error", error_json(failure->error));
  return *canonical_json(body);
}

namespace {

// The extension of the last segment of `name` (after its last '.'), or "".
std::string_view extension(std::string_view name) noexcept {
  const auto slash = name.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
  const auto dot = base.rfind('.');
  return dot == std::string_view::npos ? std::string_view{} : base.substr(dot + 1);
}

}  // namespace

std::optional<std::string_view> static_relative_path(std::string_view decoded) noexcept {
  constexpr std::size_t kMaxPath = 1024;
  if (decoded.empty()) return std::string_view("index.html");
  if (decoded.size() > kMaxPath || decoded.front() == '/') return std::nullopt;
  for (const char c : decoded) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\\') return std::nullopt;
  }
  std::string_view rest = decoded;
  while (!rest.empty()) {
    const auto slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    // Empty segments ("a//b", a trailing "/"), ".", ".." and dot-files.
    if (segment.empty() || segment.front() == '.') return std::nullopt;
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
    if (rest.empty()) return std::nullopt;
  }
  return decoded;
}

std::string_view static_content_type(std::string_view name) noexcept {
  struct Type {
    std::string_view ext;
    std::string_view type;
  };
  static constexpr Type kTypes[] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"webmanifest", "application/manifest+json"},
      {"txt", "text/plain; charset=utf-8"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"avif", "image/avif"},
      {"ico", "image/vnd.microsoft.icon"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"wasm", "application/wasm"},
  };
  const std::string_view ext = extension(name);
  for (const auto& t : kTypes) {
    if (ascii_iequals(ext, t.ext)) return t.type;
  }
  return "application/octet-stream";
}

bool is_fingerprinted(std::string_view name) noexcept {
  const auto slash = name.rfind('/');
  std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
  const auto last_dot = base.rfind('.');
  if (last_dot == std::string_view::npos || last_dot + 1 == base.size()) return false;
  base = base.substr(0, last_dot);
  const auto hash_dot = base.rfind('.');
  if (hash_dot == std::string_view::npos || hash_dot == 0) return false;
  const std::string_view hash = base.substr(hash_dot + 1);
  if (hash.size() < 8 || hash.size() > 64) return false;
  for (const char c : hash) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string_view static_cache_control(std::string_view name) noexcept {
  return is_fingerprinted(name) ? "public, max-age=31536000, immutable" : "no-cache";
}

void compress_static_asset(StaticAsset& a, bool gzip, bool brotli) {
  if (a.identity.empty()) return;
  if (gzip) {
    std::string gz = internal::static_gzip(a.identity);
    if (gz.size() < a.identity.size()) a.gzip = std::move(gz);
  }
  if (brotli) {
    std::string br = internal::static_brotli(a.identity);
    if (br.size() < a.identity.size()) a.brotli = std::move(br);
  }
}

StaticAsset prepare_static_asset(std::string_view name, std::string bytes) {
  StaticAsset a = prepare_static_asset(name, std::move(bytes), std::nullopt, std::nullopt);
  compress_static_asset(a, true, true);
  return a;
}

StaticAsset prepare_static_asset(std::string_view name, std::string bytes,
                                 std::optional<std::string> gzip,
                                 std::optional<std::string> brotli) {
  StaticAsset a;
  a.identity = std::move(bytes);
  a.content_type = static_content_type(name);
  a.cache_control = static_cache_control(name);
  // Built with fmt rather than operator+: GCC 12 at -O3 reports a false -Wrestrict for
  // `"\"" + std::string`.
  const std::string digest = internal::sha256_hex(a.identity);
  const std::string_view tag = std::string_view(digest).substr(0, 32);
  a.etag = fmt::format("\"{}\"", tag);
  a.etag_gzip = fmt::format("\"{}-gz\"", tag);
  a.etag_brotli = fmt::format("\"{}-br\"", tag);
  if (gzip && gzip->size() < a.identity.size()) a.gzip = std::move(*gzip);
  if (brotli && brotli->size() < a.identity.size()) a.brotli = std::move(*brotli);
  return a;
}

}  // namespace cortex_connectors
