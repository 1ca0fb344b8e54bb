// HMAC-SHA256 signatures over canonical JSON, base64url without padding, and the signed-body
// check used by `cortex-connectors verify`.
//
// The key is the raw bytes of CONNECTORS_SIGNATURE_KEY (its UTF-8 text), as the Python original
// used it. Verification runs in constant time. Keys and signatures never appear in an Error.
// Thread-safety: pure functions; libsodium is initialised once, thread-safely, on first use.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cortex_connectors/export.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/result.h"

namespace cortex_connectors {

// Views the bytes of a string (a key given as text) without copying.
inline std::span<const std::byte> as_bytes(std::string_view text) noexcept {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};  // NOLINT
}

// Encodes `data` as base64url (RFC 4648 section 5) without '=' padding.
CORTEX_CONNECTORS_API std::string base64url_encode(std::span<const std::byte> data);

// Decodes unpadded base64url; fails (kParse) on any other character, padding or a bad length.
CORTEX_CONNECTORS_API Result<std::vector<std::byte>> base64url_decode(std::string_view text);

// `bytes` bytes from the operating system's CSPRNG (libsodium randombytes), as lowercase hex:
// for generated secrets (keys). Unlike generate_request_id(), no two results are related.
CORTEX_CONNECTORS_API std::string generate_secret_hex(std::size_t bytes);

// Returns base64url_nopad(HMAC-SHA256(key, message)): 43 characters.
CORTEX_CONNECTORS_API std::string sign_hmac_sha256(std::span<const std::byte> key,
                                                   std::string_view message);

// True when `signature` is exactly sign_hmac_sha256(key, message); compares in constant time.
CORTEX_CONNECTORS_API bool verify_hmac_sha256(std::span<const std::byte> key,
                                              std::string_view message,
                                              std::string_view signature) noexcept;

// Checks a signed body {"payload": {...}, "signature": "..."} (extra members are ignored):
// the signature must be the HMAC of the canonical form of "payload". On success returns the
// payload. Errors: kParse (not JSON), kInvalid (wrong shape), kSignature (does not verify).
CORTEX_CONNECTORS_API Result<Json> verify_signed_body(std::string_view body,
                                                      std::span<const std::byte> key);

}  // namespace cortex_connectors
