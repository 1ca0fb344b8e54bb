#include "internal/utf8.h"

#include <cstdint>

#include <simdjson.h>

namespace cortex_connectors::internal {

bool is_valid_utf8(std::string_view text) noexcept {
  return simdjson::validate_utf8(text.data(), text.size());
}

namespace {

// The length of the well-formed sequence at s[i] (1 for ASCII), or 0 when it is ill-formed; then
// `*subpart` is the length of its maximal ill-formed subpart (at least 1). Unicode 15, section
// 3.9, Table 3-7.
std::size_t sequence_at(const unsigned char* s, std::size_t i, std::size_t n,
                        std::size_t* subpart) noexcept {
  const unsigned char c = s[i];
  if (c < 0x80) return 1;
  std::size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c == 0xE0) {
    len = 3, lo = 0xA0;
  } else if (c == 0xED) {
    len = 3, hi = 0x9F;
  } else if (c >= 0xE1 && c <= 0xEF) {
    len = 3;
  } else if (c == 0xF0) {
    len = 4, lo = 0x90;
  } else if (c >= 0xF1 && c <= 0xF3) {
    len = 4;
  } else if (c == 0xF4) {
    len = 4, hi = 0x8F;
  } else {
    *subpart = 1;
    return 0;
  }
  std::size_t k = 1;
  for (; k < len && i + k < n; ++k) {
    const unsigned char lower = k == 1 ? lo : 0x80;
    const unsigned char upper = k == 1 ? hi : 0xBF;
    if (s[i + k] < lower || s[i + k] > upper) break;
  }
  if (k == len) return len;
  *subpart = k;
  return 0;
}

}  // namespace

// Scalar scan; only runs after simdjson has said the text is invalid, to find where.
std::optional<std::size_t> find_invalid_utf8(std::string_view text) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());  // NOLINT
  const std::size_t n = text.size();
  std::size_t subpart = 0;
  for (std::size_t i = 0; i < n;) {
    const std::size_t len = sequence_at(s, i, n, &subpart);
    if (len == 0) return i;
    i += len;
  }
  return std::nullopt;
}

std::string replace_invalid_utf8(std::string_view text) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";      // U+FFFD
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());  // NOLINT
  const std::size_t n = text.size();
  std::string out;
  out.reserve(n + 8);
  std::size_t subpart = 0;
  std::size_t copied = 0;
  for (std::size_t i = 0; i < n;) {
    const std::size_t len = sequence_at(s, i, n, &subpart);
    if (len != 0) {
      i += len;
      continue;
    }
    out.append(text.substr(copied, i - copied)).append(kReplacement);
    i += subpart;
    copied = i;
  }
  out.append(text.substr(copied));
  return out;
}

}  // namespace cortex_connectors::internal
