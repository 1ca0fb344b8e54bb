#include "cortex_connectors/health.h"

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/service_map.h"

namespace cortex_connectors {

namespace {

Json error_json(const Error& error) {
  Json e = Json::object();
  e.set("code", to_string(error.code));
  e.set("message", error.message);
  Json issues = Json::array();
  for (const auto& i : error.issues) {
    Json item = Json::object();
    item.set("pointer", i.pointer);
    item.set("message", i.message);
    issues.push_back(std::move(item));
  }
  e.set("issues", std::move(issues));
  return e;
}

}  // namespace

std::string health_body(const Registry& registry, std::chrono::system_clock::time_point now) {
  return health_body(registry, now, {});
}

std::string health_body(const Registry& registry, std::chrono::system_clock::time_point now,
                        std::span<const HealthComponent> components) {
  const auto snap = registry.current();
  const auto failure = registry.last_failure();
  Json h = Json::object();
  h.set("status", !snap ? "starting" : failure ? "degraded" : "ok");
  h.set("brand", kBrand);
  h.set("timestamp", format_rfc3339(now));
  if (snap) {
    h.set("version", snap->version);
    h.set("connectors", snap->connector_count());
    h.set("loadedAt", format_rfc3339(snap->loaded_at));
    h.set("etag", snap->etag);
  }
  if (failure) {
    Json last = error_json(failure->error);
    last.set("at", format_rfc3339(failure->at));
    last.set("consecutive", failure->consecutive);
    h.set("lastError", std::move(last));
  }
  if (auto* history = registry.history()) {
    const HistoryStatus hs = history->status();
    Json j = Json::object();
    j.set("store", hs.store);
    j.set("degraded", hs.degraded);
    if (hs.degraded) j.set("reason", hs.reason);
    j.set("latestVersion", hs.latest_version);
    j.set("pending", hs.pending);
    h.set("history", std::move(j));
  }
  for (const HealthComponent& c : components) {
    h.set(c.name, c.value);
    if (c.degraded && snap && !failure) h.set("status", "degraded");
  }
  return *canonical_json(h);
}

std::string unavailable_body(const Registry& registry) {
  const auto failure = registry.last_failure();
  Json body = Json::object();
  body.set("detail", failure ? "[brAInwav] connectors manifest unavailable"
                             : "[brAInwav] connectors manifest is loading");
  if (failure) body.set("error", error_json(failure->error));
  return *canonical_json(body);
}

}  // namespace cortex_connectors
