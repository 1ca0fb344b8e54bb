// Json: a small JSON value type for building and inspecting documents, and parse_json(), a
// hardened parser built on simdjson.
//
// Objects keep their members in insertion order and never hold two members with the same key
// (set() replaces, the parser rejects duplicates). Numbers are IEEE-754 doubles, as in RFC 8785
// (JCS) and ECMAScript: an integer beyond +-2^53 cannot be represented exactly. parse_json() keeps
// such literals only when JsonParseOptions::reject_unsafe_integers is false (the default for
// canonicalize, which follows JCS and rounds like every JCS implementation); the manifest path
// rejects them instead of silently rounding.
//
// Thread-safety: a Json is a plain value; const access from several threads is safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "cortex_connectors/export.h"
#include "cortex_connectors/result.h"

namespace cortex_connectors {

class CORTEX_CONNECTORS_API Json {
 public:
  enum class Type : std::uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  using Array = std::vector<Json>;
  using Member = std::pair<std::string, Json>;
  using Object = std::vector<Member>;

  Json() noexcept = default;        // null
  Json(std::nullptr_t) noexcept {}  // NOLINT: implicit
  Json(bool b) noexcept : v_(b) {}  // NOLINT: implicit
  template <class N, std::enable_if_t<std::is_arithmetic_v<N> && !std::is_same_v<N, bool>, int> = 0>
  Json(N n) noexcept : v_(static_cast<double>(n)) {}  // NOLINT: implicit
  Json(std::string s) noexcept : v_(std::move(s)) {}  // NOLINT: implicit
  Json(std::string_view s) : v_(std::string(s)) {}    // NOLINT: implicit
  Json(const char* s) : v_(std::string(s)) {}         // NOLINT: implicit
  Json(Array a) noexcept : v_(std::move(a)) {}        // NOLINT: implicit
  Json(Object o) noexcept : v_(std::move(o)) {}       // NOLINT: implicit

  static Json array() { return Json(Array{}); }
  static Json object() { return Json(Object{}); }

  Type type() const noexcept { return static_cast<Type>(v_.index()); }
  bool is_null() const noexcept { return type() == Type::kNull; }
  bool is_bool() const noexcept { return type() == Type::kBool; }
  bool is_number() const noexcept { return type() == Type::kNumber; }
  bool is_string() const noexcept { return type() == Type::kString; }
  bool is_array() const noexcept { return type() == Type::kArray; }
  bool is_object() const noexcept { return type() == Type::kObject; }

  // Accessors. REQUIRES: the matching is_*() is true.
  bool as_bool() const { return std::get<bool>(v_); }
  double as_number() const { return std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const Array& as_array() const { return std::get<Array>(v_); }
  Array& as_array() { return std::get<Array>(v_); }
  const Object& as_object() const { return std::get<Object>(v_); }
  Object& as_object() { return std::get<Object>(v_); }

  // Returns the member `key` of an object, or nullptr when absent or when this is not an object.
  const Json* find(std::string_view key) const noexcept;
  Json* find(std::string_view key) noexcept;

  // Sets member `key` (replacing an existing one in place) and returns it.
  // REQUIRES: is_object() or is_null() (a null becomes an empty object first).
  Json& set(std::string_view key, Json value);

  // Appends to an array. REQUIRES: is_array() or is_null() (a null becomes an empty array first).
  Json& push_back(Json value);

  // Deep equality; objects compare member by member in order.
  friend bool operator==(const Json& a, const Json& b) = default;

 private:
  std::variant<std::nullptr_t, bool, double, std::string, Array, Object> v_;
};

// Limits and switches of parse_json(). The defaults suit untrusted input of a few megabytes.
struct JsonParseOptions {
  // Objects and arrays nested deeper than this are rejected (the root value is depth 1).
  std::size_t max_depth = 64;
  // Documents larger than this are rejected before parsing.
  std::size_t max_document_bytes = std::size_t{64} << 20;
  // A single string (value or key, after unescaping) longer than this is rejected.
  std::size_t max_string_bytes = std::size_t{1} << 20;
  // Reject integer literals (no fraction, no exponent) outside [-(2^53-1), 2^53-1]: a double
  // cannot hold them exactly. When false they are rounded to the nearest double, as JCS does.
  bool reject_unsafe_integers = false;
};

// Parses one JSON document (RFC 8259, I-JSON: UTF-8 only, no duplicate keys, no lone surrogates).
// On failure returns ErrorCode::kParse with a message naming the problem and Error::offset, the
// byte offset where it was found. Never crashes on any input.
CORTEX_CONNECTORS_API Result<Json> parse_json(std::string_view text,
                                              const JsonParseOptions& options = {});

// The largest integer a double holds exactly together with all smaller ones: 2^53 - 1.
inline constexpr double kMaxSafeInteger = 9007199254740991.0;

}  // namespace cortex_connectors
