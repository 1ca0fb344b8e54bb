// The only includer of <simdjson.h> besides utf8.cpp: maps simdjson errors to ours, keeps a
// per-thread DOM parser so that documents do not pay for parser allocation, and holds the checks
// every walk over that DOM applies (the Json tree of parse_json, the direct serializer of
// canonicalize), so that both accept exactly the same documents.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include <simdjson.h>

#include "cortex_connectors/json.h"
#include "cortex_connectors/result.h"

namespace cortex_connectors::internal {

// A readable description of a simdjson error, for Error::message.
const char* describe_simdjson_error(simdjson::error_code code) noexcept;

// Builds a kParse Error "[brAInwav] invalid JSON at byte N: what".
Error parse_error(std::string what, std::size_t offset);

// The JsonParseOptions checks on simdjson DOM elements. The DOM itself has already rejected
// invalid UTF-8, unpaired surrogate escapes, non-finite numbers and integers beyond 64 bits;
// duplicate keys are left to the walk, which sees each object's keys together. No offsets: a
// walk that fails makes visit_dom() re-parse on the slow path, which finds them.
class DomLimits {
 public:
  explicit DomLimits(const JsonParseOptions& options) noexcept : options_(options) {}

  // `depth` of an object or array; the root value is depth 1.
  bool depth_ok(std::size_t depth) const noexcept { return depth <= options_.max_depth; }
  bool string_ok(std::string_view s) const noexcept {
    return s.size() <= options_.max_string_bytes;
  }
  bool int64_ok(std::int64_t v) const noexcept {
    return !options_.reject_unsafe_integers || (v >= -kMaxSafeInt && v <= kMaxSafeInt);
  }
  // simdjson types an integer literal UINT64 only above INT64_MAX.
  bool uint64_ok(std::uint64_t v) const noexcept {
    return !options_.reject_unsafe_integers || v <= static_cast<std::uint64_t>(kMaxSafeInt);
  }

 private:
  static constexpr std::int64_t kMaxSafeInt = (std::int64_t{1} << 53) - 1;
  const JsonParseOptions& options_;
};

// Limits that let everything through, for a DOM that was checked already.
const DomLimits& unchecked_dom_limits();

// What parse_json() builds from `element`, a value at nesting `depth` (the root is 1), with the
// same checks (`limits`, duplicate keys). Returns false when one fails; `out` is then partial.
bool json_from_dom(simdjson::dom::element element, const DomLimits& limits, std::size_t depth,
                   Json& out);

// Whether parse_json() would accept `element`, a value at nesting `depth`: json_from_dom()'s
// checks without building anything.
bool dom_ok(simdjson::dom::element element, const DomLimits& limits, std::size_t depth);

// A non-owning reference to a callable `bool(simdjson::dom::element root)`.
class DomVisitor {
 public:
  template <class F, std::enable_if_t<!std::is_same_v<std::remove_cv_t<F>, DomVisitor>, int> = 0>
  DomVisitor(F& f) noexcept  // NOLINT: implicit, like std::function_ref
      : context_(&f),
        call_([](void* c, simdjson::dom::element root) { return (*static_cast<F*>(c))(root); }) {}

  bool operator()(simdjson::dom::element root) const { return call_(context_, root); }

 private:
  void* context_;
  bool (*call_)(void*, simdjson::dom::element);
};

// Parses `text` with this thread's DOM parser and calls `visit` with the root. The DOM lives
// until `visit` returns. `visit` returns false when a JsonParseOptions check fails (see DomLimits,
// plus duplicate keys). Returns OK when parsing and `visit` succeed; otherwise the Error
// parse_json() reports for `text`, with its message and offset, found by a slower second parse.
Status visit_dom(std::string_view text, const JsonParseOptions& options, DomVisitor visit);

}  // namespace cortex_connectors::internal
