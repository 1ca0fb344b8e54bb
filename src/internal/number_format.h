// ECMAScript Number.prototype.toString for finite doubles (ECMA-262 section 6.1.6.1.20), which
// RFC 8785 section 3.2.2.3 requires. The shortest round-trip digits come from std::to_chars
// (libstdc++ implements Ryu); this file only lays them out as ECMAScript does.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cortex_connectors::internal {

// The longest form write_es6_number() produces ("-0.0000012345678901234567" is 25 bytes).
inline constexpr std::size_t kMaxEs6NumberChars = 32;

// Writes the ECMAScript form of `value` at `out` and returns the end.
// REQUIRES: std::isfinite(value) and kMaxEs6NumberChars bytes at `out`.
char* write_es6_number(char* out, double value) noexcept;

// The same for an integer JSON literal: exact digits within +-2^53, else the double it rounds to,
// as ECMAScript reads it. REQUIRES: kMaxEs6NumberChars bytes at `out`.
char* write_es6_number(char* out, std::int64_t value) noexcept;

}  // namespace cortex_connectors::internal
