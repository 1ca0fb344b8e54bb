// Secrets from files (docs/deploying.md, docs/server.md): the signing key and the API keys read
// from files named by *_FILE variables or --*-key-file flags, or found as systemd credentials in
// $CREDENTIALS_DIRECTORY; the refusals (a file open to group or others, an empty file, a secret
// given two ways), and that a key read from a file never reaches the environment, the logs or a
// response. The real server process.
#include <fstream>
#include <sstream>

#include <httplib.h>
#include <signal.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/signing.h"
#include "server_process.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using cc::test::log_line;
namespace fs = std::filesystem;
using cc::test::ServerProcess;
using namespace std::chrono_literals;

namespace {

const std::string kSigningKey = "file-signing-key-3b9d52";
const std::string kApiKey = "file-api-key-6e1f07";
const std::string kMcpKey = "file-mcp-key-a40c18";

// Writes `content` to `path` with `mode`.
fs::path secret_file(const fs::path& path, std::string_view content, fs::perms mode) {
  cc::test::write_file(path, content);
  fs::permissions(path, mode);
  return path;
}

constexpr fs::perms kOwnerOnly = fs::perms::owner_read | fs::perms::owner_write;

// The service map as a client with `key` gets it.
httplib::Result get_map(int port, const std::string& key) {
  httplib::Client c("127.0.0.1", port);
  return c.Get("/v1/connectors/service-map", {{"Authorization", "Bearer " + key}});
}

// /proc/<pid>/environ: the server's whole environment.
std::string environ_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A server that must refuse its configuration: its exit code and standard error.
std::pair<int, std::string> refused(std::vector<std::string> args, std::vector<std::string> env) {
  ServerProcess p(std::move(args), std::move(env));
  const int code = p.wait_exit(10s);
  return {code, p.log()};
}

}  // namespace

TEST_CASE("secrets: keys read from files sign and authenticate, one trailing newline removed",
          "[secrets][server]") {
  cc::test::TempDir dir;
  cc::test::write_file(dir / "m.json", cc::test::original_fixture());
  const auto signing = secret_file(dir / "signing", kSigningKey + "\n", kOwnerOnly);
  const auto api = secret_file(dir / "api", kApiKey + "\n", kOwnerOnly);
  const auto mcp = secret_file(dir / "mcp", kMcpKey, fs::perms::owner_read);
  // The signing key by variable, the API keys by flag and by variable.
  ServerProcess p(
      {"--port", "0", "--manifest", (dir / "m.json").string(), "--api-key-file", api.string()},
      {"CONNECTORS_SIGNATURE_KEY_FILE=" + signing.string(), "MCP_API_KEY_FILE=" + mcp.string()});
  REQUIRE(p.port() > 0);
  REQUIRE(cc::test::eventually_true([&] {
    auto r = get_map(p.port(), kApiKey);
    return r && r->status == 200;
  }));
  const auto map = get_map(p.port(), kMcpKey);
  REQUIRE(map);
  CHECK(map->status == 200);
  // Signed with the file's key without its newline.
  REQUIRE_OK(cc::verify_signed_body(map->body, cc::as_bytes(kSigningKey)));
  CHECK_FALSE(
      static_cast<bool>(cc::verify_signed_body(map->body, cc::as_bytes(kSigningKey + "\n"))));

  // No key in the environment, the logs or the responses; the log names where each came from.
  const std::string environment = environ_of(p.pid());
  INFO(p.log());
  for (const std::string& key : {kSigningKey, kApiKey, kMcpKey}) {
    CHECK(environment.find(key) == std::string::npos);
    CHECK(p.log().find(key) == std::string::npos);
    CHECK(map->body.find(key) == std::string::npos);
  }
  const cc::Json listening = log_line(p.log(), "listening");
  REQUIRE(listening.find("secrets"));
  const std::string sources = cc::canonical_json(*listening.find("secrets")).value();
  CHECK(sources.find("CONNECTORS_SIGNATURE_KEY: file " + signing.string()) != std::string::npos);
  CHECK(sources.find("CONNECTORS_API_KEY: file " + api.string()) != std::string::npos);
  CHECK(sources.find("MCP_API_KEY: file " + mcp.string()) != std::string::npos);
  CHECK(p.stop(SIGTERM, 5s) == 0);
}

TEST_CASE("secrets: a key file open to group or others, empty or missing is refused by name",
          "[secrets][server]") {
  cc::test::TempDir dir;
  const std::vector<std::string> base{"CONNECTORS_MANIFEST_PATH=" + (dir / "m.json").string()};
  auto with = [&](std::vector<std::string> extra) {
    auto env = base;
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
  };
  const auto api = secret_file(dir / "api", kApiKey, kOwnerOnly);

  // Readable by others: the file and its mode are named, never its content.
  const auto wide = secret_file(dir / "signing-0644", kSigningKey,
                                kOwnerOnly | fs::perms::group_read | fs::perms::others_read);
  auto [code, err] = refused({}, with({"CONNECTORS_SIGNATURE_KEY_FILE=" + wide.string(),
                                       "CONNECTORS_API_KEY_FILE=" + api.string()}));
  CHECK(code == 2);
  CHECK(err == "[brAInwav] CONNECTORS_SIGNATURE_KEY_FILE " + wide.string() +
                   " is open to group or others (mode 0644): make it 0600 (chmod 600), or pass "
                   "it as a systemd credential (LoadCredential=)\n");
  CHECK(err.find(kSigningKey) == std::string::npos);

  // Group-readable, by flag: the flag is named.
  const auto group = secret_file(dir / "api-0640", kApiKey, kOwnerOnly | fs::perms::group_read);
  std::tie(code, err) = refused({"--api-key-file", group.string()},
                                with({"CONNECTORS_SIGNATURE_KEY=" + kSigningKey}));
  CHECK(code == 2);
  CHECK(err.find("[brAInwav] --api-key-file " + group.string() +
                 " is open to group or others (mode 0640)") == 0);
  CHECK(err.find(kApiKey) == std::string::npos);

  // Empty, or a newline only.
  for (const std::string content : {"", "\n"}) {
    const auto empty = secret_file(dir / "empty", content, kOwnerOnly);
    std::tie(code, err) = refused({}, with({"CONNECTORS_SIGNATURE_KEY=" + kSigningKey,
                                            "MCP_API_KEY_FILE=" + empty.string()}));
    CHECK(code == 2);
    CHECK(err == "[brAInwav] MCP_API_KEY_FILE " + empty.string() + " is empty\n");
  }

  // Missing; a directory.
  std::tie(code, err) =
      refused({}, with({"CONNECTORS_SIGNATURE_KEY_FILE=" + (dir / "absent").string(),
                        "CONNECTORS_API_KEY=" + kApiKey}));
  CHECK(code == 2);
  CHECK(err == "[brAInwav] CONNECTORS_SIGNATURE_KEY_FILE " + (dir / "absent").string() +
                   " cannot be opened: No such file or directory\n");
  std::tie(code, err) = refused({}, with({"CONNECTORS_SIGNATURE_KEY_FILE=" + dir.path().string(),
                                          "CONNECTORS_API_KEY=" + kApiKey}));
  CHECK(code == 2);
  CHECK(err == "[brAInwav] CONNECTORS_SIGNATURE_KEY_FILE " + dir.path().string() +
                   " is not a regular file\n");
}

TEST_CASE("secrets: a secret given both as a value and as a file is a configuration error",
          "[secrets][server]") {
  cc::test::TempDir dir;
  const auto signing = secret_file(dir / "signing", kSigningKey, kOwnerOnly);
  const auto api = secret_file(dir / "api", kApiKey, kOwnerOnly);
  const std::string manifest = "CONNECTORS_MANIFEST_PATH=" + (dir / "m.json").string();

  auto [code, err] = refused(
      {}, {manifest, "CONNECTORS_SIGNATURE_KEY=" + kSigningKey,
           "CONNECTORS_SIGNATURE_KEY_FILE=" + signing.string(), "CONNECTORS_API_KEY=" + kApiKey});
  CHECK(code == 2);
  CHECK(err ==
        "[brAInwav] CONNECTORS_SIGNATURE_KEY and CONNECTORS_SIGNATURE_KEY_FILE are both set: "
        "give the secret one way\n");

  std::tie(code, err) = refused(
      {"--api-key-file", api.string()},
      {manifest, "CONNECTORS_SIGNATURE_KEY=" + kSigningKey, "CONNECTORS_API_KEY=" + kApiKey});
  CHECK(code == 2);
  CHECK(err ==
        "[brAInwav] CONNECTORS_API_KEY and --api-key-file are both set: give the secret one "
        "way\n");

  std::tie(code, err) = refused({}, {manifest, "CONNECTORS_SIGNATURE_KEY=" + kSigningKey,
                                     "MCP_API_KEY=" + kMcpKey, "MCP_API_KEY_FILE=" + api.string()});
  CHECK(code == 2);
  CHECK(err ==
        "[brAInwav] MCP_API_KEY and MCP_API_KEY_FILE are both set: give the secret one "
        "way\n");
  for (const std::string& key : {kSigningKey, kApiKey, kMcpKey}) {
    CHECK(err.find(key) == std::string::npos);
  }
}

TEST_CASE("secrets: systemd credentials are found in $CREDENTIALS_DIRECTORY without a setting",
          "[secrets][server]") {
  cc::test::TempDir dir;
  cc::test::write_file(dir / "m.json", cc::test::original_fixture());
  const fs::path credentials = dir / "credentials";
  fs::create_directory(credentials);
  // systemd may leave credentials group-readable (an ACL mask): accepted there only.
  const auto group_read = fs::perms::owner_read | fs::perms::group_read;
  secret_file(credentials / "signature-key", kSigningKey + "\n", group_read);
  secret_file(credentials / "api-key", kApiKey, group_read);
  secret_file(credentials / "mcp-api-key", kMcpKey, group_read);
  const std::vector<std::string> env{"CONNECTORS_MANIFEST_PATH=" + (dir / "m.json").string(),
                                     "CREDENTIALS_DIRECTORY=" + credentials.string()};
  {
    ServerProcess p({"--port", "0"}, env);
    REQUIRE(p.port() > 0);
    REQUIRE(cc::test::eventually_true([&] {
      auto r = get_map(p.port(), kApiKey);
      return r && r->status == 200;
    }));
    const auto map = get_map(p.port(), kMcpKey);
    REQUIRE(map);
    CHECK(map->status == 200);
    REQUIRE_OK(cc::verify_signed_body(map->body, cc::as_bytes(kSigningKey)));
    const std::string environment = environ_of(p.pid());
    for (const std::string& key : {kSigningKey, kApiKey, kMcpKey}) {
      CHECK(environment.find(key) == std::string::npos);
      CHECK(p.log().find(key) == std::string::npos);
    }
    CHECK(p.log().find("CONNECTORS_API_KEY: file " + (credentials / "api-key").string()) !=
          std::string::npos);
    CHECK(p.stop(SIGTERM, 5s) == 0);
  }
  // The same file named explicitly is the same secret, not a second one.
  {
    auto explicit_env = env;
    explicit_env.push_back("CONNECTORS_API_KEY_FILE=" + (credentials / "api-key").string());
    ServerProcess p({"--port", "0"}, explicit_env);
    CHECK(p.port() > 0);
  }
  // A credential and a value for the same secret: refused.
  auto both = env;
  both.push_back("CONNECTORS_API_KEY=" + kApiKey);
  auto [code, err] = refused({}, both);
  CHECK(code == 2);
  CHECK(err == "[brAInwav] CONNECTORS_API_KEY is set and so is the systemd credential api-key (" +
                   (credentials / "api-key").string() + "): give the secret one way\n");
  // Outside the credentials directory the mode counts again.
  fs::create_directory(dir / "elsewhere");
  const std::vector<std::string> outside{
      "CONNECTORS_MANIFEST_PATH=" + (dir / "m.json").string(),
      "CREDENTIALS_DIRECTORY=" + (dir / "elsewhere").string(),
      "CONNECTORS_SIGNATURE_KEY_FILE=" + (credentials / "signature-key").string(),
      "CONNECTORS_API_KEY=" + kApiKey};
  std::tie(code, err) = refused({}, outside);
  CHECK(code == 2);
  CHECK(err.find("is open to group or others (mode 0440)") != std::string::npos);
}

TEST_CASE("secrets: the command-line tool reads CONNECTORS_SIGNATURE_KEY_FILE as the server does",
          "[secrets][cli]") {
  cc::test::TempDir dir;
  const fs::path manifest = cc::test::data_path("manifests/original-fixture.manifest.json");
  const auto key = secret_file(dir / "signing", kSigningKey + "\n", kOwnerOnly);
  const auto from_file = cc::test::run_cli(
      {"service-map", "--manifest", manifest.string()}, {},
      {"CONNECTORS_SIGNATURE_KEY=", "CONNECTORS_SIGNATURE_KEY_FILE=" + key.string()});
  INFO(from_file.err);
  REQUIRE(from_file.exit_code == 0);
  const auto from_value = cc::test::run_cli(
      {"service-map", "--manifest", manifest.string()}, {},
      {"CONNECTORS_SIGNATURE_KEY=" + kSigningKey, "CONNECTORS_SIGNATURE_KEY_FILE="});
  REQUIRE(from_value.exit_code == 0);
  CHECK(from_file.out == from_value.out);
  const auto verified = cc::test::run_cli(
      {"verify", "-"}, from_file.out,
      {"CONNECTORS_SIGNATURE_KEY=", "CONNECTORS_SIGNATURE_KEY_FILE=" + key.string()});
  CHECK(verified.exit_code == 0);

  const auto both = cc::test::run_cli(
      {"service-map", "--manifest", manifest.string()}, {},
      {"CONNECTORS_SIGNATURE_KEY=" + kSigningKey, "CONNECTORS_SIGNATURE_KEY_FILE=" + key.string()});
  CHECK(both.exit_code == 2);
  CHECK(both.err.find("are both set") != std::string::npos);
  fs::permissions(key, fs::perms::owner_read | fs::perms::others_read);
  const auto wide = cc::test::run_cli(
      {"service-map", "--manifest", manifest.string()}, {},
      {"CONNECTORS_SIGNATURE_KEY=", "CONNECTORS_SIGNATURE_KEY_FILE=" + key.string()});
  CHECK(wide.exit_code == 2);
  CHECK(wide.err.find("(mode 0404)") != std::string::npos);
  CHECK(wide.err.find(kSigningKey) == std::string::npos);
}
