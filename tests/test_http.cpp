#include "cortex_connectors/http.h"
#include "cortex_connectors/json.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using Enc = cc::ContentEncoding;

TEST_CASE("Accept-Encoding negotiation honours q-values", "[http]") {
  CHECK(cc::choose_encoding("") == Enc::kIdentity);
  CHECK(cc::choose_encoding("gzip") == Enc::kGzip);
  CHECK(cc::choose_encoding("br") == Enc::kBrotli);
  CHECK(cc::choose_encoding("gzip, deflate, br") == Enc::kBrotli);  // browsers
  CHECK(cc::choose_encoding("gzip;q=1.0, br;q=0.5") == Enc::kGzip);
  CHECK(cc::choose_encoding("br;q=0, gzip") == Enc::kGzip);
  CHECK(cc::choose_encoding("gzip;q=0, br;q=0") == Enc::kIdentity);
  CHECK(cc::choose_encoding("*") == Enc::kBrotli);
  CHECK(cc::choose_encoding("*;q=0.5, identity") == Enc::kIdentity);
  CHECK(cc::choose_encoding("identity;q=0, *;q=0") == Enc::kIdentity);  // nothing acceptable
  CHECK(cc::choose_encoding("deflate") == Enc::kIdentity);
  CHECK(cc::choose_encoding("GZIP") == Enc::kGzip);
  CHECK(cc::choose_encoding("x-gzip") == Enc::kGzip);
  CHECK(cc::choose_encoding("br;q=2, gzip") == Enc::kGzip);    // malformed item ignored
  CHECK(cc::choose_encoding("br;level=1") == Enc::kIdentity);  // unknown parameter ignored
  CHECK(cc::choose_encoding(" gzip ; q=0.8 , br ; q=0.9 ") == Enc::kBrotli);
  CHECK(cc::choose_encoding(std::string(10000, ',')) == Enc::kIdentity);
}

TEST_CASE("If-None-Match lists, wildcard and weak comparison", "[http]") {
  const std::string etag = "\"abc\"";
  CHECK(cc::if_none_match("\"abc\"", etag));
  CHECK(cc::if_none_match("*", etag));
  CHECK(cc::if_none_match("\"x\", \"abc\"", etag));
  CHECK(cc::if_none_match("\"x\",W/\"abc\"", etag));
  CHECK_FALSE(cc::if_none_match("\"abcd\"", etag));
  CHECK_FALSE(cc::if_none_match("abc", etag));
  CHECK_FALSE(cc::if_none_match("\"x\" \"abc\"", etag));
  CHECK_FALSE(cc::if_none_match("\"abc", etag));
  CHECK_FALSE(cc::if_none_match("", etag));
  CHECK_FALSE(cc::if_none_match("**", etag));
}

TEST_CASE("bearer authentication outcomes", "[http]") {
  const std::vector<std::string> keys = {"key-one", "another-key"};
  CHECK(cc::check_bearer("Bearer key-one", keys) == cc::AuthResult::kOk);
  CHECK(cc::check_bearer("bearer another-key", keys) == cc::AuthResult::kOk);
  CHECK(cc::check_bearer("", keys) == cc::AuthResult::kMissing);
  CHECK(cc::check_bearer("Basic a2V5", keys) == cc::AuthResult::kMalformed);
  CHECK(cc::check_bearer("Bearer", keys) == cc::AuthResult::kMalformed);
  CHECK(cc::check_bearer("Bearer ", keys) == cc::AuthResult::kMalformed);
  CHECK(cc::check_bearer("key-one", keys) == cc::AuthResult::kMalformed);
  CHECK(cc::check_bearer("Bearer key-on", keys) == cc::AuthResult::kForbidden);
  CHECK(cc::check_bearer("Bearer key-one2", keys) == cc::AuthResult::kForbidden);
  CHECK(cc::check_bearer("Bearer KEY-ONE", keys) == cc::AuthResult::kForbidden);
  CHECK(cc::check_bearer("Bearer a b", keys) == cc::AuthResult::kMalformed);
  const std::vector<std::string> empty_key = {""};
  CHECK(cc::check_bearer("Bearer x", empty_key) == cc::AuthResult::kForbidden);
}

TEST_CASE("branded bodies and request ids", "[http]") {
  CHECK(cc::detail_body("missing \"token\"") == R"({"detail":"[brAInwav] missing \"token\""})");
  CHECK(cc::is_sane_request_id("req-1.2_3:4"));
  CHECK_FALSE(cc::is_sane_request_id(""));
  CHECK_FALSE(cc::is_sane_request_id("a b"));
  CHECK_FALSE(cc::is_sane_request_id("a\r\nSet-Cookie: x"));
  CHECK_FALSE(cc::is_sane_request_id(std::string(129, 'a')));
  const auto id = cc::generate_request_id();
  CHECK(id.size() == 32);
  CHECK(cc::is_sane_request_id(id));
  CHECK(cc::generate_request_id() != id);
}

TEST_CASE("health tells starting, ok and degraded", "[http]") {
  cc::RegistryOptions o;
  o.manifest_path = "/nonexistent/dir/m.json";
  o.signing_key = "health-key";
  cc::Registry registry(o);
  const auto now = std::chrono::system_clock::from_time_t(0);
  auto body = cc::parse_json(cc::health_body(registry, now));
  REQUIRE_OK(body);
  CHECK(body->find("status")->as_string() == "starting");
  CHECK(body->find("brand")->as_string() == "brAInwav");
  CHECK(body->find("timestamp")->as_string() == "1970-01-01T00:00:00Z");

  CHECK(cc::parse_json(cc::unavailable_body(registry))->find("detail")->as_string() ==
        "[brAInwav] connectors manifest is loading");
  CHECK_FALSE(registry.refresh());
  auto unavailable = cc::parse_json(cc::unavailable_body(registry));
  REQUIRE_OK(unavailable);
  const auto& issues = unavailable->find("error")->find("issues")->as_array();
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].find("pointer")->as_string() == "/nonexistent/dir/m.json");
  CHECK(issues[0].find("message")->as_string() == "file not found");

  REQUIRE_OK(
      registry.refresh_from_text(cc::test::read_data("manifests/original-fixture.manifest.json")));
  body = cc::parse_json(cc::health_body(registry, now));
  CHECK(body->find("status")->as_string() == "ok");
  CHECK(body->find("version")->as_number() == 1);
  CHECK(body->find("connectors")->as_number() == 3);
  CHECK(body->find("lastError") == nullptr);

  CHECK_FALSE(registry.refresh_from_text("{"));
  const std::string degraded = cc::health_body(registry, now);
  body = cc::parse_json(degraded);
  CHECK(body->find("status")->as_string() == "degraded");
  CHECK(body->find("lastError")->find("code")->as_string() == "parse");
  CHECK(degraded.find("health-key") == std::string::npos);
}
