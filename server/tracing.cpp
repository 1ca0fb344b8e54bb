#include "tracing.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <memory>

#include <fmt/format.h>
#include <httplib.h>

#include "config.h"
#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/negotiation.h"
#include "cortex_connectors/trace_context.h"
#include "cortex_connectors/version.h"
#include "log.h"

namespace cortex_connectors::server {

namespace {

std::atomic<OtlpExporter*> g_exporter{nullptr};
Sampler g_sampler;  // set before serving (set_sampler), read-only afterwards

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

namespace {

void append_otlp_head(std::string& out, const OtlpExporterOptions& options) {
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
}

void append_otlp_tail(std::string& out) { out.append("]}]}]}"); }

void append_decimal(std::string& out, std::uint64_t n) {
  char buf[20];
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  out.append(p, static_cast<std::size_t>(buf + sizeof buf - p));
}

// Ids are lowercase hex (generated or checked by parse_traceparent): no escaping needed.
void append_span_head(std::string& out, std::string_view trace_id, std::string_view span_id,
                      std::string_view parent_span_id) {
  out.append(R"({"traceId":")").append(trace_id).append(R"(","spanId":")").append(span_id);
  out.push_back('"');
  if (!parent_span_id.empty()) {
    out.append(R"(,"parentSpanId":")").append(parent_span_id).push_back('"');
  }
}

void append_span_times(std::string& out, SpanKind kind, std::uint64_t start_ns,
                       std::uint64_t end_ns) {
  out.append(R"(,"kind":)");
  out.push_back(static_cast<char>('0' + static_cast<int>(kind)));
  out.append(R"(,"startTimeUnixNano":")");
  append_decimal(out, start_ns);
  out.append(R"(","endTimeUnixNano":")");
  append_decimal(out, std::max(end_ns, start_ns));
  out.append(R"(","attributes":[{"key":"brand","value":{"stringValue":"brAInwav"}})");
}

void append_span(std::string& out, const Span& s) {
  append_span_head(out, s.trace_id, s.span_id, s.parent_span_id);
  out.append(R"(,"name":)");
  append_canonical_string(out, s.name);
  append_span_times(out, s.kind, s.start_ns, s.end_ns);
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

void append_int_attribute(std::string& out, std::string_view key, std::uint64_t value) {
  out.append(R"(,{"key":")").append(key).append(R"(","value":{"intValue":")");
  append_decimal(out, value);
  out.append(R"("}})");
}

void append_span(std::string& out, const HttpSpan& s) {
  const std::string_view method(s.method.data(), s.method_len);
  append_span_head(out, {s.trace_id.data(), s.trace_id.size()},
                   {s.span_id.data(), s.span_id.size()},
                   s.has_parent ? std::string_view(s.parent_span_id.data(), 16) : "");
  // The method is whatever the client sent: escaped; the route is a literal of ours (no
  // character to escape), appended inside the same JSON string.
  out.append(R"(,"name":)");
  append_canonical_string(out, method);
  if (!s.route.empty()) {
    out.pop_back();  // the closing quote
    out.append(" ").append(s.route).push_back('"');
  }
  append_span_times(out, SpanKind::kServer, s.start_ns, s.end_ns);
  out.append(R"(,{"key":"http.request.method","value":{"stringValue":)");
  append_canonical_string(out, method);
  out.append("}}");
  append_int_attribute(out, "http.response.status_code", static_cast<std::uint64_t>(s.status));
  append_int_attribute(out, "http.response.body.size", s.bytes);
  out.append(R"(,{"key":"request_id","value":{"stringValue":)");
  append_canonical_string(out, std::string_view(s.request_id.data(), s.request_id_len));
  out.append("}}");
  if (!s.route.empty()) {
    out.append(R"(,{"key":"http.route","value":{"stringValue":)");
    append_canonical_string(out, s.route);
    out.append("}}");
  }
  // Server spans: only 5xx is an error (a 4xx is the client's).
  out.append(s.status >= 500 ? R"(],"status":{"code":2}})" : R"(],"status":{"code":1}})");
}

}  // namespace

std::string otlp_json(std::span<const Span> spans, const OtlpExporterOptions& options) {
  std::string out;
  out.reserve(512 + spans.size() * 600);
  append_otlp_head(out, options);
  bool first = true;
  for (const Span& s : spans) {
    if (!first) out.push_back(',');
    first = false;
    append_span(out, s);
  }
  append_otlp_tail(out);
  return out;
}

std::optional<Sampler> parse_sampler(std::string_view name, std::string_view arg) {
  const std::string lower = ascii_lower(name);
  Sampler out;
  if (lower.empty() || lower == "parentbased_always_on") {
    out.kind = SamplerKind::kParentBasedAlwaysOn;
  } else if (lower == "always_on") {
    out.kind = SamplerKind::kAlwaysOn;
  } else if (lower == "always_off") {
    out.kind = SamplerKind::kAlwaysOff;
  } else if (lower == "traceidratio") {
    out.kind = SamplerKind::kTraceIdRatio;
  } else if (lower == "parentbased_always_off") {
    out.kind = SamplerKind::kParentBasedAlwaysOff;
  } else if (lower == "parentbased_traceidratio") {
    out.kind = SamplerKind::kParentBasedTraceIdRatio;
  } else {
    return std::nullopt;
  }
  const bool ratio =
      out.kind == SamplerKind::kTraceIdRatio || out.kind == SamplerKind::kParentBasedTraceIdRatio;
  if (ratio && !arg.empty()) {
    const std::string text(arg);
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || !(v >= 0.0 && v <= 1.0)) return std::nullopt;
    out.ratio = v;
  }
  return out;
}

bool should_sample(const Sampler& sampler, std::string_view trace_id,
                   std::optional<bool> parent_sampled) noexcept {
  auto ratio = [&] {
    if (sampler.ratio >= 1.0) return true;
    if (sampler.ratio <= 0.0 || trace_id.size() != 32) return false;
    // The last 8 bytes of the id, shifted to 63 bits, against ratio * 2^63.
    std::uint64_t word = 0;
    for (char c : trace_id.substr(16)) {
      word = word << 4 | static_cast<std::uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    const auto bound = static_cast<std::uint64_t>(sampler.ratio * 9223372036854775808.0);
    return (word >> 1) < bound;
  };
  switch (sampler.kind) {
    case SamplerKind::kAlwaysOn:
      return true;
    case SamplerKind::kAlwaysOff:
      return false;
    case SamplerKind::kTraceIdRatio:
      return ratio();
    case SamplerKind::kParentBasedAlwaysOn:
      return parent_sampled.value_or(true);
    case SamplerKind::kParentBasedAlwaysOff:
      return parent_sampled.value_or(false);
    case SamplerKind::kParentBasedTraceIdRatio:
      return parent_sampled ? *parent_sampled : ratio();
  }
  return false;
}

OtlpExporter::OtlpExporter(OtlpExporterOptions options) : options_(std::move(options)) {
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
    append_otlp_head(body_, options_);
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
    log(LogLevel::kWarning, "span export failing; spans are dropped",
        Json(Json::Object{{"reason", reason}, {"spans", count}}));
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
      sampled(sample_trace(trace_id, std::nullopt)),
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
  if (sampled) {
    Span span = child("snapshot.publish", unix_nanos(start), unix_nanos(end));
    span.span_id = span_id;
    span.attributes = snapshot_attributes_;
    record_span(std::move(span));
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
  record_span(std::move(span));
}

void RefreshTrace::set_pending(std::shared_ptr<RefreshTrace> trace) {
  t_pending_refresh = std::move(trace);
}

std::shared_ptr<RefreshTrace> RefreshTrace::take_pending() { return std::move(t_pending_refresh); }

void set_span_exporter(OtlpExporter* exporter) { g_exporter = exporter; }

bool spans_enabled() noexcept { return g_exporter.load(std::memory_order_relaxed) != nullptr; }

void set_sampler(const Sampler& sampler) { g_sampler = sampler; }

bool sample_trace(std::string_view trace_id, std::optional<bool> parent_sampled) noexcept {
  return spans_enabled() && should_sample(g_sampler, trace_id, parent_sampled);
}

void record_span(Span span) {
  if (OtlpExporter* e = g_exporter.load()) e->record(std::move(span));
}

void record_span(const HttpSpan& span) {
  if (OtlpExporter* e = g_exporter.load()) e->record(span);
}

std::string span_metrics_text() {
  OtlpExporter* e = g_exporter.load();
  return e ? e->metrics_text() : std::string();
}

}  // namespace cortex_connectors::server
