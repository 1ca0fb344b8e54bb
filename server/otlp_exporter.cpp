#include "otlp_exporter.h"

#include <algorithm>
#include <memory>

#include <fmt/format.h>
#include <httplib.h>

#include "internal/metrics_text.h"
#include "log.h"

namespace cortex_connectors::server {

OtlpExporter::OtlpExporter(OtlpExporterOptions options, const Log& log)
    : options_(std::move(options)), log_(log) {
  options_.max_queue = std::max<std::size_t>(options_.max_queue, 1);
  options_.max_batch = std::clamp<std::size_t>(options_.max_batch, 1, options_.max_queue);
  auto [base, path] = split_otlp_endpoint(options_.url);
  base_ = std::move(base);
  path_ = path.empty() ? std::string("/") : std::move(path);
  http_queue_.reserve(options_.max_queue);
  taken_http_.reserve(options_.max_queue);
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
  cut_ = true;
  cv_.notify_all();
  {
    std::lock_guard lock(client_mutex_);
    if (client_ != nullptr) static_cast<httplib::Client*>(client_)->stop();
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  dropped_failed_ += queue_.size() + http_queue_.size();
  queue_.clear();
  http_queue_.clear();
}

void OtlpExporter::record(Span span) {
  {
    std::lock_guard lock(mutex_);
    const std::size_t queued = queue_.size() + http_queue_.size();
    if (stopping_ || queued >= options_.max_queue) {
      ++dropped_full_;
      return;
    }
    queue_.push_back(std::move(span));
    if (queued + 1 < options_.max_batch) return;
  }
  cv_.notify_one();
}

void OtlpExporter::record(const HttpSpan& span) {
  {
    std::lock_guard lock(mutex_);
    const std::size_t queued = queue_.size() + http_queue_.size();
    if (stopping_ || queued >= options_.max_queue) {
      ++dropped_full_;
      return;
    }
    http_queue_.push_back(span);  // within the reserved capacity: no allocation
    if (queued + 1 < options_.max_batch) return;
  }
  cv_.notify_one();
}

void OtlpExporter::take() {
  taken_.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
  queue_.clear();
  taken_http_.clear();
  taken_http_.swap(http_queue_);  // both keep max_queue capacity
}

void OtlpExporter::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait_for(lock, options_.schedule_delay, [this] {
      return stopping_ || queue_.size() + http_queue_.size() >= options_.max_batch;
    });
    if (stopping_) break;
    if (queue_.empty() && http_queue_.empty()) continue;
    // Everything queued leaves in one round, in requests of at most max_batch spans; the queue
    // fills again meanwhile without waiting for the network.
    take();
    lock.unlock();
    send_taken(std::chrono::steady_clock::time_point::max());
    lock.lock();
  }
  // Stopping: what is left of a round and what is queued get one bounded attempt.
  lock.unlock();
  const auto deadline = std::chrono::steady_clock::now() + options_.shutdown_budget;
  send_taken(deadline);
  lock.lock();
  take();
  lock.unlock();
  send_taken(deadline);
}

void OtlpExporter::send_taken(std::chrono::steady_clock::time_point deadline) {
  const std::size_t total = taken_.size() + taken_http_.size();
  std::size_t done = std::exchange(taken_done_, 0);
  while (done < total) {
    // stop() cut the request in flight short: the rest is left for the bounded attempt.
    if (cut_.load() && deadline == std::chrono::steady_clock::time_point::max()) {
      taken_done_ = done;
      return;
    }
    std::chrono::milliseconds timeout = options_.timeout;
    if (deadline != std::chrono::steady_clock::time_point::max()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      timeout = std::min(left, timeout);
    }
    const std::size_t n = std::min(total - done, options_.max_batch);
    body_.clear();
    append_otlp_head(body_, options_.service_name);
    for (std::size_t i = done; i < done + n; ++i) {
      if (i != done) body_.push_back(',');
      if (i < taken_.size()) {
        append_span(body_, taken_[i]);
      } else {
        append_span(body_, taken_http_[i - taken_.size()]);
      }
    }
    append_otlp_tail(body_);
    send(n, timeout);
    done += n;
  }
  dropped_failed_ += total - done;
  taken_.clear();
  taken_http_.clear();
}

void OtlpExporter::send(std::size_t count, std::chrono::milliseconds timeout) {
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
  httplib::Headers headers;
  for (const auto& h : options_.headers) headers.emplace(h.name, h.value);
  const auto res = client->Post(path_, headers, body_.data(), body_.size(), "application/json");
  {
    std::lock_guard lock(client_mutex_);
    client_ = nullptr;
  }
  const bool ok = res && res->status >= 200 && res->status < 300;
  if (ok) {
    exported_ += count;
  } else {
    dropped_failed_ += count;
  }
  // One line when export starts failing and one when it recovers; the endpoint and the headers
  // are not logged (they may carry credentials), the reason is.
  if (!ok && !failing_) {
    const std::string reason =
        res ? fmt::format("collector answered {}", res->status) : httplib::to_string(res.error());
    log_(LogLevel::kWarning, "span export failing; spans are dropped",
         Json(Json::Object{{"reason", reason}, {"spans", count}}));
  } else if (ok && failing_) {
    log_(LogLevel::kInfo, "span export recovered");
  }
  failing_ = !ok;
  if (!ok) client.reset();
}

std::vector<prometheus::MetricFamily> OtlpExporter::metric_families() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  out.push_back(internal::metric_family("cortex_connectors_otlp_spans_exported_total",
                                        "Spans the OTLP collector accepted.", MetricType::Counter,
                                        {{{}, static_cast<double>(exported_.load())}}));
  out.push_back(internal::metric_family(
      "cortex_connectors_otlp_spans_dropped_total", "Spans dropped: queue full or export failed.",
      MetricType::Counter,
      {{{{"reason", "queue_full"}}, static_cast<double>(dropped_full_.load())},
       {{{"reason", "export_failed"}}, static_cast<double>(dropped_failed_.load())}}));
  return out;
}

}  // namespace cortex_connectors::server
