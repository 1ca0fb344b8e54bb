// The server's parts at unit level, linked from its internal library (server/): the options
// table, the tracer and the pending load trace, the routes over a real HardenedServer with
// a ServerContext, and which requests the fast path takes. The binary's behaviour is tested end
// to end in test_server*.cpp and test_fast_path.cpp.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "config.h"
#include "context.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/registry.h"
#include "fast_routes.h"
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
// Heap allocations made by this thread while t_count_allocations is set.
thread_local bool t_count_allocations = false;
thread_local std::size_t t_allocations = 0;
}  // namespace

// Counts allocations for the fast path's test; otherwise plain malloc/free. Every non-aligned
// form is replaced, so that no pointer crosses between this pair and the runtime's (ASan checks
// that). (GCC 12 takes the free() of a replaced operator delete for a mismatch once it inlines
// both into a caller.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
void* counted_malloc(std::size_t size) noexcept {
  if (t_count_allocations) ++t_allocations;
  return std::malloc(size == 0 ? 1 : size);
}
void* counted_new(std::size_t size) {
  if (void* p = counted_malloc(size)) return p;
  throw std::bad_alloc();
}
}  // namespace
void* operator new(std::size_t size) { return counted_new(size); }
void* operator new[](std::size_t size) { return counted_new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return counted_malloc(size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return counted_malloc(size);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
#pragma GCC diagnostic pop

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

TEST_CASE("a Log writes its level and above, and LOG_LEVEL names the levels", "[server][unit]") {
  CHECK(srv::parse_log_level("debug") == srv::LogLevel::kDebug);
  CHECK(srv::parse_log_level("Info") == srv::LogLevel::kInfo);
  CHECK(srv::parse_log_level("WARN") == srv::LogLevel::kWarning);
  CHECK(srv::parse_log_level("warning") == srv::LogLevel::kWarning);
  CHECK(srv::parse_log_level("critical") == srv::LogLevel::kError);
  CHECK_FALSE(srv::parse_log_level("verbose"));
  CHECK_FALSE(srv::parse_log_level(""));

  srv::Log log(srv::LogLevel::kWarning);
  CHECK_FALSE(log.enabled(srv::LogLevel::kInfo));
  CHECK(log.enabled(srv::LogLevel::kWarning));
  CHECK(log.enabled(srv::LogLevel::kError));
  // Each log has its own level: no process-wide one.
  const srv::Log quiet(srv::LogLevel::kError);
  log.set_level(srv::LogLevel::kDebug);
  CHECK(log.enabled(srv::LogLevel::kDebug));
  CHECK_FALSE(quiet.enabled(srv::LogLevel::kWarning));
}

TEST_CASE("/health and /metrics through the routes carry the context's scaling role",
          "[server][unit]") {
  const srv::Log log(srv::LogLevel::kWarning);  // no access log lines in the test output
  srv::ServerConfig config;
  config.no_auth = true;
  config.enable_prometheus = true;
  cc::RegistryOptions options;
  options.signing_key = "unit-key";
  cc::Registry registry(options);
  const srv::Tracer tracer;
  srv::ServerContext context(config, registry, tracer, log);
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
}

TEST_CASE("the fast path takes the hot routes, declines the rest, and allocates nothing",
          "[server][unit][fast_path]") {
  const srv::Log log(srv::LogLevel::kWarning);  // no access log lines: nothing reads trace ids
  srv::ServerConfig config;
  config.api_keys = {"unit-api-key"};
  cc::RegistryOptions options;
  options.signing_key = "unit-key";
  cc::Registry registry(options);
  const srv::Tracer tracer;
  srv::ServerContext context(config, registry, tracer, log);
  srv::FastRoutes routes(context, nullptr);
  srv::FastResponse out;
  std::string text;
  srv::RequestHead head;
  auto answer = [&](std::string request, bool close = false) {
    text = std::move(request);
    srv::parse_head(text, head);
    out.body = {};
    out.owner.reset();
    return routes.answer(head, close, out);
  };
  const std::string map = "GET /v1/connectors/service-map HTTP/1.1\r\n";
  const std::string auth = "Authorization: Bearer unit-api-key\r\n";

  // Before the first snapshot the 503s carry the registry's state: cpp-httplib's.
  CHECK_FALSE(answer(map + auth + "\r\n"));
  CHECK_FALSE(answer("GET /ready HTTP/1.1\r\n\r\n"));
  CHECK(answer(map + "\r\n"));  // the 401 needs no snapshot
  CHECK(out.head.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
  REQUIRE_OK(
      registry.refresh_from_text(cc::test::read_data("manifests/original-fixture.manifest.json")));
  const auto snapshot = registry.current();

  REQUIRE(answer(map + auth + "X-Request-Id: unit-1\r\n\r\n"));
  CHECK(out.head ==
        "HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\nContent-Length: " +
            std::to_string(snapshot->body.size()) +
            "\r\nContent-Type: application/json\r\nETag: " + snapshot->etag +
            "\r\nKeep-Alive: timeout=5, max=1000\r\nVary: Accept-Encoding\r\nX-Request-Id: "
            "unit-1\r\n\r\n");
  CHECK(out.body == snapshot->body);
  CHECK_FALSE(out.close);
  REQUIRE(answer("HEAD /v1/connectors/service-map HTTP/1.1\r\n" + auth + "\r\n", true));
  CHECK(out.head.find("Accept-Ranges: bytes\r\nCache-Control: no-cache\r\nConnection: close\r\n") !=
        std::string::npos);
  CHECK(out.head.find("Keep-Alive") == std::string::npos);
  CHECK(out.body.empty());
  CHECK(out.close);
  REQUIRE(answer(map + auth + "Connection: close\r\n\r\n"));
  CHECK(out.close);
  CHECK(answer("GET /health HTTP/1.1\r\n\r\n"));
  CHECK(answer("GET /ready HTTP/1.1\r\n\r\n"));

  // What it leaves to cpp-httplib.
  CHECK_FALSE(answer("GET /v1/connectors/keys HTTP/1.1\r\n\r\n"));
  CHECK_FALSE(answer("GET /metrics HTTP/1.1\r\n\r\n"));
  CHECK_FALSE(answer("GET /v1/connectors/service-map?a=b HTTP/1.1\r\n" + auth + "\r\n"));
  CHECK_FALSE(answer("GET /v1/connectors/service-map HTTP/1.0\r\n" + auth + "\r\n"));
  CHECK_FALSE(answer(map + auth + "Connection: keep-alive\r\n\r\n"));
  CHECK_FALSE(answer(map + auth + "Expect: 100-continue\r\n\r\n"));
  CHECK_FALSE(answer("GET /apps/chatgpt-dashboard/index.html HTTP/1.1\r\n\r\n"));  // no bundle

  // Once its buffers have grown, a request costs no heap allocation: 200, 304 and 401.
  const std::string requests[] = {
      map + auth + "Accept-Encoding: gzip, br\r\n\r\n",
      map + auth + "If-None-Match: " + snapshot->etag + "\r\n\r\n",
      map + "Authorization: Bearer wrong\r\n\r\n",
      "GET /ready HTTP/1.1\r\n\r\n",
  };
  for (const auto& request : requests) {
    INFO(request);
    REQUIRE(answer(request));
    t_allocations = 0;
    t_count_allocations = true;
    const bool answered = routes.answer(head, false, out);
    t_count_allocations = false;
    CHECK(answered);
    CHECK(t_allocations == 0);
  }
}
