#include "tracing.h"

#include <iterator>

namespace cortex_connectors::server {

namespace {

// At most this many connector ids go into a span attribute: spans stay small.
constexpr std::size_t kMaxConnectorIds = 100;

}  // namespace

RefreshTrace::RefreshTrace(const RefreshReport& report, const Tracer& tracer)
    : trace_id(generate_trace_id()),
      root_span_id(generate_span_id()),
      version(report.version),
      sampled(tracer.sample(trace_id, std::nullopt)),
      tracer_(&tracer),
      start_ns_(unix_nanos(report.started_at)) {
  if (!sampled) return;
  error_ = report.result == ReloadResult::kFailure;
  if (error_ && report.error != nullptr) error_message_ = report.error->message;
  attributes_ = {{"manifest.path", report.path}, {"reload.result", error_ ? "failure" : "success"}};
  if (report.snapshot != nullptr) {
    Json ids = Json::array();
    const auto& connectors = report.connector_ids;
    for (std::size_t i = 0; i < connectors.size() && i < kMaxConnectorIds; ++i) {
      ids.push_back(connectors[i]);
    }
    snapshot_attributes_ = {{"snapshot.version", report.snapshot->version},
                            {"connectors.count", report.snapshot->connector_count()},
                            {"connectorId", std::move(ids)}};
  }
  const StageTimings& t = report.timings;
  const std::pair<const char*, std::chrono::nanoseconds> stages[] = {
      {"manifest.read", t.read},   {"manifest.parse", t.parse}, {"manifest.validate", t.validate},
      {"manifest.build", t.build}, {"manifest.sign", t.sign},   {"snapshot.compress", t.compress}};
  // A failed load stops at its failing stage: the last one that took any time.
  std::size_t last = std::size(stages) - 1;
  if (error_) {
    last = 0;
    for (std::size_t i = 0; i < std::size(stages); ++i) {
      if (stages[i].second.count() > 0) last = i;
    }
  }
  std::uint64_t at = start_ns_;
  for (std::size_t i = 0; i <= last; ++i) {
    const auto ns = static_cast<std::uint64_t>(stages[i].second.count());
    Span span = child(stages[i].first, at, at + ns);
    if (error_ && i == last) {
      span.error = true;
      span.status_message = error_message_;
    }
    if (!error_ && std::string_view(stages[i].first) == "manifest.build") {
      span.attributes.insert(span.attributes.end(), snapshot_attributes_.begin(),
                             snapshot_attributes_.end());
    }
    tracer_->record(std::move(span));
    at += ns;
  }
}

Span RefreshTrace::child(std::string name, std::uint64_t start_ns, std::uint64_t end_ns) const {
  Span span;
  span.trace_id = trace_id;
  span.span_id = generate_span_id();
  span.parent_span_id = root_span_id;
  span.name = std::move(name);
  span.start_ns = start_ns;
  span.end_ns = end_ns;
  return span;
}

void RefreshTrace::publish_span(const std::string& span_id,
                                std::chrono::system_clock::time_point start,
                                std::chrono::system_clock::time_point end) {
  if (sampled) {
    Span span = child("snapshot.publish", unix_nanos(start), unix_nanos(end));
    span.span_id = span_id;
    span.attributes = snapshot_attributes_;
    tracer_->record(std::move(span));
  }
  finish(end);
}

void RefreshTrace::finish(std::chrono::system_clock::time_point end) {
  if (!sampled) return;
  Span span;
  span.trace_id = trace_id;
  span.span_id = root_span_id;
  span.name = "manifest.refresh";
  span.start_ns = start_ns_;
  span.end_ns = unix_nanos(end);
  span.attributes = attributes_;
  span.attributes.insert(span.attributes.end(), snapshot_attributes_.begin(),
                         snapshot_attributes_.end());
  span.error = error_;
  span.status_message = error_message_;
  tracer_->record(std::move(span));
}

}  // namespace cortex_connectors::server
