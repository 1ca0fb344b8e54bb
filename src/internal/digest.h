// SHA-256 and HMAC-SHA256, the one place the library computes them (content hashes, ETags, key
// ids, the service-map signature).
//
// Two implementations, the same digests (tests/test_signing.cpp checks both against Python's
// hashlib and hmac):
// - Large inputs go to OpenSSL's libcrypto. libsodium 1.0.18 (Debian 12) has only a portable C
//   SHA-256 (~200 MiB/s on the benchmark machine), while libcrypto 3.0 uses the CPU's SHA
//   extensions (`openssl speed -evp sha256`: ~1.4 GB/s on the same machine), and hashing and
//   signing a 10 000-connector service map are a large part of a rebuild (bench/README.md).
// - Inputs up to kSmallDigestInput go to libsodium: libcrypto's first digest in a process costs
//   ~0.85 ms (the algorithm fetch activates the default provider), more than libsodium needs for
//   16 KiB (~80 us), and a small deployment's start (a manifest of a few KB, the dashboard's
//   files) then never pays it.
// libsodium keeps everything else: Ed25519, base64, constant-time compares, wiping.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace cortex_connectors::internal {

inline constexpr std::size_t kSha256Bytes = 32;
using Sha256Digest = std::array<unsigned char, kSha256Bytes>;
inline constexpr std::size_t kHmacSha256Bytes = kSha256Bytes;
// base64url without padding of 32 bytes.
inline constexpr std::size_t kHmacSha256Base64Chars = 43;
// Inputs (HMAC: messages) up to this size are hashed by libsodium, larger ones by libcrypto.
inline constexpr std::size_t kSmallDigestInput = std::size_t{16} << 10;

Sha256Digest sha256(std::string_view data);

// Lowercase hex of a digest.
std::string to_hex(const Sha256Digest& digest);

// Lowercase hex SHA-256 of `data` (content hashes and ETags): to_hex(sha256(data)).
std::string sha256_hex(std::string_view data);

Sha256Digest hmac_sha256(std::span<const std::byte> key, std::string_view message);

}  // namespace cortex_connectors::internal
