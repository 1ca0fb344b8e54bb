// UTF-8 helpers the library needs beyond simdjson's validator: locating the first invalid byte for
// an error message, which simdjson (a yes/no validator) does not report.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace cortex_connectors::internal {

// True when `text` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;

// Returns the offset of the first byte that starts an ill-formed sequence, or nullopt.
std::optional<std::size_t> find_invalid_utf8(std::string_view text) noexcept;

// `text` with each maximal ill-formed subsequence replaced by U+FFFD (Unicode 15, section 3.9,
// "U+FFFD Substitution of Maximal Subparts"), as WHATWG's UTF-8 decoder does: valid UTF-8.
std::string replace_invalid_utf8(std::string_view text);

}  // namespace cortex_connectors::internal
