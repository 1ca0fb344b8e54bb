// The service-map payload writer's entry points that only tests, benchmarks and the library use:
// the payload written straight from a Manifest, and the second-thread knob measured in
// bench/README.md. The public API is service_map.h.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "cortex_connectors/keys.h"
#include "cortex_connectors/manifest.h"
#include "cortex_connectors/result.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/signed_body.h"
#include "internal/manifest_view.h"

namespace cortex_connectors::internal {

// canonical_json(build_service_map(manifest, generated_at_fallback)), byte for byte, written
// straight from `manifest` without building the payload Json. With `parallel_entries`
// connectors or more, a second thread writes the second half of the entries; the bytes are the
// same. 0 (the default): never; on the shared 2-core machine of bench/README.md it did not
// help. Fails only for free-form values JSON cannot express (NaN), which parse_manifest()
// never produces.
inline constexpr std::size_t kParallelServiceMapEntries = 0;
Result<std::string> write_service_map_payload(
    const Manifest& manifest, std::string_view generated_at_fallback,
    std::size_t parallel_entries = kParallelServiceMapEntries);

// Signs canonical payload bytes (from write_service_map_payload() or canonical_json()) and writes
// the body, as sign_service_map() does; SignedServiceMap::payload is left null.
SignedServiceMap sign_canonical_payload(std::string_view canonical_payload,
                                        std::span<const std::byte> key,
                                        std::span<const Ed25519Key> ed25519_keys = {});

// The same SignedServiceMap as sign_service_map(build_service_map(manifest,
// generated_at_fallback), key, ed25519_keys) but for the null payload.
Result<SignedServiceMap> sign_manifest_service_map(const Manifest& manifest,
                                                   std::string_view generated_at_fallback,
                                                   std::span<const std::byte> key,
                                                   std::span<const Ed25519Key> ed25519_keys = {});

// A canonical payload written after a prefix, with the layout its writer recorded (offsets from
// the payload's first byte).
struct WrittenPayload {
  std::string text;
  std::shared_ptr<const PayloadLayout> layout;
};

// SignedBody::begin() followed by the canonical payload of `view`, for SignedBody::sign(): what
// sign_manifest_text() and the Registry write. Errors as write_service_map_payload().
Result<WrittenPayload> write_signed_payload(const ManifestView& view,
                                            std::string_view generated_at_fallback);

}  // namespace cortex_connectors::internal
