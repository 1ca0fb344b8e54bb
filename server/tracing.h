// Spans of the server and their export as OTLP/HTTP JSON (POST to the traces URL).
//
// The library stays network-free: it reports what it timed (RegistryOptions::on_refresh) and the
// server turns that, its HTTP requests and its SSE broadcasts into spans here. No OpenTelemetry
// SDK is packaged in Debian 12, so the exporter is small: a bounded queue filled by record(), which
// never waits for the network, and one background thread that sends batches with cpp-httplib's
// client. When the queue is full, or a batch cannot be delivered (collector slow, dead or
// refusing), spans are dropped and counted, never retried: a request never waits for a collector.
//
// Thread-safety: every function and method may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "config.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/registry.h"
#include "cortex_connectors/result.h"

namespace cortex_connectors::server {

// Nanoseconds since the Unix epoch, as OTLP counts time.
std::uint64_t unix_nanos(std::chrono::system_clock::time_point t);

enum class SpanKind : std::uint8_t { kInternal = 1, kServer = 2 };  // OTLP SpanKind numbers

struct Span {
  std::string trace_id;        // 32 lowercase hex characters
  std::string span_id;         // 16 lowercase hex characters
  std::string parent_span_id;  // "" for a root span
  std::string name;            // e.g. "manifest.parse", "GET service_map"
  SpanKind kind = SpanKind::kInternal;
  std::uint64_t start_ns = 0;  // unix_nanos()
  std::uint64_t end_ns = 0;
  // Values are strings, integral numbers, booleans or arrays of strings.
  std::vector<std::pair<std::string, Json>> attributes;
  bool error = false;
  std::string status_message;  // with error; never a secret
};

// The server span of one HTTP request as a fixed-size record: the request path fills it without
// touching the heap and copies it into the exporter's preallocated queue; the exporter thread
// turns it into OTLP JSON (name "<method> <route>", kind SERVER, attributes http.request.method,
// http.response.status_code, http.response.body.size, request_id, http.route).
struct HttpSpan {
  std::array<char, 32> trace_id{};
  std::array<char, 16> span_id{};
  std::array<char, 16> parent_span_id{};  // with has_parent
  bool has_parent = false;
  std::uint8_t method_len = 0;
  std::uint8_t request_id_len = 0;
  std::array<char, 16> method{};       // truncated beyond 16 characters
  std::array<char, 128> request_id{};  // is_sane_request_id(): at most 128 characters
  std::string_view route;              // a route template: a string literal, or "" for none
  int status = 0;
  std::uint64_t bytes = 0;
  std::uint64_t start_ns = 0;
  std::uint64_t end_ns = 0;
};

// The sampler of OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (OpenTelemetry SDK environment
// variables). A sampled trace's spans are exported; an unsampled one still has ids (logs carry
// them) but builds no span.
enum class SamplerKind : std::uint8_t {
  kAlwaysOn,                 // always_on
  kAlwaysOff,                // always_off
  kTraceIdRatio,             // traceidratio
  kParentBasedAlwaysOn,      // parentbased_always_on (the default)
  kParentBasedAlwaysOff,     // parentbased_always_off
  kParentBasedTraceIdRatio,  // parentbased_traceidratio
};

struct Sampler {
  SamplerKind kind = SamplerKind::kParentBasedAlwaysOn;
  double ratio = 1.0;  // the ratio samplers' probability, in [0, 1]
};

// Reads OTEL_TRACES_SAMPLER (`name`, case-insensitive; unset or empty: the default) and
// OTEL_TRACES_SAMPLER_ARG (`arg`, used by the ratio samplers; unset or empty: 1.0). Returns
// nullopt for an unknown name or an argument that is not a number in [0, 1].
std::optional<Sampler> parse_sampler(std::string_view name, std::string_view arg);

// The sampling decision for a trace: `parent_sampled` is the sampled flag (trace-flags bit 0) of
// a valid incoming traceparent, nullopt for a root. The parent-based samplers follow the parent's
// flag; a root goes to the inner sampler. traceidratio decides from the trace id alone (its last
// 8 bytes, as the OpenTelemetry SDKs do), so every service with the same ratio agrees on a trace.
bool should_sample(const Sampler& sampler, std::string_view trace_id,
                   std::optional<bool> parent_sampled) noexcept;

struct OtlpExporterOptions {
  // The URL spans are POSTed to, used as given (otlp_traces_url() in config.h):
  // http://host:port/path ("/" when it has no path). https:// goes through cpp-httplib's
  // OpenSSL client.
  std::string url;
  // Sent with every request (OTEL_EXPORTER_OTLP_HEADERS); the values are secrets and are never
  // logged.
  std::vector<OtlpHeader> headers;
  std::string service_name = "cortex-connectors";  // OTEL_SERVICE_NAME
  std::size_t max_queue = 2048;                    // OTEL_BSP_MAX_QUEUE_SIZE
  std::size_t max_batch = 512;                     // OTEL_BSP_MAX_EXPORT_BATCH_SIZE
  std::chrono::milliseconds schedule_delay{5000};  // OTEL_BSP_SCHEDULE_DELAY
  std::chrono::milliseconds timeout{10000};        // OTEL_EXPORTER_OTLP_TIMEOUT, per request
  // At stop(), queued spans get at most this long to leave (SIGTERM exits within ~1 s).
  std::chrono::milliseconds shutdown_budget{500};
};

// An OTLP/HTTP JSON ExportTraceServiceRequest holding `spans`: one resourceSpans (service.name,
// service.version, brand, telemetry.sdk.*), one scopeSpans (scope "cortex_connectors"), ids in
// hex, times as decimal strings.
std::string otlp_json(std::span<const Span> spans, const OtlpExporterOptions& options);

class OtlpExporter {
 public:
  explicit OtlpExporter(OtlpExporterOptions options);
  ~OtlpExporter();  // stop()
  OtlpExporter(const OtlpExporter&) = delete;
  OtlpExporter& operator=(const OtlpExporter&) = delete;

  // Starts the sending thread.
  void start();
  // Cuts a request in flight short, sends what is queued within
  // OtlpExporterOptions::shutdown_budget (the rest is dropped), then joins the thread. Spans
  // recorded afterwards are dropped.
  void stop();

  // Queues `span`, or drops and counts it when the queue is full. Never blocks on the network.
  void record(Span span);
  // The same for a request's span: a copy into preallocated storage, no allocation.
  void record(const HttpSpan& span);

  std::uint64_t exported() const noexcept { return exported_.load(); }
  std::uint64_t dropped() const noexcept { return dropped_full_.load() + dropped_failed_.load(); }

  // Prometheus text of cortex_connectors_otlp_spans_exported_total and
  // cortex_connectors_otlp_spans_dropped_total{reason="queue_full|export_failed"}.
  std::string metrics_text() const;

 private:
  void run();
  // Moves every queued span into the taken_* batches (mutex_ held).
  void take();
  // Sends the taken spans in requests of at most max_batch spans, until `deadline`; what is left
  // at the deadline is dropped and counted.
  void send_taken(std::chrono::steady_clock::time_point deadline);
  // POSTs body_ (holding `count` spans) once; counts them as exported or dropped.
  void send(std::size_t count, std::chrono::milliseconds timeout);

  OtlpExporterOptions options_;
  std::string base_;  // scheme://host:port
  std::string path_;  // the URL's path, "/" when it has none
  std::mutex mutex_;  // guards queue_ and stopping_
  std::condition_variable cv_;
  std::deque<Span> queue_;            // spans of loads and broadcasts (few)
  std::vector<HttpSpan> http_queue_;  // request spans; capacity max_queue, never reallocated
  std::vector<Span> taken_;           // sending thread only
  std::vector<HttpSpan> taken_http_;  // sending thread only; swapped with http_queue_
  std::size_t taken_done_ = 0;        // sending thread only: taken spans already handled
  std::string body_;                  // sending thread only: the request body, reused
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<bool> cut_{false};  // set by stop()
  std::atomic<std::uint64_t> exported_{0};
  std::atomic<std::uint64_t> dropped_full_{0};
  std::atomic<std::uint64_t> dropped_failed_{0};
  bool failing_ = false;     // sending thread only: logs the change, not every failure
  std::mutex client_mutex_;  // guards client_
  void* client_ = nullptr;   // the httplib::Client sending now: stop() cuts its request short
};

// The spans of one manifest load (RegistryOptions::on_refresh) in a trace of their own: a root
// "manifest.refresh", a child per stage that ran ("manifest.read", "manifest.parse",
// "manifest.validate", "manifest.build", "manifest.sign", "snapshot.compress"; the failing stage
// has an error status) and, on success, "snapshot.publish", below which the SSE hub hangs
// "sse.broadcast". The ids exist whether spans are exported or not: the load's log lines carry
// them.
class RefreshTrace {
 public:
  // Records the stage spans (when exported).
  explicit RefreshTrace(const RefreshReport& report);

  // Records "snapshot.publish" [start, end] with id `span_id`, then finish(end).
  void publish_span(const std::string& span_id, std::chrono::system_clock::time_point start,
                    std::chrono::system_clock::time_point end);
  // Records the root span, ending at `end`.
  void finish(std::chrono::system_clock::time_point end);

  // Hands a successful load's trace from on_refresh to the registry listener that publishes the
  // snapshot: both run on the refreshing thread, one after the other.
  static void set_pending(std::shared_ptr<RefreshTrace> trace);
  static std::shared_ptr<RefreshTrace> take_pending();

  std::string trace_id;
  std::string root_span_id;
  bool sampled = false;  // the sampler's decision (and an exporter is set): spans are recorded

 private:
  Span child(std::string name, std::uint64_t start_ns, std::uint64_t end_ns) const;

  std::uint64_t start_ns_ = 0;
  std::vector<std::pair<std::string, Json>> attributes_;
  std::vector<std::pair<std::string, Json>> snapshot_attributes_;  // version, connectorId
  bool error_ = false;
  std::string error_message_;
};

// The process's exporter (nullptr: ids for logs only, spans are not built). REQUIRES: set before
// the server starts serving, and cleared only after it stopped.
void set_span_exporter(OtlpExporter* exporter);
// Whether spans are exported: lets callers skip building them.
bool spans_enabled() noexcept;
// The process's sampler (default parentbased_always_on). REQUIRES: set before the server starts.
void set_sampler(const Sampler& sampler);
// Whether a trace's spans are recorded: an exporter is set and the sampler samples it.
bool sample_trace(std::string_view trace_id, std::optional<bool> parent_sampled) noexcept;
// Hands `span` to the exporter, if any.
void record_span(Span span);
void record_span(const HttpSpan& span);
// The exporter's metrics text, or "" without an exporter.
std::string span_metrics_text();

}  // namespace cortex_connectors::server
