#include <sys/stat.h>
#include <unistd.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/manifest.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/validate.h"
#include "internal/json_reader.h"
#include "internal/manifest_dom.h"
#include "internal/service_map.h"
#include "manifest_mutator.h"
#include "test_utils.h"
// The benchmarks' manifest generator (header-only, self-contained).
#include "../bench/manifest_generator.h"

namespace cc = cortex_connectors;
using cc::test::read_data;

namespace {

using cc::test::kValid;
using cc::test::with;

// The findings of an invalid manifest, as "pointer: message" lines.
std::vector<std::string> findings(std::string_view text) {
  auto r = cc::parse_manifest(text);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == cc::ErrorCode::kInvalid);
  std::vector<std::string> out;
  for (const auto& i : r.error().issues) out.push_back(i.pointer + ": " + i.message);
  return out;
}

using Lines = std::vector<std::string>;

}  // namespace

TEST_CASE("the platform's real manifest loads", "[manifest]") {
  auto r = cc::parse_manifest(read_data("manifests/cortex-os-example.manifest.json"));
  REQUIRE_OK(r);
  const cc::Manifest& m = *r;
  CHECK(m.id == "01JAG0Y4ZP1XK9YZ2FQ0N3WVCH");
  CHECK(m.manifest_version == "2025.10.10");
  CHECK(m.generated_at == "2025-10-10T00:00:00Z");
  CHECK(m.ttl_seconds == 3600);
  REQUIRE(m.connectors.size() == 3);
  const auto& perplexity = m.connectors[0];
  CHECK(perplexity.id == "perplexity-search");
  CHECK(perplexity.auth.type == cc::AuthType::kBearer);
  CHECK(perplexity.quotas->concurrent == 8);
  CHECK(perplexity.authentication_headers->at(0).value == "Bearer ${PERPLEXITY_API_KEY}");
  CHECK(perplexity.is_enabled());
  const auto& github = m.connectors[1];
  CHECK(github.enabled == false);
  CHECK_FALSE(github.is_enabled());
  CHECK_FALSE(github.quotas->concurrent.has_value());
  const auto& wikidata = m.connectors[2];
  CHECK(wikidata.auth.type == cc::AuthType::kNone);
  CHECK(wikidata.remote_tools.as_array().size() == 4);
  CHECK(wikidata.metadata.find("embeddingDimensions")->as_number() == 1024);
}

TEST_CASE("the original test-suite's fixture manifest loads", "[manifest]") {
  auto r = cc::parse_manifest(read_data("manifests/original-fixture.manifest.json"));
  REQUIRE_OK(r);
  REQUIRE(r->connectors.size() == 3);
  CHECK(r->id == "01J7X5MB4K1ZW0000000000000");
  CHECK(r->connectors[0].is_enabled());
  CHECK(r->connectors[1].metadata.find("tools")->as_array().size() == 3);
  CHECK(r->connectors[2].status == cc::ConnectorStatus::kDisabled);
  CHECK_FALSE(r->connectors[2].is_enabled());
  CHECK(r->connectors[2].auth.header_name == "X-Api-Key");
}

TEST_CASE("a minimal manifest is valid", "[manifest]") {
  REQUIRE_OK(cc::parse_manifest(kValid));
  CHECK(cc::validate_manifest(*cc::parse_json(kValid)).empty());
}

TEST_CASE("missing required fields are each reported", "[manifest]") {
  CHECK(findings("{}") == Lines{"/id: required field is missing",
                                "/manifestVersion: required field is missing",
                                "/connectors: required field is missing"});
  CHECK(findings(with(R"("id": "alpha", "name": "Alpha", "version": "1.0.0",)", "")) ==
        Lines{"/connectors/0/id: required field is missing",
              "/connectors/0/name: required field is missing",
              "/connectors/0/version: required field is missing"});
  CHECK(findings(with(R"({"type": "bearer"})", "{}")) ==
        Lines{"/connectors/0/auth/type: required field is missing"});
  CHECK(findings("[]") == Lines{": must be an object, got array"});
}

TEST_CASE("duplicate connector ids and duplicate scopes", "[manifest]") {
  const std::string connector =
      R"({"id": "alpha", "name": "A", "version": "1", "endpoint": "https://a.invalid",
          "auth": {"type": "none"}, "scopes": ["s"], "ttlSeconds": 1})";
  const std::string text = with(R"("connectors": [)", R"("connectors": [)" + connector + ",");
  CHECK(findings(text) ==
        Lines{R"(/connectors/1/id: duplicate connector id "alpha" (first at /connectors/0))"});
  CHECK(findings(with(R"(["a:read"])", R"(["search:query", "search:query", "x"])")) ==
        Lines{R"(/connectors/0/scopes/1: duplicate scope "search:query")"});
}

TEST_CASE("unknown fields are errors at every level", "[manifest]") {
  CHECK(findings(with(R"("manifestVersion")", R"("extra": 1, "manifestVersion")")) ==
        Lines{R"(/extra: unknown field "extra")"});
  CHECK(findings(with(R"("ttlSeconds": 60)", R"("ttlSeconds": 60, "a/b~c": true)")) ==
        Lines{R"(/connectors/0/a~1b~0c: unknown field "a/b~c")"});
  CHECK(findings(with(R"({"type": "bearer"})", R"({"type": "bearer", "header": "x"})")) ==
        Lines{R"(/connectors/0/auth/header: unknown field "header")"});
  CHECK(findings(with(R"("ttlSeconds": 60)", R"("ttlSeconds": 60, "quotas": {"perWeek": 1})")) ==
        Lines{R"(/connectors/0/quotas/perWeek: unknown field "perWeek")"});
}

TEST_CASE("wrong types name what was expected and what was found", "[manifest]") {
  CHECK(findings(with(R"("ttlSeconds": 60)", R"("ttlSeconds": "60")")) ==
        Lines{"/connectors/0/ttlSeconds: must be an integer >= 1, got string"});
  CHECK(findings(with(R"("name": "Alpha")", R"("name": 7)")) ==
        Lines{"/connectors/0/name: must be a non-empty string, got number"});
  CHECK(findings(with(R"(["a:read"])", R"("a:read")")) ==
        Lines{"/connectors/0/scopes: must be a non-empty array, got string"});
  CHECK(findings(with(R"("ttlSeconds": 60)", R"("ttlSeconds": 60, "enabled": "yes")")) ==
        Lines{"/connectors/0/enabled: must be a boolean, got string"});
  CHECK(findings(with(R"("ttlSeconds": 60)", R"("ttlSeconds": 60, "metadata": [])")) ==
        Lines{"/connectors/0/metadata: must be an object, got array"});
  CHECK(findings(with(R"("ttlSeconds": 60)", R"("ttlSeconds": 60, "headers": {"X-A": 1})")) ==
        Lines{"/connectors/0/headers/X-A: must be a string, got number"});
  CHECK(findings(with(R"("ttlSeconds": 60)", R"("ttlSeconds": 60, "tags": ["a", null])")) ==
        Lines{"/connectors/0/tags/1: must be a string, got null"});
  CHECK(findings(with(R"("connectors": [)", R"("connectors": [1,)")) ==
        Lines{"/connectors/0: must be an object, got number"});
}

TEST_CASE("empty strings and empty arrays where content is required", "[manifest]") {
  CHECK(findings(with(R"("manifestVersion": "1.0.0")", R"("manifestVersion": "")")) ==
        Lines{"/manifestVersion: must be a non-empty string"});
  CHECK(findings(with(R"("version": "1.0.0")", R"("version": "")")) ==
        Lines{"/connectors/0/version: must be a non-empty string"});
  CHECK(findings(with(R"(["a:read"])", "[]")) ==
        Lines{"/connectors/0/scopes: must be a non-empty array"});
  CHECK(findings(with(R"(["a:read"])", R"(["a", ""])")) ==
        Lines{"/connectors/0/scopes/1: must be a non-empty string"});
  CHECK(findings(with(R"({"type": "bearer"})", R"({"type": "bearer", "headerName": ""})")) ==
        Lines{"/connectors/0/auth/headerName: must be a non-empty string"});
  CHECK(findings(with(R"("ttlSeconds": 60)",
                      R"("ttlSeconds": 60, "authentication": {"headers": []})")) ==
        Lines{"/connectors/0/authentication/headers: must be a non-empty array"});
  CHECK(findings(with(R"("ttlSeconds": 60)",
                      R"("ttlSeconds": 60, "authentication": {"headers": [{"name": ""}]})")) ==
        Lines{"/connectors/0/authentication/headers/0/name: must be a non-empty string",
              "/connectors/0/authentication/headers/0/value: required field is missing"});
  const std::string no_connectors = R"({"id": "01J7X5MB4K1ZW0000000000000",
    "manifestVersion": "1", "connectors": []})";
  CHECK(findings(no_connectors) == Lines{"/connectors: must be a non-empty array"});
}

TEST_CASE("ULIDs, connector ids, URIs and RFC 3339 times", "[manifest]") {
  CHECK(findings(with("01J7X5MB4K1ZW0000000000000", "01J7X5MB4K1ZW000000000000I")) ==
        Lines{"/id: must be a ULID (26 characters of Crockford base32, upper case)"});
  CHECK(findings(with(R"("id": "alpha")", R"("id": "Alpha")")) ==
        Lines{R"(/connectors/0/id: must match ^[a-z0-9][a-z0-9-]{1,62}$, got "Alpha")"});
  CHECK(findings(with("https://alpha.example.invalid/mcp", "alpha.example.invalid/mcp")) ==
        Lines{"/connectors/0/endpoint: must be an absolute URI (scheme://authority...), got "
              "\"alpha.example.invalid/mcp\""});
  CHECK(findings(with(R"("manifestVersion")", R"("generatedAt": "2025-02-30T00:00:00Z",
                      "manifestVersion")")) ==
        Lines{"/generatedAt: must be an RFC 3339 date-time, e.g. 2025-10-10T00:00:00Z"});

  CHECK(cc::is_ulid("01JAG0Y4ZP1XK9YZ2FQ0N3WVCH"));
  CHECK_FALSE(cc::is_ulid("01jag0y4zp1xk9yz2fq0n3wvch"));
  CHECK_FALSE(cc::is_ulid("01JAG0Y4ZP1XK9YZ2FQ0N3WVC"));
  CHECK_FALSE(cc::is_ulid("01JAG0Y4ZP1XK9YZ2FQ0N3WVCU"));
  CHECK(cc::is_connector_id("a1"));
  CHECK(cc::is_connector_id("perplexity-search"));
  CHECK(cc::is_connector_id(std::string(63, 'a')));
  CHECK_FALSE(cc::is_connector_id(std::string(64, 'a')));
  CHECK_FALSE(cc::is_connector_id("a"));
  CHECK_FALSE(cc::is_connector_id("-ab"));
  CHECK_FALSE(cc::is_connector_id("a_b"));
  CHECK(cc::is_absolute_uri("https://wd-mcp.wmcloud.org/mcp/"));
  CHECK(cc::is_absolute_uri("redis://user@host:6379"));
  CHECK(cc::is_absolute_uri("git+ssh://host"));
  CHECK_FALSE(cc::is_absolute_uri("https://"));
  CHECK_FALSE(cc::is_absolute_uri("https:///path"));
  CHECK_FALSE(cc::is_absolute_uri("1http://host"));
  CHECK_FALSE(cc::is_absolute_uri("http://ho st"));
  CHECK_FALSE(cc::is_absolute_uri("mailto:a@b"));
  CHECK(cc::is_rfc3339_date_time("2025-10-10T00:00:00Z"));
  CHECK(cc::is_rfc3339_date_time("2024-02-29T23:59:60.123+05:30"));
  CHECK(cc::is_rfc3339_date_time("2025-10-10t00:00:00z"));
  CHECK_FALSE(cc::is_rfc3339_date_time("2023-02-29T00:00:00Z"));
  CHECK_FALSE(cc::is_rfc3339_date_time("2025-10-10 00:00:00Z"));
  CHECK_FALSE(cc::is_rfc3339_date_time("2025-10-10T24:00:00Z"));
  CHECK_FALSE(cc::is_rfc3339_date_time("2025-10-10T00:00:00"));
  CHECK_FALSE(cc::is_rfc3339_date_time("2025-10-10T00:00:00.Z"));
  CHECK_FALSE(cc::is_rfc3339_date_time("2025-10-10T00:00:00+5:30"));
  CHECK_FALSE(cc::is_rfc3339_date_time("2025-10-10"));
}

TEST_CASE("negative, fractional and huge integers", "[manifest]") {
  CHECK(findings(with(R"("ttlSeconds": 60)", R"("ttlSeconds": 0)")) ==
        Lines{"/connectors/0/ttlSeconds: must be an integer >= 1, got 0"});
  CHECK(findings(with(R"("ttlSeconds": 60)", R"("ttlSeconds": 1.5)")) ==
        Lines{"/connectors/0/ttlSeconds: must be an integer >= 1, got a non-integer number"});
  CHECK(findings(with(R"("ttlSeconds": 60)", R"("ttlSeconds": 60, "quotas": {"perDay": -1})")) ==
        Lines{"/connectors/0/quotas/perDay: must be an integer >= 0, got -1"});
  CHECK(findings(with(R"("ttlSeconds": 60)",
                      R"("ttlSeconds": 60, "timeouts": {"connect": -5, "read": 1000})")) ==
        Lines{"/connectors/0/timeouts/connect: must be an integer >= 0, got -5"});
  // Beyond 2^53 a double would round it: rejected by the parser with the offset.
  const std::string huge = with(R"("ttlSeconds": 60)", R"("ttlSeconds": 9007199254740993)");
  auto r = cc::parse_manifest(huge);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == cc::ErrorCode::kParse);
  CHECK(r.error().message.find("integer 9007199254740993 is outside the exact range") !=
        std::string::npos);
  auto r64 =
      cc::parse_manifest(with(R"("ttlSeconds": 60)", R"("ttlSeconds": 99999999999999999999)"));
  REQUIRE_FALSE(r64);
  CHECK(r64.error().code == cc::ErrorCode::kParse);
}

TEST_CASE("enumerations and the brand", "[manifest]") {
  CHECK(findings(with(R"({"type": "bearer"})", R"({"type": "oauth"})")) ==
        Lines{R"(/connectors/0/auth/type: must be one of apiKey, bearer, none, got "oauth")"});
  CHECK(findings(with(R"("ttlSeconds": 60)", R"("ttlSeconds": 60, "status": "on")")) ==
        Lines{R"(/connectors/0/status: must be one of enabled, disabled, preview, got "on")"});
  CHECK(findings(with(R"("manifestVersion")", R"("brand": "brainwav", "manifestVersion")")) ==
        Lines{R"(/brand: must be "brAInwav")"});
  CHECK(
      findings(with(R"("ttlSeconds": 60)", R"("ttlSeconds": 60, "remoteTools": [{"tags": []}])")) ==
      Lines{"/connectors/0/remoteTools/0/name: required field is missing"});
}

TEST_CASE("every error is reported, in document order, capped", "[manifest]") {
  const std::string text = R"({"id": "bad", "manifestVersion": 1, "connectors": [
    {"id": "A", "name": "", "version": "1", "endpoint": "x", "auth": {"type": "?"},
     "scopes": ["s", "s"], "ttlSeconds": 0, "color": "red"}], "extra": null})";
  CHECK(findings(text) ==
        Lines{"/id: must be a ULID (26 characters of Crockford base32, upper case)",
              "/manifestVersion: must be a non-empty string, got number",
              R"(/connectors/0/id: must match ^[a-z0-9][a-z0-9-]{1,62}$, got "A")",
              "/connectors/0/name: must be a non-empty string",
              R"(/connectors/0/endpoint: must be an absolute URI (scheme://authority...), got "x")",
              R"(/connectors/0/auth/type: must be one of apiKey, bearer, none, got "?")",
              R"(/connectors/0/scopes/1: duplicate scope "s")",
              "/connectors/0/ttlSeconds: must be an integer >= 1, got 0",
              R"(/connectors/0/color: unknown field "color")", R"(/extra: unknown field "extra")"});

  std::string many =
      R"({"id": "01J7X5MB4K1ZW0000000000000", "manifestVersion": "1", "connectors": [)";
  for (int i = 0; i < 150; ++i) many += std::string(i ? "," : "") + "{}";
  many += "]}";
  auto r = cc::parse_manifest(many);
  REQUIRE_FALSE(r);
  CHECK(r.error().issues.size() == cc::kMaxIssues);
  CHECK(r.error().message == "[brAInwav] manifest is invalid: 1050 errors (first 100 listed)");
  // The same input always gives the same findings.
  CHECK(cc::parse_manifest(many).error().issues == r.error().issues);
}

TEST_CASE("hostile manifests give clear errors", "[manifest]") {
  // Deep nesting inside free-form metadata.
  std::string deep = std::string(10000, '[') + std::string(10000, ']');
  auto r = cc::parse_manifest(
      with(R"("ttlSeconds": 60)", R"("ttlSeconds": 60, "metadata": {"x": )" + deep + "}"));
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("nesting deeper than 32 levels") != std::string::npos);
  // A 1 MB string.
  auto big = cc::parse_manifest(with("Alpha", std::string(1 << 20, 'x')));
  REQUIRE_FALSE(big);
  CHECK(big.error().message.find("string of 1048576 bytes exceeds the limit of 65536 bytes") !=
        std::string::npos);
  // Invalid UTF-8.
  auto bad = cc::parse_manifest(with("Alpha", "Al\xff"));
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("invalid UTF-8") != std::string::npos);
  CHECK(bad.error().offset == kValid.find("Alpha") + 2);
  // Empty text, and duplicate keys.
  CHECK(cc::parse_manifest("").error().code == cc::ErrorCode::kParse);
  CHECK(cc::parse_manifest(with(R"("ttlSeconds": 60)", R"("ttlSeconds": 60, "ttlSeconds": 60)"))
            .error()
            .message.find("duplicate key \"ttlSeconds\"") != std::string::npos);
}

TEST_CASE("a 50 MB manifest is refused over the limit and loads under it", "[manifest]") {
  // Build ~50 MB of valid connectors.
  std::string text =
      R"({"id": "01J7X5MB4K1ZW0000000000000", "manifestVersion": "1", "connectors": [)";
  const std::string padding(400, 'd');
  int n = 0;
  while (text.size() < (std::size_t{50} << 20)) {
    text.append(n ? "," : "").append(R"({"id": "c)").append(std::to_string(n));
    text.append(
        R"(", "name": "C", "version": "1", "endpoint": "https://c.invalid", "auth": {"type": "none"}, "scopes": ["s"], "ttlSeconds": 5, "description": ")");
    text.append(padding).append("\"}");
    ++n;
  }
  text += "]}";
  cc::ManifestLimits small;
  small.max_bytes = 16 << 20;
  auto refused = cc::parse_manifest(text, small);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("exceeds the limit of 16777216 bytes") != std::string::npos);
  auto loaded = cc::parse_manifest(text);
  REQUIRE_OK(loaded);
  CHECK(loaded->connectors.size() == static_cast<std::size_t>(n));
}

TEST_CASE("read_manifest_file refuses what is not a readable regular file", "[manifest]") {
  cc::test::TempDir dir;
  SECTION("missing file, with every attempt listed") {
    auto r = cc::read_manifest_file((dir / "absent.json").string());
    REQUIRE_FALSE(r);
    CHECK(r.error().code == cc::ErrorCode::kNotFound);
    REQUIRE(r.error().issues.size() == 1);
    CHECK(r.error().issues[0].pointer == (dir / "absent.json").string());
    CHECK(r.error().issues[0].message == "file not found");
  }
  SECTION("a directory") {
    auto r = cc::read_manifest_file(dir.path().string());
    REQUIRE_FALSE(r);
    CHECK(r.error().code == cc::ErrorCode::kIo);
    CHECK(r.error().issues[0].message == "is a directory, not a file");
  }
  SECTION("a FIFO does not block") {
    const auto fifo = dir / "fifo.json";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto r = cc::read_manifest_file(fifo.string());
    REQUIRE_FALSE(r);
    CHECK(r.error().issues[0].message == "is not a regular file (FIFO, socket or device)");
  }
  SECTION("an empty file") {
    cc::test::write_file(dir / "empty.json", "");
    auto r = cc::read_manifest_file((dir / "empty.json").string());
    REQUIRE_FALSE(r);
    CHECK(r.error().issues[0].message == "file is empty");
  }
  SECTION("a file over the size limit is not read") {
    cc::test::write_file(dir / "big.json", std::string(2048, ' '));
    cc::ManifestLimits limits;
    limits.max_bytes = 1024;
    auto r = cc::read_manifest_file((dir / "big.json").string(), limits);
    REQUIRE_FALSE(r);
    CHECK(r.error().issues[0].message == "file of 2048 bytes exceeds the limit of 1024 bytes");
  }
  SECTION("unreadable permissions") {
    const auto path = dir / "secret.json";
    cc::test::write_file(path, kValid);
    REQUIRE(::chmod(path.c_str(), 0) == 0);
    if (::geteuid() == 0) {
      // root reads any file; the permission check is the kernel's, so there is nothing to test.
      SUCCEED("running as root: permission bits do not apply");
    } else {
      auto r = cc::read_manifest_file(path.string());
      REQUIRE_FALSE(r);
      CHECK(r.error().issues[0].message == "Permission denied");
    }
  }
  SECTION("the default candidate is config/connectors.manifest.json in the working directory") {
    std::filesystem::create_directories(dir / "config");
    cc::test::write_file(dir / "config/connectors.manifest.json", kValid);
    const auto old = std::filesystem::current_path();
    std::filesystem::current_path(dir.path());
    auto r = cc::load_manifest(std::nullopt);
    std::filesystem::current_path(old);
    REQUIRE_OK(r);
    CHECK(r->file.path == "config/connectors.manifest.json");
    CHECK(r->manifest.connectors.size() == 1);
  }
}

TEST_CASE("load_manifest names the file in parse and validation errors", "[manifest]") {
  cc::test::TempDir dir;
  cc::test::write_file(dir / "bad.json", "{\"id\": 1");
  auto r = cc::load_manifest((dir / "bad.json").string());
  REQUIRE_FALSE(r);
  CHECK(r.error().code == cc::ErrorCode::kParse);
  CHECK(r.error().message.find((dir / "bad.json").string()) != std::string::npos);
}

// ---- parse_manifest()'s fast path against the Json path ------------------------------------

namespace {

// parse_manifest() must give what parse_json() + manifest_from_json() give, and a manifest the
// Json path accepts must be accepted by the DOM walk itself, not by its fallback.
void check_fast_matches_slow(std::string_view text, const cc::ManifestLimits& limits = {}) {
  const cc::JsonParseOptions options = cc::internal::manifest_parse_options(limits);
  auto doc = cc::parse_json(text, options);
  cc::Result<cc::Manifest> slow =
      doc ? cc::manifest_from_json(std::move(*doc)) : cc::Result<cc::Manifest>(doc.error());
  auto fast = cc::parse_manifest(text, limits);
  INFO(text.substr(0, 2000));
  REQUIRE(static_cast<bool>(fast) == static_cast<bool>(slow));

  bool walked = false;
  cc::Manifest direct;
  const cc::internal::DomLimits dom_limits(options);
  auto walk = [&](simdjson::dom::element root) {
    cc::internal::ManifestView view;
    walked = cc::internal::manifest_view_from_dom(root, dom_limits, view);
    if (walked) direct = cc::internal::to_manifest(view, limits.parallel_connectors);
    return true;
  };
  (void)cc::internal::visit_dom(text, options, walk);
  // The rebuild's path: the body written from the DOM, without a Manifest.
  constexpr std::string_view kKey = "fast-slow-key";
  auto body = cc::sign_manifest_text(text, "2025-01-01T00:00:00Z", cc::as_bytes(kKey), {}, limits);
  REQUIRE(static_cast<bool>(body) == static_cast<bool>(slow));
  if (slow) {
    CHECK(*fast == *slow);
    CHECK(walked);
    CHECK(direct == *slow);
    CHECK(body->body ==
          cc::internal::sign_manifest_service_map(*slow, "2025-01-01T00:00:00Z", cc::as_bytes(kKey))
              ->body);
    return;
  }
  CHECK_FALSE(walked);
  CHECK(body.error().message == slow.error().message);
  CHECK(body.error().issues.size() == slow.error().issues.size());
  CHECK(fast.error().code == slow.error().code);
  CHECK(fast.error().message == slow.error().message);
  CHECK(fast.error().offset == slow.error().offset);
  REQUIRE(fast.error().issues.size() == slow.error().issues.size());
  for (std::size_t i = 0; i < slow.error().issues.size(); ++i) {
    CHECK(fast.error().issues[i].pointer == slow.error().issues[i].pointer);
    CHECK(fast.error().issues[i].message == slow.error().issues[i].message);
  }
}

}  // namespace

TEST_CASE("fast path: valid manifests are read by the DOM walk, equal to the Json path",
          "[manifest][fast_path]") {
  check_fast_matches_slow(read_data("manifests/cortex-os-example.manifest.json"));
  check_fast_matches_slow(read_data("manifests/original-fixture.manifest.json"));
  check_fast_matches_slow(kValid);
  for (const std::size_t n : {std::size_t{1}, std::size_t{10}, std::size_t{300}}) {
    for (const std::uint64_t seed : {std::uint64_t{301}, std::uint64_t{302}}) {
      check_fast_matches_slow(cc::bench::generate_manifest(n, seed));
    }
  }
  // Numbers the integer rules accept in every spelling.
  check_fast_matches_slow(with(R"("ttlSeconds": 60)", R"("ttlSeconds": 60.0)"));
  check_fast_matches_slow(with(R"("ttlSeconds": 60)", R"("ttlSeconds": 6e1)"));
  check_fast_matches_slow(with(R"("ttlSeconds": 60)", R"("ttlSeconds": 9007199254740991)"));
}

TEST_CASE("fast path: invalid manifests fail as on the Json path", "[manifest][fast_path]") {
  const std::string ttl = R"("ttlSeconds": 60)";
  for (const char* v :
       {"0", "-0", "0.5", "1e400", "9007199254740992", "-9007199254740993", "18446744073709551615",
        "123456789012345678901234", "9007199254740992.0", "\"60\"", "true", "null"}) {
    check_fast_matches_slow(with(ttl, std::string(R"("ttlSeconds": )") + v));
  }
  // Duplicate keys in every kind of object.
  check_fast_matches_slow(with(R"("manifestVersion")", R"("id": "01J7X5MB4K1ZW0000000000000",
      "manifestVersion")"));
  check_fast_matches_slow(with(R"("name": "Alpha")", R"("name": "Alpha", "name": "Beta")"));
  check_fast_matches_slow(with(R"({"type": "bearer"})", R"({"type": "bearer", "type": "none"})"));
  check_fast_matches_slow(with(ttl, ttl + R"(, "quotas": {"perDay": 1, "perDay": 2})"));
  check_fast_matches_slow(with(ttl, ttl + R"(, "metadata": {"a": 1, "a": 2})"));
  check_fast_matches_slow(with(ttl, ttl + R"(, "headers": {"a": "1", "a": "1"})"));
  check_fast_matches_slow(with(ttl, ttl + R"(, "timeouts": {"a": 1, "a": 1})"));
  check_fast_matches_slow(with(ttl, ttl + R"(, "authentication": {"headers":
      [{"name": "a", "value": "1", "name": "b"}]})"));
  check_fast_matches_slow(with(ttl, ttl + R"(, "remoteTools": [{"name": "a", "tags": [],
      "tags": []}]})"));
  check_fast_matches_slow(with(ttl, ttl + R"(, "tags": ["a"], "tags": ["b"])"));
  // Duplicate connector ids.
  check_fast_matches_slow(with(R"(}
  ])",
                               R"(},
    {"id": "alpha", "name": "Alpha", "version": "1.0.0",
     "endpoint": "https://alpha.example.invalid/mcp",
     "auth": {"type": "bearer"}, "scopes": ["a:read"], "ttlSeconds": 60}
  ])"));
  // Not JSON, or not an object.
  for (const char* text : {"", "[]", "{", "null", "\"x\"", "{\"id\": 1e999}", "\xff"}) {
    check_fast_matches_slow(text);
  }
}

TEST_CASE("fast path: depth and string limits as on the Json path", "[manifest][fast_path]") {
  const std::string fixture = read_data("manifests/cortex-os-example.manifest.json");
  const std::string generated = cc::bench::generate_manifest(40, 301);
  for (const std::string* text : {&fixture, &generated}) {
    for (std::size_t depth = 1; depth <= 9; ++depth) {
      cc::ManifestLimits limits;
      limits.max_depth = depth;
      check_fast_matches_slow(*text, limits);
    }
    for (const unsigned bytes : {0U, 4U, 8U, 16U, 24U, 32U, 48U, 64U, 100U, 128U}) {
      cc::ManifestLimits limits;
      limits.max_string_bytes = bytes;
      check_fast_matches_slow(*text, limits);
    }
  }
}

TEST_CASE("fast path: random edits of valid manifests", "[manifest][fast_path]") {
  auto original = cc::parse_json(cc::bench::generate_manifest(6, 303));
  auto platform = cc::parse_json(read_data("manifests/cortex-os-example.manifest.json"));
  REQUIRE_OK(original);
  REQUIRE_OK(platform);
  cc::test::Mutator mutator(20251127);
  cc::ManifestLimits two_threads;  // and every other one read by a second thread
  two_threads.parallel_connectors = 2;
  for (int round = 0; round < 1500; ++round) {
    check_fast_matches_slow(mutator.mutate(round % 2 == 0 ? *original : *platform),
                            round % 3 == 0 ? two_threads : cc::ManifestLimits{});
  }
}

TEST_CASE("fast path: connectors read by two threads give the same Manifest",
          "[manifest][fast_path]") {
  const std::string text = cc::bench::generate_manifest(3000, 301);
  cc::ManifestLimits serial;
  serial.parallel_connectors = 0;
  cc::ManifestLimits parallel;
  parallel.parallel_connectors = 2;
  auto a = cc::parse_manifest(text, serial);
  auto b = cc::parse_manifest(text, parallel);
  auto c = cc::parse_manifest(text);  // the default: one thread
  REQUIRE_OK(a);
  REQUIRE_OK(b);
  REQUIRE_OK(c);
  CHECK(*a == *b);
  CHECK(*a == *c);
  check_fast_matches_slow(text, parallel);
  // A broken rule or a duplicate id in either half fails as on the Json path.
  check_fast_matches_slow(with(R"("id":"c-000002")", R"("id":"c-002999")", text), parallel);
  check_fast_matches_slow(with(R"("id":"c-002999")", R"("id":"c-000002")", text), parallel);
  check_fast_matches_slow(with(R"("id":"c-002999")", R"("id":"C-002999")", text), parallel);
  check_fast_matches_slow(with(R"("id":"c-000001")", R"("id":"C-000001")", text), parallel);
}
