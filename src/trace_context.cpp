#include "cortex_connectors/trace_context.h"

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include <sodium.h>

#include "cortex_connectors/negotiation.h"
#include "internal/sodium.h"

namespace cortex_connectors {

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

std::optional<Sampler> parse_sampler(std::string_view name, std::string_view arg) {
  const std::string lower = ascii_lower(name);
  Sampler out;
  if (lower.empty() || lower == "parentbased_always_on") {
    out.kind = SamplerKind::kParentBasedAlwaysOn;
  } else if (lower == "always_on") {
    out.kind = SamplerKind::kAlwaysOn;
  } else if (lower == "always_off") {
    out.kind = SamplerKind::kAlwaysOff;
  } else if (lower == "traceidratio") {
    out.kind = SamplerKind::kTraceIdRatio;
  } else if (lower == "parentbased_always_off") {
    out.kind = SamplerKind::kParentBasedAlwaysOff;
  } else if (lower == "parentbased_traceidratio") {
    out.kind = SamplerKind::kParentBasedTraceIdRatio;
  } else {
    return std::nullopt;
  }
  const bool ratio =
      out.kind == SamplerKind::kTraceIdRatio || out.kind == SamplerKind::kParentBasedTraceIdRatio;
  if (ratio && !arg.empty()) {
    const std::string text(arg);
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || !(v >= 0.0 && v <= 1.0)) return std::nullopt;
    out.ratio = v;
  }
  return out;
}

bool should_sample(const Sampler& sampler, std::string_view trace_id,
                   std::optional<bool> parent_sampled) noexcept {
  auto ratio = [&] {
    if (sampler.ratio >= 1.0) return true;
    if (sampler.ratio <= 0.0 || trace_id.size() != 32) return false;
    // The last 8 bytes of the id, shifted to 63 bits, against ratio * 2^63.
    std::uint64_t word = 0;
    for (char c : trace_id.substr(16)) {
      word = word << 4 | static_cast<std::uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    const auto bound = static_cast<std::uint64_t>(sampler.ratio * 9223372036854775808.0);
    return (word >> 1) < bound;
  };
  switch (sampler.kind) {
    case SamplerKind::kAlwaysOn:
      return true;
    case SamplerKind::kAlwaysOff:
      return false;
    case SamplerKind::kTraceIdRatio:
      return ratio();
    case SamplerKind::kParentBasedAlwaysOn:
      return parent_sampled.value_or(true);
    case SamplerKind::kParentBasedAlwaysOff:
      return parent_sampled.value_or(false);
    case SamplerKind::kParentBasedTraceIdRatio:
      return parent_sampled ? *parent_sampled : ratio();
  }
  return false;
}

}  // namespace cortex_connectors
