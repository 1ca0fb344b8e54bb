// The export of the server's spans as OTLP/HTTP JSON (POST to the traces URL; otlp_json.h).
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

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/metric_family.h>

#include "config.h"
#include "log.h"
#include "otlp_json.h"

namespace cortex_connectors::server {

class OtlpExporter {
 public:
  // Logs to `log` (when export starts failing, and recovers), which must outlive it.
  OtlpExporter(OtlpExporterOptions options, const Log& log);
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

  // The families cortex_connectors_otlp_spans_exported_total and
  // cortex_connectors_otlp_spans_dropped_total{reason="queue_full|export_failed"}.
  std::vector<prometheus::MetricFamily> metric_families() const;

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
  const Log& log_;
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

}  // namespace cortex_connectors::server
