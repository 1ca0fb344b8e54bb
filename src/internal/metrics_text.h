// The server's own series (span export, the Redis roles) go through prometheus-cpp like the
// library's: its components describe them as prometheus::MetricFamily values, and render_text()
// serializes them with the same TextSerializer, after the library's series and the snapshot's
// manifest series. Internal: prometheus-cpp stays out of the public headers.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include "cortex_connectors/metrics.h"

namespace cortex_connectors::internal {

// One sample of a family: its labels (none for a single series) and value.
struct MetricSample {
  std::vector<prometheus::ClientMetric::Label> labels;
  double value = 0;
};

// Both exported (though not installed): the server links them from a shared library too.

// A counter or gauge family of `samples`.
CORTEX_CONNECTORS_API prometheus::MetricFamily metric_family(std::string name, std::string help,
                                                             prometheus::MetricType type,
                                                             std::vector<MetricSample> samples);

// Metrics::render_text(snapshot), then the families of `extra` in their order.
CORTEX_CONNECTORS_API std::string render_text(const Metrics& metrics, const Snapshot* snapshot,
                                              const std::vector<prometheus::MetricFamily>& extra);

// Moves the families of `from` to the end of `to`.
inline void append_families(std::vector<prometheus::MetricFamily>& to,
                            std::vector<prometheus::MetricFamily> from) {
  for (auto& family : from) to.push_back(std::move(family));
}

}  // namespace cortex_connectors::internal
