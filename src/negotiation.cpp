#include "cortex_connectors/negotiation.h"

#include <cstdint>
#include <optional>

#include <sodium.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/service_map.h"
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

void generate_request_id(std::string& out) {
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
  out.resize(32);
  const std::uint64_t words[2] = {g.prefix, g.counter++};
  for (std::size_t w = 0; w < 2; ++w) {
    for (std::size_t i = 0; i < 16; ++i) {
      out[w * 16 + i] = kHex[(words[w] >> (60 - 4 * i)) & 0xF];
    }
  }
}

std::string generate_request_id() {
  std::string out;
  generate_request_id(out);
  return out;
}

}  // namespace cortex_connectors
