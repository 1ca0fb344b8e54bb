// The signed service map: what GET /v1/connectors/service-map serves and SSE events carry.
//
// build_service_map() derives the payload from a valid Manifest exactly as the original service
// did (connectors sorted by id, displayName falling back to name, enabled resolved from
// enabled/status, brand overlaid under metadata, authentication headers then headers merged,
// absent fields omitted, ttlSeconds normalised, metadata.count set). sign_service_map()
// canonicalizes it (RFC 8785) and signs exactly those bytes, so the signature covers the payload
// served.
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "cortex_connectors/export.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/keys.h"
#include "cortex_connectors/manifest.h"
#include "cortex_connectors/result.h"

namespace cortex_connectors {

inline constexpr std::string_view kBrand = "brAInwav";

// Returns the payload object {id, brand, generatedAt, ttlSeconds, connectors, metadata}, where
// metadata is {"brand":"brAInwav"} overlaid by the manifest's metadata, then "count" set to the
// number of connectors (as the Python service serves it; there is no top-level "count").
// `generated_at_fallback` (RFC 3339) is used when the manifest has no generatedAt; pass the time
// this content was first loaded so that it stays stable while the content is unchanged.
CORTEX_CONNECTORS_API Json build_service_map(const Manifest& manifest,
                                             std::string_view generated_at_fallback);

// A payload with its canonical bytes, signature and the full response body.
struct SignedServiceMap {
  Json payload;
  std::string canonical_payload;  // JCS(payload): the signed bytes
  std::string signature;          // base64url_nopad(HMAC-SHA256(key, canonical_payload))
  // The "signatures" array (keys.h: ed25519_signatures()) when Ed25519 keys signed, else "".
  std::string signatures;
  // {"payload":...,"signature":"..."}, itself canonical JSON; with Ed25519 keys
  // {"payload":...,"signature":"...","signatures":[...]}.
  std::string body;
};

// Canonicalizes and signs `payload`. Fails only for payloads JSON cannot express (NaN).
CORTEX_CONNECTORS_API Result<SignedServiceMap> sign_service_map(Json payload,
                                                                std::span<const std::byte> key);
// The same, and each of `ed25519_keys` also signs the canonical payload ("signatures"). With no
// Ed25519 key the body is exactly the HMAC-only one.
CORTEX_CONNECTORS_API Result<SignedServiceMap> sign_service_map(
    Json payload, std::span<const std::byte> key, std::span<const Ed25519Key> ed25519_keys);

// canonical_json(build_service_map(manifest, generated_at_fallback)), byte for byte, written
// straight from `manifest` without building the payload Json. With `parallel_entries`
// connectors or more, a second thread writes the second half of the entries; the bytes are the
// same. 0 (the default): never; on the shared 2-core machine of bench/README.md it did not
// help. Fails only for free-form values JSON cannot express (NaN), which parse_manifest()
// never produces.
inline constexpr std::size_t kParallelServiceMapEntries = 0;
CORTEX_CONNECTORS_API Result<std::string> write_service_map_payload(
    const Manifest& manifest, std::string_view generated_at_fallback,
    std::size_t parallel_entries = kParallelServiceMapEntries);

// Signs canonical payload bytes (from write_service_map_payload() or canonical_json()) and writes
// the body, as sign_service_map() does; SignedServiceMap::payload is left null.
CORTEX_CONNECTORS_API SignedServiceMap
sign_canonical_payload(std::string canonical_payload, std::span<const std::byte> key,
                       std::span<const Ed25519Key> ed25519_keys = {});

// Both: the same SignedServiceMap as sign_service_map(build_service_map(manifest,
// generated_at_fallback), key, ed25519_keys) but for the null payload.
CORTEX_CONNECTORS_API Result<SignedServiceMap> sign_manifest_service_map(
    const Manifest& manifest, std::string_view generated_at_fallback,
    std::span<const std::byte> key, std::span<const Ed25519Key> ed25519_keys = {});

// Manifest text in, signed service map out: the body, signature and signatures of
// parse_manifest(text, limits) then sign_manifest_service_map(), with the same errors, but
// written straight from simdjson's DOM of `text` into the body, without building the Manifest
// (twice as fast for large manifests, bench/README.md). SignedServiceMap::canonical_payload is
// left empty: the signed bytes are the body's "payload" member. What Registry does on every
// change.
CORTEX_CONNECTORS_API Result<SignedServiceMap> sign_manifest_text(
    std::string_view text, std::string_view generated_at_fallback, std::span<const std::byte> key,
    std::span<const Ed25519Key> ed25519_keys = {}, const ManifestLimits& limits = {});

// Formats `time` as RFC 3339 UTC with second precision, e.g. "2025-10-10T00:00:00Z".
CORTEX_CONNECTORS_API std::string format_rfc3339(std::chrono::system_clock::time_point time);

}  // namespace cortex_connectors
