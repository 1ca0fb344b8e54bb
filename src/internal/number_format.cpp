#include "internal/number_format.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <system_error>

namespace cortex_connectors::internal {

void append_es6_number(std::string& out, double value) {
  if (value == 0) {  // +0 and -0
    out.push_back('0');
    return;
  }
  std::array<char, 32> buf{};
  // Integers below 2^53 print exactly; skip the shortest-digits search for them.
  if (std::fabs(value) < 9007199254740992.0 && std::trunc(value) == value) {
    auto [end, ec] =
        std::to_chars(buf.data(), buf.data() + buf.size(), static_cast<std::int64_t>(value));
    out.append(buf.data(), end);
    return;
  }
  // Shortest round-trip digits in scientific form: "-d.ddde+XX".
  auto [end, ec] =
      std::to_chars(buf.data(), buf.data() + buf.size(), value, std::chars_format::scientific);
  const char* p = buf.data();
  if (*p == '-') {
    out.push_back('-');
    ++p;
  }
  std::array<char, 20> digits{};
  std::size_t k = 0;
  while (p != end && *p != 'e') {
    if (*p != '.') digits[k++] = *p;
    ++p;
  }
  const int exp10 = std::atoi(p + 1);  // to_chars writes e+XX / e-XX
  const int n = exp10 + 1;             // position of the decimal point, as ECMA-262 names it
  const int kk = static_cast<int>(k);
  if (kk <= n && n <= 21) {
    out.append(digits.data(), k);
    out.append(static_cast<std::size_t>(n - kk), '0');
  } else if (0 < n && n <= 21) {
    out.append(digits.data(), static_cast<std::size_t>(n));
    out.push_back('.');
    out.append(digits.data() + n, static_cast<std::size_t>(kk - n));
  } else if (-6 < n && n <= 0) {
    out.append("0.");
    out.append(static_cast<std::size_t>(-n), '0');
    out.append(digits.data(), k);
  } else {
    out.push_back(digits[0]);
    if (k > 1) {
      out.push_back('.');
      out.append(digits.data() + 1, k - 1);
    }
    out.push_back('e');
    const int e = n - 1;
    out.push_back(e < 0 ? '-' : '+');
    auto [eend, eec] = std::to_chars(buf.data(), buf.data() + buf.size(), std::abs(e));
    out.append(buf.data(), eend);
  }
}

}  // namespace cortex_connectors::internal
