// The server's tracing: one Tracer (where spans go, which traces are sampled) in the
// ServerContext, and the trace of each manifest load. Spans are encoded in otlp_json.h and sent
// by otlp_exporter.h; the sampler is the library's (trace_context.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cortex_connectors/json.h"
#include "cortex_connectors/registry.h"
#include "cortex_connectors/trace_context.h"
#include "otlp_exporter.h"
#include "otlp_json.h"

namespace cortex_connectors::server {

// The server's spans: where they go (an exporter, or nowhere) and which traces are sampled. One
// lives in the ServerContext (context.h); everything that builds spans is handed it. A
// default-constructed Tracer exports nothing: traces still have ids (logs carry them), but no
// span is built.
// Thread-safety: const methods may be called from any thread. REQUIRES: set() before serving.
class Tracer {
 public:
  Tracer() = default;
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // Sends spans to `exporter` (nullptr: none), sampled by `sampler`. `exporter` must outlive
  // every use of this Tracer.
  void set(OtlpExporter* exporter, const Sampler& sampler) {
    exporter_ = exporter;
    sampler_ = sampler;
  }
  // Whether spans are exported: lets callers skip building them.
  bool enabled() const noexcept { return exporter_ != nullptr; }
  // Whether a trace's spans are recorded: an exporter is set and the sampler samples it.
  bool sample(std::string_view trace_id, std::optional<bool> parent_sampled) const noexcept {
    return enabled() && should_sample(sampler_, trace_id, parent_sampled);
  }
  // Hands `span` to the exporter, if any.
  void record(Span span) const {
    if (exporter_ != nullptr) exporter_->record(std::move(span));
  }
  void record(const HttpSpan& span) const {
    if (exporter_ != nullptr) exporter_->record(span);
  }
  // The exporter's metric families, or none without an exporter.
  std::vector<prometheus::MetricFamily> metric_families() const {
    return exporter_ != nullptr ? exporter_->metric_families()
                                : std::vector<prometheus::MetricFamily>();
  }

 private:
  OtlpExporter* exporter_ = nullptr;
  Sampler sampler_;
};

// The spans of one manifest load (RegistryOptions::on_refresh) in a trace of their own: a root
// "manifest.refresh", a child per stage that ran ("manifest.read", "manifest.parse",
// "manifest.validate", "manifest.build", "manifest.sign", "snapshot.compress"; the failing stage
// has an error status) and, on success, "snapshot.publish", below which the SSE hub hangs
// "sse.broadcast". The ids exist whether spans are exported or not: the load's log lines carry
// them.
class RefreshTrace {
 public:
  // Records the stage spans (when exported) through `tracer`, which must outlive this trace.
  RefreshTrace(const RefreshReport& report, const Tracer& tracer);

  // Records "snapshot.publish" [start, end] with id `span_id`, then finish(end).
  void publish_span(const std::string& span_id, std::chrono::system_clock::time_point start,
                    std::chrono::system_clock::time_point end);
  // Records the root span, ending at `end`.
  void finish(std::chrono::system_clock::time_point end);

  std::string trace_id;
  std::string root_span_id;
  std::uint64_t version = 0;  // the load's version (RefreshReport::version)
  bool sampled = false;       // the sampler's decision (and an exporter is set): spans are recorded

 private:
  Span child(std::string name, std::uint64_t start_ns, std::uint64_t end_ns) const;

  const Tracer* tracer_;
  std::uint64_t start_ns_ = 0;
  std::vector<std::pair<std::string, Json>> attributes_;
  std::vector<std::pair<std::string, Json>> snapshot_attributes_;  // version, connectorId
  bool error_ = false;
  std::string error_message_;
};

// Hands a successful load's trace from on_refresh to the registry listener that publishes its
// snapshot. The registry runs both under its refresh lock, one after the other; the listener
// takes the trace only for the version it publishes, so a trace whose publication never came
// (an unchanged body) is not joined to a later one.
// Thread-safety: both methods may be called from any thread.
class PendingRefreshTrace {
 public:
  void set(std::shared_ptr<RefreshTrace> trace) {
    std::lock_guard lock(mutex_);
    trace_ = std::move(trace);
  }
  // The pending trace when it is for `version`; nullptr otherwise. Clears the slot.
  std::shared_ptr<RefreshTrace> take(std::uint64_t version) {
    std::lock_guard lock(mutex_);
    auto trace = std::move(trace_);
    trace_.reset();
    return trace && trace->version == version ? trace : nullptr;
  }

 private:
  std::mutex mutex_;
  std::shared_ptr<RefreshTrace> trace_;
};

}  // namespace cortex_connectors::server
