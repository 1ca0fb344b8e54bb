// The dashboard route (/apps/chatgpt-dashboard/): the real server over 127.0.0.1 serving a
// bundle written by the test, then the bundle the build produced.
#include <filesystem>
#include <map>
#include <regex>

#include <httplib.h>

#include "cortex_connectors/json.h"
#include "cortex_connectors/static_files.h"
#include "internal/compress.h"
#include "server_process.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
namespace fs = std::filesystem;
using cc::test::raw_exchange;
using cc::test::ServerProcess;
using namespace std::chrono_literals;

namespace {

const std::string kApiKey = "dashboard-test-api-key";
const std::string kHashed = "app.0123456789abcdef.js";
const std::string kOutsideSecret = "SECRET-OUTSIDE-THE-BUNDLE";

std::string compressible(std::string_view line, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out.append(line);
  return out;
}

// A bundle with every kind of file, plus a file and a directory outside it that symlinks in
// the bundle point to.
struct Bundle {
  cc::test::TempDir dir;
  fs::path root = dir / "bundle";
  std::map<std::string, std::string> files;

  Bundle() {
    fs::create_directories(root / "sub");
    fs::create_directories(dir / "outside");
    cc::test::write_file(dir / "outside/secret.txt", kOutsideSecret);
    files["index.html"] = compressible("<p>brAInwav dashboard</p>\n", 40);
    files[kHashed] = compressible("export const connectors = [];\n", 80);
    files["style.css"] = compressible("td { padding: 0; }\n", 50);
    files["data.json"] = R"({"brand":"brAInwav"})";
    files["sub/page.html"] = "<p>sub</p>";
    files["README"] = "no extension";
    std::string noise;
    std::uint32_t x = 7;
    for (int i = 0; i < 2048; ++i) {
      x = x * 1664525u + 1013904223u;
      noise.push_back(static_cast<char>(x >> 24));
    }
    files["logo.png"] = noise;
    for (const auto& [name, bytes] : files) cc::test::write_file(root / name, bytes);
    cc::test::write_file(root / ".secret", kOutsideSecret);
    fs::create_symlink(dir / "outside/secret.txt", root / "link-out.txt");
    fs::create_symlink(root / "style.css", root / "link-in.css");
    fs::create_directory_symlink(dir / "outside", root / "dir-link");
    fs::create_symlink("../outside/secret.txt", root / "sub-escape.txt");
  }
};

struct Served {
  std::unique_ptr<ServerProcess> server;
  std::unique_ptr<httplib::Client> client;

  // `compressed`: wait until the server has compressed what the bundle lacks (a bundle written
  // by a test has no .gz and .br files; the server makes them after binding its port).
  explicit Served(const std::string& apps_dir_env, bool compressed = true) {
    cc::test::TempDir manifest_dir;
    std::vector<std::string> env = {"CONNECTORS_SIGNATURE_KEY=dashboard-test-signing-key",
                                    "CONNECTORS_API_KEY=" + kApiKey,
                                    "CONNECTORS_MANIFEST_PATH=/nonexistent/manifest.json"};
    if (!apps_dir_env.empty()) env.push_back("APPS_BUNDLE_DIR=" + apps_dir_env);
    server = std::make_unique<ServerProcess>(std::vector<std::string>{"--port", "0"}, env);
    REQUIRE(server->port() > 0);
    client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
    client->set_decompress(false);
    if (compressed && !apps_dir_env.empty()) {
      REQUIRE(cc::test::eventually_true([&] {
        const std::string log = server->log();
        return log.find("dashboard bundle compressed") != std::string::npos ||
               log.find("dashboard unavailable") != std::string::npos ||
               log.find("\"uncompressed\":0}") != std::string::npos;
      }));
    }
  }

  httplib::Result get(const std::string& path, httplib::Headers headers = {}) {
    return client->Get(("/apps/chatgpt-dashboard/" + path).c_str(), headers);
  }
};

std::string status_of(const std::string& response) {
  return response.size() >= 12 ? response.substr(9, 3) : response;
}

}  // namespace

TEST_CASE("dashboard: index and plain files are no-cache with a strong ETag and 304",
          "[server][dashboard]") {
  Bundle b;
  Served s(b.root.string());
  for (const std::string path : {"", "index.html"}) {
    INFO(path);
    auto r = s.get(path);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == b.files["index.html"]);
    CHECK(r->get_header_value("Content-Type") == "text/html; charset=utf-8");
    CHECK(r->get_header_value("Cache-Control") == "no-cache");
    CHECK(r->get_header_value("Vary") == "Accept-Encoding");
    CHECK(r->get_header_value("X-Content-Type-Options") == "nosniff");
    CHECK(r->get_header_value("Content-Security-Policy").starts_with("default-src 'self';"));
    CHECK_FALSE(r->has_header("Content-Encoding"));
    const std::string etag = r->get_header_value("ETag");
    CHECK(etag == cc::prepare_static_asset("index.html", b.files["index.html"]).etag);

    auto again = s.get(path, {{"If-None-Match", etag}});
    REQUIRE(again);
    CHECK(again->status == 304);
    CHECK(again->body.empty());
    CHECK(again->get_header_value("ETag") == etag);
    CHECK(again->get_header_value("Cache-Control") == "no-cache");
    auto weak = s.get(path, {{"If-None-Match", "\"other\", W/" + etag}});
    REQUIRE(weak);
    CHECK(weak->status == 304);
    auto other = s.get(path, {{"If-None-Match", "\"other\""}});
    REQUIRE(other);
    CHECK(other->status == 200);
  }
  // The page is public even though the data routes need a key.
  CHECK(s.client->Get("/v1/connectors/service-map")->status == 401);
}

TEST_CASE("dashboard: hashed assets are immutable, types follow the extension",
          "[server][dashboard]") {
  Bundle b;
  Served s(b.root.string());
  const std::map<std::string, std::pair<std::string, std::string>> expected = {
      {kHashed, {"text/javascript; charset=utf-8", "public, max-age=31536000, immutable"}},
      {"style.css", {"text/css; charset=utf-8", "no-cache"}},
      {"data.json", {"application/json", "no-cache"}},
      {"logo.png", {"image/png", "no-cache"}},
      {"README", {"application/octet-stream", "no-cache"}},
      {"sub/page.html", {"text/html; charset=utf-8", "no-cache"}},
  };
  for (const auto& [name, want] : expected) {
    INFO(name);
    auto r = s.get(name);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == b.files[name]);
    CHECK(r->get_header_value("Content-Type") == want.first);
    CHECK(r->get_header_value("Cache-Control") == want.second);
    CHECK(r->has_header("ETag"));
  }
  // A symlink to a file inside the bundle is served as that file.
  auto in = s.get("link-in.css");
  REQUIRE(in);
  CHECK(in->status == 200);
  CHECK(in->body == b.files["style.css"]);
}

TEST_CASE("dashboard: br and gzip are chosen by q-value from pre-compressed bytes",
          "[server][dashboard]") {
  Bundle b;
  Served s(b.root.string());
  const std::string& js = b.files[kHashed];
  const auto prepared = cc::prepare_static_asset(kHashed, js);

  auto br = s.get(kHashed, {{"Accept-Encoding", "gzip, deflate, br"}});
  REQUIRE(br);
  CHECK(br->get_header_value("Content-Encoding") == "br");
  CHECK(br->body == prepared.brotli);
  CHECK(br->body.size() < js.size());
  CHECK(br->get_header_value("ETag") == prepared.etag_brotli);
  CHECK(br->get_header_value("Vary") == "Accept-Encoding");
  CHECK(br->get_header_value("Cache-Control") == "public, max-age=31536000, immutable");

  auto gz = s.get(kHashed, {{"Accept-Encoding", "br;q=0.5, gzip;q=0.8"}});
  REQUIRE(gz);
  CHECK(gz->get_header_value("Content-Encoding") == "gzip");
  CHECK(gz->get_header_value("ETag") == prepared.etag_gzip);
  std::string inflated;
  REQUIRE(cc::internal::gzip_decompress(gz->body, inflated));
  CHECK(inflated == js);

  for (const char* refuse : {"gzip;q=0, br;q=0", "identity", "deflate", ""}) {
    INFO(refuse);
    auto plain = s.get(kHashed, {{"Accept-Encoding", refuse}});
    REQUIRE(plain);
    CHECK_FALSE(plain->has_header("Content-Encoding"));
    CHECK(plain->body == js);
    CHECK(plain->get_header_value("ETag") == prepared.etag);
  }

  // The same request twice gives the same bytes: nothing is compressed per request.
  auto br2 = s.get(kHashed, {{"Accept-Encoding", "br"}});
  REQUIRE(br2);
  CHECK(br2->body == br->body);

  // A representation's ETag only validates that representation.
  auto cross = s.get(kHashed, {{"Accept-Encoding", "br"}, {"If-None-Match", prepared.etag_gzip}});
  REQUIRE(cross);
  CHECK(cross->status == 200);
  auto same = s.get(kHashed, {{"Accept-Encoding", "br"}, {"If-None-Match", prepared.etag_brotli}});
  REQUIRE(same);
  CHECK(same->status == 304);

  // Incompressible files have no variants: identity, still Vary.
  auto png = s.get("logo.png", {{"Accept-Encoding", "gzip, br"}});
  REQUIRE(png);
  CHECK_FALSE(png->has_header("Content-Encoding"));
  CHECK(png->body == b.files["logo.png"]);
  CHECK(png->get_header_value("Vary") == "Accept-Encoding");
}

TEST_CASE("dashboard: HEAD gives the GET headers without a body", "[server][dashboard]") {
  Bundle b;
  Served s(b.root.string());
  for (const std::string encoding : {"identity", "br"}) {
    INFO(encoding);
    const auto got = raw_exchange(s.server->port(),
                                  "HEAD /apps/chatgpt-dashboard/" + kHashed +
                                      " HTTP/1.1\r\nHost: x\r\nAccept-Encoding: " + encoding +
                                      "\r\nConnection: close\r\n\r\n",
                                  5s);
    CHECK(status_of(got) == "200");
    const auto end = got.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    CHECK(end + 4 == got.size());  // no body
    auto get = s.get(kHashed, {{"Accept-Encoding", encoding}});
    REQUIRE(get);
    CHECK(got.find("Content-Length: " + std::to_string(get->body.size()) + "\r\n") !=
          std::string::npos);
    CHECK(got.find("Cache-Control: public, max-age=31536000, immutable\r\n") != std::string::npos);
    CHECK(got.find("ETag: " + get->get_header_value("ETag") + "\r\n") != std::string::npos);
  }
}

TEST_CASE("dashboard: traversal, encoded dots, NUL and escaping symlinks are 404",
          "[server][dashboard]") {
  Bundle b;
  Served s(b.root.string());
  for (const char* path : {
           "/apps/chatgpt-dashboard/../outside/secret.txt",
           "/apps/chatgpt-dashboard/../../outside/secret.txt",
           "/apps/chatgpt-dashboard/%2e%2e/outside/secret.txt",
           "/apps/chatgpt-dashboard/%2E%2E%2Foutside%2Fsecret.txt",
           "/apps/chatgpt-dashboard/..%2foutside/secret.txt",
           "/apps/chatgpt-dashboard/..%5coutside%5csecret.txt",
           "/apps/chatgpt-dashboard/sub/../../outside/secret.txt",
           "/apps/chatgpt-dashboard/sub/%2e%2e/%2e%2e/outside/secret.txt",
           "/apps/chatgpt-dashboard/%252e%252e/outside/secret.txt",
           "/apps/chatgpt-dashboard//etc/passwd",
           "/apps/chatgpt-dashboard/%2fetc%2fpasswd",
           "/apps/chatgpt-dashboard/index.html%00.png",
           "/apps/chatgpt-dashboard/%00",
           "/apps/chatgpt-dashboard/.secret",
           "/apps/chatgpt-dashboard/link-out.txt",
           "/apps/chatgpt-dashboard/sub-escape.txt",
           "/apps/chatgpt-dashboard/dir-link/secret.txt",
           "/apps/chatgpt-dashboard/missing.js",
           "/apps/chatgpt-dashboard/sub/",
           "/apps/chatgpt-dashboard/./index.html",
       }) {
    INFO(path);
    const std::string got = raw_exchange(
        s.server->port(),
        std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5s);
    CHECK(status_of(got) == "404");
    CHECK(got.find(kOutsideSecret) == std::string::npos);
    CHECK(got.find("root:") == std::string::npos);
  }
  // A raw NUL byte in the request line never reaches a file either.
  const std::string nul = raw_exchange(
      s.server->port(),
      std::string("GET /apps/chatgpt-dashboard/index.html\0.png HTTP/1.1\r\nHost: x\r\n"
                  "Connection: close\r\n\r\n",
                  77),
      5s);
  CHECK(status_of(nul) != "200");
  CHECK(nul.find("brAInwav dashboard") == std::string::npos);
  // The skipped symlinks are named in the log.
  CHECK(s.server->log().find("link-out.txt") != std::string::npos);
}

TEST_CASE("dashboard: the path without a slash redirects to the directory", "[server][dashboard]") {
  Bundle b;
  Served s(b.root.string());
  auto r = s.client->Get("/apps/chatgpt-dashboard");
  REQUIRE(r);
  CHECK(r->status == 308);
  CHECK(r->get_header_value("Location") == "/apps/chatgpt-dashboard/");
}

TEST_CASE("dashboard: no bundle is 503 branded JSON saying how to fix it", "[server][dashboard]") {
  cc::test::TempDir empty;  // a directory without index.html
  cc::test::write_file(empty / "other.js", "x");
  for (const std::string& dir : {(empty / "missing").string(), empty.path().string()}) {
    INFO(dir);
    Served s(dir);
    for (const char* path : {"", "index.html", "other.js", "../x"}) {
      auto r = s.get(path);
      REQUIRE(r);
      CHECK(r->status == 503);
      CHECK(r->get_header_value("Content-Type") == "application/json");
      CHECK(r->get_header_value("Retry-After") == "60");
      const auto body = cc::parse_json(r->body);
      REQUIRE_OK(body);
      const std::string detail(body->find("detail")->as_string());
      CHECK(detail.starts_with("[brAInwav] dashboard bundle is not installed"));
      CHECK(detail.find("APPS_BUNDLE_DIR") != std::string::npos);
    }
    CHECK(s.server->log().find("dashboard unavailable") != std::string::npos);
  }
}

TEST_CASE("dashboard: the built bundle is found by default and its names are content hashes",
          "[server][dashboard]") {
  Served s("");
  auto index = s.get("");
  REQUIRE(index);
  REQUIRE(index->status == 200);
  CHECK(index->get_header_value("Cache-Control") == "no-cache");
  // Every asset index.html names is hashed, immutable and present.
  const std::regex asset(R"re((?:src|href)="(dashboard\.[0-9a-f]{16}\.(js|css))")re");
  int found = 0;
  for (std::sregex_iterator it(index->body.begin(), index->body.end(), asset), end; it != end;
       ++it) {
    ++found;
    const std::string name = (*it)[1];
    INFO(name);
    auto r = s.get(name);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->get_header_value("Cache-Control") == "public, max-age=31536000, immutable");
    CHECK(r->get_header_value("Content-Type") ==
          ((*it)[2] == "js" ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8"));
  }
  CHECK(found == 2);

  // Reproducible: bundling the same sources again gives the same files, byte for byte.
  cc::test::TempDir again;
  const auto run =
      cc::test::run_program({CORTEX_CONNECTORS_CMAKE,
                             "-DSOURCE_DIR=" CORTEX_CONNECTORS_SOURCE_DIR "/apps/chatgpt-dashboard",
                             "-DOUTPUT_DIR=" + again.path().string(), "-P",
                             CORTEX_CONNECTORS_SOURCE_DIR "/cmake/bundle_dashboard.cmake"});
  REQUIRE(run.exit_code == 0);
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(again.path())) {
    ++files;
    const std::string name = e.path().filename().string();
    INFO(name);
    auto r = s.get(name);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == cc::test::read_file(e.path()));
  }
  CHECK(files == 3);
}

TEST_CASE("dashboard: an installed layout finds its bundle next to the binary",
          "[server][dashboard]") {
  // <prefix>/bin/cortex-connectors-server and <prefix>/share/cortex_connectors/apps/...
  cc::test::TempDir prefix;
  fs::create_directories(prefix / "bin");
  const fs::path server = prefix / "bin/cortex-connectors-server";
  fs::copy_file(CORTEX_CONNECTORS_SERVER, server);
  const fs::path apps = prefix / "share/cortex_connectors/apps/chatgpt-dashboard";
  fs::create_directories(apps);
  cc::test::write_file(apps / "index.html", "<p>installed copy</p>");
  ServerProcess p({"--port", "0"},
                  {"CONNECTORS_SIGNATURE_KEY=k", "NO_AUTH=true",
                   "CONNECTORS_MANIFEST_PATH=/nonexistent/manifest.json"},
                  server.string());
  REQUIRE(p.port() > 0);
  httplib::Client client("127.0.0.1", p.port());
  auto r = client.Get("/apps/chatgpt-dashboard/");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "<p>installed copy</p>");
}

TEST_CASE("dashboard: the built bundle's .gz and .br files are served as they are",
          "[server][dashboard]") {
  // The build writes them (cortex_connectors_precompress): nothing is compressed at start.
  Served s("");
  const fs::path root = fs::path(CORTEX_CONNECTORS_SERVER).parent_path().parent_path() /
                        "share/cortex_connectors/apps/chatgpt-dashboard";
  CHECK(s.server->log().find("\"uncompressed\":0}") != std::string::npos);
  int assets = 0;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(".gz") || name.ends_with(".br")) {
      // A representation, not an asset of its own.
      auto r = s.get(name);
      REQUIRE(r);
      CHECK(r->status == 404);
      continue;
    }
    ++assets;
    INFO(name);
    const std::string identity = cc::test::read_file(e.path());
    const std::string br_file = cc::test::read_file(root / (name + ".br"));
    const std::string gz_file = cc::test::read_file(root / (name + ".gz"));
    std::string inflated;
    REQUIRE(cc::internal::gzip_decompress(gz_file, inflated));
    CHECK(inflated == identity);
    auto br = s.get(name, {{"Accept-Encoding", "br"}});
    REQUIRE(br);
    CHECK(br->get_header_value("Content-Encoding") == "br");
    CHECK(br->body == br_file);
    CHECK(br->body == cc::prepare_static_asset(name, identity).brotli);  // the server's own
    auto gz = s.get(name, {{"Accept-Encoding", "gzip"}});
    REQUIRE(gz);
    CHECK(gz->get_header_value("Content-Encoding") == "gzip");
    CHECK(gz->body == gz_file);
  }
  CHECK(assets == 3);
}

TEST_CASE("dashboard: a bundle without compressed files is compressed after the port is bound",
          "[server][dashboard]") {
  Bundle b;
  Served s(b.root.string(), /*compressed=*/false);
  // Whatever was asked before, the compressed bodies come once the server has made them.
  const std::string& js = b.files[kHashed];
  const auto prepared = cc::prepare_static_asset(kHashed, js);
  REQUIRE(cc::test::eventually_true([&] {
    auto r = s.get(kHashed, {{"Accept-Encoding", "br"}});
    REQUIRE(r);
    CHECK(r->status == 200);
    if (!r->has_header("Content-Encoding")) {
      CHECK(r->body == js);  // identity until then, never anything else
      return false;
    }
    CHECK(r->body == prepared.brotli);
    return true;
  }));
  // Never before bind(): the server listened first. The line is written after the compressed
  // bodies are in place, so a client may see them a moment before the log does.
  REQUIRE(cc::test::eventually_true(
      [&] { return s.server->log().find("dashboard bundle compressed") != std::string::npos; }));
  const std::string log = s.server->log();
  const auto listening = log.find("\"msg\":\"listening\"");
  const auto compressed = log.find("dashboard bundle compressed");
  REQUIRE(listening != std::string::npos);
  REQUIRE(compressed != std::string::npos);
  CHECK(listening < compressed);
  // Every file of the bundle waited for it (none had a .gz or .br beside it).
  CHECK(log.find("\"uncompressed\":" + std::to_string(b.files.size() + 1) + "}") !=
        std::string::npos);  // the files, and link-in.css
}

TEST_CASE("dashboard: .gz and .br beside a file are its representations, as they are",
          "[server][dashboard]") {
  // A bundle of the operator's own, compressed by a tool of theirs (nginx's gzip_static layout,
  // here at another level than the server would use): served as they are, nothing made for that
  // file; a .gz without its file is a file of its own.
  cc::test::TempDir dir;
  const std::string page = compressible("<p>brAInwav</p>\n", 50);
  const std::string gz1 = cc::internal::gzip_compress(page, 1);
  const std::string br1 = cc::internal::brotli_compress(page, 1);
  REQUIRE(gz1 != cc::prepare_static_asset("index.html", page).gzip);
  cc::test::write_file(dir / "index.html", page);
  cc::test::write_file(dir / "index.html.gz", gz1);
  cc::test::write_file(dir / "index.html.br", br1);
  cc::test::write_file(dir / "archive.tar.gz", "not a representation");
  Served s(dir.path().string());
  // Only archive.tar.gz lacked its representations.
  CHECK(s.server->log().find("\"uncompressed\":1}") != std::string::npos);
  auto gz = s.get("index.html", {{"Accept-Encoding", "gzip"}});
  REQUIRE(gz);
  CHECK(gz->get_header_value("Content-Encoding") == "gzip");
  CHECK(gz->body == gz1);
  auto br = s.get("index.html", {{"Accept-Encoding", "br"}});
  REQUIRE(br);
  CHECK(br->body == br1);
  auto representation = s.get("index.html.gz");
  REQUIRE(representation);
  CHECK(representation->status == 404);
  auto archive = s.get("archive.tar.gz");
  REQUIRE(archive);
  CHECK(archive->status == 200);
  CHECK(archive->body == "not a representation");
}
