// The cortex-connectors tool, run as a real process.
#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/history.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/sqlite_history.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using cc::test::run_cli;

TEST_CASE("canonicalize prints the RFC 8785 form without a trailing newline", "[cli]") {
  const auto input = cc::test::data_path("jcs/input/weird.json").string();
  auto r = run_cli({"canonicalize", input});
  CHECK(r.exit_code == 0);
  CHECK(r.out == cc::test::read_data("jcs/output/weird.json"));
  auto piped = run_cli({"canonicalize", "-"}, R"({"b":1, "a":2})");
  CHECK(piped.exit_code == 0);
  CHECK(piped.out == R"({"a":2,"b":1})");
  auto stdin_default = run_cli({"canonicalize"}, "[1.0]");
  CHECK(stdin_default.out == "[1]");
}

TEST_CASE("canonicalize exits 1 with the parse error, 2 on usage errors", "[cli]") {
  auto bad = run_cli({"canonicalize", "-"}, R"({"a":1,"a":2})");
  CHECK(bad.exit_code == 1);
  CHECK(bad.out.empty());
  CHECK(bad.err ==
        "[brAInwav] invalid JSON at byte 7: duplicate key \"a\"\n/a: duplicate key \"a\"\n");
  auto missing = run_cli({"canonicalize", "/nonexistent/file.json"});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("cannot open /nonexistent/file.json") != std::string::npos);
  CHECK(run_cli({"canonicalize", "a", "b"}).exit_code == 2);
  CHECK(run_cli({}).exit_code == 2);
  CHECK(run_cli({"frobnicate"}).exit_code == 2);
}

TEST_CASE("verify checks a saved body with CONNECTORS_SIGNATURE_KEY", "[cli]") {
  const std::string key = "cli-test-key";
  const std::string payload = R"({"brand":"brAInwav","count":0})";
  const std::string body = R"({"payload":)" + payload + R"(,"signature":")" +
                           cc::sign_hmac_sha256(cc::as_bytes(key), payload) + "\"}";
  cc::test::TempDir dir;
  cc::test::write_file(dir / "body.json", body);

  auto ok =
      run_cli({"verify", (dir / "body.json").string()}, {}, {"CONNECTORS_SIGNATURE_KEY=" + key});
  CHECK(ok.exit_code == 0);
  auto ok_stdin = run_cli({"verify", "-"}, body, {"CONNECTORS_SIGNATURE_KEY=" + key});
  CHECK(ok_stdin.exit_code == 0);

  auto bad = run_cli({"verify", "-"}, body, {"CONNECTORS_SIGNATURE_KEY=wrong-key"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("signature does not match") != std::string::npos);
  CHECK(bad.err.find("wrong-key") == std::string::npos);

  auto no_key = run_cli({"verify", "-"}, body, {"CONNECTORS_SIGNATURE_KEY="});
  CHECK(no_key.exit_code == 2);
  CHECK(no_key.err.find("CONNECTORS_SIGNATURE_KEY") != std::string::npos);
  CHECK(run_cli({"verify", "-"}, "not json", {"CONNECTORS_SIGNATURE_KEY=" + key}).exit_code == 1);
}

TEST_CASE("validate prints every error, one per line, pointer first", "[cli]") {
  auto ok = run_cli({"validate", cc::test::data_path("manifests/cortex-os-example.manifest.json")});
  CHECK(ok.exit_code == 0);
  cc::test::TempDir dir;
  cc::test::write_file(dir / "bad.json",
                       R"({"id": "x", "manifestVersion": "1", "connectors": [{}], "z": 1})");
  auto bad = run_cli({"validate", (dir / "bad.json").string()});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err == "[brAInwav] manifest is invalid: 9 errors (" + (dir / "bad.json").string() +
                       ")\n"
                       "/id: must be a ULID (26 characters of Crockford base32, upper case)\n"
                       "/connectors/0/id: required field is missing\n"
                       "/connectors/0/name: required field is missing\n"
                       "/connectors/0/version: required field is missing\n"
                       "/connectors/0/endpoint: required field is missing\n"
                       "/connectors/0/auth: required field is missing\n"
                       "/connectors/0/scopes: required field is missing\n"
                       "/connectors/0/ttlSeconds: required field is missing\n"
                       "/z: unknown field \"z\"\n");
  // Integers beyond +-(2^53-1) are findings with their pointer too, as well as the byte offset.
  cc::test::write_file(dir / "big.json", R"({"id": "01J7X5MB4K1ZW0000000000000",
    "manifestVersion": "1", "connectors": [{"id": "a1", "name": "A", "version": "1",
    "endpoint": "https://a.invalid", "auth": {"type": "none"}, "scopes": ["s"],
    "ttlSeconds": 9223372036854775808}]})");
  auto big = run_cli({"validate", (dir / "big.json").string()});
  CHECK(big.exit_code == 1);
  CHECK(big.err.find("invalid JSON at byte ") != std::string::npos);
  CHECK(big.err.find("\n/connectors/0/ttlSeconds: integer 9223372036854775808 is outside the "
                     "exact range of a double (+-2^53-1)\n") != std::string::npos);
  cc::test::write_file(dir / "dup.json", R"({"id": "x", "metadata": {"a~b/c": 1, "a~b/c": 2}})");
  auto dup = run_cli({"validate", (dir / "dup.json").string()});
  CHECK(dup.exit_code == 1);
  CHECK(dup.err.find("\n/metadata/a~0b~1c: duplicate key \"a~b/c\"\n") != std::string::npos);
  auto missing = run_cli({"validate", (dir / "none.json").string()});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find((dir / "none.json").string() + ": file not found") != std::string::npos);
  CHECK(run_cli({"validate"}).exit_code == 2);
}

TEST_CASE("service-map prints the signed body, --plain the canonical bytes", "[cli]") {
  const auto manifest = cc::test::data_path("manifests/cortex-os-example.manifest.json").string();
  const std::vector<std::string> env = {"CONNECTORS_SIGNATURE_KEY=golden-test-key"};
  auto plain = run_cli({"service-map", "--manifest", manifest, "--plain"}, {}, env);
  CHECK(plain.exit_code == 0);
  // The manifest has generatedAt, so the bytes equal the golden body.
  CHECK(plain.out == cc::test::read_data("golden/cortex-os-example.service-map.json"));
  auto pretty = run_cli({"service-map", "--manifest=" + manifest}, {}, env);
  CHECK(pretty.exit_code == 0);
  CHECK(pretty.out.find("\n  \"payload\": {\n") != std::string::npos);
  CHECK(*cc::canonicalize(pretty.out) == plain.out);
  auto verify = run_cli({"verify", "-"}, pretty.out, env);
  CHECK(verify.exit_code == 0);
  CHECK(run_cli({"service-map", "--manifest", manifest}, {}, {"CONNECTORS_SIGNATURE_KEY="})
            .exit_code == 2);
  CHECK(run_cli({"service-map", "--bogus"}, {}, env).exit_code == 2);
}

TEST_CASE("service-map without --manifest reads CONNECTORS_MANIFEST_PATH, as the server does",
          "[cli]") {
  const auto manifest = cc::test::data_path("manifests/cortex-os-example.manifest.json").string();
  cc::test::TempDir dir;
  cc::test::write_file(dir / "other.json", "{}");
  auto from_env =
      run_cli({"service-map", "--plain"}, {},
              {"CONNECTORS_SIGNATURE_KEY=golden-test-key", "CONNECTORS_MANIFEST_PATH=" + manifest});
  CHECK(from_env.exit_code == 0);
  CHECK(from_env.out == cc::test::read_data("golden/cortex-os-example.service-map.json"));
  // --manifest wins over the variable.
  auto flag =
      run_cli({"service-map", "--plain", "--manifest", (dir / "other.json").string()}, {},
              {"CONNECTORS_SIGNATURE_KEY=golden-test-key", "CONNECTORS_MANIFEST_PATH=" + manifest});
  CHECK(flag.exit_code == 1);
  CHECK(flag.err.find((dir / "other.json").string()) != std::string::npos);
  auto missing = run_cli({"service-map", "--plain"}, {},
                         {"CONNECTORS_SIGNATURE_KEY=golden-test-key",
                          "CONNECTORS_MANIFEST_PATH=" + (dir / "none.json").string()});
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find((dir / "none.json").string()) != std::string::npos);
}

TEST_CASE("history diff reads an entry recorded before metadata.count", "[cli][history]") {
  // A store written by a server before 0.2 (top-level count), then one version after it.
  cc::test::TempDir dir;
  {
    auto store = cc::SqliteHistoryStore::open((dir / cc::kHistoryDatabaseName).string());
    REQUIRE_OK(store);
    cc::HistoryEntry e;
    e.content_hash = std::string(64, 'a');
    e.path = "/m.json";
    e.loaded_at = std::chrono::system_clock::now();
    e.manifest = "{}";
    e.signature = "sig";
    e.version = 1;
    e.payload = R"({"brand":"brAInwav","connectors":[{"id":"a"}],"count":1,)"
                R"("metadata":{"brand":"brAInwav"}})";
    REQUIRE_OK((*store)->record(e));
    e.version = 2;
    e.payload = R"({"brand":"brAInwav","connectors":[{"id":"a"}],)"
                R"("metadata":{"brand":"brAInwav","count":1}})";
    REQUIRE_OK((*store)->record(e));
  }
  auto r = run_cli({"history", "diff", "1", "2", "--state-dir", dir.path().string()});
  CHECK(r.exit_code == 0);
  CHECK(r.out ==
        "1 -> 2\n"
        "field metadata: {\"brand\":\"brAInwav\",\"count\":1}\n"
        "field count: (removed)\n");
}
