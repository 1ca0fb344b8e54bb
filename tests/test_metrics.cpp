#include <unistd.h>

#include "cortex_connectors/metrics.h"
#include "internal/metrics_text.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using namespace std::chrono_literals;

namespace {

std::string sample_text() {
  cc::Metrics m;
  m.record_reload(cc::ReloadResult::kSuccess);
  m.record_reload(cc::ReloadResult::kFailure);
  m.set_snapshot_version(7);
  cc::StageTimings t;
  t.parse = 2ms;
  m.record_timings(t);
  m.observe_http_request("service_map", 200, 300us);
  m.observe_http_request("service_map", 304, 100us);
  m.observe_http_request("health", 200, 50us);
  m.set_sse_subscribers(3);
  m.observe_sse_broadcast(5ms);
  cc::Snapshot snap;
  auto manifest =
      cc::parse_manifest(cc::test::read_data("manifests/cortex-os-example.manifest.json"));
  REQUIRE_OK(manifest);
  snap.metrics_text = cc::Metrics::render_manifest_text(*manifest);
  return m.render_text(&snap);
}

}  // namespace

TEST_CASE("metrics text carries every series", "[metrics]") {
  const std::string text = sample_text();
  for (const char* line : {
           "cortex_connectors_reloads_total{result=\"success\"} 1",
           "cortex_connectors_reloads_total{result=\"failure\"} 1",
           "cortex_connectors_snapshot_version 7",
           "cortex_connectors_stage_duration_seconds_count{stage=\"parse\"} 1",
           "cortex_connectors_http_requests_total{code=\"304\",route=\"service_map\"} 1",
           "cortex_connectors_http_request_duration_seconds_count{route=\"service_map\"} 2",
           "cortex_connectors_sse_subscribers 3",
           "cortex_connectors_sse_broadcast_duration_seconds_count 1",
           "brainwav_mcp_connector_proxy_up{connector=\"perplexity-search\"} 1",
           "brainwav_mcp_connector_proxy_up{connector=\"github-actions\"} 0",
           "# TYPE brainwav_mcp_connector_proxy_up gauge",
       }) {
    INFO(line);
    CHECK(text.find(line) != std::string::npos);
  }
}

TEST_CASE("the manifest's series: one gauge per connector, in file order", "[metrics]") {
  auto manifest =
      cc::parse_manifest(cc::test::read_data("manifests/cortex-os-example.manifest.json"));
  REQUIRE_OK(manifest);
  CHECK(cc::Metrics::render_manifest_text(*manifest) ==
        "# HELP brainwav_mcp_connector_proxy_up Connector availability from the manifest (1 "
        "enabled, 0 disabled)\n"
        "# TYPE brainwav_mcp_connector_proxy_up gauge\n"
        "brainwav_mcp_connector_proxy_up{connector=\"perplexity-search\"} 1\n"
        "brainwav_mcp_connector_proxy_up{connector=\"github-actions\"} 0\n"
        "brainwav_mcp_connector_proxy_up{connector=\"wikidata\"} 1\n");
  // A Manifest built in code is not validated: label values are escaped all the same.
  cc::Manifest odd;
  odd.connectors.resize(1);
  odd.connectors[0].id = "a\"b\\c\nd";
  odd.connectors[0].enabled = false;
  const std::string text = cc::Metrics::render_manifest_text(odd);
  CHECK(text.substr(text.find("brainwav_mcp_connector_proxy_up{")) ==
        "brainwav_mcp_connector_proxy_up{connector=\"a\\\"b\\\\c\\nd\"} 0\n");
}

TEST_CASE("promtool accepts the metrics text", "[metrics]") {
  if (::access("/usr/bin/promtool", X_OK) != 0) {
    WARN("promtool not installed (Debian package prometheus); scripts/install-deps.sh adds it");
    return;
  }
  auto r = cc::test::run_program({"/usr/bin/promtool", "check", "metrics"}, sample_text());
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
}

TEST_CASE("metrics: the server's families follow the manifest series, in the exposition format",
          "[metrics]") {
  // The span exporter and the Redis roles describe their series as prometheus-cpp families; the
  // text is what they wrote by hand before: integers in full, labels quoted, HELP and TYPE first.
  cc::Metrics metrics;
  cc::Snapshot snap;
  snap.metrics_text = "manifest_series 1\n";
  std::vector<prometheus::MetricFamily> extra;
  extra.push_back(cc::internal::metric_family(
      "x_total", "Things counted.", prometheus::MetricType::Counter,
      {{{{"reason", "queue_full"}}, 123456789}, {{{"reason", "export_failed"}}, 0}}));
  cc::internal::append_families(
      extra, {cc::internal::metric_family("y_up", "1 while up.", prometheus::MetricType::Gauge,
                                          {{{}, 1}})});
  const std::string text = cc::internal::render_text(metrics, &snap, extra);
  CHECK(text.starts_with(metrics.render_text(&snap)));
  CHECK(
      text.ends_with("manifest_series 1\n"
                     "# HELP x_total Things counted.\n"
                     "# TYPE x_total counter\n"
                     "x_total{reason=\"queue_full\"} 123456789\n"
                     "x_total{reason=\"export_failed\"} 0\n"
                     "# HELP y_up 1 while up.\n"
                     "# TYPE y_up gauge\n"
                     "y_up 1\n"));
}
