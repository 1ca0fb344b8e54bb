// The fast path (server/fast_routes.h): the hot routes answered by the connection loop give the
// same status, headers and body as cpp-httplib's parser and router give for the same request.
// Two real servers on 127.0.0.1 with the same manifest, keys and dashboard bundle, one with the
// fast path off (CONNECTORS_FAST_PATH=off); every request goes to both and the raw bytes must
// match, but for what differs between any two processes (generated request ids, the /health
// body's clock and version fields).
#include <csignal>
#include <regex>
#include <string>
#include <vector>

#include "cortex_connectors/json.h"
#include "server_process.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using cc::test::ServerProcess;
using namespace std::chrono_literals;

namespace {

const std::string kApiKey = "fast-path-api-key";
const std::string kMap = "/v1/connectors/service-map";
const std::string kHashed = "app.0123456789abcdef.js";

// A manifest without generatedAt is stamped with its load time: two servers loading it in
// different seconds would serve different bytes. The test's manifests name theirs.
std::string dated(std::string manifest) {
  const std::string at = "\"manifestVersion\"";
  const auto pos = manifest.find(at);
  REQUIRE(pos != std::string::npos);
  manifest.insert(pos, "\"generatedAt\": \"2026-01-01T00:00:00Z\", ");
  return manifest;
}

struct Pair {
  cc::test::TempDir dir;
  std::unique_ptr<ServerProcess> fast;
  std::unique_ptr<ServerProcess> slow;

  explicit Pair(const std::string& manifest = cc::test::original_fixture()) {
    cc::test::write_file(dir / "connectors.manifest.json", dated(manifest));
    std::filesystem::create_directories(dir / "bundle");
    std::string page;
    for (int i = 0; i < 40; ++i) page += "<p>brAInwav dashboard</p>\n";
    cc::test::write_file(dir / "bundle/index.html", page);
    std::string script;
    for (int i = 0; i < 80; ++i) script += "export const connectors = [];\n";
    cc::test::write_file(dir / "bundle" / kHashed, script);
    fast = start("fast", "on");
    slow = start("slow", "off");
  }

  std::unique_ptr<ServerProcess> start(const std::string& name, const std::string& fast_path) {
    std::filesystem::create_directories(dir / name);
    auto s = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--port", "0"},
        std::vector<std::string>{
            "CONNECTORS_SIGNATURE_KEY=fast-path-signing-key", "CONNECTORS_API_KEY=" + kApiKey,
            "CONNECTORS_MANIFEST_PATH=" + (dir / "connectors.manifest.json").string(),
            "CONNECTORS_STATE_DIR=" + (dir / name).string(),
            "APPS_BUNDLE_DIR=" + (dir / "bundle").string(), "CONNECTORS_FAST_PATH=" + fast_path});
    REQUIRE(s->port() > 0);
    // Loaded, and the bundle compressed (it has no .gz/.br files: made after the bind). No
    // request is sent before the test's own: both access logs hold the same lines.
    REQUIRE(cc::test::eventually_true([&] {
      const std::string log = s->log();
      return log.find("dashboard bundle compressed") != std::string::npos &&
             log.find("\"manifest loaded\"") != std::string::npos;
    }));
    return s;
  }
};

// What differs between two processes answering the same request: the generated request ids.
std::string normalized(std::string response) {
  static const std::regex id("X-Request-Id: [0-9a-f]{32}(\r?\n)");
  return std::regex_replace(response, id, "X-Request-Id: (generated)$1");
}

// /health: its body carries the process's clock and versions. Keeps the status line, the header
// lines but Content-Length, and the body's member names.
std::string health_shape(const std::string& response) {
  const auto end = response.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  std::string out;
  std::size_t pos = 0;
  while (pos < end) {
    const auto eol = response.find("\r\n", pos);
    const std::string line = response.substr(pos, eol - pos);
    pos = eol + 2;
    out += line.starts_with("Content-Length:") ? std::string("Content-Length: (n)") : line;
    out += "\n";
  }
  const std::string body = response.substr(end + 4);
  if (!body.empty()) {
    auto json = cc::parse_json(body);
    REQUIRE(json);
    for (const auto& [key, value] : json->as_object()) out += key + "\n";
  }
  return normalized(out);
}

std::string send_request(int port, const std::string& request) {
  return cc::test::raw_exchange(port, request, 3s);
}

}  // namespace

TEST_CASE("the fast path and cpp-httplib give the same responses to the same requests",
          "[server][fast_path]") {
  Pair servers;
  auto etag_of = [&](int port) {
    const std::string r =
        send_request(port, "HEAD " + kMap + " HTTP/1.1\r\nAuthorization: Bearer " + kApiKey +
                               "\r\nConnection: close\r\n\r\n");
    const auto at = r.find("ETag: ");
    REQUIRE(at != std::string::npos);
    return r.substr(at + 6, r.find("\r\n", at) - at - 6);
  };
  const std::string etag = etag_of(servers.fast->port());
  REQUIRE(etag_of(servers.slow->port()) == etag);
  const std::string auth = "Authorization: Bearer " + kApiKey + "\r\n";
  const std::string close = "Connection: close\r\n";
  std::vector<std::string> requests;
  for (const std::string method : {"GET", "HEAD"}) {
    const std::string map = method + " " + kMap + " HTTP/1.1\r\n";
    for (const std::string encoding :
         {"", "Accept-Encoding: gzip\r\n", "Accept-Encoding: br\r\n",
          "Accept-Encoding: gzip, br\r\n", "Accept-Encoding: br;q=0, gzip;q=0.5\r\n",
          "Accept-Encoding: identity\r\n"}) {
      requests.push_back(map + auth + encoding + close + "\r\n");
      requests.push_back(map + auth + encoding + "If-None-Match: " + etag + "\r\n" + close +
                         "\r\n");
    }
    // The refusals of the data route: 401 (missing, malformed) and 403.
    requests.push_back(map + close + "\r\n");
    requests.push_back(map + "Authorization: Basic abc\r\n" + close + "\r\n");
    requests.push_back(map + "Authorization: Bearer\r\n" + close + "\r\n");
    requests.push_back(map + "Authorization: Bearer wrong-key\r\n" + close + "\r\n");
    requests.push_back(map + auth + "If-None-Match: \"other\"\r\n" + close + "\r\n");
    requests.push_back(map + auth + "If-None-Match: *\r\n" + close + "\r\n");
    requests.push_back(map + auth + "X-Request-Id: client-chosen-id\r\n" + close + "\r\n");
    requests.push_back(map + auth + "X-Request-Id: not sane!\r\n" + close + "\r\n");
    requests.push_back(map + auth +
                       "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n" +
                       close + "\r\n");
    // Declined by the fast path, answered by cpp-httplib on both servers.
    requests.push_back(method + " " + kMap + "?x=1 HTTP/1.1\r\n" + auth + close + "\r\n");
    requests.push_back(method + " /v1/connectors/service%2Dmap HTTP/1.1\r\n" + auth + close +
                       "\r\n");
    requests.push_back(method + " " + kMap + " HTTP/1.0\r\n" + auth + close + "\r\n");
    requests.push_back(map + auth + "Connection: Close\r\n\r\n");
    requests.push_back(method + " /ready HTTP/1.1\r\n" + close + "\r\n");
    requests.push_back(method + " /ready HTTP/1.1\r\nX-Request-Id: r-1\r\n" + close + "\r\n");
    requests.push_back(method + " /v1/connectors/keys HTTP/1.1\r\n" + close + "\r\n");
    requests.push_back(method + " /nowhere HTTP/1.1\r\n" + close + "\r\n");
    // The dashboard: files per encoding, 304, and what is not a file (404, redirect).
    for (const std::string& file : {std::string(), std::string("index.html"), kHashed}) {
      const std::string get = method + " /apps/chatgpt-dashboard/" + file + " HTTP/1.1\r\n";
      for (const std::string encoding :
           {"", "Accept-Encoding: gzip\r\n", "Accept-Encoding: br\r\n"}) {
        requests.push_back(get + encoding + close + "\r\n");
      }
    }
    for (const std::string path :
         {"/apps/chatgpt-dashboard/missing.js", "/apps/chatgpt-dashboard/../secret",
          "/apps/chatgpt-dashboard", "/apps/chatgpt-dashboard/%2e%2e/x",
          "/apps/chatgpt-dashboard/.env"}) {
      requests.push_back(method + " " + path + " HTTP/1.1\r\n" + close + "\r\n");
    }
  }
  // Refused by the connection loop before either path: 405, 400 and 431.
  requests.push_back("POST " + kMap + " HTTP/1.1\r\n" + auth + "Content-Length: 2\r\n\r\n{}");
  requests.push_back("GET " + kMap + " HTTP/1.1\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n");
  requests.push_back("GET " + kMap + " HTTP/1.1\r\n" + auth + auth + "\r\n");
  requests.push_back("GET " + kMap + " HTTP/1.1\r\nX-Big: " + std::string(70000, 'a') + "\r\n\r\n");
  requests.push_back("GET " + kMap + " HTTP/1.1\r\nBad Header: x\r\n\r\n");
  // Keep-alive: several requests on one connection, pipelined, the last one closing it.
  requests.push_back("GET " + kMap + " HTTP/1.1\r\n" + auth + "\r\nGET /ready HTTP/1.1\r\n\r\n" +
                     "HEAD " + kMap + " HTTP/1.1\r\n\r\nGET /apps/chatgpt-dashboard/ HTTP/1.1\r\n" +
                     "Accept-Encoding: br\r\n\r\nGET " + kMap + " HTTP/1.1\r\n" + auth + close +
                     "\r\n");

  for (const auto& request : requests) {
    INFO(request.substr(0, 300));
    const std::string fast = send_request(servers.fast->port(), request);
    const std::string slow = send_request(servers.slow->port(), request);
    REQUIRE(fast.starts_with("HTTP/1.1 "));
    CHECK(normalized(fast) == normalized(slow));
  }

  // /health: the same head and the same members (their values are each process's own).
  for (const std::string method : {"GET", "HEAD"}) {
    for (const std::string extra : {"", "X-Request-Id: h-1\r\n"}) {
      const std::string request = method + " /health HTTP/1.1\r\n" + extra + close + "\r\n";
      INFO(request);
      const std::string fast = send_request(servers.fast->port(), request);
      CHECK(fast.starts_with("HTTP/1.1 200 OK\r\n"));
      CHECK(health_shape(fast) == health_shape(send_request(servers.slow->port(), request)));
    }
  }

  // Both wrote an access line per request, with the same routes and statuses.
  servers.fast->stop(SIGTERM, 10s);
  servers.slow->stop(SIGTERM, 10s);
  auto access = [](const std::string& log) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < log.size()) {
      const auto eol = log.find('\n', pos);
      const std::string line = log.substr(pos, eol - pos);
      pos = eol == std::string::npos ? log.size() : eol + 1;
      auto parsed = cc::parse_json(line);
      if (!parsed || !parsed->is_object()) continue;
      const cc::Json& j = *parsed;
      if (j.find("msg") == nullptr || j.find("msg")->as_string() != "request") continue;
      out.push_back(j.find("route")->as_string() + " " +
                    std::to_string(static_cast<int>(j.find("status")->as_number())) + " " +
                    std::to_string(static_cast<long long>(j.find("bytes")->as_number())));
    }
    return out;
  };
  const auto fast_lines = access(servers.fast->log());
  CHECK(fast_lines.size() > requests.size());
  CHECK(fast_lines == access(servers.slow->log()));
}

TEST_CASE("a large service map is the same from the fast path's memory file",
          "[server][fast_path]") {
  // 400 connectors: the identity body is over 64 KiB, so the fast path sends it with sendfile()
  // from a memory file (fast_routes.cpp); the compressed ones may be smaller.
  Pair servers(cc::test::generated_manifest(400));
  const std::string auth = "Authorization: Bearer " + kApiKey + "\r\n";
  const std::string get = "GET " + kMap + " HTTP/1.1\r\n" + auth;
  // A large snapshot is served identity-only until its compressed bodies are made: wait for
  // them on both servers.
  for (const int port : {servers.fast->port(), servers.slow->port()}) {
    REQUIRE(cc::test::eventually_true([&] {
      return send_request(port, get + "Accept-Encoding: br\r\nConnection: close\r\n\r\n")
                 .find("Content-Encoding: br\r\n") != std::string::npos;
    }));
  }
  std::vector<std::string> requests = {
      get + "Connection: close\r\n\r\n",
      get + "Accept-Encoding: gzip\r\nConnection: close\r\n\r\n",
      get + "Accept-Encoding: br\r\nConnection: close\r\n\r\n",
      "HEAD " + kMap + " HTTP/1.1\r\n" + auth + "Connection: close\r\n\r\n",
      // Pipelined: the second head follows the first body on the same connection.
      get + "\r\n" + get + "Accept-Encoding: br\r\n\r\n" + get + "Connection: close\r\n\r\n",
  };
  for (const auto& request : requests) {
    INFO(request.substr(0, 200));
    const std::string fast = send_request(servers.fast->port(), request);
    const std::string slow = send_request(servers.slow->port(), request);
    REQUIRE(fast.starts_with("HTTP/1.1 200"));
    CHECK(fast.size() == slow.size());
    CHECK(normalized(fast) == normalized(slow));
  }
  const std::string one = send_request(servers.fast->port(), requests[0]);
  const auto length = one.find("Content-Length: ");
  REQUIRE(length != std::string::npos);
  CHECK(std::stoul(one.substr(length + 16)) > 64 * 1024);
}
