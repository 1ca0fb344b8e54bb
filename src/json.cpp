#include "cortex_connectors/json.h"

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <unordered_set>

#include <fmt/format.h>

#include "cortex_connectors/validate.h"
#include "internal/json_reader.h"
#include "internal/utf8.h"

namespace cortex_connectors {

namespace ondemand = simdjson::ondemand;

const Json* Json::find(std::string_view key) const noexcept {
  if (!is_object()) return nullptr;
  for (const Member& m : std::get<Object>(v_)) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

Json* Json::find(std::string_view key) noexcept {
  return const_cast<Json*>(std::as_const(*this).find(key));  // NOLINT
}

Json& Json::set(std::string_view key, Json value) {
  if (is_null()) v_ = Object{};
  if (Json* existing = find(key)) {
    *existing = std::move(value);
    return *existing;
  }
  auto& members = std::get<Object>(v_);
  members.emplace_back(std::string(key), std::move(value));
  return members.back().second;
}

Json& Json::push_back(Json value) {
  if (is_null()) v_ = Array{};
  auto& items = std::get<Array>(v_);
  items.push_back(std::move(value));
  return items.back();
}

namespace internal {

const char* describe_simdjson_error(simdjson::error_code code) noexcept {
  switch (code) {
    case simdjson::EMPTY:
      return "empty document";
    case simdjson::UTF8_ERROR:
      return "invalid UTF-8";
    case simdjson::UNCLOSED_STRING:
      return "unterminated string";
    case simdjson::STRING_ERROR:
      return "invalid string (bad escape or control character)";
    case simdjson::NUMBER_ERROR:
      return "invalid or out-of-range number";
    case simdjson::T_ATOM_ERROR:
      return "invalid literal (expected true)";
    case simdjson::F_ATOM_ERROR:
      return "invalid literal (expected false)";
    case simdjson::N_ATOM_ERROR:
      return "invalid literal (expected null)";
    case simdjson::DEPTH_ERROR:
      return "nesting too deep";
    case simdjson::INCOMPLETE_ARRAY_OR_OBJECT:
      return "truncated input or content after the document (unbalanced brackets)";
    case simdjson::TRAILING_CONTENT:
      return "unexpected content after the document";
    case simdjson::CAPACITY:
      return "document too large";
    case simdjson::MEMALLOC:
      return "out of memory";
    default:
      return "malformed JSON";
  }
}

Error parse_error(std::string what, std::size_t offset) {
  Error e;
  e.code = ErrorCode::kParse;
  e.message = fmt::format("[brAInwav] invalid JSON at byte {}: {}", offset, what);
  e.offset = offset;
  return e;
}

}  // namespace internal

namespace {

// The keys of one object, as they come: insert() says whether a key repeats one before it.
// Objects of real documents are small: their keys are compared pairwise on the stack, and only
// beyond kOnStack go into a hash set. The keys must outlive the KeySet (views into the parser).
class KeySet {
 public:
  // False when `key` is already in the set.
  bool insert(std::string_view key) {
    if (n_ < kOnStack) {
      for (std::size_t i = 0; i < n_; ++i) {
        if (keys_[i] == key) return false;
      }
      keys_[n_++] = key;
      return true;
    }
    if (many_.empty()) many_.insert(keys_.begin(), keys_.end());
    return many_.insert(key).second;
  }

 private:
  static constexpr std::size_t kOnStack = 16;
  std::array<std::string_view, kOnStack> keys_;
  std::size_t n_ = 0;
  std::unordered_set<std::string_view> many_;
};

// Each thread that parses keeps its simdjson DOM parser, with the parser's padded copy of the
// input, for documents up to this size, so that parsing big documents again neither allocates
// nor page-faults the parser's buffers (~14 bytes of address space per input byte: padded copy
// 1x, structural index 4x, tape 8x, string buffer 1.7x). A parser that grew beyond the cap is
// dropped after use, so memory stays bounded: one parser per thread that has parsed, sized for
// the largest document under the cap that thread has parsed. Measured with the 10 MB bench
// document: 34 MiB resident and 147 MiB of address space stay (3.3x and 14x the document); at
// the cap that is ~55 MiB resident. The library parses on the caller's thread (in the server,
// the Registry's refresh thread). Documents up to 16 MiB (a manifest of ~60 000 connectors) are
// parsed warm; bigger ones, up to JsonParseOptions::max_document_bytes, pay the allocation each
// time rather than keep hundreds of MiB resident in a long-running process.
constexpr std::size_t kRetainedParserBytes = std::size_t{16} << 20;

// Walks an On-Demand document into a Json tree, enforcing JsonParseOptions and I-JSON rules,
// and reports the byte offset of the first problem. Debian's simdjson compiles On-Demand for the
// portable scalar kernel only (the DOM API dispatches to AVX2 at run time), so this is the slow
// path: it runs only after the fast DomBuilder below has failed, to say where.
class Locator {
 public:
  Locator(std::string_view text, const char* base, const JsonParseOptions& options)
      : text_(text), base_(base), options_(options) {}

  // Returns false on failure; error() then describes it.
  bool build_document(ondemand::document& doc, Json& out) {
    ondemand::json_type t{};
    if (auto e = doc.type().get(t)) return fail_simdjson(e, doc_location(doc));
    switch (t) {
      case ondemand::json_type::object: {
        ondemand::object obj;
        if (auto e = doc.get_object().get(obj)) return fail_simdjson(e, doc_location(doc));
        if (!build_object(obj, out, 1)) return false;
        break;
      }
      case ondemand::json_type::array: {
        ondemand::array arr;
        if (auto e = doc.get_array().get(arr)) return fail_simdjson(e, doc_location(doc));
        if (!build_array(arr, out, 1)) return false;
        break;
      }
      default: {
        std::string_view token;
        if (auto e = doc.raw_json_token().get(token)) return fail_simdjson(e, 0);
        if (!build_root_scalar(doc, t, token, out)) return false;
      }
    }
    return true;
  }

  Error take_error() { return std::move(error_); }

 private:
  std::size_t offset_of(const char* p) const noexcept {
    if (p < base_ || p > base_ + text_.size()) return text_.size();
    return static_cast<std::size_t>(p - base_);
  }
  std::size_t doc_location(ondemand::document& doc) noexcept {
    const char* p = nullptr;
    if (doc.current_location().get(p)) return text_.size();
    return offset_of(p);
  }
  std::size_t value_location(ondemand::value& v) noexcept {
    const char* p = nullptr;
    if (v.current_location().get(p)) return text_.size();
    return offset_of(p);
  }

  // A finding of the checks below: with the JSON pointer of the value it is about as its Issue
  // (as validation reports findings), once the walk is inside the root value.
  bool fail(std::string what, std::size_t offset) {
    error_ = internal::parse_error(what, offset);
    if (!path_.empty()) error_.issues.push_back(Issue{path_, std::move(what)});
    return false;
  }
  bool fail_simdjson(simdjson::error_code e, std::size_t offset) {
    if (e == simdjson::UTF8_ERROR) {
      offset = internal::find_invalid_utf8(text_).value_or(offset);
    } else if (e == simdjson::INCOMPLETE_ARRAY_OR_OBJECT || e == simdjson::UNCLOSED_STRING) {
      offset = text_.size();
    }
    return fail(internal::describe_simdjson_error(e), offset);
  }

  bool check_string(std::string_view s, std::size_t offset) {
    if (s.size() > options_.max_string_bytes) {
      return fail(fmt::format("string of {} bytes exceeds the limit of {} bytes", s.size(),
                              options_.max_string_bytes),
                  offset);
    }
    // Escapes are the only way to produce a surrogate code point (0xED 0xA0..0xBF); the raw
    // text was validated as UTF-8 already.
    if (std::memchr(s.data(), 0xED, s.size()) != nullptr && !internal::is_valid_utf8(s)) {
      return fail("string contains an unpaired surrogate escape", offset);
    }
    return true;
  }

  bool number_from_token(std::string_view token, double d, std::size_t offset, Json& out) {
    if (!std::isfinite(d)) return fail("number out of range", offset);
    if (options_.reject_unsafe_integers && std::fabs(d) > kMaxSafeInteger &&
        token.find_first_of(".eE") == std::string_view::npos) {
      return fail(fmt::format("integer {} is outside the exact range of a double (+-2^53-1)",
                              token.substr(0, 40)),
                  offset);
    }
    out = Json(d);
    return true;
  }

  template <class Node>
  bool build_scalar(Node& node, ondemand::json_type t, std::string_view token, std::size_t offset,
                    Json& out) {
    switch (t) {
      case ondemand::json_type::string: {
        std::string_view s;
        if (auto e = node.get_string().get(s)) return fail_simdjson(e, offset);
        if (!check_string(s, offset)) return false;
        out = Json(s);
        return true;
      }
      case ondemand::json_type::number: {
        double d = 0;
        if (auto e = node.get_double().get(d)) return fail_simdjson(e, offset);
        return number_from_token(token, d, offset, out);
      }
      case ondemand::json_type::boolean: {
        bool b = false;
        if (auto e = node.get_bool().get(b)) return fail_simdjson(e, offset);
        out = Json(b);
        return true;
      }
      case ondemand::json_type::null: {
        bool is_null = false;
        if (auto e = node.is_null().get(is_null)) return fail_simdjson(e, offset);
        if (!is_null) return fail("invalid literal (expected null)", offset);
        out = Json();
        return true;
      }
      default:
        return fail("malformed JSON", offset);
    }
  }

  bool build_root_scalar(ondemand::document& doc, ondemand::json_type t, std::string_view token,
                         Json& out) {
    return build_scalar(doc, t, token, doc_location(doc), out);
  }

  bool build_value(ondemand::value& v, Json& out, std::size_t depth) {
    const std::size_t offset = value_location(v);
    ondemand::json_type t{};
    if (auto e = v.type().get(t)) return fail_simdjson(e, offset);
    switch (t) {
      case ondemand::json_type::object: {
        if (!enter(depth, offset)) return false;
        ondemand::object obj;
        if (auto e = v.get_object().get(obj)) return fail_simdjson(e, offset);
        return build_object(obj, out, depth);
      }
      case ondemand::json_type::array: {
        if (!enter(depth, offset)) return false;
        ondemand::array arr;
        if (auto e = v.get_array().get(arr)) return fail_simdjson(e, offset);
        return build_array(arr, out, depth);
      }
      default:
        return build_scalar(v, t, v.raw_json_token(), offset, out);
    }
  }

  bool enter(std::size_t depth, std::size_t offset) {
    if (depth > options_.max_depth) {
      return fail(fmt::format("nesting deeper than {} levels", options_.max_depth), offset);
    }
    return true;
  }

  bool build_object(ondemand::object& obj, Json& out, std::size_t depth) {
    out = Json::object();
    auto& members = out.as_object();
    // Keys are views into the parser's string buffer, valid for the whole parse.
    KeySet keys;
    for (auto field_result : obj) {
      if (auto e = field_result.error()) return fail_simdjson(e, text_.size());
      ondemand::field field = std::move(field_result).value_unsafe();
      const std::size_t key_offset = offset_of(field.key().raw()) - 1;
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return fail_simdjson(e, key_offset);
      if (!check_string(key, key_offset)) return false;
      const std::size_t parent = path_.size();
      append_pointer_token(path_, key);
      if (!keys.insert(key)) {
        return fail(fmt::format("duplicate key \"{}\"", key.substr(0, 64)), key_offset);
      }
      members.emplace_back(std::string(key), Json());
      ondemand::value v = field.value();
      if (!build_value(v, members.back().second, depth + 1)) return false;
      path_.resize(parent);
    }
    return true;
  }

  bool build_array(ondemand::array& arr, Json& out, std::size_t depth) {
    out = Json::array();
    auto& items = out.as_array();
    for (auto item_result : arr) {
      if (auto e = item_result.error()) return fail_simdjson(e, text_.size());
      ondemand::value v = std::move(item_result).value_unsafe();
      const std::size_t parent = path_.size();
      path_.push_back('/');
      path_.append(std::to_string(items.size()));
      items.emplace_back();
      if (!build_value(v, items.back(), depth + 1)) return false;
      path_.resize(parent);
    }
    return true;
  }

  std::string_view text_;
  const char* base_;
  const JsonParseOptions& options_;
  Error error_;
  std::string path_;  // the JSON pointer of the value being walked
};

// The fast path: simdjson's DOM (SIMD stage 1 and 2 chosen at run time) into a Json tree with
// the same checks as Locator, but no offsets. Returns false at the first problem.
class DomBuilder {
 public:
  explicit DomBuilder(const internal::DomLimits& limits) : limits_(limits) {}

  bool build(simdjson::dom::element e, Json& out, std::size_t depth) {
    using simdjson::dom::element_type;
    switch (e.type()) {
      case element_type::OBJECT: {
        if (!limits_.depth_ok(depth)) return false;
        simdjson::dom::object obj = e.get_object().value_unsafe();
        out = Json::object();
        auto& members = out.as_object();
        members.reserve(obj.size());
        KeySet keys;
        for (auto field : obj) {
          if (!limits_.string_ok(field.key) || !keys.insert(field.key)) return false;
          members.emplace_back(std::string(field.key), Json());
          if (!build(field.value, members.back().second, depth + 1)) return false;
        }
        return true;
      }
      case element_type::ARRAY: {
        if (!limits_.depth_ok(depth)) return false;
        simdjson::dom::array arr = e.get_array().value_unsafe();
        out = Json::array();
        auto& items = out.as_array();
        items.reserve(arr.size());
        for (simdjson::dom::element item : arr) {
          items.emplace_back();
          if (!build(item, items.back(), depth + 1)) return false;
        }
        return true;
      }
      case element_type::STRING: {
        std::string_view s = e.get_string().value_unsafe();
        if (!limits_.string_ok(s)) return false;
        out = Json(s);
        return true;
      }
      case element_type::INT64: {
        const std::int64_t v = e.get_int64().value_unsafe();
        if (!limits_.int64_ok(v)) return false;
        out = Json(v);
        return true;
      }
      case element_type::UINT64: {
        const std::uint64_t v = e.get_uint64().value_unsafe();
        if (!limits_.uint64_ok(v)) return false;
        out = Json(v);
        return true;
      }
      case element_type::DOUBLE:
        out = Json(e.get_double().value_unsafe());
        return true;
      case element_type::BOOL:
        out = Json(e.get_bool().value_unsafe());
        return true;
      case element_type::NULL_VALUE:
        out = Json();
        return true;
    }
    return false;
  }

 private:
  const internal::DomLimits& limits_;
};

// Re-parses `padded` with the Locator to describe a failure of the fast path.
Error locate_error(std::string_view text, const simdjson::padded_string& padded,
                   const JsonParseOptions& options, simdjson::error_code dom_error) {
  ondemand::parser parser;
  ondemand::document doc;
  if (auto e = parser.iterate(padded).get(doc)) {
    std::size_t offset = text.size();
    if (e == simdjson::UTF8_ERROR) offset = internal::find_invalid_utf8(text).value_or(0);
    if (e == simdjson::EMPTY) offset = 0;
    return internal::parse_error(internal::describe_simdjson_error(e), offset);
  }
  Locator locator(text, padded.data(), options);
  Json ignored;
  if (!locator.build_document(doc, ignored)) return locator.take_error();
  // The scalar walk accepted what the DOM refused: in practice content after the root value.
  const char* what = dom_error == simdjson::TAPE_ERROR
                         ? "unexpected content after the document"
                         : internal::describe_simdjson_error(dom_error);
  Error e = internal::parse_error(what, text.size());
  e.offset.reset();
  e.message = fmt::format("[brAInwav] invalid JSON: {}", what);
  return e;
}

// simdjson refuses integer literals outside 64 bits (NUMBER_ERROR), yet they are JSON, and
// canonical JSON writes every double below 1e21 in integer form: 1e20 is served as
// 100000000000000000000. Returns `text` with ".0" after each integer literal of 19 digits or more
// (a float literal of the same value, which simdjson reads as a double), or nullopt when there
// is none. Strings are skipped; the result only matters if it then parses.
std::optional<std::string> widen_long_integers(std::string_view text) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  std::string out;
  std::size_t copied = 0;
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const char c = text[i];
    if (c == '"') {
      for (++i; i < n && text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;
      }
      ++i;
      continue;
    }
    if (c != '-' && !digit(c)) {
      ++i;
      continue;
    }
    if (c == '-') ++i;
    const std::size_t first = i;
    while (i < n && digit(text[i])) ++i;
    const bool integer = i >= n || (text[i] != '.' && text[i] != 'e' && text[i] != 'E');
    if (integer && i - first >= 19 && text[first] != '0') {
      out.append(text.substr(copied, i - copied)).append(".0");
      copied = i;
    }
    while (i < n && (digit(text[i]) || text[i] == '.' || text[i] == 'e' || text[i] == 'E' ||
                     text[i] == '+' || text[i] == '-')) {
      ++i;
    }
  }
  if (copied == 0) return std::nullopt;
  out.append(text.substr(copied));
  return out;
}

}  // namespace

namespace internal {

bool json_from_dom(simdjson::dom::element element, const DomLimits& limits, std::size_t depth,
                   Json& out) {
  return DomBuilder(limits).build(element, out, depth);
}

const DomLimits& unchecked_dom_limits() {
  static const JsonParseOptions options = [] {
    JsonParseOptions o;
    o.max_depth = std::numeric_limits<std::size_t>::max();
    o.max_document_bytes = std::numeric_limits<std::size_t>::max();
    o.max_string_bytes = std::numeric_limits<std::size_t>::max();
    o.reject_unsafe_integers = false;
    return o;
  }();
  static const DomLimits limits(options);
  return limits;
}

bool dom_ok(simdjson::dom::element element, const DomLimits& limits, std::size_t depth) {
  using simdjson::dom::element_type;
  switch (element.type()) {
    case element_type::OBJECT: {
      if (!limits.depth_ok(depth)) return false;
      const simdjson::dom::object members = element.get_object().value_unsafe();
      KeySet keys;
      for (const simdjson::dom::key_value_pair m : members) {
        if (!limits.string_ok(m.key) || !keys.insert(m.key) ||
            !dom_ok(m.value, limits, depth + 1)) {
          return false;
        }
      }
      return true;
    }
    case element_type::ARRAY:
      if (!limits.depth_ok(depth)) return false;
      {
        const simdjson::dom::array items = element.get_array().value_unsafe();
        for (const simdjson::dom::element item : items) {
          if (!dom_ok(item, limits, depth + 1)) return false;
        }
        return true;
      }
    case element_type::STRING:
      return limits.string_ok(element.get_string().value_unsafe());
    case element_type::INT64:
      return limits.int64_ok(element.get_int64().value_unsafe());
    case element_type::UINT64:
      return limits.uint64_ok(element.get_uint64().value_unsafe());
    case element_type::DOUBLE:
    case element_type::BOOL:
    case element_type::NULL_VALUE:
      return true;
  }
  return false;
}

Status visit_dom(std::string_view text, const JsonParseOptions& options, DomVisitor visit) {
  if (text.size() > options.max_document_bytes) {
    return parse_error(fmt::format("document of {} bytes exceeds the limit of {} bytes",
                                   text.size(), options.max_document_bytes),
                       0);
  }
  thread_local simdjson::dom::parser parser;
  // Drops a parser that grew beyond kRetainedParserBytes once the DOM is no longer needed, also
  // when `visit` throws.
  struct Trim {
    simdjson::dom::parser& p;
    ~Trim() {
      if (p.capacity() > kRetainedParserBytes) p = simdjson::dom::parser();
    }
  } trim{parser};
  simdjson::dom::element root;
  // realloc_if_needed: the parser copies `text` into its own padded buffer, kept with it.
  const auto e = parser.parse(text.data(), text.size(), true).get(root);
  if (!e && visit(root)) return {};
  // Integers beyond 64 bits: read as doubles (rounded, as JCS does), unless they are refused.
  if (e == simdjson::NUMBER_ERROR && !options.reject_unsafe_integers) {
    if (const auto widened = widen_long_integers(text)) {
      simdjson::dom::element again;
      if (!parser.parse(widened->data(), widened->size(), true).get(again) && visit(again)) {
        return {};
      }
    }
  }
  const simdjson::padded_string padded(text);
  return locate_error(text, padded, options, e);
}

}  // namespace internal

Result<Json> parse_json(std::string_view text, const JsonParseOptions& options) {
  Json out;
  const internal::DomLimits limits(options);
  auto build = [&](simdjson::dom::element root) { return DomBuilder(limits).build(root, out, 1); };
  Status status = internal::visit_dom(text, options, build);
  if (!status) return status.error();
  return out;
}

}  // namespace cortex_connectors
