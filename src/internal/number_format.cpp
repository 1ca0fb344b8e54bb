#include "internal/number_format.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <system_error>

namespace cortex_connectors::internal {

namespace {

constexpr std::int64_t kTwoTo53 = std::int64_t{1} << 53;

char* write_integer(char* out, std::int64_t value) noexcept {
  return std::to_chars(out, out + kMaxEs6NumberChars, value).ptr;
}

char* write_zeros(char* out, int count) noexcept {
  std::memset(out, '0', static_cast<std::size_t>(count));
  return out + count;
}

char* write_chars(char* out, const char* from, int count) noexcept {
  std::memcpy(out, from, static_cast<std::size_t>(count));
  return out + count;
}

// The ECMAScript form of a non-integral `value` whose shortest digits have at most a few
// fraction digits (0.5, 0.001, 19.99), found without the shortest-digits search, or nullptr.
// For k = 1, 2, ... it takes m = round(|value| * 10^k) and stops when m / 10^k gives back
// |value|, which is when the decimal m * 10^-k reads back as `value` (10^k <= 10^22 and
// m < 2^50 are exact, and IEEE division rounds correctly, as a reader does). While
// |value| * 10^k < 2^50, an integer whose decimal reads back lies within 1/8 of the exact
// product, so it is the rounded float product and unique: the first k found has the fewest
// digits, and its candidate is the only one, hence the closest, as ECMA-262 requires.
// 1e-6 <= |value| < 2^50 keeps the result in fixed notation.
char* write_short_decimal(char* out, double value) noexcept {
  const double a = std::fabs(value);
  if (!(a >= 1e-6)) return nullptr;
  constexpr double kLimit = 1125899906842624.0;  // 2^50
  double scale = 1;
  for (int k = 1; k <= 22; ++k) {
    scale *= 10;
    const double product = a * scale;
    if (!(product < kLimit)) return nullptr;
    const auto m = static_cast<std::int64_t>(product + 0.5);
    const auto md = static_cast<double>(m);
    // A cheap test first: such an integer is within 2^-52 * product of the float product.
    if (std::fabs(product - md) > product * 0x1p-51 || md / scale != a) continue;
    if (value < 0) *out++ = '-';
    std::array<char, 24> digits;  // NOLINT: written by to_chars before any read
    const int n = static_cast<int>(
        std::to_chars(digits.data(), digits.data() + digits.size(), m).ptr - digits.data());
    if (n > k) {
      out = write_chars(out, digits.data(), n - k);
      *out++ = '.';
      return write_chars(out, digits.data() + n - k, k);
    }
    *out++ = '0';
    *out++ = '.';
    out = write_zeros(out, k - n);
    return write_chars(out, digits.data(), n);
  }
  return nullptr;
}

}  // namespace

char* write_es6_number(char* out, double value) noexcept {
  if (value == 0) {  // +0 and -0
    *out = '0';
    return out + 1;
  }
  // Integers below 2^53 print exactly; skip the shortest-digits search for them.
  if (std::fabs(value) < static_cast<double>(kTwoTo53) && std::trunc(value) == value) {
    return write_integer(out, static_cast<std::int64_t>(value));
  }
  if (char* end = write_short_decimal(out, value)) return end;
  // Shortest round-trip digits in scientific form: "-d.ddde+XX" (at least two exponent digits).
  std::array<char, kMaxEs6NumberChars> buf;  // NOLINT: written by to_chars before any read
  const char* const end =
      std::to_chars(buf.data(), buf.data() + buf.size(), value, std::chars_format::scientific).ptr;
  const char* p = buf.data();
  if (*p == '-') {
    *out++ = '-';
    ++p;
  }
  std::array<char, 20> digits;  // NOLINT: the first k are written below
  int k = 0;
  for (; *p != 'e'; ++p) {
    if (*p != '.') digits[static_cast<std::size_t>(k++)] = *p;
  }
  ++p;  // 'e'
  const bool negative_exponent = *p++ == '-';
  int exp10 = 0;
  for (; p != end; ++p) exp10 = exp10 * 10 + (*p - '0');
  if (negative_exponent) exp10 = -exp10;

  const int n = exp10 + 1;  // position of the decimal point, as ECMA-262 names it
  const char* d = digits.data();
  if (k <= n && n <= 21) {
    out = write_chars(out, d, k);
    return write_zeros(out, n - k);
  }
  if (0 < n && n <= 21) {
    out = write_chars(out, d, n);
    *out++ = '.';
    return write_chars(out, d + n, k - n);
  }
  if (-6 < n && n <= 0) {
    *out++ = '0';
    *out++ = '.';
    out = write_zeros(out, -n);
    return write_chars(out, d, k);
  }
  *out++ = d[0];
  if (k > 1) {
    *out++ = '.';
    out = write_chars(out, d + 1, k - 1);
  }
  *out++ = 'e';
  const int e = n - 1;
  *out++ = e < 0 ? '-' : '+';
  return write_integer(out, e < 0 ? -e : e);
}

char* write_es6_number(char* out, std::int64_t value) noexcept {
  if (value > -kTwoTo53 && value < kTwoTo53) return write_integer(out, value);
  return write_es6_number(out, static_cast<double>(value));
}

}  // namespace cortex_connectors::internal
