// A canonical JSON (RFC 8785) writer for documents whose shape the caller knows: the caller
// writes punctuation and keys in canonical order itself and hands the free-form parts (Json
// values, objects merged from several sources) to the same serializer canonical_json() uses, so
// the bytes are the same as canonical_json() of the equivalent Json tree, without building it.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "cortex_connectors/json.h"
#include "cortex_connectors/result.h"
#include "internal/manifest_view.h"

namespace cortex_connectors::internal {

// One member of an object written by CanonicalWriter::object(): the free-form `value`, or, when
// `value` is absent, the string `text` (or `text` as it is when `raw`: canonical bytes the caller
// formatted, such as an integer).
struct CanonicalMember {
  std::string_view key;
  FreeForm value;
  std::string_view text;
  bool raw = false;
};

// The Error of a value JSON cannot express (NaN, an infinity).
Error non_finite_error();

class CanonicalWriter {
 public:
  // Appends to `out`; `out` is trimmed to what was written when the writer goes away.
  explicit CanonicalWriter(std::string& out);
  ~CanonicalWriter();
  CanonicalWriter(const CanonicalWriter&) = delete;
  CanonicalWriter& operator=(const CanonicalWriter&) = delete;

  // Reserves room for `n` more bytes.
  void reserve(std::size_t n);
  // Where the next byte goes: the output's size so far (recorded as a payload layout's offsets).
  std::size_t position() const noexcept;
  // Bytes that are canonical already: punctuation, keys in canonical order with their quotes.
  void raw(std::string_view text);
  void raw(char c);
  // A string literal with JCS escaping. REQUIRES: valid UTF-8.
  void string(std::string_view text);
  // A number as a Json holding it would be written. REQUIRES: finite.
  void number(double value);
  // `value` as canonical_json() writes it (a DOM value as canonical_json() writes the Json
  // parse_json() builds of it); false when it holds a NaN or an infinity.
  // REQUIRES: value.present().
  bool value(const FreeForm& value);
  // The object of `members` in canonical order; of members with equal keys the last one wins, as
  // with Json::set() in member order. Reorders `members`. False as value().
  bool object(std::span<CanonicalMember> members);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cortex_connectors::internal
