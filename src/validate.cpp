#include "cortex_connectors/validate.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cortex_connectors/manifest.h"
#include "internal/json_reader.h"
#include "internal/manifest_dom.h"
#include "internal/manifest_rules.h"
#include "internal/manifest_walker.h"

namespace cortex_connectors {

namespace {

bool is_crockford(char c) noexcept {
  return (c >= '0' && c <= '9') ||
         (c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U');
}
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Reads `n` digits at text[pos]; returns -1 when any is not a digit.
int digits(std::string_view text, std::size_t pos, std::size_t n) noexcept {
  if (pos + n > text.size()) return -1;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!is_digit(text[pos + i])) return -1;
    v = v * 10 + (text[pos + i] - '0');
  }
  return v;
}

// Quotes user text in a message, shortened so that a hostile value cannot flood a log.
std::string quoted(std::string_view text) {
  constexpr std::size_t kMax = 64;
  std::string out = "\"";
  if (text.size() <= kMax) {
    out.append(text);
  } else {
    std::size_t cut = kMax;  // never split a UTF-8 sequence
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    out.append(text.substr(0, cut)).append("...");
  }
  out.push_back('"');
  return out;
}

}  // namespace

bool is_ulid(std::string_view text) noexcept {
  if (text.size() != 26) return false;
  for (char c : text) {
    if (!is_crockford(c)) return false;
  }
  return true;
}

bool is_connector_id(std::string_view text) noexcept {
  if (text.size() < 2 || text.size() > 63) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool ok = (c >= 'a' && c <= 'z') || is_digit(c) || (i > 0 && c == '-');
    if (!ok) return false;
  }
  return true;
}

bool is_absolute_uri(std::string_view text) noexcept {
  // scheme "://" authority, per RFC 3986 section 3; no whitespace or controls anywhere.
  const std::size_t colon = text.find("://");
  if (colon == std::string_view::npos || colon == 0 || !is_alpha(text[0])) return false;
  for (std::size_t i = 1; i < colon; ++i) {
    const char c = text[i];
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return false;
  }
  const std::size_t authority = colon + 3;
  if (authority >= text.size() || text[authority] == '/' || text[authority] == '?' ||
      text[authority] == '#') {
    return false;
  }
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) return false;
  }
  return true;
}

bool is_rfc3339_date_time(std::string_view t) noexcept {
  // full-date "T" full-time (RFC 3339 section 5.6): YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  if (t.size() < 20) return false;
  const int year = digits(t, 0, 4);
  const int month = digits(t, 5, 2);
  const int day = digits(t, 8, 2);
  const int hour = digits(t, 11, 2);
  const int minute = digits(t, 14, 2);
  const int second = digits(t, 17, 2);
  if (year < 0 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') || t[13] != ':' ||
      t[16] != ':') {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60 || hour < 0 ||
      minute < 0 || second < 0) {
    return false;
  }
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  const int max_day = kDays[month - 1] + (month == 2 && leap ? 1 : 0);
  if (day > max_day) return false;
  std::size_t pos = 19;
  if (t[pos] == '.') {
    const std::size_t start = ++pos;
    while (pos < t.size() && is_digit(t[pos])) ++pos;
    if (pos == start) return false;
  }
  if (pos >= t.size()) return false;
  if (t[pos] == 'Z' || t[pos] == 'z') return pos + 1 == t.size();
  if (t[pos] != '+' && t[pos] != '-') return false;
  const int oh = digits(t, pos + 1, 2);
  const int om = digits(t, pos + 4, 2);
  return pos + 6 == t.size() && t[pos + 3] == ':' && oh >= 0 && oh <= 23 && om >= 0 && om <= 59;
}

void append_pointer_token(std::string& pointer, std::string_view token) {
  pointer.push_back('/');
  for (char c : token) {
    if (c == '~') {
      pointer.append("~0");
    } else if (c == '/') {
      pointer.append("~1");
    } else {
      pointer.push_back(c);
    }
  }
}

namespace internal {

namespace {

// `a == b` for the short keys and values of the format, without a call to memcmp: two
// overlapping loads of 8 (or 4) bytes each cover 4 to 16 bytes.
template <class Word>
Word load(const char* p) noexcept {
  Word w;
  std::memcpy(&w, p, sizeof w);
  return w;
}
[[gnu::always_inline]] inline bool same(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  const char* x = a.data();
  const char* y = b.data();
  if (n >= 8 && n <= 16) {
    return load<std::uint64_t>(x) == load<std::uint64_t>(y) &&
           load<std::uint64_t>(x + n - 8) == load<std::uint64_t>(y + n - 8);
  }
  if (n >= 4 && n < 8) {
    return load<std::uint32_t>(x) == load<std::uint32_t>(y) &&
           load<std::uint32_t>(x + n - 4) == load<std::uint32_t>(y + n - 4);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (x[i] != y[i]) return false;
  }
  return true;
}

// The JSON types, in the order of Json::Type.
enum class Kind : std::uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };

const char* kind_name(Kind kind) noexcept {
  static constexpr const char* kNames[] = {"null",   "boolean", "number",
                                           "string", "array",   "object"};
  return kNames[static_cast<std::size_t>(kind)];
}

// The walk over a Json: parse_json() (or whoever built it) has applied its limits already.
struct JsonSource {
  using Node = const Json*;
  static Kind kind(Node n) noexcept { return static_cast<Kind>(n->type()); }
  static std::string_view text(Node n) noexcept { return n->as_string(); }
  static bool number(Node n, double& out) noexcept {
    out = n->as_number();
    return true;
  }
  static bool boolean(Node n) noexcept { return n->as_bool(); }
  static std::size_t size(Node n) noexcept { return n->as_array().size(); }
  // Calls f(key, value) for each member until it returns false.
  template <class F>
  static void members(Node n, F&& f) {
    for (const auto& [key, value] : n->as_object()) {
      if (!f(std::string_view(key), &value)) return;
    }
  }
  // Calls f(index, item) for each item until it returns false.
  template <class F>
  static void items(Node n, F&& f) {
    const Json::Array& items = n->as_array();
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (!f(i, &items[i])) return;
    }
  }
  static bool string_ok(std::string_view /*s*/) noexcept { return true; }
  static bool depth_ok(std::size_t /*depth*/) noexcept { return true; }
  static bool free_ok(Node /*n*/, std::size_t /*depth*/) noexcept { return true; }
  static void locate(Read& r, Node n, std::size_t /*depth*/) noexcept { r.json = n; }
};

// The walk over simdjson's DOM, with the checks parse_json() applies (DomLimits, duplicate keys):
// where one fails the walk stops, and parse_json() names the problem.
struct DomSource {
  using Node = simdjson::dom::element;
  const DomLimits& limits;

  static Kind kind(Node n) noexcept {
    switch (n.type()) {
      case simdjson::dom::element_type::OBJECT:
        return Kind::kObject;
      case simdjson::dom::element_type::ARRAY:
        return Kind::kArray;
      case simdjson::dom::element_type::STRING:
        return Kind::kString;
      case simdjson::dom::element_type::BOOL:
        return Kind::kBool;
      case simdjson::dom::element_type::NULL_VALUE:
        return Kind::kNull;
      default:
        return Kind::kNumber;
    }
  }
  static std::string_view text(Node n) noexcept { return n.get_string().value_unsafe(); }
  bool number(Node n, double& out) const noexcept {
    switch (n.type()) {
      case simdjson::dom::element_type::INT64: {
        const std::int64_t v = n.get_int64().value_unsafe();
        out = static_cast<double>(v);
        return limits.int64_ok(v);
      }
      case simdjson::dom::element_type::UINT64: {
        const std::uint64_t v = n.get_uint64().value_unsafe();
        out = static_cast<double>(v);
        return limits.uint64_ok(v);
      }
      default:
        out = n.get_double().value_unsafe();
        return true;
    }
  }
  static bool boolean(Node n) noexcept { return n.get_bool().value_unsafe(); }
  static std::size_t size(Node n) noexcept {
    simdjson::dom::array items;  // get(): see members()
    return n.get_array().get(items) == simdjson::SUCCESS ? items.size() : 0;
  }
  template <class F>
  static void members(Node n, F&& f) {
    // get(), not value_unsafe(): GCC's -Wnull-dereference sees an object without a document.
    simdjson::dom::object members;
    if (n.get_object().get(members) != simdjson::SUCCESS) return;
    for (const simdjson::dom::key_value_pair m : members) {
      if (!f(m.key, m.value)) return;
    }
  }
  template <class F>
  static void items(Node n, F&& f) {
    simdjson::dom::array items;
    if (n.get_array().get(items) != simdjson::SUCCESS) return;
    std::size_t i = 0;
    for (const simdjson::dom::element item : items) {
      if (!f(i++, item)) return;
    }
  }
  bool string_ok(std::string_view s) const noexcept { return limits.string_ok(s); }
  bool depth_ok(std::size_t depth) const noexcept { return limits.depth_ok(depth); }
  bool free_ok(Node n, std::size_t depth) const { return dom_ok(n, limits, depth); }
  static void locate(Read& r, Node n, std::size_t depth) noexcept {
    r.dom = n;
    r.depth = depth;
  }
};

// Policies: list every finding with its pointer, or stop at the first (no pointers, no messages).
struct ListEveryFinding {
  static constexpr bool kStopAtFirst = false;
};
struct StopAtFirst {
  static constexpr bool kStopAtFirst = true;
};

// Applies the rules of manifest_rules.h to a document of `Source`, storing what passes into a
// ManifestView (complete only when nothing was found).
template <class Source, class Policy>
class ManifestWalker {
 public:
  using Node = typename Source::Node;

  explicit ManifestWalker(Source source) : source_(source) {}

  void walk(Node root, ManifestView& out) { object(root, kManifest, &out, 1); }

  // A finding, or (StopAtFirst) a limit of parse_json() broken.
  bool failed() const noexcept { return failed_; }
  std::size_t total_issues() const noexcept { return total_; }
  std::vector<Issue> take_issues() && { return std::move(issues_); }

 private:
  static constexpr bool kStop = Policy::kStopAtFirst;

  // Extends the current pointer for one scope (ListEveryFinding only).
  class Push {
   public:
    template <class Token>
    Push(ManifestWalker& w, Token token) : w_(w) {
      if constexpr (!kStop) {
        len_ = w.path_.size();
        if constexpr (std::is_same_v<Token, std::size_t>) {
          w.path_.push_back('/');
          w.path_.append(std::to_string(token));
        } else {
          append_pointer_token(w.path_, token);
        }
      }
    }
    ~Push() {
      if constexpr (!kStop) w_.path_.resize(len_);
    }
    Push(const Push&) = delete;
    Push& operator=(const Push&) = delete;

   private:
    ManifestWalker& w_;
    std::size_t len_ = 0;
  };

  template <class... A>
  void issue(fmt::format_string<A...> format, A&&... args) {
    if constexpr (kStop) {
      failed_ = true;
    } else {
      ++total_;
      if (issues_.size() < kMaxIssues) {
        issues_.push_back(Issue{path_, fmt::format(format, std::forward<A>(args)...)});
      }
    }
  }
  // A limit of parse_json() broken, or a duplicate key: not a finding of these rules.
  void bail() noexcept { failed_ = true; }
  bool stop() const noexcept { return kStop && failed_; }

  void type_error(Node v, const char* expected) {
    issue("must be {}, got {}", expected, kind_name(source_.kind(v)));
  }

  bool string(Node v, bool non_empty, std::string_view& out) {
    if (source_.kind(v) != Kind::kString) {
      type_error(v, non_empty ? "a non-empty string" : "a string");
      return false;
    }
    out = source_.text(v);
    if (!source_.string_ok(out)) {
      bail();
      return false;
    }
    if (non_empty && out.empty()) {
      issue("must be a non-empty string");
      return false;
    }
    return true;
  }

  bool integer(Node v, std::int64_t min, std::int64_t& out) {
    if (source_.kind(v) != Kind::kNumber) {
      issue("must be an integer >= {}, got {}", min, kind_name(source_.kind(v)));
      return false;
    }
    double d = 0;
    if (!source_.number(v, d)) {
      bail();
      return false;
    }
    if (std::trunc(d) != d || std::fabs(d) > kMaxSafeInteger) {
      issue("must be an integer >= {}, got a non-integer number", min);
      return false;
    }
    out = static_cast<std::int64_t>(d);
    if (out < min) {
      issue("must be an integer >= {}, got {}", min, out);
      return false;
    }
    return true;
  }

  // The string rules.
  bool text(Node v, const Field& f, Read& r) {
    const bool non_empty = f.rule == Rule::kNonEmpty || f.rule == Rule::kUlid ||
                           f.rule == Rule::kConnectorId || f.rule == Rule::kUri;
    if (!string(v, non_empty, r.text)) return false;
    switch (f.rule) {
      case Rule::kUlid:
        if (is_ulid(r.text)) return true;
        issue("must be a ULID (26 characters of Crockford base32, upper case)");
        return false;
      case Rule::kConnectorId:
        if (is_connector_id(r.text)) return true;
        issue("must match ^[a-z0-9][a-z0-9-]{{1,62}}$, got {}", quoted(r.text));
        return false;
      case Rule::kUri:
        if (is_absolute_uri(r.text)) return true;
        issue("must be an absolute URI (scheme://authority...), got {}", quoted(r.text));
        return false;
      case Rule::kDateTime:
        if (is_rfc3339_date_time(r.text)) return true;
        issue("must be an RFC 3339 date-time, e.g. 2025-10-10T00:00:00Z");
        return false;
      case Rule::kBrand:
        if (r.text == kBrandName) return true;
        issue("must be \"{}\"", kBrandName);
        return false;
      case Rule::kEnum:
        for (r.index = 0; r.index < f.values.size(); ++r.index) {
          if (same(f.values[r.index], r.text)) return true;
        }
        issue("must be one of {}, got {}", fmt::join(f.values, ", "), quoted(r.text));
        return false;
      default:
        return true;
    }
  }

  // An object or array at `depth` (a type error names `expected`).
  bool container(Node v, Kind kind, const char* expected, std::size_t depth) {
    if (source_.kind(v) != kind) {
      type_error(v, expected);
      return false;
    }
    if (!source_.depth_ok(depth)) {
      bail();
      return false;
    }
    return true;
  }

  // An array at `depth` with at least `min_items` items.
  bool array(Node v, std::size_t min_items, std::size_t depth) {
    if (!container(v, Kind::kArray, min_items > 0 ? "a non-empty array" : "an array", depth)) {
      return false;
    }
    if (source_.size(v) < min_items) {
      issue("must be a non-empty array");
      return false;
    }
    return true;
  }

  bool strings(Node v, const Field& f, std::size_t depth) {
    if (!array(v, f.min_items, depth)) return false;
    bool ok = true;
    seen_.clear();
    source_.items(v, [&](std::size_t i, Node item) {
      Push p(*this, i);
      std::string_view s;
      if (!string(item, f.non_empty_items, s)) {
        ok = false;
      } else if (f.unique != nullptr) {
        if (std::find(seen_.begin(), seen_.end(), s) != seen_.end()) {
          issue("duplicate {} {}", f.unique, quoted(s));
          ok = false;
        } else {
          seen_.push_back(s);
        }
      }
      return !stop();
    });
    return ok;
  }

  // An object of string (kStringMap) or integer (kIntegerMap) values.
  bool map(Node v, const Field& f, std::size_t depth) {
    if (!container(v, Kind::kObject, "an object", depth)) return false;
    bool ok = true;
    source_.members(v, [&](std::string_view key, Node value) {
      Push p(*this, key);
      std::string_view s;
      std::int64_t i = 0;
      ok = (f.rule == Rule::kStringMap ? string(value, false, s) : integer(value, f.min, i)) && ok;
      return !stop();
    });
    return ok;
  }

  // One member `f` of an object, stored into `target` when it passes.
  void value(Node v, const Field& f, void* target, std::size_t depth) {
    Read r;
    switch (f.rule) {
      case Rule::kInteger:
        if (!integer(v, f.min, r.integer)) return;
        break;
      case Rule::kBoolean:
        if (source_.kind(v) != Kind::kBool) {
          type_error(v, "a boolean");
          return;
        }
        r.boolean = source_.boolean(v);
        break;
      case Rule::kFreeObject:
      case Rule::kStringMap:
      case Rule::kIntegerMap:
        if (f.rule == Rule::kFreeObject ? !container(v, Kind::kObject, "an object", depth)
                                        : !map(v, f, depth)) {
          return;
        }
        if (!source_.free_ok(v, depth)) {
          bail();
          return;
        }
        break;
      case Rule::kStrings:
        if (!strings(v, f, depth)) return;
        break;
      case Rule::kObject:
        if (source_.kind(v) != Kind::kObject) {
          type_error(v, "an object");
          return;
        }
        if (f.set != nullptr) f.set(target, r);
        object(v, *f.shape, target, depth);
        return;
      case Rule::kObjects:
        if (&f == &kConnectorsField) {
          connectors(v, *static_cast<ManifestView*>(target), depth);
          return;
        }
        if (!array(v, f.min_items, depth)) return;
        source_.items(v, [&](std::size_t i, Node item) {
          Push p(*this, i);
          object(item, *f.shape, nullptr, depth + 1);
          return !stop();
        });
        break;
      default:
        if (!text(v, f, r)) return;
        break;
    }
    source_.locate(r, v, depth);
    if (f.set != nullptr) f.set(target, r);
  }

  // An object of `shape` at `depth`; its members are stored into `target`.
  void object(Node v, const Shape& shape, void* target, std::size_t depth) {
    if (!container(v, Kind::kObject, "an object", depth)) return;
    std::uint32_t seen = 0;
    source_.members(v, [&](std::string_view key, Node member) {
      if (!source_.string_ok(key)) {
        bail();
        return false;
      }
      Push p(*this, key);
      std::int8_t found = shape.first[Shape::slot(key)];
      while (found >= 0 && !same(shape.keys[static_cast<std::size_t>(found)], key)) {
        found = shape.next[static_cast<std::size_t>(found)];
      }
      if (found < 0) {
        issue("unknown field {}", quoted(key));
        return !stop();
      }
      const auto i = static_cast<std::size_t>(found);
      const std::uint32_t bit = std::uint32_t{1} << i;
      if ((seen & bit) != 0) {  // a duplicate key, which parse_json() refuses
        bail();
        return false;
      }
      seen |= bit;
      value(member, shape.fields[i], target, depth + 1);
      return !stop();
    });
    if ((seen & shape.required) == shape.required) return;
    for (std::size_t i = 0; i < shape.fields.size() && !stop(); ++i) {
      if (shape.fields[i].required && (seen & (std::uint32_t{1} << i)) == 0) {
        Push p(*this, shape.fields[i].key);
        issue("required field is missing");
      }
    }
  }

  // The connectors, and the one rule across them: unique ids.
  void connectors(Node v, ManifestView& out, std::size_t depth) {
    if (!array(v, kConnectorsField.min_items, depth)) return;
    out.connectors.resize(source_.size(v));
    std::unordered_map<std::string_view, std::size_t> first_index;
    if constexpr (!kStop) first_index.reserve(out.connectors.size());
    source_.items(v, [&](std::size_t i, Node item) {
      Push p(*this, i);
      object(item, *kConnectorsField.shape, &out.connectors[i], depth + 1);
      if constexpr (!kStop) {
        const std::string_view id = out.connectors[i].id;  // set only when it is a valid id
        if (id.empty()) return true;
        auto [it, inserted] = first_index.emplace(id, i);
        if (!inserted) {
          Push pid(*this, std::string_view("id"));
          issue("duplicate connector id {} (first at /connectors/{})", quoted(id), it->second);
        }
      }
      return !stop();
    });
    if constexpr (kStop) {
      if (stop()) return;
      // Manifests often list their ids in order: then one pass says they are unique.
      const std::size_t n = out.connectors.size();
      bool ascending = true;
      for (std::size_t i = 1; i < n && ascending; ++i) {
        ascending = out.connectors[i - 1].id < out.connectors[i].id;
      }
      if (ascending) return;
      std::vector<std::string_view> ids;
      ids.reserve(n);
      for (const ConnectorView& c : out.connectors) ids.push_back(c.id);
      std::sort(ids.begin(), ids.end());
      if (std::adjacent_find(ids.begin(), ids.end()) != ids.end()) bail();
    }
  }

  Source source_;
  std::string path_;
  std::vector<Issue> issues_;
  std::size_t total_ = 0;
  bool failed_ = false;
  std::vector<std::string_view> seen_;  // strings(): the items so far
};

}  // namespace

bool manifest_view_from_dom(simdjson::dom::element root, const DomLimits& limits,
                            ManifestView& out) {
  ManifestWalker<DomSource, StopAtFirst> walker(DomSource{limits});
  walker.walk(root, out);
  return !walker.failed();
}

std::size_t manifest_view_from_json(const Json& document, ManifestView& out,
                                    std::vector<Issue>& issues) {
  ManifestWalker<JsonSource, ListEveryFinding> walker(JsonSource{});
  walker.walk(&document, out);
  const std::size_t total = walker.total_issues();
  issues = std::move(walker).take_issues();
  return total;
}

}  // namespace internal

std::vector<Issue> validate_manifest(const Json& document) {
  internal::ManifestView ignored;
  std::vector<Issue> issues;
  (void)internal::manifest_view_from_json(document, ignored, issues);
  return issues;
}

}  // namespace cortex_connectors
