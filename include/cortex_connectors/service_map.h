// The signed service map: what GET /v1/connectors/service-map serves and SSE events carry.
//
// build_service_map() derives the payload from a valid Manifest exactly as the original service
// did (connectors sorted by id, displayName falling back to name, enabled resolved from
// enabled/status, brand overlaid under metadata, authentication headers then headers merged,
// absent fields omitted, ttlSeconds normalised, metadata.count set). sign_service_map()
// canonicalizes it (RFC 8785) and signs exactly those bytes, so the signature covers the payload
// served. sign_manifest_text() does both straight from the manifest text, as the Registry does.
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
#include "cortex_connectors/signed_body.h"

namespace cortex_connectors {

inline constexpr std::string_view kBrand = "brAInwav";

// Returns the payload object {id, brand, generatedAt, ttlSeconds, connectors, metadata}, where
// metadata is {"brand":"brAInwav"} overlaid by the manifest's metadata, then "count" set to the
// number of connectors (as the Python service serves it; there is no top-level "count").
// `generated_at_fallback` (RFC 3339) is used when the manifest has no generatedAt; pass the time
// this content was first loaded so that it stays stable while the content is unchanged.
// Members are in canonical order. A free-form value JSON cannot express (a NaN or an infinity,
// which parse_manifest() never produces) makes the result that number itself, which
// sign_service_map() and canonical_json() reject as they would the payload holding it.
CORTEX_CONNECTORS_API Json build_service_map(const Manifest& manifest,
                                             std::string_view generated_at_fallback);

// A signed body (SignedBody: body, signature, signatures, canonical_payload()) with its payload.
struct SignedServiceMap : SignedBody {
  Json payload;  // the payload signed; null when signed from the manifest text
};

// Canonicalizes and signs `payload`; each of `ed25519_keys` also signs the canonical payload
// ("signatures"). With no Ed25519 key the body is exactly the HMAC-only one. Fails only for
// payloads JSON cannot express (NaN).
CORTEX_CONNECTORS_API Result<SignedServiceMap> sign_service_map(
    Json payload, std::span<const std::byte> key, std::span<const Ed25519Key> ed25519_keys = {});

// Manifest text in, signed service map out: the body, signature and signatures of
// sign_service_map(build_service_map(parse_manifest(text, limits), generated_at_fallback), key,
// ed25519_keys), with the same errors as parse_manifest(), but written straight from simdjson's
// DOM of `text` into the body, without building the Manifest or the payload Json
// (SignedServiceMap::payload is null). What Registry does on every change.
CORTEX_CONNECTORS_API Result<SignedServiceMap> sign_manifest_text(
    std::string_view text, std::string_view generated_at_fallback, std::span<const std::byte> key,
    std::span<const Ed25519Key> ed25519_keys = {}, const ManifestLimits& limits = {});

// Formats `time` as RFC 3339 UTC with second precision, e.g. "2025-10-10T00:00:00Z".
CORTEX_CONNECTORS_API std::string format_rfc3339(std::chrono::system_clock::time_point time);

}  // namespace cortex_connectors
