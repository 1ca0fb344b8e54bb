// The bodies the service answers about itself: GET /health and the 503 of the service map
// before any snapshot exists. Branded canonical JSON; never a secret.
//
// Thread-safety: reads the registry through its thread-safe accessors.
#pragma once

#include <chrono>
#include <span>
#include <string>

#include "cortex_connectors/export.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/registry.h"

namespace cortex_connectors {

// The body of GET /health: status "ok" (a snapshot, no failure since), "degraded" (a snapshot,
// but the last load failed) or "starting" (no snapshot yet), the snapshot version and connector
// count, and the last error (message and findings or paths tried; never a secret). With a
// history (RegistryOptions::history), "history": {"store", "degraded", "reason" when degraded,
// "latestVersion", "pending"}; a degraded history does not change "status".
CORTEX_CONNECTORS_API std::string health_body(const Registry& registry,
                                              std::chrono::system_clock::time_point now);

// A member the embedding service adds to its /health body (the server's Redis role is
// "scaling"): `value` under `name`, which must not be one of health_body()'s own members.
// A `degraded` component makes an "ok" status "degraded" ("starting" stays).
struct HealthComponent {
  std::string name;
  Json value;
  bool degraded = false;
};

// health_body() with `components` added.
CORTEX_CONNECTORS_API std::string health_body(const Registry& registry,
                                              std::chrono::system_clock::time_point now,
                                              std::span<const HealthComponent> components);

// The body of a 503 from the service map before any snapshot exists: the cached load error
// (attempted paths and messages), or a note that the first load is still running.
CORTEX_CONNECTORS_API std::string unavailable_body(const Registry& registry);

}  // namespace cortex_connectors
