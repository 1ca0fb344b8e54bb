// Metrics: the Prometheus series of the registry, the server and the SSE hub, rendered as text
// exposition format 0.0.4 without any HTTP dependency.
//
// Series: brainwav_mcp_connector_proxy_up{connector} (from the snapshot, 1 enabled / 0 disabled;
// a connector that leaves the manifest leaves the output), cortex_connectors_reloads_total{result},
// cortex_connectors_snapshot_version, cortex_connectors_stage_duration_seconds{stage},
// cortex_connectors_http_requests_total{route,code},
// cortex_connectors_http_request_duration_seconds{route}, cortex_connectors_sse_subscribers,
// cortex_connectors_sse_broadcast_duration_seconds.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cortex_connectors/export.h"
#include "cortex_connectors/manifest.h"
#include "cortex_connectors/registry.h"
#include "cortex_connectors/snapshot.h"

namespace cortex_connectors {

class CORTEX_CONNECTORS_API Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Registry hooks.
  void record_reload(ReloadResult result);
  void record_timings(const StageTimings& timings);
  void set_snapshot_version(std::uint64_t version);

  // Server hooks. `route` is a fixed route name, never a raw request path (bounded cardinality).
  void observe_http_request(std::string_view route, int status, std::chrono::nanoseconds elapsed);

  // SSE hub hooks.
  void set_sse_subscribers(std::int64_t count);
  void observe_sse_broadcast(std::chrono::nanoseconds elapsed);

  // Returns the exposition text: the live series, then `snapshot`'s pre-rendered manifest series
  // (skipped when snapshot is nullptr).
  std::string render_text(const Snapshot* snapshot) const;

  // Renders the manifest's own series; Registry stores the result in Snapshot::metrics_text.
  static std::string render_manifest_text(const Manifest& manifest);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cortex_connectors
