// The server's parts at unit level, linked from its internal library (server/): the options
// table, the tracer and the pending load trace, and the routes over a real HardenedServer with
// a ServerContext. The binary's behaviour is tested end to end in test_server*.cpp.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "config.h"
#include "context.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/registry.h"
#include "http_server.h"
#include "internal/metrics_text.h"
#include "log.h"
#include "redis_scaling.h"
#include "routes.h"
#include "test_utils.h"
#include "tracing.h"

namespace cc = cortex_connectors;
namespace srv = cortex_connectors::server;

namespace {

cc::Result<srv::ServerConfig> parse(std::vector<std::string> args,
                                    std::map<std::string, std::string> env) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return srv::parse_server_config(argv, [&env](const char* name) -> std::optional<std::string> {
    const auto found = env.find(name);
    return found == env.end() ? std::nullopt : std::optional<std::string>(found->second);
  });
}

// A scaling role that reports what the test says.
class FakeRole final : public srv::ScalingRole {
 public:
  explicit FakeRole(bool degraded) : degraded_(degraded) {}
  void stop() override {}
  cc::Json status() const override { return cc::Json(cc::Json::Object{{"role", "fake"}}); }
  std::vector<prometheus::MetricFamily> metric_families() const override {
    return {cc::internal::metric_family("fake_role_up", "The fake role.",
                                        prometheus::MetricType::Gauge, {{{}, 1}})};
  }
  bool degraded() const override { return degraded_; }

 private:
  bool degraded_;
};

}  // namespace

TEST_CASE("the options table: flags over variables, defaults, one error line", "[server][unit]") {
  auto config =
      parse({"--port", "4000"},
            {{"CONNECTORS_SIGNATURE_KEY", "k"}, {"CONNECTORS_PORT", "3000"}, {"NO_AUTH", "true"}});
  REQUIRE_OK(config);
  CHECK(config->port == 4000);
  CHECK(config->host == "127.0.0.1");
  CHECK(config->heartbeat_seconds == 15);
  CHECK(config->no_auth);
  CHECK(config->signing_key == "k");

  auto bad = parse({"--port", "many"}, {{"CONNECTORS_SIGNATURE_KEY", "k"}, {"NO_AUTH", "true"}});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find('\n') == std::string::npos);
  CHECK(bad.error().message.find("--port") != std::string::npos);

  auto help = parse({"--help"}, {});
  REQUIRE_OK(help);
  CHECK(help->command == srv::Command::kHelp);
  CHECK(srv::server_usage().find("--port") != std::string::npos);
}

TEST_CASE("a Tracer without an exporter samples nothing and has no metrics", "[server][unit]") {
  const srv::Tracer tracer;
  CHECK_FALSE(tracer.enabled());
  CHECK_FALSE(tracer.sample(cc::generate_trace_id(), true));
  CHECK(tracer.metric_families().empty());
  tracer.record(srv::Span{});  // dropped, no crash
}

TEST_CASE("a pending load trace joins only the publication of its version", "[server][unit]") {
  const srv::Tracer tracer;
  cc::RefreshReport report;
  report.result = cc::ReloadResult::kSuccess;
  report.version = 3;
  auto trace = std::make_shared<srv::RefreshTrace>(report, tracer);
  CHECK(trace->version == 3);
  CHECK_FALSE(trace->sampled);
  CHECK(trace->trace_id.size() == 32);

  srv::PendingRefreshTrace pending;
  pending.set(trace);
  CHECK(pending.take(4) == nullptr);
  CHECK(pending.take(3) == nullptr);  // the slot was cleared by the first take
  pending.set(trace);
  CHECK(pending.take(3) == trace);
  CHECK(pending.take(3) == nullptr);
}

TEST_CASE("/health and /metrics through the routes carry the context's scaling role",
          "[server][unit]") {
  REQUIRE(srv::set_log_level("warning"));  // no access log lines in the test output
  srv::ServerConfig config;
  config.no_auth = true;
  config.enable_prometheus = true;
  cc::RegistryOptions options;
  options.signing_key = "unit-key";
  cc::Registry registry(options);
  const srv::Tracer tracer;
  srv::ServerContext context(config, registry, tracer);
  srv::HardenedServer server(srv::HardeningOptions{});
  srv::install_routes(server, context);
  const int port = server.bind("127.0.0.1", 0, 16);
  REQUIRE(port > 0);
  std::thread thread([&server] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::yield();
  httplib::Client client("127.0.0.1", port);

  auto health = [&] {
    auto res = client.Get("/health");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(!res->get_header_value("X-Request-Id").empty());
    auto body = cc::parse_json(res->body);
    REQUIRE_OK(body);
    return std::move(*body);
  };
  CHECK(health().find("scaling") == nullptr);
  CHECK(health().find("status")->as_string() == "starting");

  REQUIRE_OK(
      registry.refresh_from_text(cc::test::read_data("manifests/original-fixture.manifest.json")));
  CHECK(health().find("status")->as_string() == "ok");
  const FakeRole degraded(true);
  context.set_scaling_role(&degraded);
  const cc::Json with_role = health();
  CHECK(with_role.find("status")->as_string() == "degraded");
  CHECK(with_role.find("scaling")->find("role")->as_string() == "fake");
  auto metrics = client.Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->body.find("fake_role_up 1\n") != std::string::npos);
  context.set_scaling_role(nullptr);

  server.shutdown();
  thread.join();
  srv::set_log_level("info");
}
