#include "tracing.h"

#include <algorithm>
#include <iterator>
#include <memory>

#include <fmt/format.h>
#include <httplib.h>

#include "config.h"
#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/http.h"
#include "cortex_connectors/version.h"
#include "log.h"

namespace cortex_connectors::server {

namespace {

std::atomic<OtlpExporter*> g_exporter{nullptr};

// Appends an OTLP AnyValue. Written directly (not through a Json tree): the exporter serialises
// every span the server makes, so this is its main cost.
void append_any_value(std::string& out, const Json& v) {
  switch (v.type()) {
    case Json::Type::kString:
      out.append(R"({"stringValue":)");
      append_canonical_string(out, v.as_string());
      break;
    case Json::Type::kBool:
      out.append(v.as_bool() ? R"({"boolValue":true)" : R"({"boolValue":false)");
      break;
    case Json::Type::kNumber:
      // int64 is a decimal string in OTLP/JSON.
      fmt::format_to(std::back_inserter(out), R"({{"intValue":"{}")",
                     static_cast<std::int64_t>(v.as_number()));
      break;
    case Json::Type::kArray: {
      out.append(R"({"arrayValue":{"values":[)");
      bool first = true;
      for (const auto& item : v.as_array()) {
        if (!first) out.push_back(',');
        first = false;
        append_any_value(out, item);
      }
      out.append("]}");
      break;
    }
    default:
      out.append(R"({"stringValue":"")");
      break;
  }
  out.push_back('}');
}

void append_key_value(std::string& out, std::string_view key, const Json& value) {
  out.append(R"({"key":)");
  append_canonical_string(out, key);
  out.append(R"(,"value":)");
  append_any_value(out, value);
  out.push_back('}');
}

}  // namespace

std::uint64_t unix_nanos(std::chrono::system_clock::time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

std::string otlp_json(std::span<const Span> spans, const OtlpExporterOptions& options) {
  std::string out;
  out.reserve(512 + spans.size() * 600);
  out.append(R"({"resourceSpans":[{"resource":{"attributes":[)");
  append_key_value(out, "service.name", options.service_name);
  out.push_back(',');
  append_key_value(out, "service.version", version_string());
  out.push_back(',');
  append_key_value(out, "brand", "brAInwav");
  out.push_back(',');
  append_key_value(out, "telemetry.sdk.name", "cortex_connectors");
  out.push_back(',');
  append_key_value(out, "telemetry.sdk.language", "cpp");
  out.append(R"(]},"scopeSpans":[{"scope":{"name":"cortex_connectors","version":)");
  append_canonical_string(out, version_string());
  out.append(R"(},"spans":[)");
  bool first = true;
  for (const Span& s : spans) {
    if (!first) out.push_back(',');
    first = false;
    // Ids are lowercase hex (generated or checked by parse_traceparent): no escaping needed.
    out.append(R"({"traceId":")").append(s.trace_id).append(R"(","spanId":")").append(s.span_id);
    out.push_back('"');
    if (!s.parent_span_id.empty()) {
      out.append(R"(,"parentSpanId":")").append(s.parent_span_id).push_back('"');
    }
    out.append(R"(,"name":)");
    append_canonical_string(out, s.name);
    fmt::format_to(std::back_inserter(out),
                   R"(,"kind":{},"startTimeUnixNano":"{}","endTimeUnixNano":"{}","attributes":[)",
                   static_cast<int>(s.kind), s.start_ns, std::max(s.end_ns, s.start_ns));
    append_key_value(out, "brand", "brAInwav");
    for (const auto& [k, v] : s.attributes) {
      out.push_back(',');
      append_key_value(out, k, v);
    }
    // STATUS_CODE_ERROR (2) or STATUS_CODE_OK (1).
    out.append(s.error ? R"(],"status":{"code":2)" : R"(],"status":{"code":1)");
    if (s.error && !s.status_message.empty()) {
      out.append(R"(,"message":)");
      append_canonical_string(out, s.status_message);
    }
    out.append("}}");
  }
  out.append("]}]}]}");
  return out;
}

OtlpExporter::OtlpExporter(OtlpExporterOptions options) : options_(std::move(options)) {
  options_.max_queue = std::max<std::size_t>(options_.max_queue, 1);
  options_.max_batch = std::clamp<std::size_t>(options_.max_batch, 1, options_.max_queue);
  auto [base, path] = split_otlp_endpoint(options_.endpoint);
  base_ = std::move(base);
  path_ = std::move(path) + "/v1/traces";
}

OtlpExporter::~OtlpExporter() { stop(); }

void OtlpExporter::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { run(); });
}

void OtlpExporter::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  {
    std::lock_guard lock(client_mutex_);
    if (client_ != nullptr) static_cast<httplib::Client*>(client_)->stop();
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  dropped_failed_ += queue_.size();
  queue_.clear();
}

void OtlpExporter::record(Span span) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= options_.max_queue) {
      ++dropped_full_;
      return;
    }
    queue_.push_back(std::move(span));
    if (queue_.size() < options_.max_batch) return;
  }
  cv_.notify_one();
}

void OtlpExporter::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait_for(lock, options_.schedule_delay,
                 [this] { return stopping_ || queue_.size() >= options_.max_batch; });
    if (stopping_) break;
    while (!queue_.empty() && !stopping_) {
      const std::size_t n = std::min(queue_.size(), options_.max_batch);
      std::vector<Span> batch(std::make_move_iterator(queue_.begin()),
                              std::make_move_iterator(queue_.begin() + static_cast<long>(n)));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<long>(n));
      lock.unlock();
      send(batch, options_.timeout);
      lock.lock();
      // A full batch may be waiting already; a partial one waits for the next round.
      if (queue_.size() < options_.max_batch) break;
    }
  }
  // Stopping: what is queued gets one bounded attempt.
  const auto deadline = std::chrono::steady_clock::now() + options_.shutdown_budget;
  while (!queue_.empty()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    const std::size_t n = std::min(queue_.size(), options_.max_batch);
    std::vector<Span> batch(std::make_move_iterator(queue_.begin()),
                            std::make_move_iterator(queue_.begin() + static_cast<long>(n)));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<long>(n));
    lock.unlock();
    send(batch, std::min(left, options_.timeout));
    lock.lock();
  }
}

void OtlpExporter::send(std::vector<Span>& batch, std::chrono::milliseconds timeout) {
  const std::string body = otlp_json(batch, options_);
  // One keep-alive connection, reopened after a failure.
  static thread_local std::unique_ptr<httplib::Client> client;
  if (!client) {
    client = std::make_unique<httplib::Client>(base_);
    client->set_keep_alive(true);
  }
  const auto seconds = static_cast<time_t>(timeout.count() / 1000);
  const auto micros = static_cast<time_t>((timeout.count() % 1000) * 1000);
  client->set_connection_timeout(seconds, micros);
  client->set_read_timeout(seconds, micros);
  client->set_write_timeout(seconds, micros);
  {
    std::lock_guard lock(client_mutex_);
    client_ = client.get();
  }
  const auto res = client->Post(path_, body, "application/json");
  {
    std::lock_guard lock(client_mutex_);
    client_ = nullptr;
  }
  const bool ok = res && res->status >= 200 && res->status < 300;
  if (ok) {
    exported_ += batch.size();
  } else {
    dropped_failed_ += batch.size();
  }
  // One line when export starts failing and one when it recovers; the endpoint is not logged
  // (it may carry credentials), the reason is.
  if (!ok && !failing_) {
    const std::string reason =
        res ? fmt::format("collector answered {}", res->status) : httplib::to_string(res.error());
    log(LogLevel::kWarning, "span export failing; spans are dropped",
        Json(Json::Object{{"reason", reason}, {"spans", batch.size()}}));
  } else if (ok && failing_) {
    log(LogLevel::kInfo, "span export recovered");
  }
  failing_ = !ok;
  if (!ok) client.reset();
}

std::string OtlpExporter::metrics_text() const {
  return fmt::format(
      "# HELP cortex_connectors_otlp_spans_exported_total Spans the OTLP collector accepted.\n"
      "# TYPE cortex_connectors_otlp_spans_exported_total counter\n"
      "cortex_connectors_otlp_spans_exported_total {}\n"
      "# HELP cortex_connectors_otlp_spans_dropped_total Spans dropped: queue full or export "
      "failed.\n"
      "# TYPE cortex_connectors_otlp_spans_dropped_total counter\n"
      "cortex_connectors_otlp_spans_dropped_total{{reason=\"queue_full\"}} {}\n"
      "cortex_connectors_otlp_spans_dropped_total{{reason=\"export_failed\"}} {}\n",
      exported_.load(), dropped_full_.load(), dropped_failed_.load());
}

namespace {

thread_local std::shared_ptr<RefreshTrace> t_pending_refresh;

// At most this many connector ids go into a span attribute: spans stay small.
constexpr std::size_t kMaxConnectorIds = 100;

}  // namespace

RefreshTrace::RefreshTrace(const RefreshReport& report)
    : trace_id(generate_trace_id()),
      root_span_id(generate_span_id()),
      start_ns_(unix_nanos(report.started_at)) {
  if (!spans_enabled()) return;
  error_ = report.result == ReloadResult::kFailure;
  if (error_ && report.error != nullptr) error_message_ = report.error->message;
  attributes_ = {{"manifest.path", report.path}, {"reload.result", error_ ? "failure" : "success"}};
  if (report.snapshot != nullptr) {
    Json ids = Json::array();
    const auto& connectors = report.snapshot->manifest.connectors;
    for (std::size_t i = 0; i < connectors.size() && i < kMaxConnectorIds; ++i) {
      ids.push_back(connectors[i].id);
    }
    snapshot_attributes_ = {{"snapshot.version", report.snapshot->version},
                            {"connectors.count", connectors.size()},
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
    record_span(std::move(span));
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
  if (spans_enabled()) {
    Span span = child("snapshot.publish", unix_nanos(start), unix_nanos(end));
    span.span_id = span_id;
    span.attributes = snapshot_attributes_;
    record_span(std::move(span));
  }
  finish(end);
}

void RefreshTrace::finish(std::chrono::system_clock::time_point end) {
  if (!spans_enabled()) return;
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
  record_span(std::move(span));
}

void RefreshTrace::set_pending(std::shared_ptr<RefreshTrace> trace) {
  t_pending_refresh = std::move(trace);
}

std::shared_ptr<RefreshTrace> RefreshTrace::take_pending() { return std::move(t_pending_refresh); }

void set_span_exporter(OtlpExporter* exporter) { g_exporter = exporter; }

bool spans_enabled() noexcept { return g_exporter.load(std::memory_order_relaxed) != nullptr; }

void record_span(Span span) {
  if (OtlpExporter* e = g_exporter.load()) e->record(std::move(span));
}

std::string span_metrics_text() {
  OtlpExporter* e = g_exporter.load();
  return e ? e->metrics_text() : std::string();
}

}  // namespace cortex_connectors::server
