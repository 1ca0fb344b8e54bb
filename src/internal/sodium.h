// The one place that initialises libsodium. Every libsodium call in src/ goes after
// ensure_sodium(), which runs sodium_init() once, thread-safely.
#pragma once

#include <cstddef>
#include <stdexcept>

#include <sodium.h>

namespace cortex_connectors::internal {

inline void ensure_sodium() {
  static const bool ok = sodium_init() >= 0;
  if (!ok) throw std::runtime_error("[brAInwav] libsodium failed to initialise");
}

}  // namespace cortex_connectors::internal
