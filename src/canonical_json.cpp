#include "cortex_connectors/canonical_json.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "internal/number_format.h"

namespace cortex_connectors {

int compare_utf16(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = std::min(a.size(), b.size());
  const auto* pa = reinterpret_cast<const unsigned char*>(a.data());  // NOLINT
  const auto* pb = reinterpret_cast<const unsigned char*>(b.data());  // NOLINT
  std::size_t i = 0;
  while (i < n && pa[i] == pb[i]) ++i;
  if (i == n) return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
  const unsigned x = pa[i];
  const unsigned y = pb[i];
  // UTF-8 byte order is code-point order. UTF-16 order differs only between U+E000..U+FFFF
  // (lead bytes EE, EF) and supplementary code points (lead F0..F4), which UTF-16 writes as
  // surrogates D800..DFFF and so sorts first. Equal prefixes mean x and y are both lead bytes
  // or both continuation bytes of the same length class, where byte order is right.
  const bool x_high_bmp = x == 0xEE || x == 0xEF;
  const bool y_high_bmp = y == 0xEE || y == 0xEF;
  if (x_high_bmp && y >= 0xF0) return 1;
  if (y_high_bmp && x >= 0xF0) return -1;
  return x < y ? -1 : 1;
}

void append_canonical_number(std::string& out, double number) {
  internal::append_es6_number(out, number);
}

void append_canonical_string(std::string& out, std::string_view text) {
  static constexpr std::array<char, 16> kHex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                                '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  out.push_back('"');
  std::size_t run = 0;  // start of the pending run of bytes that need no escape
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
    }
  }
  out.append(text.data() + run, text.size() - run);
  out.push_back('"');
}

namespace {

// Writes `value`; with indent < 0 canonically, else pretty at that indentation depth.
bool append_value(std::string& out, const Json& value, int indent = -1) {
  auto newline = [&](int depth) {
    if (indent < 0) return;
    out.push_back('\n');
    out.append(static_cast<std::size_t>(depth) * 2, ' ');
  };
  const int inner = indent < 0 ? -1 : indent + 1;
  switch (value.type()) {
    case Json::Type::kNull:
      out.append("null");
      return true;
    case Json::Type::kBool:
      out.append(value.as_bool() ? "true" : "false");
      return true;
    case Json::Type::kNumber: {
      const double d = value.as_number();
      if (!std::isfinite(d)) return false;
      internal::append_es6_number(out, d);
      return true;
    }
    case Json::Type::kString:
      append_canonical_string(out, value.as_string());
      return true;
    case Json::Type::kArray: {
      out.push_back('[');
      bool first = true;
      for (const Json& item : value.as_array()) {
        if (!first) out.push_back(',');
        first = false;
        newline(inner);
        if (!append_value(out, item, inner)) return false;
      }
      if (!first) newline(indent);
      out.push_back(']');
      return true;
    }
    case Json::Type::kObject: {
      const auto& members = value.as_object();
      // Small fixed buffer for the common small object; heap only for large ones.
      std::array<const Json::Member*, 16> small{};
      std::vector<const Json::Member*> large;
      const Json::Member** order = small.data();
      if (members.size() > small.size()) {
        large.resize(members.size());
        order = large.data();
      }
      for (std::size_t i = 0; i < members.size(); ++i) order[i] = &members[i];
      std::sort(order, order + members.size(), [](const Json::Member* a, const Json::Member* b) {
        return compare_utf16(a->first, b->first) < 0;
      });
      out.push_back('{');
      for (std::size_t i = 0; i < members.size(); ++i) {
        if (i != 0) out.push_back(',');
        newline(inner);
        append_canonical_string(out, order[i]->first);
        out.push_back(':');
        if (indent >= 0) out.push_back(' ');
        if (!append_value(out, order[i]->second, inner)) return false;
      }
      if (!members.empty()) newline(indent);
      out.push_back('}');
      return true;
    }
  }
  return false;
}

Error non_finite_error() {
  return Error{ErrorCode::kInvalid, "[brAInwav] JSON cannot represent NaN or Infinity", {}, {}};
}

}  // namespace

Status append_canonical_json(std::string& out, const Json& value) {
  const std::size_t before = out.size();
  if (!append_value(out, value)) {
    out.resize(before);
    return non_finite_error();
  }
  return {};
}

Result<std::string> canonical_json(const Json& value) {
  std::string out;
  if (!append_value(out, value)) return non_finite_error();
  return out;
}

Result<std::string> pretty_json(const Json& value) {
  std::string out;
  if (!append_value(out, value, 0)) return non_finite_error();
  return out;
}

Result<std::string> canonicalize(std::string_view text, const JsonParseOptions& options) {
  auto parsed = parse_json(text, options);
  if (!parsed) return std::move(parsed).error();
  std::string out;
  out.reserve(text.size());
  if (!append_value(out, *parsed)) return non_finite_error();
  return out;
}

}  // namespace cortex_connectors
