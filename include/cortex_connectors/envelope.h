// Snapshot envelopes: what a publisher signs beside a signed service-map body it hands to
// replicas through a store it does not fully trust (Redis, docs/scaling.md).
//
// The body's own signatures cover the payload only: they prove who built a map, not which
// version it is or whether it is still current, so whoever can write the store could replay an
// older genuine body under a new version. The envelope binds the version, the time of
// publication and the SHA-256 of the body under the same keys, as TUF's timestamp role does; a
// replica refuses an envelope whose version is not above what it has accepted, or whose time is
// too old, and a body whose digest is not the envelope's. The body is unchanged: consumers see
// nothing of this.
//
// Text (canonical JSON, RFC 8785):
//   {"signature":"<base64url HMAC-SHA256>","signatures":[{"alg":"Ed25519","kid":..,"sig":..}],
//    "signed":{"bodySha256":"<64 hex>","publishedAt":"<RFC 3339>","scope":"<deployment>",
//              "type":"cortex-connectors/snapshot-envelope","version":<integer>}}
// Both signatures cover the canonical form of "signed"; "signature" is there when an HMAC key
// signs, "signatures" when Ed25519 keys do (the same keys as the body's). "scope" names the
// deployment (a Redis key prefix), so that an envelope of one deployment is refused by the
// replicas of another that shares its keys.
//
// Keys and signatures never appear in an Error. Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "cortex_connectors/export.h"
#include "cortex_connectors/keys.h"
#include "cortex_connectors/result.h"

namespace cortex_connectors {

inline constexpr std::string_view kSnapshotEnvelopeType = "cortex-connectors/snapshot-envelope";
// Versions are JSON numbers: above 2^53 - 1 they could not be written exactly.
inline constexpr std::uint64_t kMaxEnvelopeVersion = (std::uint64_t{1} << 53) - 1;

// The signed part of an envelope.
struct SnapshotEnvelope {
  std::uint64_t version = 0;                           // 1 .. kMaxEnvelopeVersion
  std::chrono::system_clock::time_point published_at;  // whole seconds (RFC 3339 in the text)
  std::string body_sha256;                             // lowercase hex SHA-256 of the body
  std::string scope;                                   // the deployment

  // True when `body` is the body this envelope names (its SHA-256 is body_sha256).
  CORTEX_CONNECTORS_API bool covers(std::string_view body) const;
  friend bool operator==(const SnapshotEnvelope&, const SnapshotEnvelope&) = default;
};

// The envelope of `body` as `version`, published at `published_at` (truncated to seconds).
CORTEX_CONNECTORS_API SnapshotEnvelope
make_snapshot_envelope(std::string_view body, std::uint64_t version,
                       std::chrono::system_clock::time_point published_at, std::string scope);

// The envelope's text, signed with HMAC-SHA256 when `hmac_key` is not empty and by every key
// of `ed25519_keys`. Errors (kUsage): no key at all; a version of 0 or above
// kMaxEnvelopeVersion.
CORTEX_CONNECTORS_API Result<std::string> sign_snapshot_envelope(
    const SnapshotEnvelope& envelope, std::span<const std::byte> hmac_key,
    std::span<const Ed25519Key> ed25519_keys);

// Parses `text` and checks its signatures: the HMAC with `hmac_key` when it is not empty, an
// Ed25519 signature by one of `pinned` when it is not empty (both when both are given). Returns
// the signed part. Errors: kUsage (neither key given), kParse (not JSON), kInvalid (not an
// envelope: shape, type, members, version, time, digest form), kSignature (a required signature
// is missing or does not verify).
CORTEX_CONNECTORS_API Result<SnapshotEnvelope> verify_snapshot_envelope(
    std::string_view text, std::span<const std::byte> hmac_key, const PublicKeySet& pinned);

}  // namespace cortex_connectors
