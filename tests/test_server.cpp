// cortex-connectors-server, run as a real process on 127.0.0.1 and spoken to over HTTP.
#include <regex>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cortex_connectors/json.h"
#include "cortex_connectors/signing.h"
#include "internal/compress.h"
#include "internal/digest.h"
#include "server_process.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using cc::test::connect_to;
using cc::test::raw_exchange;
using cc::test::ServerProcess;
using namespace std::chrono_literals;

namespace {

const std::string kSigningKey = "server-test-signing-key";
const std::string kApiKey = "server-test-api-key";
const std::string kMcpKey = "server-test-mcp-key";

std::vector<std::string> base_env(const std::string& manifest) {
  return {"CONNECTORS_SIGNATURE_KEY=" + kSigningKey, "CONNECTORS_API_KEY=" + kApiKey,
          "MCP_API_KEY=" + kMcpKey, "CONNECTORS_MANIFEST_PATH=" + manifest,
          "CONNECTORS_POLL_INTERVAL_MS=50"};
}

httplib::Headers bearer(const std::string& key) { return {{"Authorization", "Bearer " + key}}; }

// A valid manifest of `count` synthetic connectors (~230 bytes each).
std::string synthetic_manifest(int count) {
  std::string text = R"({"id": "01J7X5MB4K1ZW0000000000000", "manifestVersion": "1",
    "generatedAt": "2025-10-10T00:00:00Z", "connectors": [)";
  for (int i = 0; i < count; ++i) {
    const std::string n = std::to_string(i);
    text += std::string(i == 0 ? "" : ",") + R"({"id": "c-)" + n + R"(", "name": "Connector )" + n +
            R"(", "version": "1.0.0", "endpoint": "https://c)" + n +
            R"(.example.invalid/mcp", "auth": {"type": "bearer"}, "scopes": ["s:read"],
            "ttlSeconds": 300, "description": "Synthetic connector )" +
            n + "\"}";
  }
  return text + "]}";
}

struct Running {
  cc::test::TempDir dir;
  std::filesystem::path manifest = dir / "connectors.manifest.json";
  std::unique_ptr<ServerProcess> server;
  std::unique_ptr<httplib::Client> client;

  explicit Running(std::vector<std::string> extra_env = {}, bool write_manifest = true) {
    if (write_manifest) {
      cc::test::write_file(manifest,
                           cc::test::read_data("manifests/original-fixture.manifest.json"));
    }
    auto env = base_env(manifest.string());
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    server = std::make_unique<ServerProcess>(std::vector<std::string>{"--port", "0"}, env);
    REQUIRE(server->port() > 0);
    client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
    client->set_decompress(false);
    if (write_manifest) {
      REQUIRE(cc::test::eventually_true([&] {
        auto r = client->Get("/ready");
        return r && r->status == 200;
      }));
    }
  }
};

}  // namespace

TEST_CASE("the server declines OpenSSL's strings and configuration and small digests from it",
          "[server]") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  WARN("not in sanitizer builds: the server declines them only without a sanitizer runtime");
  return;
#endif
  // The probe (tests/openssl_strings_probe.cpp), preloaded, counts what OpenSSL loads and writes
  // the counts when the process exits.
  cc::test::TempDir dir;
  const auto out = dir / "loads";
  auto with_probe = [&](std::vector<std::string> env) {
    env.push_back("LD_PRELOAD=" CORTEX_CONNECTORS_OPENSSL_PROBE);
    env.push_back("OPENSSL_STRINGS_PROBE_OUT=" + out.string());
    return env;
  };
  struct Loads {
    int strings = -1;  // error-string tables loaded
    int config = -1;   // configuration files loaded
    int fetches = -1;  // digest algorithms fetched
  };
  auto loads = [&] {
    std::istringstream counts(cc::test::read_file(out));
    std::filesystem::remove(out);
    std::string word;
    Loads n;
    counts >> word >> n.strings >> word >> n.config >> word >> n.fetches;
    return n;
  };
  // The control: a program that only links Debian's libcpp-httplib loads both.
  REQUIRE(
      cc::test::run_program({CORTEX_CONNECTORS_OPENSSL_CONTROL}, {}, with_probe({})).exit_code ==
      0);
  const Loads control = loads();
  CHECK(control.strings > 0);
  CHECK(control.config == 1);
  // The server loads neither, before main() or while it starts, serves and stops.
  {
    Running running(with_probe({}));
    auto r = running.client->Get("/v1/connectors/service-map", bearer(kApiKey));
    REQUIRE(r);
    CHECK(r->status == 200);
    REQUIRE(running.server->stop(SIGTERM, 10s) == 0);
  }
  const Loads small = loads();
  CHECK(small.strings == 0);
  CHECK(small.config == 0);
  // Nor does it fetch a digest from libcrypto: SHA-256 and HMAC of up to 16 KiB come from
  // libsodium (src/internal/digest.h). A manifest above that size does fetch one.
  CHECK(small.fetches == 0);
  {
    Running running(with_probe({}), /*write_manifest=*/false);
    const std::string text = synthetic_manifest(100);
    REQUIRE(text.size() > cc::internal::kSmallDigestInput);
    cc::test::write_file(running.manifest, text);
    REQUIRE(cc::test::eventually_true([&] {
      auto r = running.client->Get("/ready");
      return r && r->status == 200;
    }));
    REQUIRE(running.server->stop(SIGTERM, 10s) == 0);
  }
  const Loads large = loads();
  CHECK(large.strings == 0);
  CHECK(large.config == 0);
  CHECK(large.fetches >= 1);
  // The configuration is read when an OTLP endpoint is https:// (TLS follows its policy) or
  // OPENSSL_CONF names one; an http:// endpoint changes nothing.
  const std::vector<std::pair<std::string, int>> cases = {
      {"OTEL_EXPORTER_OTLP_ENDPOINT=https://collector.invalid:4318", 1},
      {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=https://collector.invalid/v1/traces", 1},
      {"OPENSSL_CONF=/usr/lib/ssl/openssl.cnf", 1},
      {"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector.invalid:4318", 0},
  };
  for (const auto& [variable, config_loads] : cases) {
    INFO(variable);
    REQUIRE(
        cc::test::run_program({CORTEX_CONNECTORS_SERVER, "--version"}, {}, with_probe({variable}))
            .exit_code == 0);
    const Loads n = loads();
    CHECK(n.strings == 0);
    CHECK(n.config == config_loads);
  }
}

TEST_CASE("health is unprotected and tells the truth", "[server]") {
  Running s;
  auto r = s.client->Get("/health");
  REQUIRE(r);
  CHECK(r->status == 200);
  auto body = cc::parse_json(r->body);
  REQUIRE_OK(body);
  CHECK(body->find("status")->as_string() == "ok");
  CHECK(body->find("brand")->as_string() == "brAInwav");
  CHECK(body->find("connectors")->as_number() == 3);
  CHECK(body->find("version")->as_number() == 1);
  CHECK(body->find("timestamp")->is_string());
  CHECK(r->get_header_value("X-Request-Id").size() == 32);
}

TEST_CASE("service map: 401, 403, then 200 with a verifiable signature", "[server]") {
  Running s;
  auto none = s.client->Get("/v1/connectors/service-map");
  REQUIRE(none);
  CHECK(none->status == 401);
  CHECK(none->body == R"({"detail":"[brAInwav] missing bearer token"})");
  auto malformed = s.client->Get("/v1/connectors/service-map", {{"Authorization", "Token x"}});
  CHECK(malformed->status == 401);
  auto wrong = s.client->Get("/v1/connectors/service-map", bearer("nope"));
  CHECK(wrong->status == 403);
  CHECK(wrong->body == R"({"detail":"[brAInwav] invalid API key"})");
  CHECK(wrong->body.find(kApiKey) == std::string::npos);

  for (const auto& key : {kApiKey, kMcpKey}) {
    auto ok = s.client->Get("/v1/connectors/service-map", bearer(key));
    REQUIRE(ok);
    CHECK(ok->status == 200);
    CHECK(ok->get_header_value("Content-Type") == "application/json");
    CHECK(ok->get_header_value("Cache-Control") == "no-cache");
    CHECK(ok->get_header_value("Vary") == "Accept-Encoding");
    auto payload = cc::verify_signed_body(ok->body, cc::as_bytes(kSigningKey));
    REQUIRE_OK(payload);
    CHECK(payload->find("metadata")->find("count")->as_number() == 3);
    CHECK(payload->find("count") == nullptr);
    CHECK(payload->find("connectors")->as_array().size() == 3);
  }
}

TEST_CASE("ETag, If-None-Match, HEAD and pre-compressed bodies", "[server]") {
  Running s;
  auto first = s.client->Get("/v1/connectors/service-map", bearer(kApiKey));
  REQUIRE(first);
  const std::string etag = first->get_header_value("ETag");
  REQUIRE(etag.size() == 34);
  auto headers = bearer(kApiKey);
  for (const std::string& inm : {etag, std::string("*"), "\"other\", " + etag, "W/" + etag}) {
    INFO(inm);
    auto h = headers;
    h.emplace("If-None-Match", inm);
    auto r = s.client->Get("/v1/connectors/service-map", h);
    REQUIRE(r);
    CHECK(r->status == 304);
    CHECK(r->body.empty());
    CHECK(r->get_header_value("ETag") == etag);
  }
  auto h = headers;
  h.emplace("If-None-Match", "\"stale\"");
  CHECK(s.client->Get("/v1/connectors/service-map", h)->status == 200);

  auto gz = headers;
  gz.emplace("Accept-Encoding", "gzip");
  auto g = s.client->Get("/v1/connectors/service-map", gz);
  REQUIRE(g);
  CHECK(g->get_header_value("Content-Encoding") == "gzip");
  std::string inflated;
  REQUIRE(cc::internal::gzip_decompress(g->body, inflated));
  CHECK(inflated == first->body);
  auto br = headers;
  br.emplace("Accept-Encoding", "gzip, deflate, br");
  auto b = s.client->Get("/v1/connectors/service-map", br);
  CHECK(b->get_header_value("Content-Encoding") == "br");
  CHECK(b->body.size() < first->body.size());
  auto q = headers;
  q.emplace("Accept-Encoding", "br;q=0.1, gzip;q=0.9");
  CHECK(s.client->Get("/v1/connectors/service-map", q)->get_header_value("Content-Encoding") ==
        "gzip");

  auto head = s.client->Head("/v1/connectors/service-map", headers);
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->body.empty());
  CHECK(head->get_header_value("Content-Length") == std::to_string(first->body.size()));
}

TEST_CASE("a manifest edit is served, a bad edit degrades health, the fix recovers", "[server]") {
  Running s;
  const std::string before = s.client->Get("/v1/connectors/service-map", bearer(kApiKey))->body;
  std::string text = cc::test::read_data("manifests/original-fixture.manifest.json");
  text.replace(text.find("\"ttlSeconds\": 600"), 17, "\"ttlSeconds\": 60");
  cc::test::write_file(s.dir / "tmp.json", text);
  std::filesystem::rename(s.dir / "tmp.json", s.manifest);  // an editor's atomic replace
  REQUIRE(cc::test::eventually_true([&] {
    auto r = s.client->Get("/health");
    return r && cc::parse_json(r->body)->find("version")->as_number() == 2;
  }));
  auto after = s.client->Get("/v1/connectors/service-map", bearer(kApiKey));
  CHECK(after->body != before);
  CHECK(cc::verify_signed_body(after->body, cc::as_bytes(kSigningKey)));

  cc::test::write_file(s.manifest, "{\"id\": ");
  REQUIRE(cc::test::eventually_true([&] {
    auto r = s.client->Get("/health");
    return r && cc::parse_json(r->body)->find("status")->as_string() == "degraded";
  }));
  auto health = cc::parse_json(s.client->Get("/health")->body);
  CHECK(health->find("lastError")->find("message")->as_string().find("invalid JSON") !=
        std::string::npos);
  // The last good map is still served.
  CHECK(s.client->Get("/v1/connectors/service-map", bearer(kApiKey))->body == after->body);
  cc::test::write_file(s.manifest, text + " ");
  REQUIRE(cc::test::eventually_true([&] {
    auto r = s.client->Get("/health");
    return r && cc::parse_json(r->body)->find("status")->as_string() == "ok";
  }));
}

TEST_CASE("before any manifest: ready 503, service map 503 with the load error", "[server]") {
  Running s({}, /*write_manifest=*/false);
  REQUIRE(cc::test::eventually_true([&] {
    auto r = s.client->Get("/health");
    return r && cc::parse_json(r->body)->find("lastError") != nullptr;
  }));
  auto health = cc::parse_json(s.client->Get("/health")->body);
  CHECK(health->find("status")->as_string() == "starting");
  auto ready = s.client->Get("/ready");
  CHECK(ready->status == 503);
  auto map = s.client->Get("/v1/connectors/service-map", bearer(kApiKey));
  REQUIRE(map);
  CHECK(map->status == 503);
  CHECK(map->get_header_value("Retry-After") == "1");
  auto body = cc::parse_json(map->body);
  REQUIRE_OK(body);
  const auto& issue = body->find("error")->find("issues")->as_array().at(0);
  CHECK(issue.find("pointer")->as_string() == s.manifest.string());
  CHECK(issue.find("message")->as_string() == "file not found");
  CHECK(map->body.find(kSigningKey) == std::string::npos);
  // The file appears: served without a restart.
  cc::test::write_file(s.manifest, cc::test::read_data("manifests/original-fixture.manifest.json"));
  REQUIRE(cc::test::eventually_true([&] { return s.client->Get("/ready")->status == 200; }));
  CHECK(s.client->Get("/v1/connectors/service-map", bearer(kApiKey))->status == 200);
}

TEST_CASE("metrics: off by default, authenticated and promtool-clean when on", "[server]") {
  {
    Running off;
    CHECK(off.client->Get("/metrics", bearer(kApiKey))->status == 404);
  }
  Running s({"ENABLE_PROMETHEUS=true"});
  CHECK(s.client->Get("/metrics")->status == 401);
  (void)s.client->Get("/v1/connectors/service-map", bearer(kApiKey));
  auto r = s.client->Get("/metrics", bearer(kApiKey));
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0) == 0);
  CHECK(r->body.find("brainwav_mcp_connector_proxy_up{connector=\"beta\"} 0") != std::string::npos);
  CHECK(r->body.find("brainwav_mcp_connector_proxy_up{connector=\"alpha\"} 1") !=
        std::string::npos);
  CHECK(r->body.find("cortex_connectors_http_requests_total{code=\"200\",route=\"service_map\"}") !=
        std::string::npos);
  cc::test::check_promtool_metrics(r->body);
}

TEST_CASE("a metrics port serves /metrics and /health without a key, and nothing else",
          "[server]") {
  bool prometheus = false;
  SECTION("a metrics port alone enables metrics there, not on the main port") {}
  SECTION("with ENABLE_PROMETHEUS=true the main port serves them too, with auth") {
    prometheus = true;
  }
  Running s(prometheus ? std::vector<std::string>{"METRICS_PORT=0", "ENABLE_PROMETHEUS=true"}
                       : std::vector<std::string>{"METRICS_PORT=0"});
  const std::string log = s.server->log();
  INFO(log);
  std::smatch m;
  REQUIRE(std::regex_search(log, m, std::regex("[^\\n]*\"msg\":\"metrics listening\"[^\\n]*")));
  const auto line = cc::parse_json(m[0].str());
  REQUIRE_OK(line);
  CHECK(line->find("host")->as_string() == "127.0.0.1");
  CHECK(line->find("bind_note")->as_string() ==
        "loopback only; set METRICS_HOST=0.0.0.0 or --metrics-host to listen on all interfaces");
  const int metrics_port = static_cast<int>(line->find("port")->as_number());
  REQUIRE(metrics_port > 0);
  CHECK(metrics_port != s.server->port());

  httplib::Client scrape("127.0.0.1", metrics_port);
  scrape.set_keep_alive(true);  // held open across the shutdown below
  (void)s.client->Get("/v1/connectors/service-map", bearer(kApiKey));
  auto r = scrape.Get("/metrics");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0) == 0);
  CHECK(r->body.find("brainwav_mcp_connector_proxy_up{connector=\"alpha\"} 1") !=
        std::string::npos);
  CHECK(r->body.find("cortex_connectors_http_requests_total{code=\"200\",route=\"service_map\"}") !=
        std::string::npos);
  cc::test::check_promtool_metrics(r->body);
  CHECK(scrape.Get("/health")->status == 200);
  // Nothing but those two: not the service map (with a key either), the stream, the keys, the
  // dashboard or /ready.
  for (const char* path : {"/v1/connectors/service-map", "/v1/connectors/stream",
                           "/v1/connectors/keys", "/apps/chatgpt-dashboard/", "/ready", "/"}) {
    INFO(path);
    CHECK(scrape.Get(path)->status == 404);
    CHECK(scrape.Get(path, bearer(kApiKey))->status == 404);
  }
  CHECK(raw_exchange(metrics_port,
                     "GET /v1/connectors/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Authorization: Bearer " +
                         kApiKey + "\r\n\r\n",
                     5s)
            .rfind("HTTP/1.1 404", 0) == 0);
  // The main port keeps its rules: 401 without a key when metrics are on there, else 404.
  CHECK(s.client->Get("/metrics")->status == (prometheus ? 401 : 404));
  CHECK(s.client->Get("/metrics", bearer(kApiKey))->status == (prometheus ? 200 : 404));
  CHECK(s.client->Get("/v1/connectors/service-map")->status == 401);

  CHECK(s.server->stop(SIGTERM, 5s) == 0);
  const std::string after = s.server->log();
  CHECK(after.find("\"listener\":\"metrics\"") != std::string::npos);
  CHECK(after.find(kApiKey) == std::string::npos);
}

TEST_CASE("a busy metrics port exits 2", "[server]") {
  Running s;
  ServerProcess second({"--port", "0", "--metrics-port", std::to_string(s.server->port())},
                       base_env(s.manifest.string()));
  CHECK(second.port() == 0);
  CHECK(second.wait_exit(5s) == 2);
  CHECK(second.log().find("cannot listen for metrics on 127.0.0.1:") != std::string::npos);
}

TEST_CASE("request ids are echoed when sane and every log line is JSON", "[server]") {
  Running s;
  auto echoed = s.client->Get("/health", {{"X-Request-Id", "client-id-42"}});
  CHECK(echoed->get_header_value("X-Request-Id") == "client-id-42");
  auto replaced = s.client->Get("/health", {{"X-Request-Id", "bad id with spaces"}});
  CHECK(replaced->get_header_value("X-Request-Id").size() == 32);
  CHECK(s.client->Get("/nope")->get_header_value("X-Request-Id").size() == 32);
  (void)s.client->Get("/v1/connectors/service-map", bearer(kApiKey));
  REQUIRE(cc::test::eventually_true(
      [&] { return s.server->log().find("client-id-42") != std::string::npos; }));
  std::istringstream lines(s.server->log());
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    auto j = cc::parse_json(line);
    REQUIRE_OK(j);
    CHECK(j->find("brand")->as_string() == "brAInwav");
    CHECK(j->find("component")->as_string() == "connectors");
    CHECK(j->find("level")->is_string());
    CHECK(j->find("msg")->is_string());
    CHECK(j->find("request_id") != nullptr);
    CHECK(j->find("trace_id") != nullptr);
    ++count;
  }
  CHECK(count >= 5);
  for (const auto& secret : {kSigningKey, kApiKey, kMcpKey}) {
    CHECK(s.server->log().find(secret) == std::string::npos);
  }
}

TEST_CASE("path tricks never reach a protected route without auth", "[server]") {
  Running s;
  for (const char* path :
       {"//v1/connectors/service-map", "/v1/../v1/connectors/service-map",
        "/v1/connectors%2Fservice-map", "/V1/CONNECTORS/SERVICE-MAP", "/v1/connectors/service-map/",
        "/v1/connectors/./service-map", "/v1/connectors/service-map%00",
        "/v1/connectors/service-map?x=/health"}) {
    INFO(path);
    const std::string got = raw_exchange(
        s.server->port(),
        std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5s);
    const auto status = got.substr(9, 3);
    CHECK(status != "200");
    CHECK(got.find("\"payload\"") == std::string::npos);
  }
}

TEST_CASE("hostile connections: methods, bodies, huge headers, ranges, slow clients", "[server]") {
  Running s({"CONNECTORS_REQUEST_DEADLINE_MS=700"});
  const int port = s.server->port();
  const std::string auth = "Authorization: Bearer " + kApiKey + "\r\n";
  auto status_of = [](const std::string& response) { return response.substr(0, 12); };

  CHECK(status_of(raw_exchange(
            port, "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 5s)) ==
        "HTTP/1.1 405");
  CHECK(status_of(raw_exchange(
            port, "DELETE /v1/connectors/service-map HTTP/1.1\r\nHost: x\r\n\r\n", 5s)) ==
        "HTTP/1.1 405");
  CHECK(status_of(raw_exchange(
            port, "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 5s)) ==
        "HTTP/1.1 400");
  CHECK(status_of(raw_exchange(
            port, "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            5s)) == "HTTP/1.1 400");
  // A header line without an end: refused at the byte budget, not buffered forever.
  CHECK(status_of(raw_exchange(port, "GET /health HTTP/1.1\r\nX-Long: " + std::string(100000, 'a'),
                               5s)) == "HTTP/1.1 431");
  std::string many = "GET /health HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 150; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  CHECK(status_of(raw_exchange(port, many + "\r\n", 5s)) == "HTTP/1.1 431");
  // Range is ignored: the whole body, 200, and an 8 KiB Range header does not crash anything.
  const std::string ranged =
      raw_exchange(port,
                   "GET /v1/connectors/service-map HTTP/1.1\r\nHost: x\r\n" + auth +
                       "Range: bytes=0-10\r\nConnection: close\r\n\r\n",
                   5s);
  CHECK(status_of(ranged) == "HTTP/1.1 200");
  CHECK(ranged.find("\"signature\"") != std::string::npos);
  std::string bomb = "Range: bytes=";
  for (int i = 0; i < 1000; ++i) bomb += std::to_string(i) + "-" + std::to_string(i) + ",";
  bomb.pop_back();
  CHECK(status_of(raw_exchange(port,
                               "GET /v1/connectors/service-map HTTP/1.1\r\nHost: x\r\n" + auth +
                                   bomb + "\r\nConnection: close\r\n\r\n",
                               5s)) == "HTTP/1.1 200");
  // Slow clients (a byte every 50 ms) are cut at the request deadline while others are served.
  std::vector<std::thread> slow;
  std::atomic<int> slow_done{0};
  for (int i = 0; i < 12; ++i) {
    slow.emplace_back([&] {
      (void)raw_exchange(
          port, "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(200, 'z'), 4s, 50ms);
      slow_done.fetch_add(1);
    });
  }
  std::this_thread::sleep_for(100ms);
  for (int i = 0; i < 20; ++i) {
    auto r = s.client->Get("/health");
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  for (auto& t : slow) t.join();
  CHECK(slow_done == 12);
  // Still healthy afterwards.
  CHECK(s.client->Get("/health")->status == 200);
}

namespace {

// Reads one response with a Content-Length from a keep-alive connection.
std::string read_response(int fd, std::chrono::milliseconds timeout) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto end = got.find("\r\n\r\n");
    if (end != std::string::npos) {
      static const std::regex kLength("Content-Length: ([0-9]+)", std::regex::icase);
      std::smatch m;
      const std::string head = got.substr(0, end);
      if (std::regex_search(head, m, kLength) && got.size() >= end + 4 + std::stoul(m[1].str())) {
        return got;
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return got;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return got;
    char buf[8192];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return got;
    got.append(buf, static_cast<std::size_t>(n));
  }
}

int thread_count(pid_t pid) {
  const std::string status =
      cc::test::read_file(std::filesystem::path("/proc") / std::to_string(pid) / "status");
  const auto at = status.find("Threads:");
  REQUIRE(at != std::string::npos);
  return std::stoi(status.substr(at + 8));
}

}  // namespace

TEST_CASE("idle keep-alive and half-sent requests hold no worker", "[server]") {
  // Four workers, 200 connections: 150 idle between requests, 50 stopped in mid-head.
  Running s({"CONNECTORS_WORKER_THREADS=4", "CONNECTORS_KEEPALIVE_TIMEOUT_MS=60000",
             "CONNECTORS_REQUEST_DEADLINE_MS=60000"});
  const int port = s.server->port();
  const int threads_before = thread_count(s.server->pid());
  std::vector<int> fds;
  for (int i = 0; i < 150; ++i) {
    const int fd = connect_to(port);
    fds.push_back(fd);
    const std::string req = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
    REQUIRE(read_response(fd, 5s).starts_with("HTTP/1.1 200"));
  }
  for (int i = 0; i < 50; ++i) {
    const int fd = connect_to(port);
    fds.push_back(fd);
    const std::string part = "GET /health HTTP/1.1\r\nHost: x\r\nX-Part";
    REQUIRE(::send(fd, part.data(), part.size(), MSG_NOSIGNAL) > 0);
  }
  // New clients are served at once, and by the same threads.
  for (int i = 0; i < 20; ++i) {
    httplib::Client fresh("127.0.0.1", port);
    fresh.set_connection_timeout(2s);
    fresh.set_read_timeout(2s);
    auto r = fresh.Get("/health");
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  CHECK(thread_count(s.server->pid()) <= threads_before);
  // Every idle connection still works: its next request is answered.
  for (std::size_t i = 0; i < 150; i += 15) {
    const std::string req = "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n";
    REQUIRE(::send(fds[i], req.data(), req.size(), MSG_NOSIGNAL) > 0);
    CHECK(read_response(fds[i], 5s).starts_with("HTTP/1.1 200"));
  }
  // A half-sent request completes when its last bytes arrive.
  const std::string rest = ": y\r\n\r\n";
  REQUIRE(::send(fds[150], rest.data(), rest.size(), MSG_NOSIGNAL) > 0);
  CHECK(read_response(fds[150], 5s).starts_with("HTTP/1.1 200"));
  for (int fd : fds) ::close(fd);
}

TEST_CASE("a client that does not read its responses holds no worker", "[server]") {
  // One worker. A client pipelines thousands of requests and never reads: its responses fill
  // both socket buffers, and the connection then waits in the epoll set for the socket to
  // drain. A worker blocked on it would leave everyone else unanswered for the write timeout.
  // 60 connectors (a ~15 KB map): the 1 000 responses a connection may have are ~15 MB.
  const std::string manifest = cc::test::generated_manifest(60);
  for (const std::string fast_path : {"on", "off"}) {
    INFO("CONNECTORS_FAST_PATH=" << fast_path);
    Running s({"CONNECTORS_WORKER_THREADS=1", "CONNECTORS_FAST_PATH=" + fast_path});
    cc::test::replace_file(s.manifest, manifest);
    REQUIRE(cc::test::eventually_true([&] {
      auto r = s.client->Get("/health");
      return r && r->body.find("\"connectors\":60") != std::string::npos;
    }));
    const int port = s.server->port();
    // A small receive buffer, set before connecting: the kernel would otherwise take megabytes
    // for the client that does not read.
    const int stalled = ::socket(AF_INET, SOCK_STREAM, 0);
    const int small = 4096;
    REQUIRE(::setsockopt(stalled, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    REQUIRE(::connect(stalled, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);  // NOLINT
    const std::string one =
        "GET /v1/connectors/service-map HTTP/1.1\r\nAuthorization: Bearer " + kApiKey + "\r\n\r\n";
    const auto map = s.client->Get("/v1/connectors/service-map", bearer(kApiKey));
    REQUIRE(map);
    REQUIRE(map->body.size() > 12000);
    std::string many;
    for (int i = 0; i < 1000; ++i) many += one;  // the most one connection may send
    std::size_t sent = 0;
    const auto until = std::chrono::steady_clock::now() + 3s;
    while (sent < many.size() && std::chrono::steady_clock::now() < until) {
      const ssize_t n =
          ::send(stalled, many.data() + sent, many.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) sent += static_cast<std::size_t>(n);
      if (n < 0) std::this_thread::sleep_for(10ms);
    }
    // Others are answered at once, by the same single worker.
    for (int i = 0; i < 5; ++i) {
      const std::string r =
          cc::test::raw_exchange(port, "GET /ready HTTP/1.1\r\nConnection: close\r\n\r\n", 3s);
      CHECK(r.starts_with("HTTP/1.1 200"));
    }
    // The stalled client gets its responses once it reads.
    const std::string got = read_response(stalled, 5s);
    CHECK(got.starts_with("HTTP/1.1 200"));
    ::close(stalled);
  }
}

TEST_CASE("idle keep-alive connections are closed at the keep-alive timeout", "[server]") {
  Running s({"CONNECTORS_KEEPALIVE_TIMEOUT_MS=300", "CONNECTORS_REQUEST_DEADLINE_MS=600"});
  const int fd = connect_to(s.server->port());
  const std::string req = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) > 0);
  REQUIRE(read_response(fd, 5s).starts_with("HTTP/1.1 200"));
  // Idle: the server closes (EOF) after ~300 ms, well before the test's 5 s.
  pollfd p{fd, POLLIN, 0};
  REQUIRE(::poll(&p, 1, 5000) == 1);
  char byte = 0;
  CHECK(::recv(fd, &byte, 1, 0) == 0);
  ::close(fd);
  // A connection that never sends anything is closed at the request deadline.
  const int silent = connect_to(s.server->port());
  pollfd q{silent, POLLIN, 0};
  REQUIRE(::poll(&q, 1, 5000) == 1);
  CHECK(::recv(silent, &byte, 1, 0) == 0);
  ::close(silent);
}

TEST_CASE("a busy port is an error, not a silent share", "[server]") {
  Running s;
  cc::test::TempDir dir;
  ServerProcess second({"--port", std::to_string(s.server->port())}, base_env(s.manifest.string()));
  CHECK(second.port() == 0);
  CHECK(second.wait_exit(5s) == 2);
  CHECK(second.log().find("cannot listen") != std::string::npos);
}

TEST_CASE("bad configuration exits 2 with one clear line", "[server]") {
  auto run = [](std::vector<std::string> env, std::vector<std::string> args = {}) {
    ServerProcess p(args, env);
    const int code = p.wait_exit(5s);
    return std::make_pair(code, p.log());
  };
  auto [c1, l1] = run({"CONNECTORS_API_KEY=a"});
  CHECK(c1 == 2);
  CHECK(l1 == "[brAInwav] CONNECTORS_SIGNATURE_KEY is required\n");
  auto [c2, l2] = run({"CONNECTORS_SIGNATURE_KEY=s"});
  CHECK(c2 == 2);
  CHECK(l2 == "[brAInwav] CONNECTORS_API_KEY or MCP_API_KEY is required (or NO_AUTH=true)\n");
  auto [c3, l3] = run({"CONNECTORS_SIGNATURE_KEY=s", "CONNECTORS_API_KEY=a"}, {"--port", "x"});
  CHECK(c3 == 2);
  CHECK(l3 == "[brAInwav] --port must be a port number 0-65535\n");
  auto [c4, l4] = run({"CONNECTORS_SIGNATURE_KEY=secret-s", "CONNECTORS_API_KEY=a"}, {"--bogus"});
  CHECK(c4 == 2);
  CHECK(l4.find("secret-s") == std::string::npos);
  auto [c5, l5] =
      run({"CONNECTORS_SIGNATURE_KEY=s", "CONNECTORS_API_KEY=a"}, {"--history-max-entries", "-1"});
  CHECK(c5 == 2);
  CHECK(l5 == "[brAInwav] --history-max-entries must be an integer >= 0\n");
  auto [c6, l6] = run({"CONNECTORS_SIGNATURE_KEY=s", "CONNECTORS_API_KEY=a",
                       "CONNECTORS_HISTORY_MAX_AGE_SECONDS=soon"});
  CHECK(c6 == 2);
  CHECK(l6 == "[brAInwav] CONNECTORS_HISTORY_MAX_AGE_SECONDS must be an integer >= 0\n");
}

TEST_CASE("NO_AUTH serves without a key and warns loudly", "[server]") {
  cc::test::TempDir dir;
  cc::test::write_file(dir / "m.json",
                       cc::test::read_data("manifests/original-fixture.manifest.json"));
  ServerProcess p({"--port", "0", "--manifest", (dir / "m.json").string()},
                  {"CONNECTORS_SIGNATURE_KEY=s", "NO_AUTH=true"});
  REQUIRE(p.port() > 0);
  httplib::Client c("127.0.0.1", p.port());
  REQUIRE(cc::test::eventually_true([&] { return c.Get("/ready")->status == 200; }));
  CHECK(c.Get("/v1/connectors/service-map")->status == 200);
  CHECK(p.log().find("authentication is DISABLED") != std::string::npos);
}

TEST_CASE("SIGTERM and SIGINT stop the server with exit 0 within about a second", "[server]") {
  for (int sig : {SIGTERM, SIGINT}) {
    Running s;
    // An idle keep-alive connection must not hold the shutdown.
    httplib::Client keep("127.0.0.1", s.server->port());
    keep.set_keep_alive(true);
    REQUIRE(keep.Get("/health")->status == 200);
    std::chrono::milliseconds took{};
    CHECK(s.server->stop(sig, 5s, &took) == 0);
    CHECK(took < 1500ms);
    CHECK(s.server->log().find("\"msg\":\"stopped\"") != std::string::npos);
  }
}

TEST_CASE("SIGTERM right after the listening line still stops the server", "[server]") {
  // The signal may be taken before the accept loop has begun; such a stop must not be lost.
  cc::test::TempDir dir;
  cc::test::write_file(dir / "m.json",
                       cc::test::read_data("manifests/original-fixture.manifest.json"));
  for (int i = 0; i < 10; ++i) {
    ServerProcess p({"--port", "0"}, base_env((dir / "m.json").string()));
    REQUIRE(p.port() > 0);
    CAPTURE(i);
    CHECK(p.stop(SIGTERM, 10s) == 0);
  }
}

TEST_CASE("dev mode generates keys, prints them once and serves the bundled example", "[server]") {
  ServerProcess p({"--dev", "--port", "0"}, {});
  REQUIRE(p.port() > 0);
  REQUIRE(cc::test::eventually_true([&] { return p.out().find("API key") != std::string::npos; }));
  std::smatch m;
  const std::string out = p.out();
  REQUIRE(
      std::regex_search(out, m, std::regex("API key +\\(CONNECTORS_API_KEY\\): +([0-9a-f]{32})")));
  const std::string api_key = m[1];
  std::smatch k;
  REQUIRE(std::regex_search(
      out, k, std::regex("signing key \\(CONNECTORS_SIGNATURE_KEY\\): ([0-9a-f]{64})")));
  const std::string signing_key = k[1];
  // Independent secrets: the API key (handed to every client) tells nothing about the signing
  // key, so no 8-hex-digit run of one appears in the other.
  for (std::size_t i = 0; i + 8 <= api_key.size(); ++i) {
    INFO(i);
    CHECK(signing_key.find(api_key.substr(i, 8)) == std::string::npos);
  }
  CHECK(signing_key.find(signing_key.substr(0, 16), 16) == std::string::npos);
  httplib::Client c("127.0.0.1", p.port());
  REQUIRE(cc::test::eventually_true([&] { return c.Get("/ready")->status == 200; }));
  auto r = c.Get("/v1/connectors/service-map", bearer(api_key));
  REQUIRE(r);
  CHECK(r->status == 200);
  auto payload = cc::verify_signed_body(r->body, cc::as_bytes(signing_key));
  REQUIRE_OK(payload);
  CHECK(payload->find("id")->as_string() == "01JAG0Y4ZP1XK9YZ2FQ0N3WVCH");
  // Printed on stdout, never in the log.
  CHECK(p.log().find(api_key) == std::string::npos);
  CHECK(p.log().find(signing_key) == std::string::npos);
}

TEST_CASE("responses are never compressed on the fly", "[server]") {
  Running s({"ENABLE_PROMETHEUS=true"});
  const httplib::Headers browser = {{"Accept-Encoding", "gzip, deflate, br"},
                                    {"Authorization", "Bearer " + kApiKey}};
  for (const char* path : {"/health", "/ready", "/metrics", "/nope"}) {
    INFO(path);
    auto r = s.client->Get(path, browser);
    REQUIRE(r);
    CHECK_FALSE(r->has_header("Content-Encoding"));
    REQUIRE_FALSE(r->body.empty());
    CHECK((r->body.front() == '{' || r->body.front() == '#'));  // plain JSON or metrics text
  }
}

TEST_CASE("a large service map is served identity until its compressed bodies exist", "[server]") {
  // ~2 MB of service map: published before gzip/brotli are done (RegistryOptions::gzip_level).
  cc::test::TempDir dir;
  cc::test::write_file(dir / "m.json", synthetic_manifest(5000));
  ServerProcess server({"--port", "0"}, base_env((dir / "m.json").string()));
  REQUIRE(server.port() > 0);
  httplib::Client client("127.0.0.1", server.port());
  client.set_decompress(false);
  auto gz = bearer(kApiKey);
  gz.emplace("Accept-Encoding", "gzip");
  // From the first 200 on: identity bytes while there is no gzip body, then gzip; never an
  // empty or mislabelled body.
  std::vector<std::string> identity_bodies;
  std::string inflated;
  bool served = false;  // 503 until the first snapshot, then 200 only
  REQUIRE(cc::test::eventually_true(
      [&] {
        auto r = client.Get("/v1/connectors/service-map", gz);
        REQUIRE(r);  // the server listens from the start
        if (!served && r->status == 503) return false;
        served = true;
        REQUIRE(r->status == 200);
        REQUIRE_FALSE(r->body.empty());
        if (r->get_header_value("Content-Encoding") != "gzip") {
          CHECK_FALSE(r->has_header("Content-Encoding"));
          identity_bodies.push_back(r->body);
          return false;
        }
        REQUIRE(cc::internal::gzip_decompress(r->body, inflated));
        return true;
      },
      20s));
  CHECK(inflated.size() > (std::size_t{1} << 20));
  for (const auto& body : identity_bodies) CHECK(body == inflated);
  auto plain = client.Get("/v1/connectors/service-map", bearer(kApiKey));
  REQUIRE(plain);
  CHECK(plain->body == inflated);
  INFO("identity responses before the gzip body existed: " << identity_bodies.size());
  CHECK(cc::verify_signed_body(plain->body, cc::as_bytes(kSigningKey)));
}
