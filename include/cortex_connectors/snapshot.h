// Snapshot: one published state of the registry — the manifest and every byte served from it,
// built once and never changed afterwards.
//
// Thread-safety: immutable once published; share it as std::shared_ptr<const Snapshot> and read
// it from any number of threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cortex_connectors/manifest.h"
#include "cortex_connectors/signed_body.h"

namespace cortex_connectors {

// How long each stage of a rebuild took.
struct StageTimings {
  std::chrono::nanoseconds read{0};  // reading the file
  // Text -> every rule checked, in one walk over simdjson's DOM (no Manifest is built unless
  // RegistryOptions::keep_manifest asks for one; see sign_manifest_text()).
  std::chrono::nanoseconds parse{0};
  std::chrono::nanoseconds validate{0};  // 0: parse_manifest() validates while it parses
  std::chrono::nanoseconds build{0};     // the canonical service-map payload, into the body
  std::chrono::nanoseconds sign{0};      // HMAC-SHA256 (+ Ed25519) and the body
  std::chrono::nanoseconds compress{0};  // gzip + brotli bodies, ETag
};

// The signed body (SignedBody: body, signature, signatures, canonical_payload(), layout())
// with what was built around it.
struct Snapshot : SignedBody {
  // Starts at RegistryOptions::first_version and goes up by one per published change.
  std::uint64_t version = 0;
  std::string path;          // the file it was loaded from ("" for text given directly)
  std::string content_hash;  // SHA-256 of the manifest bytes, lowercase hex
  std::chrono::system_clock::time_point loaded_at;
  std::string generated_at;  // the payload's generatedAt
  // The validated manifest it was built from, shared by the snapshots of the same content; null
  // when RegistryOptions::keep_manifest is false (it costs about 1 KB per connector).
  std::shared_ptr<const Manifest> manifest;
  std::size_t connectors = 0;  // connectors in the manifest (the payload's `metadata.count`)
  // Whether generatedAt came from the manifest (else from the time its content was loaded).
  bool manifest_generated_at = false;

  std::string body_gzip;    // `body`, gzip (RFC 1952)
  std::string body_brotli;  // `body`, brotli (RFC 7932)
  std::string etag;         // strong ETag of the body, quotes included: "\"9f86d0...\""

  // Prometheus text of the manifest's own series (brainwav_mcp_connector_proxy_up), rendered
  // once per snapshot so that a scrape only concatenates it.
  std::string metrics_text;

  StageTimings timings;

  std::size_t connector_count() const noexcept { return connectors; }
};

}  // namespace cortex_connectors
