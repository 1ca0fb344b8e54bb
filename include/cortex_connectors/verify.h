// The consumer side of the signed service map, without any network: verify_service_map() checks
// a body fetched from GET /v1/connectors/service-map (or carried by an SSE status event) and
// returns the verified payload with its expiry; ServiceMapCache holds the newest verified map.
//
// Verification: the body must be {"payload": {...}, "signature": "..."}, the signature the
// HMAC-SHA256 of the payload's canonical form (RFC 8785), the payload a service map of the brand
// ("brand":"brAInwav", an "id", an RFC 3339 "generatedAt", an integer "ttlSeconds" >= 1, a
// "connectors" array, "metadata" an object whose "count" equals the array's length when present
// — and a top-level "count", which servers before 0.2 put there, likewise), and the map not
// expired.
//
// Expiry: `ttlSeconds` after the fetch time by default. The server's generatedAt is the
// manifest's authoring time, often months old for a hand-written manifest, so a consumer caches
// "ttl from when I fetched it" as the platform's consumers do; ExpiryBase::kGeneratedAt selects
// generatedAt + ttl instead, for publishers that stamp generatedAt on every build.
//
// Order: the server's snapshot version (the SSE event id) is not signed, and starts again when a
// server runs without its history (docs/history.md), so ServiceMapCache orders maps by the signed
// generatedAt only: an older generatedAt never replaces a newer one, the same payload is no change,
// and a different payload with the same generatedAt is taken as the newer one (the latest verified
// observation wins).
//
// Thread-safety: verify_service_map() is a pure function; ServiceMapCache may be used from any
// number of threads. Keys and signatures never appear in an Error.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "cortex_connectors/export.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/keys.h"
#include "cortex_connectors/result.h"
#include "cortex_connectors/signed_body.h"

namespace cortex_connectors {

// What a map's expiry counts from.
enum class ExpiryBase : std::uint8_t {
  kFetchTime,    // fetched_at + ttlSeconds (default)
  kGeneratedAt,  // the payload's generatedAt + ttlSeconds
};

struct VerifyOptions {
  // When the body was received; nullopt means `now`.
  std::optional<std::chrono::system_clock::time_point> fetched_at;
  // The time the expiry is checked against; nullopt means system_clock::now().
  std::optional<std::chrono::system_clock::time_point> now;
  ExpiryBase expiry_base = ExpiryBase::kFetchTime;
  // The server's snapshot version, when the transport told it (an SSE event id); 0 = unknown.
  // Informational only: it is not signed.
  std::uint64_t version = 0;
};

// A service map whose signature verified. Only verify_service_map() and
// verify_service_map_payload() make one; keep it behind std::shared_ptr<const ...> to share.
struct VerifiedServiceMap {
  Json payload;                   // the verified payload object
  std::string canonical_payload;  // its RFC 8785 form: the signed bytes
  std::string signature;          // base64url HMAC-SHA256 of canonical_payload (may be "" when
                                  // verified by a pinned public key)
  std::string signatures;         // the "signatures" array (canonical JSON) when verified by a
                                  // pinned public key, else ""
  std::string kid;                // the pinned key whose signature verified, else ""
  std::string id;                 // payload "id" (the manifest's ULID)
  std::string generated_at;       // payload "generatedAt", as sent
  std::chrono::system_clock::time_point generated_at_time;  // the same, parsed
  std::chrono::seconds ttl{0};                              // payload "ttlSeconds"
  std::chrono::system_clock::time_point fetched_at;
  std::chrono::system_clock::time_point expires_at;
  std::uint64_t version = 0;  // VerifyOptions::version: the server's (unsigned) snapshot version
  std::size_t connector_count = 0;

  // True when `now` is at or past expires_at.
  bool expired(std::chrono::system_clock::time_point now) const noexcept {
    return now >= expires_at;
  }
  // The signed body again: {"payload":...,"signature":"..."} (plus "signatures" when verified
  // by a public key), canonical JSON (as served), with its layout.
  CORTEX_CONNECTORS_API SignedBody signed_body() const;
  // signed_body().body.
  CORTEX_CONNECTORS_API std::string body() const;
};

// Verifies a service-map body (see the file comment). Errors:
//   kParse     not JSON (Error::offset set);
//   kInvalid   not {"payload": object, "signature": string}, or the payload is no service map of
//              the brand (Error::issues names the member, e.g. "/payload/brand");
//   kSignature the signature does not match the payload (or `key` is not the signing key);
//   kExpired   the map's expiry is at or before VerifyOptions::now.
CORTEX_CONNECTORS_API Result<VerifiedServiceMap> verify_service_map(
    std::string_view body, std::span<const std::byte> key, const VerifyOptions& options = {});

// The same for a payload and signature already apart, e.g. the payload apply_delta() rebuilt
// from an SSE delta event and the delta's "signature".
CORTEX_CONNECTORS_API Result<VerifiedServiceMap> verify_service_map_payload(
    Json payload, std::string_view signature, std::span<const std::byte> key,
    const VerifyOptions& options = {});

// Verifies a body by its Ed25519 "signatures" (keys.h) instead of the HMAC: it verifies when a
// signature by any key of `keys` (matched by kid) verifies over the canonical payload. The HMAC
// "signature" is not checked. kSignature names what failed: no signatures, no signature by a
// pinned kid (listing the kids seen), or a pinned kid's signature that does not verify. Other
// errors as verify_service_map() above.
CORTEX_CONNECTORS_API Result<VerifiedServiceMap> verify_service_map(
    std::string_view body, const PublicKeySet& keys, const VerifyOptions& options = {});

// The same for a payload and the object carrying its signatures (the body, or an SSE delta
// event: its "signatures" member, and its "signature" kept as is).
CORTEX_CONNECTORS_API Result<VerifiedServiceMap> verify_service_map_payload(
    Json payload, const Json& carrier, const PublicKeySet& keys, const VerifyOptions& options = {});

// Parses an RFC 3339 date-time ("2025-10-10T00:00:00Z", "2025-10-10T02:00:00.5+02:00"); the
// fraction is kept to the microsecond. nullopt for anything else. Times beyond the clock's
// range (about years 1678-2262) saturate to time_point::min() / max().
CORTEX_CONNECTORS_API std::optional<std::chrono::system_clock::time_point> parse_rfc3339(
    std::string_view text) noexcept;

// What ServiceMapCache::offer() did.
enum class CacheUpdate : std::uint8_t {
  kReplaced,   // a new version: it is current now
  kUnchanged,  // the same payload as the current one (its expiry and version were refreshed)
  kOlder,      // an older generatedAt than the current one: ignored
};

// Holds the newest verified service map. It verifies everything offered with its own key, so an
// unverified map can never become current, and never replaces the current map with an older
// one (see "Order" in the file comment).
//
// **Example**:
//   ServiceMapCache cache(as_bytes(key));
//   if (auto r = cache.offer(body); r && *r == CacheUpdate::kReplaced) use(cache.current());
class CORTEX_CONNECTORS_API ServiceMapCache {
 public:
  explicit ServiceMapCache(std::span<const std::byte> key, ExpiryBase expiry_base = {});
  // Verifies with pinned Ed25519 public keys instead of the HMAC key.
  explicit ServiceMapCache(PublicKeySet keys, ExpiryBase expiry_base = {});
  ~ServiceMapCache();  // wipes its copy of the key
  ServiceMapCache(const ServiceMapCache&) = delete;
  ServiceMapCache& operator=(const ServiceMapCache&) = delete;

  // Verifies `body` (verify_service_map) and, when it verifies, applies the order rules.
  // On a verification error the current map stays and the Error is returned.
  Result<CacheUpdate> offer(std::string_view body,
                            std::optional<std::chrono::system_clock::time_point> now = std::nullopt,
                            std::uint64_t version = 0);
  // The same for a payload and its signature (verify_service_map_payload).
  Result<CacheUpdate> offer_payload(
      Json payload, std::string_view signature,
      std::optional<std::chrono::system_clock::time_point> now = std::nullopt,
      std::uint64_t version = 0);

  // The same for a payload and the object carrying its signatures (a body or an SSE delta:
  // "signature" and, for pinned public keys, "signatures"); works with either kind of key.
  Result<CacheUpdate> offer_signed(
      Json payload, const Json& carrier,
      std::optional<std::chrono::system_clock::time_point> now = std::nullopt,
      std::uint64_t version = 0);

  // Records that the current map was confirmed unchanged at `now` (an HTTP 304, a stream
  // heartbeat): with ExpiryBase::kFetchTime its expiry moves to now + ttl. False when empty.
  bool confirm(std::optional<std::chrono::system_clock::time_point> now = std::nullopt);

  // The current map, or nullptr before the first accepted offer. Expired maps are returned too.
  std::shared_ptr<const VerifiedServiceMap> current() const;
  // The current map if it has not expired at `now` (default: the present), else nullptr.
  std::shared_ptr<const VerifiedServiceMap> fresh(
      std::optional<std::chrono::system_clock::time_point> now = std::nullopt) const;

 private:
  Result<CacheUpdate> accept(Result<VerifiedServiceMap> verified);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cortex_connectors
