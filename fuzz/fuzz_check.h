// The property check of every fuzz target: a property that does not hold is a finding, printed
// as "<file>:<line>: property failed: <expression>" and aborted on like a crash.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace cortex_connectors::fuzz {

inline void check_at(bool condition, const char* what, const char* file, int line) {
  if (condition) return;
  std::fprintf(stderr, "%s:%d: property failed: %s\n", file, line, what);
  std::abort();
}

}  // namespace cortex_connectors::fuzz

#define FUZZ_CHECK(condition) \
  ::cortex_connectors::fuzz::check_at(static_cast<bool>(condition), #condition, __FILE__, __LINE__)
