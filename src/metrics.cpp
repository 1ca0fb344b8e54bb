#include "cortex_connectors/metrics.h"

#include <map>
#include <mutex>
#include <string_view>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "internal/manifest_view.h"
#include "internal/metrics_text.h"

namespace cortex_connectors {

namespace {

double seconds(std::chrono::nanoseconds ns) { return std::chrono::duration<double>(ns).count(); }

const prometheus::Histogram::BucketBoundaries& stage_buckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
  return kBuckets;
}

const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
  return kBuckets;
}

}  // namespace

struct Metrics::Impl {
  prometheus::Registry registry;
  prometheus::Family<prometheus::Counter>& reloads =
      prometheus::BuildCounter()
          .Name("cortex_connectors_reloads_total")
          .Help("Manifest reloads by result (success, failure, unchanged)")
          .Register(registry);
  prometheus::Counter& reload_success = reloads.Add({{"result", "success"}});
  prometheus::Counter& reload_failure = reloads.Add({{"result", "failure"}});
  prometheus::Counter& reload_unchanged = reloads.Add({{"result", "unchanged"}});
  prometheus::Gauge& version = prometheus::BuildGauge()
                                   .Name("cortex_connectors_snapshot_version")
                                   .Help("Version of the snapshot being served (0: none yet)")
                                   .Register(registry)
                                   .Add({});
  prometheus::Family<prometheus::Histogram>& stages =
      prometheus::BuildHistogram()
          .Name("cortex_connectors_stage_duration_seconds")
          .Help("Duration of each stage of a manifest rebuild")
          .Register(registry);
  prometheus::Histogram& stage_read = stages.Add({{"stage", "read"}}, stage_buckets());
  prometheus::Histogram& stage_parse = stages.Add({{"stage", "parse"}}, stage_buckets());
  prometheus::Histogram& stage_validate = stages.Add({{"stage", "validate"}}, stage_buckets());
  prometheus::Histogram& stage_build = stages.Add({{"stage", "build"}}, stage_buckets());
  prometheus::Histogram& stage_sign = stages.Add({{"stage", "sign"}}, stage_buckets());
  prometheus::Histogram& stage_compress = stages.Add({{"stage", "compress"}}, stage_buckets());
  prometheus::Family<prometheus::Counter>& http_requests =
      prometheus::BuildCounter()
          .Name("cortex_connectors_http_requests_total")
          .Help("HTTP requests by route and status code")
          .Register(registry);
  prometheus::Family<prometheus::Histogram>& http_latency =
      prometheus::BuildHistogram()
          .Name("cortex_connectors_http_request_duration_seconds")
          .Help("HTTP request latency by route")
          .Register(registry);
  prometheus::Gauge& sse_subscribers = prometheus::BuildGauge()
                                           .Name("cortex_connectors_sse_subscribers")
                                           .Help("Connected SSE subscribers")
                                           .Register(registry)
                                           .Add({});
  prometheus::Histogram& sse_broadcast =
      prometheus::BuildHistogram()
          .Name("cortex_connectors_sse_broadcast_duration_seconds")
          .Help("Time from snapshot publication to the last subscriber's write")
          .Register(registry)
          .Add({}, latency_buckets());

  // Family::Add takes a lock and hashes labels; cache the children per (route, code).
  std::mutex http_mutex;
  // Looked up by (string_view, int): no std::string is built per request.
  struct RouteStatusLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
      return std::string_view(a.first) != std::string_view(b.first)
                 ? std::string_view(a.first) < std::string_view(b.first)
                 : a.second < b.second;
    }
  };
  std::map<std::pair<std::string, int>, prometheus::Counter*, RouteStatusLess> http_counters;
  std::map<std::string, prometheus::Histogram*, std::less<>> http_histograms;
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

void Metrics::record_reload(ReloadResult result) {
  switch (result) {
    case ReloadResult::kSuccess:
      impl_->reload_success.Increment();
      break;
    case ReloadResult::kFailure:
      impl_->reload_failure.Increment();
      break;
    case ReloadResult::kUnchanged:
      impl_->reload_unchanged.Increment();
      break;
  }
}

void Metrics::record_timings(const StageTimings& t) {
  impl_->stage_read.Observe(seconds(t.read));
  impl_->stage_parse.Observe(seconds(t.parse));
  impl_->stage_validate.Observe(seconds(t.validate));
  impl_->stage_build.Observe(seconds(t.build));
  impl_->stage_sign.Observe(seconds(t.sign));
  impl_->stage_compress.Observe(seconds(t.compress));
}

void Metrics::set_snapshot_version(std::uint64_t version) {
  impl_->version.Set(static_cast<double>(version));
}

void Metrics::observe_http_request(std::string_view route, int status,
                                   std::chrono::nanoseconds elapsed) {
  prometheus::Counter* counter = nullptr;
  prometheus::Histogram* histogram = nullptr;
  {
    std::lock_guard lock(impl_->http_mutex);
    auto it = impl_->http_counters.find(std::make_pair(route, status));
    if (it == impl_->http_counters.end()) {
      auto& c = impl_->http_requests.Add(
          {{"route", std::string(route)}, {"code", std::to_string(status)}});
      it = impl_->http_counters.emplace(std::make_pair(std::string(route), status), &c).first;
    }
    counter = it->second;
    auto hit = impl_->http_histograms.find(route);
    if (hit == impl_->http_histograms.end()) {
      auto& h = impl_->http_latency.Add({{"route", std::string(route)}}, latency_buckets());
      hit = impl_->http_histograms.emplace(std::string(route), &h).first;
    }
    histogram = hit->second;
  }
  counter->Increment();
  histogram->Observe(seconds(elapsed));
}

void Metrics::set_sse_subscribers(std::int64_t count) {
  impl_->sse_subscribers.Set(static_cast<double>(count));
}

void Metrics::observe_sse_broadcast(std::chrono::nanoseconds elapsed) {
  impl_->sse_broadcast.Observe(seconds(elapsed));
}

std::string Metrics::render_text(const Snapshot* snapshot) const {
  std::string out = prometheus::TextSerializer().Serialize(impl_->registry.Collect());
  if (snapshot != nullptr) out.append(snapshot->metrics_text);
  return out;
}

prometheus::MetricFamily internal::metric_family(std::string name, std::string help,
                                                 prometheus::MetricType type,
                                                 std::vector<MetricSample> samples) {
  prometheus::MetricFamily family{std::move(name), std::move(help), type, {}};
  family.metric.reserve(samples.size());
  for (auto& sample : samples) {
    prometheus::ClientMetric metric;
    metric.label = std::move(sample.labels);
    if (type == prometheus::MetricType::Counter) {
      metric.counter.value = sample.value;
    } else {
      metric.gauge.value = sample.value;
    }
    family.metric.push_back(std::move(metric));
  }
  return family;
}

std::string internal::render_text(const Metrics& metrics, const Snapshot* snapshot,
                                  const std::vector<prometheus::MetricFamily>& extra) {
  std::string out = metrics.render_text(snapshot);
  if (!extra.empty()) out.append(prometheus::TextSerializer().Serialize(extra));
  return out;
}

std::string Metrics::render_manifest_text(const Manifest& manifest) {
  return internal::render_manifest_text(internal::view_of(manifest));
}

// Written by hand, not through a prometheus::Family: one series per connector through
// Family::Add (a label map, a hash, a Gauge each) and TextSerializer's ostream cost 1.7-2.7 us per
// connector (bench_manifest BM_RenderManifestMetrics: 17 ms CPU at 10 000, more than writing the
// service map) on every rebuild. The text is the same exposition format, series in file order.
std::string internal::render_manifest_text(const internal::ManifestView& manifest) {
  static constexpr std::string_view kHead =
      "# HELP brainwav_mcp_connector_proxy_up Connector availability from the manifest "
      "(1 enabled, 0 disabled)\n"
      "# TYPE brainwav_mcp_connector_proxy_up gauge\n";
  static constexpr std::string_view kSeries = "brainwav_mcp_connector_proxy_up{connector=\"";
  std::size_t size = kHead.size();
  for (const auto& c : manifest.connectors) size += kSeries.size() + c.id.size() + 5;
  std::string out;
  out.reserve(size);
  out.append(kHead);
  for (const auto& c : manifest.connectors) {
    out.append(kSeries);
    // Label values escape backslash, double quote and line feed (validated ids have none).
    for (const char ch : c.id) {
      if (ch == '\\' || ch == '"') {
        out.push_back('\\');
        out.push_back(ch);
      } else if (ch == '\n') {
        out.append("\\n");
      } else {
        out.push_back(ch);
      }
    }
    out.append(c.is_enabled() ? "\"} 1\n" : "\"} 0\n");
  }
  return out;
}

}  // namespace cortex_connectors
