// Every JSON the library and the server write is valid UTF-8, also when it carries outside text
// that is not: error messages of SQLite and the OS, file paths, header values in log lines.
#include <sstream>

#include <httplib.h>
#include <signal.h>
#include <sqlite3.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "internal/utf8.h"
#include "server_process.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using cc::test::ServerProcess;

namespace {

constexpr std::string_view kFffd = "\xEF\xBF\xBD";

// Every line of `log` is a JSON document that the strict parser (UTF-8 checked) accepts.
void check_log_lines(const std::string& log) {
  std::istringstream lines(log);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    CAPTURE(line);
    CHECK(cc::parse_json(line));
    ++n;
  }
  CHECK(n > 0);
}

// The first /health body that contains `needle`.
std::string health_with(httplib::Client& client, std::string_view needle) {
  std::string body;
  REQUIRE(cc::test::eventually_true([&] {
    auto r = client.Get("/health");
    if (!r || r->body.find(needle) == std::string::npos) return false;
    body = r->body;
    return true;
  }));
  return body;
}

}  // namespace

TEST_CASE("replace_invalid_utf8 substitutes maximal subparts, as Unicode 15 section 3.9 does",
          "[diagnostics]") {
  using cc::internal::replace_invalid_utf8;
  const std::string r(kFffd);
  // The standard's example: <61 F1 80 80 E1 80 C2 62 80 63 80 BF 64>.
  CHECK(replace_invalid_utf8("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64") ==
        "a" + r + r + r + "b" + r + "c" + r + r + "d");
  CHECK(replace_invalid_utf8("\xC0\x80") == r + r);          // overlong: no lead byte is valid
  CHECK(replace_invalid_utf8("\xED\xA0\x80") == r + r + r);  // a surrogate
  CHECK(replace_invalid_utf8("\xF4\x90\x80\x80") == r + r + r + r);  // above U+10FFFF
  CHECK(replace_invalid_utf8("x\xE2\x82") == "x" + r);               // cut short at the end
  CHECK(replace_invalid_utf8("\xFF\xFE/a.json") == r + r + "/a.json");
  // Valid text is returned as it is.
  const std::string valid = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 ok";
  CHECK(replace_invalid_utf8(valid) == valid);
  CHECK(replace_invalid_utf8("") == "");
}

TEST_CASE("a Json with ill-formed UTF-8 is written as valid JSON with U+FFFD", "[diagnostics]") {
  cc::Json doc = cc::Json::object();
  doc.set("reason", "malformed database schema (\xFF\xFE) - near \"(\": syntax error");
  doc.set("path\xC3", "/tmp/\xFF\xFE.json");
  doc.set("fine", "caf\xC3\xA9 \xF0\x9F\x98\x80");
  doc.set("list", cc::Json::Array{cc::Json("a\x80z"), cc::Json("plain ascii text, long enough")});
  const std::string r(kFffd);
  for (const auto& text : {*cc::canonical_json(doc), *cc::pretty_json(doc)}) {
    CAPTURE(text);
    auto parsed = cc::parse_json(text);
    REQUIRE_OK(parsed);
    CHECK(parsed->find("reason")->as_string() ==
          "malformed database schema (" + r + r + ") - near \"(\": syntax error");
    CHECK(parsed->find("path" + r)->as_string() == "/tmp/" + r + r + ".json");
    CHECK(parsed->find("fine")->as_string() == "caf\xC3\xA9 \xF0\x9F\x98\x80");
    CHECK(parsed->find("list")->as_array()[0].as_string() == "a" + r + "z");
  }
  std::string appended = "x";
  REQUIRE(cc::append_canonical_json(appended, doc));
  CHECK(appended.substr(1) == *cc::canonical_json(doc));
  // Valid documents are written byte for byte as before.
  const std::string valid = R"({"a":"caf\u00e9","b":["\ud83d\ude00"]})";
  CHECK(*cc::canonical_json(*cc::parse_json(valid)) ==
        "{\"a\":\"caf\xC3\xA9\",\"b\":[\"\xF0\x9F\x98\x80\"]}");
}

TEST_CASE("a manifest path of non-UTF-8 bytes leaves /health and the log valid JSON",
          "[diagnostics][server]") {
  cc::test::TempDir dir;
  const std::string manifest = (dir / "\xFF\xFE.json").string();
  ServerProcess server({"--port", "0", "--no-history"},
                       {"CONNECTORS_SIGNATURE_KEY=diagnostics-key", "CONNECTORS_API_KEY=api",
                        "CONNECTORS_MANIFEST_PATH=" + manifest});
  REQUIRE(server.port() > 0);
  httplib::Client client("127.0.0.1", server.port());
  const std::string body = health_with(client, "lastError");
  CAPTURE(body);
  auto health = cc::parse_json(body);
  REQUIRE_OK(health);
  CHECK(body.find(std::string(kFffd) + std::string(kFffd) + ".json") != std::string::npos);
  auto map = client.Get("/v1/connectors/service-map", {{"Authorization", "Bearer api"}});
  REQUIRE(map);
  CHECK(map->status == 503);
  CHECK(cc::parse_json(map->body));
  CHECK(server.stop(SIGTERM, std::chrono::seconds(10)) == 0);
  check_log_lines(server.log());
}

TEST_CASE("a history store whose schema holds non-UTF-8 bytes degrades with a valid /health",
          "[diagnostics][server]") {
  cc::test::TempDir dir;
  const auto state = dir / "state";
  std::filesystem::create_directories(state);
  {
    // A schema entry SQLite cannot parse, named with bytes that are not UTF-8: every statement
    // on this database then fails with "malformed database schema (<name>) ...".
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((state / "history.sqlite3").c_str(), &db) == SQLITE_OK);
    const char* sql =
        "CREATE TABLE t(x);"
        "PRAGMA writable_schema=ON;"
        "INSERT INTO sqlite_master VALUES('table','\xFF\xFE','\xFF\xFE',0,'CREATE TABLE "
        "\xFF\xFE(');";
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
    CAPTURE(error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
  }
  const auto manifest = dir / "connectors.manifest.json";
  cc::test::write_file(manifest, cc::test::read_data("manifests/original-fixture.manifest.json"));
  ServerProcess server({"--port", "0", "--state-dir", state.string()},
                       {"CONNECTORS_SIGNATURE_KEY=diagnostics-key", "CONNECTORS_API_KEY=api",
                        "CONNECTORS_MANIFEST_PATH=" + manifest.string()});
  REQUIRE(server.port() > 0);
  httplib::Client client("127.0.0.1", server.port());
  const std::string body = health_with(client, "\"reason\"");
  CAPTURE(body);
  auto health = cc::parse_json(body);
  REQUIRE_OK(health);
  const cc::Json* history = health->find("history");
  REQUIRE(history != nullptr);
  CHECK(history->find("degraded")->as_bool());
  CHECK(history->find("reason")->as_string().find(std::string(kFffd)) != std::string::npos);
  CHECK(server.stop(SIGTERM, std::chrono::seconds(10)) == 0);
  check_log_lines(server.log());
}
