// RFC 8785 JSON Canonicalization Scheme (JCS): the exact bytes that are signed and served.
//
// Object members are sorted by the UTF-16 code units of their keys, no whitespace is written,
// strings use the minimal escapes (\" \\ \b \f \n \r \t and \u00xx, lowercase, for the other
// controls; everything else raw UTF-8), and numbers are written as ECMAScript's
// Number.prototype.toString does (shortest round-trip digits; 1e+21; -0 is 0).
// For ASCII documents whose numbers are integers this equals Python's
// json.dumps(doc, sort_keys=True, separators=(",", ":")).
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "cortex_connectors/export.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/result.h"

namespace cortex_connectors {

// Returns the canonical form of `value`. Fails (ErrorCode::kInvalid) only when the value holds a
// NaN or an infinity, which JSON cannot express. A string or key that is not valid UTF-8 (a Json
// built from outside text: an OS or library error message, a path) is written with U+FFFD for
// each ill-formed subsequence, so the output is always valid UTF-8; valid strings are written as
// they are. Also for append_canonical_json() and pretty_json().
//
// **Example**:
//   Json doc = Json::object();
//   doc.set("b", 1); doc.set("a", "x");
//   canonical_json(doc).value() == R"({"a":"x","b":1})"
CORTEX_CONNECTORS_API Result<std::string> canonical_json(const Json& value);

// Appends the canonical form of `value` to `out`; on failure `out` is left as it was.
CORTEX_CONNECTORS_API Status append_canonical_json(std::string& out, const Json& value);

// Parses `text` (see parse_json) and returns its canonical form.
CORTEX_CONNECTORS_API Result<std::string> canonicalize(std::string_view text,
                                                       const JsonParseOptions& options = {});

// Returns the canonical form laid out for humans: members in canonical order, two-space indent,
// one member or item per line. Same failure as canonical_json().
CORTEX_CONNECTORS_API Result<std::string> pretty_json(const Json& value);

// Appends `number` in the ECMAScript Number.prototype.toString form. REQUIRES: finite.
CORTEX_CONNECTORS_API void append_canonical_number(std::string& out, double number);

// Appends `text` (valid UTF-8) as a JSON string literal with JCS escaping.
CORTEX_CONNECTORS_API void append_canonical_string(std::string& out, std::string_view text);

// Orders two UTF-8 strings by their UTF-16 code units, as JCS sorts keys. Returns <0, 0 or >0.
CORTEX_CONNECTORS_API int compare_utf16(std::string_view a, std::string_view b) noexcept;

}  // namespace cortex_connectors
