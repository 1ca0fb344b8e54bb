#include "cortex_connectors/canonical_json.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <span>
#include <vector>

#include "internal/canonical_writer.h"
#include "internal/json_reader.h"
#include "internal/number_format.h"
#include "internal/utf8.h"

namespace cortex_connectors {

namespace {

// The index of the first byte where `a` and `b` differ, or `n`; eight bytes at a time.
std::size_t mismatch(const unsigned char* a, const unsigned char* b, std::size_t n) noexcept {
  std::size_t i = 0;
  if constexpr (std::endian::native == std::endian::little) {
    for (; i + 8 <= n; i += 8) {
      std::uint64_t x = 0;
      std::uint64_t y = 0;
      std::memcpy(&x, a + i, 8);
      std::memcpy(&y, b + i, 8);
      if (x != y) return i + static_cast<std::size_t>(std::countr_zero(x ^ y)) / 8;
    }
  }
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// compare_utf16(), inline for the sorter.
inline int utf16_compare(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = std::min(a.size(), b.size());
  const auto* pa = reinterpret_cast<const unsigned char*>(a.data());  // NOLINT
  const auto* pb = reinterpret_cast<const unsigned char*>(b.data());  // NOLINT
  const std::size_t i = mismatch(pa, pb, n);
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

}  // namespace

int compare_utf16(std::string_view a, std::string_view b) noexcept { return utf16_compare(a, b); }

namespace {

// Appends to a std::string through a raw pointer, without a capacity check and a library call
// per byte. The string is grown (zero-filled) ahead of the writes, and cut back to the written
// length when the Out goes away, unless it is a scratch buffer.
class Out {
 public:
  // Appends to `s`.
  explicit Out(std::string& s) noexcept
      : s_(s), start_(s.size()), cur_(s.data() + s.size()), end_(cur_), trim_(true) {}
  // Writes over `scratch` from its start, leaving its size as it was or grew to, so that the
  // next use does not zero-fill it again. The output is the first size() bytes.
  struct Scratch {};
  Out(std::string& scratch, Scratch /*tag*/) noexcept
      : s_(scratch),
        start_(0),
        cur_(scratch.data()),
        end_(scratch.data() + scratch.size()),
        trim_(false) {}
  Out(const Out&) = delete;
  Out& operator=(const Out&) = delete;
  ~Out() {
    if (trim_) s_.resize(size());
  }

  // Returns the write position, with room for `n` bytes; finish the write with commit().
  char* room(std::size_t n) {
    if (static_cast<std::size_t>(end_ - cur_) < n) grow(n);
    return cur_;
  }
  // Ends a write started by room() at `end`.
  void commit(char* end) noexcept { cur_ = end; }
  void put(char c) {
    char* p = room(1);
    *p = c;
    cur_ = p + 1;
  }
  void write(std::string_view text) {
    char* p = room(text.size());
    std::memcpy(p, text.data(), text.size());
    cur_ = p + text.size();
  }
  // Reserves capacity for `n` more bytes, so that writing them does not reallocate.
  void reserve(std::size_t n) {
    const std::size_t pos = size();
    s_.reserve(pos + n);
    cur_ = s_.data() + pos;
    end_ = s_.data() + s_.size();
  }
  std::size_t size() const noexcept { return static_cast<std::size_t>(cur_ - s_.data()); }
  // Forgets everything written after size() was `n`.
  void truncate(std::size_t n) noexcept { cur_ = s_.data() + n; }

 private:
  // Zero-fills ahead in steps that grow with the output but stay small, so that capacity
  // reserved beyond what is written is never touched (nor, for big strings, paged in).
  // std::string doubles its capacity when a step goes beyond it.
  void grow(std::size_t n) {
    constexpr std::size_t kMinStep = 64;
    constexpr std::size_t kMaxStep = std::size_t{64} << 10;
    const std::size_t pos = size();
    s_.resize(pos + std::max(n, std::clamp(pos - start_, kMinStep, kMaxStep)));
    cur_ = s_.data() + pos;
    end_ = s_.data() + s_.size();
  }

  std::string& s_;
  std::size_t start_;
  char* cur_;
  char* end_;
  bool trim_;
};

// Bytes JCS escapes: controls, '"' and '\\'.
[[maybe_unused]] constexpr bool needs_escape(unsigned char c) noexcept {
  return c < 0x20 || c == '"' || c == '\\';
}

constexpr std::uint64_t kOnes = 0x0101010101010101;
constexpr std::uint64_t kHigh = 0x8080808080808080;

// Flags (bit 7 of each byte) the bytes of `w` that need an escape. Only the lowest flagged byte is
// exact: borrows run upwards and may flag bytes above it. That is all find_escape() needs.
constexpr std::uint64_t escape_bits(std::uint64_t w) noexcept {
  const std::uint64_t quote = w ^ (kOnes * '"');
  const std::uint64_t backslash = w ^ (kOnes * '\\');
  return ((w - kOnes * 0x20) & ~w & kHigh) | ((quote - kOnes) & ~quote & kHigh) |
         ((backslash - kOnes) & ~backslash & kHigh);
}

std::uint64_t load8(const char* p) noexcept {
  std::uint64_t w = 0;
  std::memcpy(&w, p, 8);
  return w;
}

std::uint64_t load4(const char* p) noexcept {
  std::uint32_t w = 0;
  std::memcpy(&w, p, 4);
  return w;
}

// The `n` (1..7) bytes at `p` in the low bytes of a word, without reading past them; the high
// bytes are zero. Little-endian only.
std::uint64_t load_short(const char* p, std::size_t n) noexcept {
  if (n >= 4) return load4(p) | (load4(p + n - 4) << (8 * (n - 4)));  // overlapping halves agree
  const auto byte = [p](std::size_t i) { return std::uint64_t{static_cast<unsigned char>(p[i])}; };
  return byte(0) | (byte(n / 2) << (8 * (n / 2))) | (byte(n - 1) << (8 * (n - 1)));
}

// Returns the first byte in [p, end) that needs an escape, or `end`; eight bytes at a time.
const char* find_escape(const char* p, const char* end) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    for (; end - p >= 8; p += 8) {
      const std::uint64_t hits = escape_bits(load8(p));
      if (hits != 0) return p + std::countr_zero(hits) / 8;
    }
    const auto n = static_cast<std::size_t>(end - p);
    if (n == 0) return end;
    // The bytes past the text read as 'A', which needs no escape.
    const std::uint64_t fill = (kOnes * 'A') << (8 * n);
    const std::uint64_t hits = escape_bits(load_short(p, n) | fill);
    return hits == 0 ? end : p + std::countr_zero(hits) / 8;
  } else {
    while (p != end && !needs_escape(static_cast<unsigned char>(*p))) ++p;
    return p;
  }
}

// a == b for the keys of two objects, without a library call for short keys.
bool same_key(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  if constexpr (std::endian::native == std::endian::little) {
    if (n < 8) return n == 0 || load_short(a.data(), n) == load_short(b.data(), n);
    if (n <= 16) {
      return load8(a.data()) == load8(b.data()) &&
             load8(a.data() + n - 8) == load8(b.data() + n - 8);
    }
  }
  return std::memcmp(a.data(), b.data(), n) == 0;
}

// Writes the escape of `c` (needs_escape(c)), at most six bytes, and returns the end.
char* write_escape(char* out, unsigned char c) noexcept {
  static constexpr std::array<char, 16> kHex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                                '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  char short_form = 0;
  switch (c) {
    case '"':
      short_form = '"';
      break;
    case '\\':
      short_form = '\\';
      break;
    case '\b':
      short_form = 'b';
      break;
    case '\f':
      short_form = 'f';
      break;
    case '\n':
      short_form = 'n';
      break;
    case '\r':
      short_form = 'r';
      break;
    case '\t':
      short_form = 't';
      break;
    default:
      break;
  }
  *out++ = '\\';
  if (short_form != 0) {
    *out++ = short_form;
    return out;
  }
  *out++ = 'u';
  *out++ = '0';
  *out++ = '0';
  *out++ = kHex[c >> 4];
  *out++ = kHex[c & 0xF];
  return out;
}

// The JCS string literal of `text` (valid UTF-8): clean runs are copied whole.
void write_string(Out& out, std::string_view text) {
  const char* p = text.data();
  const std::size_t n = text.size();
  if constexpr (std::endian::native == std::endian::little) {
    // Most keys and many values are short and clean: test and copy them as one or two words.
    // Up to 8 bytes past the closing quote may be written; room() covers them and later writes
    // (or the final resize) replace them.
    if (n <= 16) {
      char* dst = out.room(n + 2 + 8);
      std::uint64_t lo = 0;
      std::uint64_t hi = 0;
      std::uint64_t hits = 0;
      if (n >= 8) {
        lo = load8(p);
        hi = load8(p + n - 8);
        hits = escape_bits(lo) | escape_bits(hi);
      } else if (n != 0) {
        lo = load_short(p, n);
        hits = escape_bits(lo | ((kOnes * 'A') << (8 * n)));  // 'A' past the text needs no escape
      }
      if (hits == 0) {
        dst[0] = '"';
        std::memcpy(dst + 1, &lo, 8);
        if (n >= 8) std::memcpy(dst + 1 + n - 8, &hi, 8);
        dst[n + 1] = '"';
        out.commit(dst + n + 2);
        return;
      }
    }
  }
  const char* const end = p + n;
  char* dst = out.room(n + 2);  // enough unless something needs an escape
  *dst++ = '"';
  for (;;) {
    const char* stop = find_escape(p, end);
    const auto run = static_cast<std::size_t>(stop - p);
    std::memcpy(dst, p, run);
    dst += run;
    if (stop == end) break;
    out.commit(dst);
    // The escape, the rest of the text and the closing quote.
    dst = out.room(6 + static_cast<std::size_t>(end - stop));
    dst = write_escape(dst, static_cast<unsigned char>(*stop));
    p = stop + 1;
  }
  *dst++ = '"';
  out.commit(dst);
}

template <class N>
void write_number(Out& out, N value) {
  out.commit(internal::write_es6_number(out.room(internal::kMaxEs6NumberChars), value));
}

// One object member as the serializer sees it: key and value of a Json tree or of the DOM.
template <class Node>
struct Member {
  std::string_view key;
  Node value;
};

// The Node of an array item.
const Json* node_of(const Json& item) noexcept { return &item; }
simdjson::dom::element node_of(simdjson::dom::element item) noexcept { return item; }

// Writes a newline and the indentation of `depth` when pretty-printing.
void write_newline(Out& out, bool pretty, std::size_t depth) {
  if (!pretty) return;
  char* p = out.room(1 + 2 * depth);
  *p++ = '\n';
  std::memset(p, ' ', 2 * depth);
  out.commit(p + 2 * depth);
}

// Bytes that may be read past the end of each part of Shape::rendered.
constexpr std::size_t kRenderedPadding = 32;

// Writes `n` bytes from `from`, which may be read kRenderedPadding bytes ahead.
void write_padded(Out& out, const char* from, std::size_t n) {
  if (n > kRenderedPadding) return out.write({from, n});
  char* p = out.room(kRenderedPadding);
  std::memcpy(p, from, kRenderedPadding);  // a fixed size: a few vector moves, no call
  out.commit(p + n);
}

// Writes what comes before the value of an object member: "{" or ",", the key and ":".
void write_member_key(Out& out, bool pretty, bool first, std::string_view key, std::size_t depth) {
  out.put(first ? '{' : ',');
  write_newline(out, pretty, depth);
  write_string(out, key);
  out.write(pretty ? ": " : ":");
}

// An object shape, member i: the i-th key in document order (a view into the Json tree or the
// DOM being written), the i-th member in canonical order, and where its write_member_key() part
// ends in Shape::rendered.
struct ShapeEntry {
  std::string_view key;
  std::uint32_t order;
  std::size_t end;
};

struct Shape {
  std::vector<ShapeEntry> entries;
  std::string rendered;  // then kRenderedPadding bytes
};

// Writes canonical JSON (or, with `pretty`, the same laid out for humans) from a Json tree
// (Node = const Json*) or straight from simdjson's DOM (Node = simdjson::dom::element). The
// members of the objects being written wait on one stack, and object shapes are reused, so
// objects need no allocation of their own once these have grown.
template <class Node>
class Serializer {
 public:
  Serializer(Out& out, bool pretty, const internal::DomLimits* limits) noexcept
      : out_(out), pretty_(pretty), limits_(limits) {}

  // Writes `node` at nesting `depth` (the root value is 1). Returns false when the Json holds a
  // NaN or an infinity, or when the DOM fails a DomLimits check or repeats a key.
  bool value(Node node, std::size_t depth);

 private:
  template <class Items>
  bool array(const Items& items, std::size_t depth) {
    out_.put('[');
    bool first = true;
    for (const auto& item : items) {
      if (!first) out_.put(',');
      first = false;
      write_newline(out_, pretty_, depth);
      if (!value(node_of(item), depth + 1)) return false;
    }
    if (!first) write_newline(out_, pretty_, depth - 1);
    out_.put(']');
    return true;
  }

  // Writes the object whose members are members_[first, end) and pops them.
  bool object(std::size_t first, std::size_t depth) {
    const std::size_t n = members_.size() - first;
    if (n == 0) {
      out_.write("{}");
    } else {
      const Shape* shape = shape_of(first, n, depth);
      if (shape == nullptr) return false;
      // `shape` stays as it is meanwhile: nested objects use the shapes of deeper levels.
      std::size_t begin = 0;
      for (const ShapeEntry& e : shape->entries) {
        write_padded(out_, shape->rendered.data() + begin, e.end - begin);
        begin = e.end;
        // By index: writing the value pushes and pops nested members, which may move them.
        if (!value(members_[first + e.order].value, depth + 1)) return false;
      }
      write_newline(out_, pretty_, depth - 1);
      out_.put('}');
    }
    members_.resize(first);
    return true;
  }

  // Sorts the keys of `m`, n of them, into `order`. Returns false when the DOM repeats a key (a
  // Json built with set() never does; a hand-built one is written as is).
  bool sort_keys(const Member<Node>* m, std::size_t n, std::uint32_t* order) const {
    for (std::uint32_t i = 0; i < n; ++i) order[i] = i;
    std::sort(order, order + n, [m](std::uint32_t a, std::uint32_t b) {
      return utf16_compare(m[a].key, m[b].key) < 0;
    });
    // Sorted, equal keys are neighbours.
    if (limits_ != nullptr) {
      for (std::size_t i = 1; i < n; ++i) {
        if (same_key(m[order[i]].key, m[order[i - 1]].key)) return false;
      }
    }
    return true;
  }

  // The shape of members_[first, first + n), or nullptr when the DOM repeats a key. Objects of
  // one document mostly come in a few shapes (records of one kind), so each level keeps the last
  // shape seen for a few member counts and reuses it when the keys match, in order.
  const Shape* shape_of(std::size_t first, std::size_t n, std::size_t depth) {
    while (shapes_.size() < depth) shapes_.emplace_back();
    Shape& shape = shapes_[depth - 1][n % kShapesPerLevel];
    const Member<Node>* m = members_.data() + first;
    if (shape.entries.size() == n &&
        std::equal(m, m + n, shape.entries.begin(), [](const Member<Node>& a, const ShapeEntry& e) {
          return same_key(a.key, e.key);
        })) {
      return &shape;
    }
    order_.resize(n);
    shape.entries.clear();  // no longer valid, also if this fails
    if (!sort_keys(m, n, order_.data())) return nullptr;
    shape.rendered.clear();
    {
      Out r(shape.rendered);
      for (std::size_t i = 0; i < n; ++i) {
        write_member_key(r, pretty_, i == 0, m[order_[i]].key, depth);
        shape.entries.push_back({m[i].key, order_[i], r.size()});
      }
    }
    shape.rendered.append(kRenderedPadding, '\0');
    return &shape;
  }

  static constexpr std::size_t kShapesPerLevel = 8;

  Out& out_;
  bool pretty_;
  const internal::DomLimits* limits_;  // only for the DOM
  std::vector<Member<Node>> members_;
  std::vector<std::uint32_t> order_;  // shape_of()'s
  std::deque<std::string> replaced_;  // valid_utf8()'s, for the Json tree being written
  // By depth; a deque, so that adding a level moves no Shape an outer object is using.
  std::deque<std::array<Shape, kShapesPerLevel>> shapes_;
};

// A Json tree's strings may come from outside text that nothing validated (the messages of
// SQLite, hiredis and the OS, file paths, request headers in log lines): here, the one place a
// Json is written, an ill-formed UTF-8 sequence becomes U+FFFD, so that every document written
// from a Json is valid JSON. Text parsed or checked as UTF-8 passes unchanged; the DOM's strings
// and CanonicalWriter's inputs were validated and do not come here. Returns `text` itself or a
// replacement kept in `store` (a deque: its elements never move).
std::string_view valid_utf8(std::string_view text, std::deque<std::string>& store) {
  const char* p = text.data();
  const char* const end = p + text.size();
  if constexpr (std::endian::native == std::endian::little) {
    for (; end - p >= 8; p += 8) {
      if ((load8(p) & kHigh) != 0) break;
    }
  }
  for (; p != end; ++p) {
    if ((static_cast<unsigned char>(*p) & 0x80) != 0) break;
  }
  if (p == end || internal::is_valid_utf8(text)) return text;
  return store.emplace_back(internal::replace_invalid_utf8(text));
}

template <>
bool Serializer<const Json*>::value(const Json* node, std::size_t depth) {
  switch (node->type()) {
    case Json::Type::kNull:
      out_.write("null");
      return true;
    case Json::Type::kBool:
      out_.write(node->as_bool() ? "true" : "false");
      return true;
    case Json::Type::kNumber: {
      const double d = node->as_number();
      if (!std::isfinite(d)) return false;
      write_number(out_, d);
      return true;
    }
    case Json::Type::kString:
      write_string(out_, valid_utf8(node->as_string(), replaced_));
      return true;
    case Json::Type::kArray:
      return array(node->as_array(), depth);
    case Json::Type::kObject: {
      const std::size_t first = members_.size();
      for (const Json::Member& m : node->as_object()) {
        members_.push_back({valid_utf8(m.first, replaced_), &m.second});
      }
      return object(first, depth);
    }
  }
  return false;
}

template <>
bool Serializer<simdjson::dom::element>::value(simdjson::dom::element node, std::size_t depth) {
  using simdjson::dom::element_type;
  switch (node.type()) {
    case element_type::NULL_VALUE:
      out_.write("null");
      return true;
    case element_type::BOOL:
      out_.write(node.get_bool().value_unsafe() ? "true" : "false");
      return true;
    case element_type::INT64: {
      const std::int64_t v = node.get_int64().value_unsafe();
      if (!limits_->int64_ok(v)) return false;
      write_number(out_, v);
      return true;
    }
    case element_type::UINT64: {
      const std::uint64_t v = node.get_uint64().value_unsafe();
      if (!limits_->uint64_ok(v)) return false;
      write_number(out_, static_cast<double>(v));
      return true;
    }
    case element_type::DOUBLE:
      write_number(out_, node.get_double().value_unsafe());
      return true;
    case element_type::STRING: {
      const std::string_view s = node.get_string().value_unsafe();
      if (!limits_->string_ok(s)) return false;
      write_string(out_, s);
      return true;
    }
    case element_type::ARRAY: {
      if (!limits_->depth_ok(depth)) return false;
      const simdjson::dom::array items = node.get_array().value_unsafe();
      return array(items, depth);
    }
    case element_type::OBJECT: {
      if (!limits_->depth_ok(depth)) return false;
      const simdjson::dom::object members = node.get_object().value_unsafe();
      const std::size_t first = members_.size();
      for (simdjson::dom::key_value_pair m : members) {
        if (!limits_->string_ok(m.key)) return false;
        members_.push_back({m.key, m.value});
      }
      return object(first, depth);
    }
  }
  return false;
}

// Writes `value` to `out`; false (and `out` as it was) if it holds a NaN or an infinity.
bool write_json(std::string& out, const Json& value, bool pretty) {
  Out o(out);
  const std::size_t before = o.size();
  if (Serializer<const Json*>(o, pretty, nullptr).value(&value, 1)) return true;
  o.truncate(before);
  return false;
}

// canonical_json() keeps its per-thread output buffer up to this size: like the parser's, it is
// as large as the largest document the thread has written.
constexpr std::size_t kRetainedScratchBytes = std::size_t{16} << 20;

}  // namespace

namespace internal {

Error non_finite_error() {
  return Error{ErrorCode::kInvalid, "[brAInwav] JSON cannot represent NaN or Infinity", {}, {}};
}

struct CanonicalWriter::Impl {
  // The DOM of a FreeForm was checked when its view was read.
  explicit Impl(std::string& s)
      : out(s), serializer(out, false, nullptr), dom(out, false, &unchecked_dom_limits()) {}

  bool value(const FreeForm& v) {
    return v.is_dom() ? dom.value(v.dom(), v.depth()) : serializer.value(v.json(), 1);
  }

  Out out;
  Serializer<const Json*> serializer;
  Serializer<simdjson::dom::element> dom;
  std::vector<std::uint32_t> order;  // object()'s
};

CanonicalWriter::CanonicalWriter(std::string& out) : impl_(std::make_unique<Impl>(out)) {}
CanonicalWriter::~CanonicalWriter() = default;

void CanonicalWriter::reserve(std::size_t n) { impl_->out.reserve(n); }
std::size_t CanonicalWriter::position() const noexcept { return impl_->out.size(); }
void CanonicalWriter::raw(std::string_view text) { impl_->out.write(text); }
void CanonicalWriter::raw(char c) { impl_->out.put(c); }
void CanonicalWriter::string(std::string_view text) { write_string(impl_->out, text); }
void CanonicalWriter::number(double value) { write_number(impl_->out, value); }
bool CanonicalWriter::value(const FreeForm& value) { return impl_->value(value); }

bool CanonicalWriter::object(std::span<CanonicalMember> members) {
  auto& order = impl_->order;
  const std::size_t n = members.size();
  order.resize(n);
  for (std::uint32_t i = 0; i < n; ++i) order[i] = i;
  // Stable: of equal keys, the last in member order ends its run. These objects are small
  // (metadata, headers): an insertion sort needs no buffer, where std::stable_sort allocates one.
  const auto before = [&members](std::uint32_t a, std::uint32_t b) {
    return utf16_compare(members[a].key, members[b].key) < 0;
  };
  if (n <= 32) {
    for (std::size_t i = 1; i < n; ++i) {
      const std::uint32_t x = order[i];
      std::size_t j = i;
      for (; j > 0 && before(x, order[j - 1]); --j) order[j] = order[j - 1];
      order[j] = x;
    }
  } else {
    std::stable_sort(order.begin(), order.end(), before);
  }
  Out& out = impl_->out;
  bool first = true;
  for (std::size_t i = 0; i < n; ++i) {
    const CanonicalMember& m = members[order[i]];
    if (i + 1 < n && same_key(m.key, members[order[i + 1]].key)) continue;
    out.put(first ? '{' : ',');
    first = false;
    write_string(out, m.key);
    out.put(':');
    if (!m.value.present()) {
      if (m.raw) {
        out.write(m.text);
      } else {
        write_string(out, m.text);
      }
    } else if (!impl_->value(m.value)) {
      return false;
    }
  }
  out.write(first ? "{}" : "}");
  return true;
}

}  // namespace internal

void append_canonical_number(std::string& out, double number) {
  Out o(out);
  write_number(o, number);
}

void append_canonical_string(std::string& out, std::string_view text) {
  Out o(out);
  write_string(o, text);
}

Status append_canonical_json(std::string& out, const Json& value) {
  if (!write_json(out, value, false)) return internal::non_finite_error();
  return {};
}

Result<std::string> canonical_json(const Json& value) {
  // The size is unknown until written, and a pass to estimate it costs more than it saves (a
  // big tree is read from memory twice). So each thread writes into a buffer it keeps, which
  // needs neither regrowth nor fresh pages after the first call, and returns an exact copy. A
  // buffer grown beyond kRetainedScratchBytes is given back.
  thread_local std::string scratch;
  std::size_t size = 0;
  {
    Out o(scratch, Out::Scratch{});
    if (!Serializer<const Json*>(o, false, nullptr).value(&value, 1))
      return internal::non_finite_error();
    size = o.size();
  }
  std::string out(scratch.data(), size);
  if (scratch.size() > kRetainedScratchBytes) std::string().swap(scratch);
  return out;
}

Result<std::string> pretty_json(const Json& value) {
  std::string out;
  if (!write_json(out, value, true)) return internal::non_finite_error();
  return out;
}

// Serializes straight from simdjson's DOM: no Json tree is built. The DOM walk applies the same
// checks as parse_json (both use internal::DomLimits on the same DOM), so both accept the same
// documents, and any failure is reported by visit_dom() exactly as parse_json reports it.
Result<std::string> canonicalize(std::string_view text, const JsonParseOptions& options) {
  std::string out;
  const internal::DomLimits limits(options);
  auto serialize = [&](simdjson::dom::element root) {
    Out o(out);
    // About the canonical size: whitespace goes and most escapes shrink; Out grows if needed.
    o.reserve(text.size() + 64);
    return Serializer<simdjson::dom::element>(o, false, &limits).value(root, 1);
  };
  Status status = internal::visit_dom(text, options, serialize);
  if (!status) return status.error();
  return out;
}

}  // namespace cortex_connectors
