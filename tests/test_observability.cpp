// Structured logs, W3C trace context and OTLP span export of the real server process, checked
// against its real standard error and a real OTLP/HTTP receiver on 127.0.0.1.
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "server_process.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using cc::test::ServerProcess;
using namespace std::chrono_literals;

namespace {

const std::string kSigningKey = "observability-test-signing-key";
const std::string kApiKey = "observability-test-api-key";
const std::string kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string kParentId = "00f067aa0ba902b7";

httplib::Headers bearer() { return {{"Authorization", "Bearer " + kApiKey}}; }

bool is_hex(const std::string& s, std::size_t size) {
  return s.size() == size && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

struct Server {
  cc::test::TempDir dir;
  std::filesystem::path manifest = dir / "connectors.manifest.json";
  std::unique_ptr<ServerProcess> process;
  std::unique_ptr<httplib::Client> client;

  explicit Server(const std::vector<std::string>& extra_env) {
    cc::test::write_file(manifest, cc::test::read_data("manifests/original-fixture.manifest.json"));
    std::vector<std::string> env{
        "CONNECTORS_SIGNATURE_KEY=" + kSigningKey, "CONNECTORS_API_KEY=" + kApiKey,
        "CONNECTORS_MANIFEST_PATH=" + manifest.string(), "CONNECTORS_POLL_INTERVAL_MS=50"};
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    process = std::make_unique<ServerProcess>(std::vector<std::string>{"--port", "0"}, env);
    REQUIRE(process->port() > 0);
    client = std::make_unique<httplib::Client>("127.0.0.1", process->port());
    client->set_decompress(false);
    REQUIRE(cc::test::eventually_true([&] {
      auto r = client->Get("/ready");
      return r && r->status == 200;
    }));
  }

  // Replaces the manifest the way an editor does (write, then rename) and waits for `version`.
  void edit_manifest(const std::string& from, const std::string& to, int version) {
    std::string text = cc::test::read_file(manifest);
    REQUIRE(text.find(from) != std::string::npos);
    text.replace(text.find(from), from.size(), to);
    cc::test::write_file(dir / "tmp.json", text);
    std::filesystem::rename(dir / "tmp.json", manifest);
    REQUIRE(cc::test::eventually_true([&] {
      auto r = client->Get("/health");
      return r && cc::parse_json(r->body)->find("version")->as_number() == version;
    }));
  }
};

// Sends a raw request and returns what the server answered before closing (or within 5 s).
std::string raw_exchange(int port, const std::string& request) {
  return cc::test::raw_exchange(port, request, std::chrono::seconds(5));
}

// An SSE subscriber that stays connected (its response head read) until destroyed.
class Subscriber {
 public:
  explicit Subscriber(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);  // NOLINT
    const std::string req =
        "GET /v1/connectors/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kApiKey +
        "\r\n\r\n";
    ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL);
    std::string got;
    while (got.find("event: status") == std::string::npos) {
      pollfd p{fd_, POLLIN, 0};
      REQUIRE(::poll(&p, 1, 5000) > 0);
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      REQUIRE(n > 0);
      got.append(buf, static_cast<std::size_t>(n));
    }
    REQUIRE(got.rfind("HTTP/1.1 200", 0) == 0);
  }
  ~Subscriber() { ::close(fd_); }
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

 private:
  int fd_ = -1;
};

std::vector<cc::Json> log_lines(const std::string& log) {
  std::vector<cc::Json> out;
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    auto j = cc::parse_json(line);
    INFO(line);
    REQUIRE_OK(j);
    REQUIRE(j->is_object());
    out.push_back(std::move(*j));
  }
  return out;
}

// Every line carries the keys operators and log pipelines rely on.
void check_common_keys(const cc::Json& j) {
  INFO(*cc::canonical_json(j));
  REQUIRE(j.find("brand"));
  CHECK(j.find("brand")->as_string() == "brAInwav");
  REQUIRE(j.find("component"));
  CHECK(j.find("component")->as_string() == "connectors");
  REQUIRE(j.find("level"));
  const std::set<std::string> levels{"debug", "info", "warning", "error"};
  CHECK(levels.count(j.find("level")->as_string()) == 1);
  REQUIRE(j.find("msg"));
  CHECK(j.find("msg")->is_string());
  REQUIRE(j.find("ts"));
  static const std::regex ts(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  CHECK(std::regex_match(j.find("ts")->as_string(), ts));
  for (const char* key : {"request_id", "trace_id", "span_id"}) {
    INFO(key);
    REQUIRE(j.find(key));
    CHECK((j.find(key)->is_null() || j.find(key)->is_string()));
  }
  if (j.find("trace_id")->is_string()) CHECK(is_hex(j.find("trace_id")->as_string(), 32));
  if (j.find("span_id")->is_string()) CHECK(is_hex(j.find("span_id")->as_string(), 16));
}

// A real OTLP/HTTP receiver: keeps every body POSTed to `path`, and the path and headers of
// every POST (whatever its path; others are answered 404).
class Collector {
 public:
  explicit Collector(std::chrono::milliseconds delay = 0ms, std::string path = "/v1/traces") {
    server_.Post(".*", [this, delay, path](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mutex_);
        requests_.push_back({req.path, req.headers});
      }
      if (req.path != path) {
        res.status = 404;
        return;
      }
      if (delay.count() > 0) std::this_thread::sleep_for(delay);
      {
        std::lock_guard lock(mutex_);
        bodies_.push_back(req.body);
        content_types_.push_back(req.get_header_value("Content-Type"));
      }
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    REQUIRE(cc::test::eventually_true([&] { return server_.is_running(); }));
  }
  ~Collector() {
    server_.stop();
    thread_.join();
  }
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> bodies() const {
    std::lock_guard lock(mutex_);
    return bodies_;
  }
  std::vector<std::string> content_types() const {
    std::lock_guard lock(mutex_);
    return content_types_;
  }
  struct Received {
    std::string path;
    httplib::Headers headers;
  };
  std::vector<Received> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

  // Every span received so far (each checked for the OTLP JSON structure on the way).
  std::vector<cc::Json> spans() const {
    std::vector<cc::Json> out;
    for (const auto& body : bodies()) {
      auto doc = cc::parse_json(body);
      REQUIRE_OK(doc);
      const auto* rs = doc->find("resourceSpans");
      REQUIRE(rs);
      REQUIRE(rs->as_array().size() == 1);
      const cc::Json& resource_spans = rs->as_array()[0];
      std::map<std::string, std::string> resource;
      for (const auto& kv : resource_spans.find("resource")->find("attributes")->as_array()) {
        resource[kv.find("key")->as_string()] = kv.find("value")->find("stringValue")->as_string();
      }
      CHECK(resource["service.name"] == "cortex-connectors-test");
      CHECK(resource["brand"] == "brAInwav");
      CHECK_FALSE(resource["service.version"].empty());
      const cc::Json& scope_spans = resource_spans.find("scopeSpans")->as_array().at(0);
      CHECK(scope_spans.find("scope")->find("name")->as_string() == "cortex_connectors");
      for (const auto& span : scope_spans.find("spans")->as_array()) out.push_back(span);
    }
    return out;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<std::string> bodies_;
  std::vector<std::string> content_types_;
  std::vector<Received> requests_;
};

const cc::Json* attribute(const cc::Json& span, std::string_view key) {
  for (const auto& kv : span.find("attributes")->as_array()) {
    if (kv.find("key")->as_string() == key) return kv.find("value");
  }
  return nullptr;
}

std::string string_attribute(const cc::Json& span, std::string_view key) {
  const cc::Json* v = attribute(span, key);
  return v && v->find("stringValue") ? v->find("stringValue")->as_string() : std::string();
}

std::string str(const cc::Json& j, std::string_view key) {
  const cc::Json* v = j.find(key);
  return v && v->is_string() ? v->as_string() : std::string();
}

// The structure of one OTLP span.
void check_span(const cc::Json& span) {
  INFO(*cc::canonical_json(span));
  CHECK(is_hex(str(span, "traceId"), 32));
  CHECK(is_hex(str(span, "spanId"), 16));
  if (span.find("parentSpanId")) CHECK(is_hex(str(span, "parentSpanId"), 16));
  CHECK_FALSE(str(span, "name").empty());
  REQUIRE(span.find("kind"));
  CHECK((span.find("kind")->as_number() == 1 || span.find("kind")->as_number() == 2));
  const std::string start = str(span, "startTimeUnixNano");
  const std::string end = str(span, "endTimeUnixNano");
  REQUIRE(std::regex_match(start, std::regex("[1-9][0-9]{18}")));
  REQUIRE(std::regex_match(end, std::regex("[1-9][0-9]{18}")));
  CHECK(std::stoull(end) >= std::stoull(start));
  CHECK(string_attribute(span, "brand") == "brAInwav");
  REQUIRE(span.find("status"));
  CHECK(span.find("status")->find("code")->is_number());
}

// The status field of /health, or "" when the server did not answer.
std::string health_status(Server& s) {
  auto r = s.client->Get("/health");
  if (!r) return {};
  auto body = cc::parse_json(r->body);
  return body && body->find("status") ? body->find("status")->as_string() : std::string();
}

std::string metrics(Server& s) {
  auto r = s.client->Get("/metrics", bearer());
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return r->body;
}

// The value of the series line starting with `series` (e.g. a name with labels), or -1.
double metric(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

}  // namespace

TEST_CASE("every log line of a real run is JSON with brand, level, ids and no secret",
          "[observability][logs]") {
  // No dashboard bundle at that path: the apps route answers its 503.
  Server s({"LOG_LEVEL=debug", "ENABLE_PROMETHEUS=true",
            "APPS_BUNDLE_DIR=/nonexistent/cortex-connectors-bundle"});
  // Many routes and errors: 200, 304, 401, 403, 404, 405, 431, 503, HEAD, gzip, the stream.
  CHECK(s.client->Get("/health")->status == 200);
  CHECK(s.client->Get("/ready")->status == 200);
  auto map = s.client->Get("/v1/connectors/service-map", bearer());
  CHECK(map->status == 200);
  CHECK(s.client
            ->Get("/v1/connectors/service-map", {{"Authorization", "Bearer " + kApiKey},
                                                 {"If-None-Match", map->get_header_value("ETag")}})
            ->status == 304);
  CHECK(s.client
            ->Get("/v1/connectors/service-map",
                  {{"Authorization", "Bearer " + kApiKey}, {"Accept-Encoding", "gzip"}})
            ->status == 200);
  CHECK(s.client->Head("/v1/connectors/service-map", bearer())->status == 200);
  CHECK(s.client->Get("/v1/connectors/service-map")->status == 401);
  CHECK(s.client->Get("/v1/connectors/service-map", {{"Authorization", "Bearer wrong"}})->status ==
        403);
  CHECK(s.client->Get("/v1/connectors/keys")->status == 404);
  CHECK(s.client->Get("/metrics", bearer())->status == 200);
  CHECK(s.client->Get("/apps/chatgpt-dashboard/index.html")->status == 503);
  CHECK(s.client->Get("/nope")->status == 404);
  auto traced =
      s.client->Get("/health", {{"traceparent", "00-" + kTraceId + "-" + kParentId + "-01"},
                                {"X-Request-Id", "traced-request"}});
  CHECK(traced->status == 200);
  CHECK(s.client
            ->Get("/health", {{"traceparent", "00-" + kTraceId + "-" + kParentId + "-XX"},
                              {"X-Request-Id", "bad-traceparent"}})
            ->status == 200);
  CHECK(raw_exchange(s.process->port(), "GET /v1/connectors/stream HTTP/1.1\r\nHost: x\r\n\r\n")
            .rfind("HTTP/1.1 401", 0) == 0);
  CHECK(raw_exchange(s.process->port(),
                     "HEAD /v1/connectors/stream HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: Bearer " +
                         kApiKey + "\r\n\r\n")
            .rfind("HTTP/1.1 200", 0) == 0);
  CHECK(raw_exchange(s.process->port(), "POST /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .rfind("HTTP/1.1 405", 0) == 0);
  CHECK(raw_exchange(s.process->port(),
                     "GET /health HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n")
            .rfind("HTTP/1.1 431", 0) == 0);
  // A bad manifest edit and its fix: error lines from the refreshing thread.
  const std::string good = cc::test::read_file(s.manifest);
  cc::test::write_file(s.manifest, "{\"id\": ");
  INFO(s.process->log());
  REQUIRE(cc::test::eventually_true([&] { return health_status(s) == "degraded"; }));
  cc::test::write_file(s.manifest, good + " ");
  REQUIRE(cc::test::eventually_true([&] { return health_status(s) == "ok"; }));
  REQUIRE(s.process->stop(SIGTERM, 5s) == 0);

  const std::string log = s.process->log();
  const auto lines = log_lines(log);
  std::set<std::string> routes;
  std::set<int> statuses;
  bool saw_traced = false;
  bool saw_untraced = false;
  bool saw_load_error = false;
  bool saw_loaded = false;
  for (const auto& j : lines) {
    check_common_keys(j);
    const std::string msg = j.find("msg")->as_string();
    if (msg == "request") {
      // The access line: route, status, bytes, duration and the ids of the request.
      INFO(*cc::canonical_json(j));
      REQUIRE(j.find("route"));
      routes.insert(j.find("route")->as_string());
      statuses.insert(static_cast<int>(j.find("status")->as_number()));
      CHECK(j.find("bytes")->is_number());
      CHECK(j.find("duration_ms")->is_number());
      CHECK(j.find("request_id")->is_string());
      CHECK(j.find("trace_id")->is_string());
      CHECK(j.find("span_id")->is_string());
      if (str(j, "request_id") == "traced-request") {
        saw_traced = true;
        CHECK(str(j, "trace_id") == kTraceId);
        CHECK(str(j, "span_id") != kParentId);  // the server's own span
      }
      if (str(j, "request_id") == "bad-traceparent") {
        saw_untraced = true;
        CHECK(str(j, "trace_id") != kTraceId);  // invalid: ignored, a new trace
      }
    }
    if (j.find("level")->as_string() == "error" && j.find("issues")) {
      saw_load_error = true;
      CHECK(j.find("trace_id")->is_string());
    }
    if (msg == "manifest loaded") {
      saw_loaded = true;
      CHECK(j.find("trace_id")->is_string());
    }
  }
  CHECK(lines.size() >= 25);
  CHECK(saw_traced);
  CHECK(saw_untraced);
  CHECK(saw_load_error);
  CHECK(saw_loaded);
  CHECK(routes == std::set<std::string>{"health", "ready", "service_map", "keys", "metrics", "apps",
                                        "other", "stream", "refused"});
  for (int status : {200, 304, 401, 403, 404, 405, 431, 503}) {
    INFO(status);
    CHECK(statuses.count(status) == 1);
  }
  for (const auto& secret : {kSigningKey, kApiKey}) CHECK(log.find(secret) == std::string::npos);
}

TEST_CASE("LOG_LEVEL=warning keeps access lines out and errors in", "[observability][logs]") {
  Server s({"LOG_LEVEL=warning"});
  CHECK(s.client->Get("/health")->status == 200);
  CHECK(s.client->Get("/v1/connectors/service-map")->status == 401);
  cc::test::write_file(s.manifest, "[]");
  REQUIRE(cc::test::eventually_true(
      [&] { return s.process->log().find("\"level\":\"error\"") != std::string::npos; }));
  for (const auto& j : log_lines(s.process->log())) {
    check_common_keys(j);
    CHECK(str(j, "msg") != "request");
    CHECK(str(j, "msg") != "manifest loaded");
  }
}

TEST_CASE("spans reach an OTLP/HTTP receiver with the caller's trace and the load's stages",
          "[observability][otlp]") {
  Collector collector;
  Server s({"OTEL_EXPORTER_OTLP_ENDPOINT=" + collector.endpoint(),
            "OTEL_SERVICE_NAME=cortex-connectors-test", "OTEL_BSP_SCHEDULE_DELAY=50"});
  // A request that continues the caller's trace, one with an invalid traceparent.
  auto r = s.client->Get("/v1/connectors/service-map",
                         {{"Authorization", "Bearer " + kApiKey},
                          {"traceparent", "00-" + kTraceId + "-" + kParentId + "-01"}});
  REQUIRE(r->status == 200);
  const std::string zero_trace = std::string(32, '0');
  CHECK(s.client
            ->Get("/health", {{"traceparent", "00-" + zero_trace + "-" + kParentId + "-01"},
                              {"X-Request-Id", "zero-trace"}})
            ->status == 200);
  // A change broadcast to a subscriber: manifest stages, publish and broadcast in one trace.
  Subscriber subscriber(s.process->port());
  s.edit_manifest("\"ttlSeconds\": 600", "\"ttlSeconds\": 60", 2);

  std::vector<cc::Json> spans;
  auto has = [&](const std::string& name) {
    return std::any_of(spans.begin(), spans.end(),
                       [&](const cc::Json& sp) { return str(sp, "name") == name; });
  };
  // The second load's root span, once everything of that trace has arrived.
  auto second_load = [&]() -> std::string {
    for (const auto& sp : spans) {
      const cc::Json* v =
          str(sp, "name") == "manifest.refresh" ? attribute(sp, "snapshot.version") : nullptr;
      if (v && v->find("intValue")->as_string() == "2") return str(sp, "traceId");
    }
    return {};
  };
  REQUIRE(cc::test::eventually_true([&] {
    spans = collector.spans();
    return has("sse.broadcast") && has("GET /v1/connectors/service-map") && !second_load().empty();
  }));
  for (const auto& ct : collector.content_types()) CHECK(ct == "application/json");

  const std::string trace = second_load();
  std::map<std::string, cc::Json> by_name;  // the second load's spans and the requests' spans
  for (const auto& span : spans) {
    check_span(span);
    const std::string name = str(span, "name");
    if (name.rfind("GET ", 0) == 0) {
      by_name[name + " " + string_attribute(span, "request_id")] = span;
      if (str(span, "traceId") == kTraceId) by_name[name] = span;
    } else if (str(span, "traceId") == trace) {
      by_name[name] = span;
    }
  }
  // The caller's trace continues: same trace id, the caller's span as parent.
  REQUIRE(by_name.count("GET /v1/connectors/service-map") == 1);
  const cc::Json& server_span = by_name["GET /v1/connectors/service-map"];
  CHECK(str(server_span, "traceId") == kTraceId);
  CHECK(str(server_span, "parentSpanId") == kParentId);
  CHECK(server_span.find("kind")->as_number() == 2);
  CHECK(string_attribute(server_span, "http.route") == "/v1/connectors/service-map");
  CHECK(attribute(server_span, "http.response.status_code")->find("intValue")->as_string() ==
        "200");
  // An invalid traceparent (all-zero trace id) is ignored: a new trace, no parent.
  REQUIRE(by_name.count("GET /health zero-trace") == 1);
  const cc::Json& health_span = by_name["GET /health zero-trace"];
  CHECK(str(health_span, "traceId") != zero_trace);
  CHECK(health_span.find("parentSpanId") == nullptr);

  // The second load: every stage, below one root, publish and broadcast below it.
  for (const char* name :
       {"manifest.read", "manifest.parse", "manifest.validate", "manifest.build", "manifest.sign",
        "snapshot.compress", "snapshot.publish", "manifest.refresh", "sse.broadcast"}) {
    INFO(name);
    CHECK(by_name.count(name) == 1);
  }
  const cc::Json& root = by_name["manifest.refresh"];
  CHECK(root.find("parentSpanId") == nullptr);
  for (const char* name : {"manifest.read", "manifest.parse", "manifest.validate", "manifest.build",
                           "manifest.sign", "snapshot.compress", "snapshot.publish"}) {
    INFO(name);
    CHECK(str(by_name[name], "traceId") == trace);
    CHECK(str(by_name[name], "parentSpanId") == str(root, "spanId"));
  }
  const cc::Json& broadcast = by_name["sse.broadcast"];
  CHECK(str(broadcast, "traceId") == trace);
  CHECK(str(broadcast, "parentSpanId") == str(by_name["snapshot.publish"], "spanId"));
  CHECK(attribute(broadcast, "snapshot.version")->find("intValue")->as_string() == "2");
  // Stages follow each other inside the root.
  CHECK(std::stoull(str(by_name["manifest.read"], "startTimeUnixNano")) ==
        std::stoull(str(root, "startTimeUnixNano")));
  CHECK(std::stoull(str(by_name["manifest.parse"], "startTimeUnixNano")) ==
        std::stoull(str(by_name["manifest.read"], "endTimeUnixNano")));
  CHECK(std::stoull(str(root, "endTimeUnixNano")) >=
        std::stoull(str(by_name["snapshot.publish"], "endTimeUnixNano")));
  // connectorId where a span is about the connectors.
  std::set<std::string> ids;
  for (const auto& v : attribute(by_name["manifest.build"], "connectorId")
                           ->find("arrayValue")
                           ->find("values")
                           ->as_array()) {
    ids.insert(v.find("stringValue")->as_string());
  }
  CHECK(ids == std::set<std::string>{"alpha", "beta", "wikidata"});
  CHECK(attribute(by_name["snapshot.publish"], "connectorId") != nullptr);

  // The load's log line carries the same trace; the request's line the caller's.
  bool load_line = false;
  bool request_line = false;
  for (const auto& j : log_lines(s.process->log())) {
    if (str(j, "msg") == "manifest loaded" && str(j, "trace_id") == trace) load_line = true;
    if (str(j, "msg") == "request" && str(j, "trace_id") == kTraceId &&
        str(j, "span_id") == str(server_span, "spanId")) {
      request_line = true;
    }
  }
  CHECK(load_line);
  CHECK(request_line);
}

TEST_CASE("a failed load's span carries the error status", "[observability][otlp]") {
  Collector collector;
  Server s({"OTEL_EXPORTER_OTLP_ENDPOINT=" + collector.endpoint() + "/",
            "OTEL_SERVICE_NAME=cortex-connectors-test", "OTEL_BSP_SCHEDULE_DELAY=50"});
  cc::test::write_file(s.manifest, "{\"id\": ");
  std::vector<cc::Json> spans;
  const cc::Json* failed = nullptr;
  REQUIRE(cc::test::eventually_true([&] {
    spans = collector.spans();
    for (const auto& sp : spans) {
      if (str(sp, "name") == "manifest.parse" && sp.find("status")->find("code")->as_number() == 2)
        failed = &sp;
    }
    return failed != nullptr;
  }));
  check_span(*failed);
  CHECK(str(*failed->find("status"), "message").find("invalid JSON") != std::string::npos);
}

TEST_CASE("a dead or slow collector drops and counts spans, requests still succeed",
          "[observability][otlp]") {
  std::string endpoint;
  std::unique_ptr<Collector> slow;
  std::string timeout = "10000";
  SECTION("dead") {
    // A port nobody listens on: bound (not listening), its number read, then released.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);  // NOLINT
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);  // NOLINT
    ::close(fd);
    endpoint = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  }
  SECTION("slow") {
    slow = std::make_unique<Collector>(1s);
    endpoint = slow->endpoint();
    timeout = "500";
  }
  Server s({"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint, "OTEL_EXPORTER_OTLP_TIMEOUT=" + timeout,
            "OTEL_BSP_SCHEDULE_DELAY=20", "OTEL_BSP_MAX_QUEUE_SIZE=16",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=4", "ENABLE_PROMETHEUS=true"});
  for (int i = 0; i < 100; ++i) {
    auto r = s.client->Get("/v1/connectors/service-map", bearer());
    REQUIRE(r);
    REQUIRE(r->status == 200);
  }
  REQUIRE(cc::test::eventually_true([&] {
    return metric(metrics(s),
                  "cortex_connectors_otlp_spans_dropped_total{reason=\"export_failed\"}") > 0;
  }));
  const std::string text = metrics(s);
  if (slow) {
    // 100 requests into a queue of 16 that drains 4 spans per 500 ms: most never got in.
    CHECK(metric(text, "cortex_connectors_otlp_spans_dropped_total{reason=\"queue_full\"}") > 0);
  }
  CHECK(metric(text, "cortex_connectors_otlp_spans_exported_total") == 0);
  CHECK(s.process->log().find("span export failing") != std::string::npos);
  cc::test::check_promtool_metrics(text);
  // Shutdown is not held up by the collector either.
  CHECK(s.process->stop(SIGTERM, 5s) == 0);
}

TEST_CASE("an OTLP endpoint that is not http(s) is a configuration error", "[observability]") {
  ServerProcess p({"--port", "0"},
                  {"CONNECTORS_SIGNATURE_KEY=k", "NO_AUTH=true",
                   "OTEL_EXPORTER_OTLP_ENDPOINT=grpc://user:secret@collector:4317"});
  CHECK(p.wait_exit(10s) == 2);
  CHECK(p.log().find("OTEL_EXPORTER_OTLP_ENDPOINT must start with http://") != std::string::npos);
  CHECK(p.log().find("secret") == std::string::npos);
}

TEST_CASE("OTEL_TRACES_SAMPLER decides which traces export spans, logs keep every trace id",
          "[observability][otlp]") {
  const std::string low = "4bf92f3577b34da60000000000000001";   // below any ratio > 0
  const std::string high = "4bf92f3577b34da6ffffffffffffffff";  // above any ratio < 1
  struct Request {
    std::string id;           // X-Request-Id
    std::string traceparent;  // "" for none
  };
  const std::vector<Request> requests{{"parent-sampled", "00-" + high + "-" + kParentId + "-01"},
                                      {"parent-unsampled", "00-" + low + "-" + kParentId + "-00"},
                                      {"root", ""}};
  // Runs a server with `sampler_env`, sends `requests`, then a "marker" request (trace `low`,
  // sampled flag set: sampled by every sampler here but always_off and ratio 0); when
  // `marker_sampled`, waits for its span (spans leave in order, so the others are in), then stops
  // the server (queued spans leave at exit). Returns the request ids that got a server span, plus
  // "load" when the manifest load got spans.
  std::string log;  // the last run's
  auto run = [&](const std::vector<std::string>& sampler_env, bool marker_sampled = true) {
    Collector collector;
    std::vector<std::string> env{"OTEL_EXPORTER_OTLP_ENDPOINT=" + collector.endpoint(),
                                 "OTEL_SERVICE_NAME=cortex-connectors-test",
                                 "OTEL_BSP_SCHEDULE_DELAY=50"};
    env.insert(env.end(), sampler_env.begin(), sampler_env.end());
    std::set<std::string> traced;
    Server s(env);
    for (const auto& q : requests) {
      httplib::Headers headers{{"X-Request-Id", q.id}};
      if (!q.traceparent.empty()) headers.emplace("traceparent", q.traceparent);
      auto r = s.client->Get("/health", headers);
      REQUIRE(r);
      REQUIRE(r->status == 200);
    }
    auto r = s.client->Get("/health", {{"X-Request-Id", "marker"},
                                       {"traceparent", "00-" + low + "-" + kParentId + "-01"}});
    REQUIRE(r);
    if (marker_sampled) {
      REQUIRE(cc::test::eventually_true([&] {
        for (const auto& body : collector.bodies()) {
          if (body.find("\"marker\"") != std::string::npos) return true;
        }
        return false;
      }));
    }
    REQUIRE(s.process->stop(SIGTERM, 10s) == 0);
    log = s.process->log();
    UNSCOPED_INFO(log);
    // Sampled or not, the request's log line carries the caller's trace id.
    std::map<std::string, std::string> logged;
    for (const auto& j : log_lines(log)) {
      if (str(j, "msg") == "request") logged[str(j, "request_id")] = str(j, "trace_id");
    }
    CHECK(logged["parent-sampled"] == high);
    CHECK(logged["parent-unsampled"] == low);
    CHECK(is_hex(logged["root"], 32));
    bool load = false;
    for (const auto& span : collector.spans()) {
      check_span(span);
      if (str(span, "name") == "GET /health") {
        const std::string id = string_attribute(span, "request_id");
        CHECK(str(span, "traceId") == logged[id]);
        traced.insert(id);
      }
      if (str(span, "name") == "manifest.refresh") load = true;
    }
    if (load) traced.insert("load");
    CHECK(traced.count("marker") == (marker_sampled ? 1U : 0U));
    traced.erase("marker");
    return traced;
  };
  using Set = std::set<std::string>;
  SECTION("default: parentbased_always_on") {
    CHECK(run({}) == Set{"parent-sampled", "root", "load"});
  }
  SECTION("always_on") {
    CHECK(run({"OTEL_TRACES_SAMPLER=always_on"}) ==
          Set{"parent-sampled", "parent-unsampled", "root", "load"});
  }
  SECTION("always_off") { CHECK(run({"OTEL_TRACES_SAMPLER=always_off"}, false).empty()); }
  SECTION("parentbased_always_off") {
    CHECK(run({"OTEL_TRACES_SAMPLER=parentbased_always_off"}) == Set{"parent-sampled"});
  }
  SECTION("traceidratio: the trace id decides, the caller's flag does not") {
    const Set got = run({"OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=0.5"});
    CHECK(got.count("parent-unsampled") == 1);
    CHECK(got.count("parent-sampled") == 0);
  }
  SECTION("traceidratio 0 samples nothing") {
    CHECK(run({"OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=0"}, false).empty());
  }
  SECTION("parentbased_traceidratio: the caller's flag decides, roots go by ratio") {
    const Set got =
        run({"OTEL_TRACES_SAMPLER=parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG=0"});
    CHECK(got == Set{"parent-sampled"});
  }
  SECTION("an unknown sampler falls back to the default") {
    CHECK(run({"OTEL_TRACES_SAMPLER=sometimes"}) == Set{"parent-sampled", "root", "load"});
    CHECK(log.find("OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG not understood") !=
          std::string::npos);
  }
}

TEST_CASE("the OTLP traces endpoint is used as given and the OTLP headers reach the collector",
          "[observability][otlp]") {
  // A port nobody listens on: the generic endpoint must lose to the traces one.
  const std::string dead = "http://127.0.0.1:9/unused";
  std::string path;
  std::vector<std::string> env{"OTEL_SERVICE_NAME=cortex-connectors-test",
                               "OTEL_BSP_SCHEDULE_DELAY=50",
                               "OTEL_EXPORTER_OTLP_HEADERS= api-key = generic-s3cret-one ,"
                               "x-tenant=team%20a%2Cb,, x-plain=plain",
                               "OTEL_EXPORTER_OTLP_TRACES_HEADERS=API-Key=traces%3Ds3cret-two"};
  std::unique_ptr<Collector> collector;
  SECTION("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: no /v1/traces appended; it wins") {
    path = "/custom/otlp/traces";
    collector = std::make_unique<Collector>(0ms, path);
    env.push_back("OTEL_EXPORTER_OTLP_ENDPOINT=" + dead);
    env.push_back("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + collector->endpoint() + path);
  }
  SECTION("OTEL_EXPORTER_OTLP_ENDPOINT with a path: /v1/traces appended to it") {
    path = "/otlp/v1/traces";
    collector = std::make_unique<Collector>(0ms, path);
    env.push_back("OTEL_EXPORTER_OTLP_ENDPOINT=" + collector->endpoint() + "/otlp/");
  }
  Server s(env);
  REQUIRE(s.client->Get("/v1/connectors/service-map", bearer())->status == 200);
  REQUIRE(cc::test::eventually_true([&] {
    for (const auto& span : collector->spans()) {
      if (str(span, "name") == "GET /v1/connectors/service-map") return true;
    }
    return false;
  }));
  auto header = [](const httplib::Headers& headers, const std::string& name) {
    const auto it = headers.find(name);  // names compare without case
    return it == headers.end() ? std::string() : it->second;
  };
  const auto requests = collector->requests();
  REQUIRE_FALSE(requests.empty());
  for (const auto& r : requests) {
    CHECK(r.path == path);
    // The traces variable wins for its name (any case); the value is percent-decoded.
    CHECK(r.headers.count("api-key") == 1);
    CHECK(header(r.headers, "api-key") == "traces=s3cret-two");
    CHECK(header(r.headers, "x-tenant") == "team a,b");
    CHECK(header(r.headers, "x-plain") == "plain");
  }
  REQUIRE(s.process->stop(SIGTERM, 5s) == 0);
  const std::string log = s.process->log() + s.process->out();
  for (const char* secret : {"s3cret", "traces%3D", "team%20a"}) {
    INFO(secret);
    CHECK(log.find(secret) == std::string::npos);
  }
}

TEST_CASE("a malformed OTLP header list exits 2 and names the entry, never its text",
          "[observability][otlp]") {
  struct Case {
    std::string variable;
    std::string list;
    std::string message;
  };
  const std::vector<Case> cases{
      {"OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cret-a,s3cret-b", "entry 2 is not name=value"},
      {"OTEL_EXPORTER_OTLP_HEADERS", "=s3cret", "entry 1 has an empty name"},
      {"OTEL_EXPORTER_OTLP_HEADERS", "api key=s3cret", "entry 1 has a name that is not an HTTP"},
      {"OTEL_EXPORTER_OTLP_HEADERS", "k=s3cret%zz", "entry 1 has a bad %-escape"},
      {"OTEL_EXPORTER_OTLP_HEADERS", "k=s3cret%4", "entry 1 has a bad %-escape"},
      {"OTEL_EXPORTER_OTLP_HEADERS", "k=s3cret%0D%0AX-Injected: 1",
       "entry 1 has a control character"},
      {"OTEL_EXPORTER_OTLP_HEADERS", "a=1,Content-Length=s3cret", "entry 2 names a header the"},
      {"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "ok=1, ,s3cret", "entry 3 is not name=value"},
  };
  for (const auto& c : cases) {
    ServerProcess p({"--port", "0"},
                    {"CONNECTORS_SIGNATURE_KEY=k", "NO_AUTH=true",
                     "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9", c.variable + "=" + c.list});
    const int code = p.wait_exit(10s);
    const std::string err = p.log();
    INFO(c.variable << "=" << c.list << " -> " << err);
    CHECK(code == 2);
    CHECK(err.rfind("[brAInwav] " + c.variable + ": " + c.message, 0) == 0);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
    CHECK(err.find("s3cret") == std::string::npos);
    CHECK(p.out().empty());
  }
}
