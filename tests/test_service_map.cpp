#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <span>
#include <vector>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/validate.h"
#include "internal/service_map.h"
#include "test_utils.h"
// The benchmarks' manifest generator (header-only, self-contained).
#include "../bench/manifest_generator.h"

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
  // The payload's shape is the Python service's: {id, brand, generatedAt, ttlSeconds,
  // connectors, metadata}, with the number of connectors in metadata.count.
  auto verified = cc::verify_signed_body(s.body, cc::as_bytes(kKey));
  REQUIRE_OK(verified);
  std::vector<std::string> keys;
  for (const auto& [key, value] : verified->as_object()) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"brand", "connectors", "generatedAt", "id", "metadata",
                                         "ttlSeconds"});
  CHECK(verified->find("metadata")->find("count")->as_number() == 3);
  // generatedAt comes from the manifest, not the fallback.
  CHECK(s.payload.find("generatedAt")->as_string() == "2025-10-10T00:00:00Z");
  CHECK(s.payload.find("ttlSeconds")->as_number() == 900);
}

TEST_CASE("the signature covers exactly the payload served", "[service_map]") {
  const auto s = signed_map(kBase);
  auto body = cc::parse_json(s.body);
  REQUIRE_OK(body);
  const cc::Json& served = *body->find("payload");
  // The number of connectors sits in metadata, as the Python service serves it.
  CHECK(served.find("metadata")->find("count")->as_number() == 2);
  CHECK(served.find("count") == nullptr);
  CHECK(*cc::canonical_json(served) == s.canonical_payload());
  CHECK(cc::verify_hmac_sha256(cc::as_bytes(kKey), s.canonical_payload(),
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
        R"({"brand":"brAInwav","count":2,"surface":"connectors"})");
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

// ---- sign_manifest_service_map(): the payload written straight from the Manifest ------------

namespace {

// The fast path and the Json path must give the same bytes (and so the same signature).
void check_same_as_json_path(const cc::Manifest& m, std::string_view fallback = kFallback) {
  auto slow = cc::sign_service_map(cc::build_service_map(m, fallback), cc::as_bytes(kKey));
  auto fast = cc::internal::sign_manifest_service_map(m, fallback, cc::as_bytes(kKey));
  REQUIRE(static_cast<bool>(slow) == static_cast<bool>(fast));
  if (!slow) return;
  CHECK(fast->canonical_payload() == slow->canonical_payload());
  CHECK(fast->signature == slow->signature);
  CHECK(fast->body == slow->body);
  CHECK(fast->payload.is_null());
}

cc::Manifest parsed(std::string_view text) {
  auto m = cc::parse_manifest(text);
  REQUIRE_OK(m);
  return std::move(*m);
}

// Random free-form JSON: keys and strings mix ASCII, escapes, controls, 2-, 3- and 4-byte UTF-8
// (U+E000..U+FFFF and supplementary characters sort differently in UTF-16 than in UTF-8), and
// numbers of every shape canonical JSON formats differently.
class RandomJson {
 public:
  explicit RandomJson(std::uint32_t seed) : rng_(seed) {}

  std::string text() {
    static const char* const kPieces[] = {"a",
                                          "b",
                                          "Z",
                                          "brand",
                                          "\"",
                                          "\\",
                                          "\n",
                                          "\x01",
                                          "\x7f",
                                          "é",
                                          "\xe2\x82\xac" /* € */,
                                          "\xee\x80\x80" /* U+E000 */,
                                          "\xef\xbf\xbd",
                                          "\xf0\x9f\x98\x80" /* U+1F600 */,
                                          "~",
                                          "/",
                                          " "};
    std::string out;
    const int n = below(6);
    for (int i = 0; i < n; ++i) out += kPieces[below(std::size(kPieces))];
    return out;
  }

  double number() {
    static const double kNumbers[] = {
        0.0,   -0.0,      1.0,     -1.0, 0.5, 1e21, 1e-7, 123456789012345.0, 9007199254740991.0,
        1e300, -2.5e-300, 3.14159, 100.0};
    if (below(2) == 0) return kNumbers[below(std::size(kNumbers))];
    return std::ldexp(static_cast<double>(rng_()) - 2147483648.0, below(80) - 40);
  }

  cc::Json value(int depth) {
    const int kind = below(depth > 2 ? 4 : 6);
    switch (kind) {
      case 0:
        return cc::Json(text());
      case 1:
        return cc::Json(number());
      case 2:
        return below(2) == 0 ? cc::Json(true) : cc::Json(nullptr);
      case 3:
        return cc::Json(false);
      case 4: {
        cc::Json a = cc::Json::array();
        const int n = below(4);
        for (int i = 0; i < n; ++i) a.push_back(value(depth + 1));
        return a;
      }
      default:
        return object(depth + 1);
    }
  }

  cc::Json object(int depth) {
    cc::Json o = cc::Json::object();
    const int n = below(6);
    for (int i = 0; i < n; ++i) o.set(text(), value(depth));
    return o;
  }

  int below(std::size_t n) { return static_cast<int>(rng_() % n); }

 private:
  std::mt19937 rng_;
};

// A random valid-shaped Manifest with every optional part present or absent.
cc::Manifest random_manifest(RandomJson& r, std::size_t connectors) {
  cc::Manifest m;
  m.id = "01J7X5MB4K1ZW0000000000000";
  m.manifest_version = "1";
  if (r.below(2) == 0) m.generated_at = "2025-10-10T00:00:00Z";
  if (r.below(2) == 0) m.ttl_seconds = 1 + r.below(1000);
  if (r.below(3) != 0) m.metadata = r.object(1);
  for (std::size_t i = 0; i < connectors; ++i) {
    cc::Connector c;
    c.id = "c-" + std::to_string(r.below(100000));
    c.name = r.text();
    c.version = r.text();
    c.endpoint = "https://" + r.text();
    c.auth.type = static_cast<cc::AuthType>(r.below(3));
    if (r.below(2) == 0) c.auth.header_name = r.text();
    if (r.below(2) == 0) c.auth.query_param = r.text();
    const int scopes = 1 + r.below(3);
    for (int s = 0; s < scopes; ++s) c.scopes.push_back(r.text());
    c.ttl_seconds = 1 + r.below(5000);
    if (r.below(2) == 0) c.display_name = r.text();
    if (r.below(2) == 0) c.description = r.text();
    if (r.below(2) == 0) {
      c.authentication_headers.emplace();
      const int n = 1 + r.below(4);
      // Few names, so that they repeat among themselves and with `headers`.
      for (int h = 0; h < n; ++h) {
        c.authentication_headers->push_back({r.below(2) == 0 ? "X-A" : r.text(), r.text()});
      }
    }
    if (r.below(2) == 0) {
      c.headers = cc::Json::object();
      const int n = r.below(4);
      for (int h = 0; h < n; ++h) c.headers.set(r.below(2) == 0 ? "X-A" : r.text(), r.text());
    }
    if (r.below(2) == 0) {
      cc::Quotas q;
      if (r.below(2) == 0) q.per_minute = r.below(100);
      if (r.below(2) == 0) q.per_hour = r.below(10000);
      if (r.below(2) == 0) q.per_day = r.below(1000000);
      if (r.below(2) == 0) q.concurrent = r.below(10);
      c.quotas = q;
    }
    if (r.below(2) == 0) {
      c.timeouts = cc::Json::object();
      const int n = r.below(3);
      for (int t = 0; t < n; ++t) c.timeouts.set(r.text(), r.below(100000));
    }
    if (r.below(3) == 0) c.status = static_cast<cc::ConnectorStatus>(r.below(3));
    if (r.below(3) == 0) c.enabled = r.below(2) == 0;
    if (r.below(3) != 0) c.metadata = r.object(1);
    if (r.below(2) == 0) {
      c.tags.emplace();
      const int n = r.below(3);
      for (int t = 0; t < n; ++t) c.tags->push_back(r.text());
    }
    if (r.below(3) == 0) {
      c.remote_tools = cc::Json::array();
      const int n = r.below(3);
      for (int t = 0; t < n; ++t) c.remote_tools.push_back(r.object(1));
    }
    m.connectors.push_back(std::move(c));
  }
  return m;
}

}  // namespace

TEST_CASE("the payload written from the Manifest equals the Json path: data manifests",
          "[service_map][fast_path]") {
  check_same_as_json_path(parsed(read_data("manifests/original-fixture.manifest.json")));
  check_same_as_json_path(parsed(read_data("manifests/cortex-os-example.manifest.json")));
  check_same_as_json_path(parsed(kBase));
  check_same_as_json_path(parsed(kBase), "2030-12-31T23:59:59Z");
  // The golden body through the fast path.
  auto fast = cc::internal::sign_manifest_service_map(
      parsed(read_data("manifests/original-fixture.manifest.json")), kFallback, cc::as_bytes(kKey));
  REQUIRE_OK(fast);
  CHECK(fast->body == read_data("golden/original-fixture.service-map.json"));
}

TEST_CASE("the payload written from the Manifest equals the Json path: generated manifests",
          "[service_map][fast_path]") {
  for (const std::size_t n :
       {std::size_t{1}, std::size_t{3}, std::size_t{100}, std::size_t{1000}, std::size_t{3000}}) {
    for (const std::uint64_t seed : {std::uint64_t{301}, std::uint64_t{302}, std::uint64_t{7}}) {
      INFO("connectors " << n << ", seed " << seed);
      check_same_as_json_path(parsed(cc::bench::generate_manifest(n, seed)));
    }
  }
}

TEST_CASE("the payload written from the Manifest equals the Json path: random manifests",
          "[service_map][fast_path]") {
  RandomJson r(20251127);
  for (int round = 0; round < 300; ++round) {
    INFO("round " << round);
    check_same_as_json_path(random_manifest(r, static_cast<std::size_t>(1 + r.below(6))));
  }
}

TEST_CASE("the payload written from the Manifest: edge cases", "[service_map][fast_path]") {
  cc::Manifest m = parsed(kBase);
  cc::Connector& zeta = m.connectors[0];
  SECTION("displayName falls back to name") {
    zeta.display_name.reset();
    check_same_as_json_path(m);
    CHECK(cc::internal::write_service_map_payload(m, kFallback)->find(R"("displayName":"Zeta")") !=
          std::string::npos);
  }
  SECTION("header names repeated within authentication.headers and with headers") {
    zeta.authentication_headers->push_back({"X-Key", "second"});
    zeta.authentication_headers->push_back({"X-Plain", "from-authentication"});
    check_same_as_json_path(m);
    const auto payload = *cc::internal::write_service_map_payload(m, kFallback);
    CHECK(payload.find(R"("headers":{"X-Both":"from-headers","X-Key":"second","X-Plain":"p"})") !=
          std::string::npos);
  }
  SECTION("only authentication headers, only headers, neither") {
    zeta.headers = cc::Json();
    check_same_as_json_path(m);
    zeta.authentication_headers.reset();
    check_same_as_json_path(m);
    CHECK(cc::internal::write_service_map_payload(m, kFallback)->find("headers") ==
          std::string::npos);
    zeta.headers = cc::Json::object();
    check_same_as_json_path(m);
  }
  SECTION("empty timeouts, remoteTools and quotas") {
    zeta.quotas = cc::Quotas{};
    m.connectors[1].remote_tools = cc::Json::array();
    m.connectors[1].timeouts = cc::Json::object();
    check_same_as_json_path(m);
    const auto payload = *cc::internal::write_service_map_payload(m, kFallback);
    CHECK(payload.find(R"("quotas":{})") != std::string::npos);
    CHECK(payload.find("timeouts") == std::string::npos);
    CHECK(payload.find("remoteTools") == std::string::npos);
  }
  SECTION("metadata brand overlay, non-ASCII keys in UTF-16 order") {
    m.metadata = cc::Json::object();
    m.metadata.set("\xf0\x9f\x98\x80", 1);  // U+1F600: D83D DE00 in UTF-16
    m.metadata.set("\xef\xbd\xa1", 2);      // U+FF61: after the surrogates in UTF-16
    m.metadata.set("brand", "overlay");
    m.metadata.set("\xc3\xa9", 3);
    check_same_as_json_path(m);
    const auto payload = *cc::internal::write_service_map_payload(m, kFallback);
    const std::string count = std::to_string(m.connectors.size());
    CHECK(payload.find("\"metadata\":{\"brand\":\"overlay\",\"count\":" + count +
                       ",\"\xc3\xa9\":3,\"\xf0\x9f\x98\x80\":1,\"\xef\xbd\xa1\":2}") !=
          std::string::npos);
  }
  SECTION("a count in the manifest's metadata is overwritten by the number of connectors") {
    m.metadata = cc::Json::object();
    m.metadata.set("count", "many");
    m.metadata.set("z", 1);
    check_same_as_json_path(m);
    const auto payload = *cc::internal::write_service_map_payload(m, kFallback);
    CHECK(payload.find(R"("metadata":{"brand":"brAInwav","count":)" +
                       std::to_string(m.connectors.size()) + R"(,"z":1})") != std::string::npos);
    CHECK(payload.find("many") == std::string::npos);
  }
  SECTION("numbers") {
    m.connectors[1].metadata.set("n", cc::Json::array());
    for (double d : {1e21, 1e-7, -0.0, 0.1, 9007199254740991.0, 5e-324, 1.7976931348623157e308}) {
      m.connectors[1].metadata.find("n")->push_back(d);
    }
    check_same_as_json_path(m);
    CHECK(cc::internal::write_service_map_payload(m, kFallback)->find("[1e+21,1e-7,0,0.1,") !=
          std::string::npos);
  }
  SECTION("a NaN fails both paths alike") {
    zeta.metadata = cc::Json::object();
    zeta.metadata.set("x", std::numeric_limits<double>::quiet_NaN());
    check_same_as_json_path(m);
    CHECK_FALSE(cc::internal::write_service_map_payload(m, kFallback));
  }
}

TEST_CASE("the payload written by one or two threads is the same", "[service_map][fast_path]") {
  const cc::Manifest m = parsed(cc::bench::generate_manifest(301, 302));
  const auto serial = cc::internal::write_service_map_payload(m, kFallback, 0);
  REQUIRE_OK(serial);
  for (const std::size_t from : {std::size_t{2}, std::size_t{300}, std::size_t{301}}) {
    CHECK(*cc::internal::write_service_map_payload(m, kFallback, from) == *serial);
  }
  CHECK(*serial == *cc::canonical_json(cc::build_service_map(m, kFallback)));
}

// ---- sign_manifest_text(): the body written from the parsed text, without a Manifest --------

namespace {

// sign_manifest_text() must serve exactly what parse_manifest() + sign_manifest_service_map()
// serve, and fail with the same Error.
void check_text_same_as_manifest_path(std::string_view text,
                                      std::span<const cc::Ed25519Key> ed25519_keys = {},
                                      const cc::ManifestLimits& limits = {}) {
  INFO(text.substr(0, 1000));
  auto manifest = cc::parse_manifest(text, limits);
  auto from_text =
      cc::sign_manifest_text(text, kFallback, cc::as_bytes(kKey), ed25519_keys, limits);
  REQUIRE(static_cast<bool>(from_text) == static_cast<bool>(manifest));
  if (!manifest) {
    const cc::Error& want = manifest.error();
    const cc::Error& got = from_text.error();
    CHECK(got.code == want.code);
    CHECK(got.message == want.message);
    CHECK(got.offset == want.offset);
    REQUIRE(got.issues.size() == want.issues.size());
    for (std::size_t i = 0; i < want.issues.size(); ++i) {
      CHECK(got.issues[i].pointer == want.issues[i].pointer);
      CHECK(got.issues[i].message == want.issues[i].message);
    }
    return;
  }
  auto via_manifest = cc::internal::sign_manifest_service_map(*manifest, kFallback,
                                                              cc::as_bytes(kKey), ed25519_keys);
  REQUIRE_OK(via_manifest);
  CHECK(from_text->body == via_manifest->body);
  CHECK(from_text->signature == via_manifest->signature);
  CHECK(from_text->signatures == via_manifest->signatures);
  // The signed bytes and where their parts sit, as the writer recorded them on both paths.
  CHECK(from_text->canonical_payload() == via_manifest->canonical_payload());
  REQUIRE(from_text->layout() != nullptr);
  REQUIRE(via_manifest->layout() != nullptr);
  CHECK(*from_text->layout() == *via_manifest->layout());
  CHECK(from_text->payload.is_null());
}

}  // namespace

TEST_CASE("the body written from the manifest text equals the Manifest path",
          "[service_map][fast_path]") {
  check_text_same_as_manifest_path(read_data("manifests/original-fixture.manifest.json"));
  check_text_same_as_manifest_path(read_data("manifests/cortex-os-example.manifest.json"));
  check_text_same_as_manifest_path(kBase);
  // The golden body, now from the text.
  auto golden = cc::sign_manifest_text(read_data("manifests/original-fixture.manifest.json"),
                                       kFallback, cc::as_bytes(kKey));
  REQUIRE_OK(golden);
  CHECK(golden->body == read_data("golden/original-fixture.service-map.json"));
  CHECK(cc::verify_signed_body(golden->body, cc::as_bytes(kKey)));
  // With Ed25519 signatures too.
  const std::vector<cc::Ed25519Key> keys = {cc::Ed25519Key::generate(), cc::Ed25519Key::generate()};
  check_text_same_as_manifest_path(kBase, keys);
  for (const std::size_t n :
       {std::size_t{1}, std::size_t{3}, std::size_t{100}, std::size_t{1000}, std::size_t{3000}}) {
    for (const std::uint64_t seed : {std::uint64_t{301}, std::uint64_t{302}, std::uint64_t{7}}) {
      INFO("connectors " << n << ", seed " << seed);
      check_text_same_as_manifest_path(cc::bench::generate_manifest(n, seed));
    }
  }
}

TEST_CASE("the body written from the manifest text: free-form edge cases and errors",
          "[service_map][fast_path]") {
  auto with = [](std::string_view from, std::string_view to) {
    std::string text = kBase;
    const auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
  };
  const std::string alpha_meta = R"("metadata": {"brand": "override", "k": 1})";
  // Numbers of every shape canonical JSON writes differently, as integers and as doubles.
  check_text_same_as_manifest_path(with(alpha_meta, R"("metadata": {"n": [0, -0, -0.0, 1e21,
      1E-7, 0.1, 100, 1.0, 9007199254740991, -9007199254740991, 5e-324,
      1.7976931348623157e308, 123456789012345678e-3, 2.5e+2]})"));
  // Keys that sort differently in UTF-16 than in UTF-8, an overlaid brand, escapes.
  check_text_same_as_manifest_path(with(alpha_meta, R"("metadata": {"\ud83d\ude00": 1,
      "\uff61": 2, "brand": "b", "é": {"z": null, "a": [true, false, "\u0001\"\\"]}, "": ""})"));
  // Header names repeated within authentication.headers and with headers.
  check_text_same_as_manifest_path(with(R"({"name": "X-Both", "value": "from-authentication"})",
                                        R"({"name": "X-Both", "value": "from-authentication"},
                                           {"name": "X-Key", "value": "second"})"));
  // Non-empty timeouts and remoteTools; empty quotas; no tags; neither header source.
  check_text_same_as_manifest_path(
      with(R"("quotas": {"perHour": 10}, "timeouts": {}, "remoteTools": [], "tags": ["t"])",
           R"("quotas": {}, "timeouts": {"connect": 0, "read": 2.0},
              "remoteTools": [{"name": "r", "tags": [], "scopes": ["s"], "description": ""}])"));
  // Rejected the same way: duplicate keys inside free-form objects, a number beyond 2^53 in
  // metadata, a free-form object nested too deep, not JSON at all, an unknown member.
  check_text_same_as_manifest_path(with(alpha_meta, R"("metadata": {"k": 1, "k": 2})"));
  // Beyond the keys compared pairwise (16): accepted, and a repeat found.
  std::string many = R"("metadata": {)";
  for (int i = 0; i < 20; ++i) many += "\"k" + std::to_string(i) + "\": " + std::to_string(i) + ",";
  check_text_same_as_manifest_path(with(alpha_meta, many + R"("last": true})"));
  check_text_same_as_manifest_path(with(alpha_meta, many + R"("k3": 0})"));
  CHECK_FALSE(cc::sign_manifest_text(with(alpha_meta, many + R"("k3": 0})"), kFallback,
                                     cc::as_bytes(kKey)));
  check_text_same_as_manifest_path(with(R"("X-Plain": "p")", R"("X-Plain": "p", "X-Plain": "q")"));
  check_text_same_as_manifest_path(
      with(R"("timeouts": {"read": 5})", R"("timeouts": {"a": 1, "a": 1})"));
  check_text_same_as_manifest_path(with(alpha_meta, R"("metadata": {"k": 9007199254740993})"));
  check_text_same_as_manifest_path(with(alpha_meta, R"("metadata": {"a": {"b": {"c": [[1]]}}})"));
  cc::ManifestLimits shallow;
  shallow.max_depth = 6;
  check_text_same_as_manifest_path(with(alpha_meta, R"("metadata": {"a": {"b": {"c": [[1]]}}})"),
                                   {}, shallow);
  cc::ManifestLimits short_strings;
  short_strings.max_string_bytes = 30;  // the longest string of kBase is the 26-byte id
  check_text_same_as_manifest_path(
      with(alpha_meta, R"("metadata": {"k": "1234567890123456789012345678901"})"), {},
      short_strings);
  check_text_same_as_manifest_path(
      with(alpha_meta, R"("metadata": {"1234567890123456789012345678901": 1})"), {}, short_strings);
  check_text_same_as_manifest_path("{\"id\": ");
  check_text_same_as_manifest_path("");
  check_text_same_as_manifest_path(with(R"("description": "d")", R"("description": "d", "x": 1)"));
}
