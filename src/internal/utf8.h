// UTF-8 helpers the library needs beyond simdjson's validator: locating the first invalid byte for
// an error message, which simdjson (a yes/no validator) does not report.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace cortex_connectors::internal {

// True when `text` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;

// Returns the offset of the first byte that starts an ill-formed sequence, or nullopt.
std::optional<std::size_t> find_invalid_utf8(std::string_view text) noexcept;

}  // namespace cortex_connectors::internal
