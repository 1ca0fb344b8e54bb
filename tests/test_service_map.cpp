#include <cstdlib>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/validate.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using cc::test::read_data;

namespace {

constexpr std::string_view kKey = "golden-test-key";
constexpr std::string_view kFallback = "2025-01-01T00:00:00Z";

cc::SignedServiceMap signed_map(std::string_view manifest_text) {
  auto m = cc::parse_manifest(manifest_text);
  REQUIRE_OK(m);
  auto s = cc::sign_service_map(cc::build_service_map(*m, kFallback), cc::as_bytes(kKey));
  REQUIRE_OK(s);
  return std::move(*s);
}

cc::Json payload_of(std::string_view manifest_text) {
  auto m = cc::parse_manifest(manifest_text);
  REQUIRE_OK(m);
  return cc::build_service_map(*m, kFallback);
}

const std::string kBase = R"({
  "id": "01J7X5MB4K1ZW0000000000000", "manifestVersion": "1", "ttlSeconds": 500,
  "metadata": {"surface": "connectors"},
  "connectors": [
    {"id": "zeta", "name": "Zeta", "version": "1", "endpoint": "https://z.invalid",
     "auth": {"type": "apiKey", "headerName": "X-Key", "queryParam": "key"},
     "scopes": ["z"], "ttlSeconds": 900, "status": "disabled", "enabled": true,
     "authentication": {"headers": [{"name": "X-Key", "value": "${ZETA_KEY}"},
                                    {"name": "X-Both", "value": "from-authentication"}]},
     "headers": {"X-Both": "from-headers", "X-Plain": "p"},
     "quotas": {"perHour": 10}, "timeouts": {}, "remoteTools": [], "tags": ["t"]},
    {"id": "alpha", "name": "Alpha", "displayName": "The Alpha", "version": "2",
     "endpoint": "https://a.invalid", "auth": {"type": "bearer"}, "scopes": ["a"],
     "ttlSeconds": 300, "status": "preview", "description": "d",
     "metadata": {"brand": "override", "k": 1}, "timeouts": {"read": 5}}
  ]})";

}  // namespace

TEST_CASE("golden: the original fixture's complete signed body", "[service_map]") {
  const auto s = signed_map(read_data("manifests/original-fixture.manifest.json"));
  CHECK(s.body == read_data("golden/original-fixture.service-map.json"));
  CHECK(cc::verify_signed_body(s.body, cc::as_bytes(kKey)));
}

TEST_CASE("golden: the platform manifest's complete signed body", "[service_map]") {
  const auto s = signed_map(read_data("manifests/cortex-os-example.manifest.json"));
  CHECK(s.body == read_data("golden/cortex-os-example.service-map.json"));
  // generatedAt comes from the manifest, not the fallback.
  CHECK(s.payload.find("generatedAt")->as_string() == "2025-10-10T00:00:00Z");
  CHECK(s.payload.find("ttlSeconds")->as_number() == 900);
}

TEST_CASE("the signature covers exactly the payload served", "[service_map]") {
  const auto s = signed_map(kBase);
  auto body = cc::parse_json(s.body);
  REQUIRE_OK(body);
  const cc::Json& served = *body->find("payload");
  CHECK(served.find("count")->as_number() == 2);
  CHECK(*cc::canonical_json(served) == s.canonical_payload);
  CHECK(cc::verify_hmac_sha256(cc::as_bytes(kKey), s.canonical_payload,
                               body->find("signature")->as_string()));
  // The body is canonical JSON itself.
  CHECK(*cc::canonicalize(s.body) == s.body);
}

TEST_CASE("service map derivation rules", "[service_map]") {
  const cc::Json p = payload_of(kBase);
  CHECK(p.find("brand")->as_string() == "brAInwav");
  CHECK(p.find("generatedAt")->as_string() == kFallback);
  // min(manifest 500, min connector 300)
  CHECK(p.find("ttlSeconds")->as_number() == 300);
  CHECK(*cc::canonical_json(*p.find("metadata")) ==
        R"({"brand":"brAInwav","surface":"connectors"})");
  const auto& list = p.find("connectors")->as_array();
  REQUIRE(list.size() == 2);
  const cc::Json& alpha = list[0];  // sorted by id
  const cc::Json& zeta = list[1];
  CHECK(alpha.find("id")->as_string() == "alpha");
  CHECK(alpha.find("displayName")->as_string() == "The Alpha");
  CHECK(alpha.find("enabled")->as_bool());  // preview counts as enabled
  CHECK(alpha.find("headers") == nullptr);  // omitted when empty
  CHECK(alpha.find("quotas") == nullptr);
  CHECK(alpha.find("remoteTools") == nullptr);
  CHECK(*cc::canonical_json(*alpha.find("metadata")) == R"({"brand":"override","k":1})");
  CHECK(*cc::canonical_json(*alpha.find("timeouts")) == R"({"read":5})");
  CHECK(*cc::canonical_json(*alpha.find("tags")) == "[]");
  CHECK(alpha.find("description")->as_string() == "d");

  CHECK(zeta.find("displayName")->as_string() == "Zeta");
  CHECK(zeta.find("enabled")->as_bool());  // the enabled field wins over status
  CHECK(*cc::canonical_json(*zeta.find("auth")) ==
        R"({"headerName":"X-Key","queryParam":"key","type":"apiKey"})");
  CHECK(*cc::canonical_json(*zeta.find("headers")) ==
        R"({"X-Both":"from-headers","X-Key":"${ZETA_KEY}","X-Plain":"p"})");
  CHECK(*cc::canonical_json(*zeta.find("quotas")) == R"({"perHour":10})");
  CHECK(zeta.find("timeouts") == nullptr);     // empty: omitted
  CHECK(zeta.find("remoteTools") == nullptr);  // empty: omitted
  CHECK(zeta.find("description") == nullptr);
  // Nothing is ever null.
  CHECK(cc::canonical_json(p)->find("null") == std::string::npos);
}

TEST_CASE("ttlSeconds normalisation", "[service_map]") {
  auto ttl = [](std::string_view manifest_ttl) {
    std::string text = kBase;
    text.replace(text.find(R"("ttlSeconds": 500)"), 17, std::string(manifest_ttl));
    return payload_of(text).find("ttlSeconds")->as_number();
  };
  CHECK(ttl(R"("ttlSeconds": 500)") == 300);
  CHECK(ttl(R"("ttlSeconds": 100)") == 100);
  CHECK(ttl(R"("schemaVersion": "1")") == 300);  // no manifest ttl: the minimum connector ttl
}

TEST_CASE("${VAR} templates are never expanded from the environment", "[service_map]") {
  ::setenv("ZETA_KEY", "env-secret-zeta-123", 1);
  ::setenv("PERPLEXITY_API_KEY", "env-secret-pplx-456", 1);
  ::setenv("GITHUB_TOKEN", "env-secret-gh-789", 1);
  const auto a = signed_map(kBase);
  const auto b = signed_map(read_data("manifests/cortex-os-example.manifest.json"));
  for (const std::string* body : {&a.body, &b.body}) {
    CHECK(body->find("env-secret") == std::string::npos);
  }
  CHECK(a.body.find("${ZETA_KEY}") != std::string::npos);
  CHECK(b.body.find("${GITHUB_TOKEN:provided-at-runtime}") != std::string::npos);
  auto cli =
      cc::test::run_cli({"service-map", "--plain", "--manifest",
                         cc::test::data_path("manifests/cortex-os-example.manifest.json").string()},
                        {}, {"CONNECTORS_SIGNATURE_KEY=k", "PERPLEXITY_API_KEY=env-secret-cli"});
  CHECK(cli.exit_code == 0);
  CHECK(cli.out.find("env-secret") == std::string::npos);
  CHECK(cli.out.find("${PERPLEXITY_API_KEY}") != std::string::npos);
  ::unsetenv("ZETA_KEY");
  ::unsetenv("PERPLEXITY_API_KEY");
  ::unsetenv("GITHUB_TOKEN");
}

TEST_CASE("format_rfc3339 writes UTC seconds", "[service_map]") {
  CHECK(cc::format_rfc3339(std::chrono::system_clock::from_time_t(0)) == "1970-01-01T00:00:00Z");
  CHECK(cc::format_rfc3339(std::chrono::system_clock::from_time_t(1760054400)) ==
        "2025-10-10T00:00:00Z");
  CHECK(cc::is_rfc3339_date_time(cc::format_rfc3339(std::chrono::system_clock::now())));
}
