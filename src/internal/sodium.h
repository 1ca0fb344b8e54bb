// The one place that initialises libsodium. Every libsodium call in src/ goes after
// ensure_sodium(), which runs sodium_init() once, thread-safely.
#pragma once

#include <cstddef>
#include <stdexcept>

#include <sodium.h>

namespace cortex_connectors::internal {

inline constexpr std::size_t kHmacSha256Bytes = crypto_auth_hmacsha256_BYTES;  // 32
// base64url without padding of 32 bytes.
inline constexpr std::size_t kHmacSha256Base64Chars = 43;

inline void ensure_sodium() {
  static const bool ok = sodium_init() >= 0;
  if (!ok) throw std::runtime_error("[brAInwav] libsodium failed to initialise");
}

}  // namespace cortex_connectors::internal

#include <string>
#include <string_view>

namespace cortex_connectors::internal {

// Lowercase hex SHA-256 of `data` (content hashes and ETags).
inline std::string sha256_hex(std::string_view data) {
  ensure_sodium();
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()),  // NOLINT
                     data.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * sizeof digest, '\0');
  for (std::size_t i = 0; i < sizeof digest; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xF];
  }
  return out;
}

}  // namespace cortex_connectors::internal
