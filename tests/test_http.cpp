#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/health.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/negotiation.h"
#include "cortex_connectors/static_files.h"
#include "cortex_connectors/trace_context.h"
#include "internal/compress.h"
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

TEST_CASE("traceparent follows the W3C rules", "[http][tracing]") {
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string parent = "00f067aa0ba902b7";
  auto tp = cc::parse_traceparent("00-" + trace + "-" + parent + "-01");
  REQUIRE(tp);
  CHECK(tp->trace_id == trace);
  CHECK(tp->parent_id == parent);
  CHECK(tp->flags == 1);
  CHECK(cc::format_traceparent(trace, parent, 1) == "00-" + trace + "-" + parent + "-01");
  // Unknown flag bits are kept as sent.
  CHECK(cc::parse_traceparent("00-" + trace + "-" + parent + "-ff")->flags == 0xff);
  // A later version is read by its first fields and may carry more after a dash.
  CHECK(cc::parse_traceparent("01-" + trace + "-" + parent + "-00"));
  CHECK(cc::parse_traceparent("cc-" + trace + "-" + parent + "-01-what-the-future-holds"));
  CHECK_FALSE(cc::parse_traceparent("cc-" + trace + "-" + parent + "-01x"));
  // Invalid: the header is ignored and a new trace starts.
  for (const std::string& bad : {
           std::string(),
           "ff-" + trace + "-" + parent + "-01",                     // version ff
           "00-" + trace + "-" + parent + "-01-extra",               // 00 has no extras
           "00-" + trace + "-" + parent + "-1",                      // short flags
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-" + parent + "-01",  // upper case
           "00-" + trace + "-00F067AA0BA902B7-01",                   // upper case
           "00-" + std::string(32, '0') + "-" + parent + "-01",      // zero trace-id
           "00-" + trace + "-" + std::string(16, '0') + "-01",       // zero parent-id
           "00_" + trace + "-" + parent + "-01",                     // separator
           "0-" + trace + "-" + parent + "-01",                      // short version
           "00-" + trace.substr(1) + "g-" + parent + "-01",          // not hex
           "00-" + trace + "-" + parent + "-0g",                     // not hex
           "00-" + trace + "-" + parent + "-01 ",                    // trailing byte
       }) {
    INFO(bad);
    CHECK_FALSE(cc::parse_traceparent(bad));
  }
}

TEST_CASE("trace and span ids are fresh lowercase hex", "[http][tracing]") {
  const auto trace = cc::generate_trace_id();
  const auto span = cc::generate_span_id();
  REQUIRE(trace.size() == 32);
  REQUIRE(span.size() == 16);
  // What this process generates, another one accepts.
  const auto tp = cc::parse_traceparent(cc::format_traceparent(trace, span));
  REQUIRE(tp);
  CHECK(tp->trace_id == trace);
  CHECK(tp->parent_id == span);
  CHECK(cc::generate_trace_id() != trace);
  CHECK(cc::generate_span_id() != span);
}

TEST_CASE("trace samplers: names, arguments and decisions", "[http][tracing]") {
  using Kind = cc::SamplerKind;
  CHECK(cc::parse_sampler("", "")->kind == Kind::kParentBasedAlwaysOn);
  CHECK(cc::parse_sampler("ALWAYS_ON", "")->kind == Kind::kAlwaysOn);
  CHECK(cc::parse_sampler("always_off", "")->kind == Kind::kAlwaysOff);
  CHECK(cc::parse_sampler("parentbased_always_off", "")->kind == Kind::kParentBasedAlwaysOff);
  const auto ratio = cc::parse_sampler("traceidratio", "0.25");
  REQUIRE(ratio);
  CHECK(ratio->kind == Kind::kTraceIdRatio);
  CHECK(ratio->ratio == 0.25);
  CHECK(cc::parse_sampler("parentbased_traceidratio", "")->ratio == 1.0);
  CHECK_FALSE(cc::parse_sampler("sometimes", ""));
  CHECK_FALSE(cc::parse_sampler("traceidratio", "1.5"));
  CHECK_FALSE(cc::parse_sampler("traceidratio", "half"));

  const std::string low = "00000000000000000000000000000001";   // last 8 bytes small: sampled
  const std::string high = "0000000000000000ffffffffffffffff";  // last 8 bytes maximal: not
  const cc::Sampler half{Kind::kTraceIdRatio, 0.5};
  CHECK(cc::should_sample(half, low, std::nullopt));
  CHECK_FALSE(cc::should_sample(half, high, std::nullopt));
  CHECK(cc::should_sample(half, low, false));  // the ratio sampler ignores the parent
  const cc::Sampler parent_half{Kind::kParentBasedTraceIdRatio, 0.5};
  CHECK(cc::should_sample(parent_half, high, true));
  CHECK_FALSE(cc::should_sample(parent_half, low, false));
  CHECK_FALSE(cc::should_sample(parent_half, high, std::nullopt));
  const cc::Sampler by_default;
  CHECK(cc::should_sample(by_default, high, std::nullopt));
  CHECK_FALSE(cc::should_sample(by_default, low, false));
  CHECK_FALSE(cc::should_sample({Kind::kAlwaysOff, 1.0}, low, true));
  CHECK(cc::should_sample({Kind::kAlwaysOn, 1.0}, high, false));
  CHECK_FALSE(cc::should_sample({Kind::kTraceIdRatio, 0.0}, low, std::nullopt));
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

TEST_CASE("health components add members, and a degraded one turns ok into degraded", "[http]") {
  cc::RegistryOptions o;
  o.signing_key = "health-key";
  cc::Registry registry(o);
  const auto now = std::chrono::system_clock::from_time_t(0);
  const cc::HealthComponent degraded{"scaling", cc::Json(cc::Json::Object{{"role", "replica"}}),
                                     true};
  // Starting stays starting.
  auto body = cc::parse_json(cc::health_body(registry, now, {&degraded, 1}));
  REQUIRE_OK(body);
  CHECK(body->find("status")->as_string() == "starting");
  CHECK(body->find("scaling")->find("role")->as_string() == "replica");

  REQUIRE_OK(
      registry.refresh_from_text(cc::test::read_data("manifests/original-fixture.manifest.json")));
  const cc::HealthComponent fine{"scaling", cc::Json(cc::Json::Object{{"role", "publisher"}})};
  CHECK(cc::parse_json(cc::health_body(registry, now, {&fine, 1}))->find("status")->as_string() ==
        "ok");
  body = cc::parse_json(cc::health_body(registry, now, {&degraded, 1}));
  CHECK(body->find("status")->as_string() == "degraded");
  // Without components, the body is what it always was, and canonical: adding members to it
  // gives the same bytes as adding them to the parsed body.
  const std::string plain = cc::health_body(registry, now);
  auto spliced = cc::parse_json(plain);
  REQUIRE_OK(spliced);
  spliced->set("scaling", fine.value);
  CHECK(*cc::canonical_json(*spliced) == cc::health_body(registry, now, {&fine, 1}));
}

TEST_CASE("encoding choice is limited to the variants a file has", "[http][static]") {
  CHECK(cc::choose_encoding("gzip, deflate, br", true, false) == Enc::kGzip);
  CHECK(cc::choose_encoding("gzip, deflate, br", false, true) == Enc::kBrotli);
  CHECK(cc::choose_encoding("gzip, deflate, br", false, false) == Enc::kIdentity);
  CHECK(cc::choose_encoding("br;q=0.9, gzip;q=0.5", true, true) == Enc::kBrotli);
  CHECK(cc::choose_encoding("br;q=0.9, gzip;q=0.5", true, false) == Enc::kGzip);
  // identity preferred over the only variant there is.
  CHECK(cc::choose_encoding("identity, gzip;q=0.5", true, false) == Enc::kIdentity);
  CHECK(cc::choose_encoding("br", true, false) == Enc::kIdentity);
}

TEST_CASE("static paths: only names inside the bundle pass", "[http][static]") {
  CHECK(cc::static_relative_path("") == "index.html");
  CHECK(cc::static_relative_path("index.html") == "index.html");
  CHECK(cc::static_relative_path("dashboard.0123abcd.js") == "dashboard.0123abcd.js");
  CHECK(cc::static_relative_path("img/logo.svg") == "img/logo.svg");
  CHECK(cc::static_relative_path("a..b.txt") == "a..b.txt");  // dots inside a name are fine
  for (const std::string_view bad :
       {"..", "../etc/passwd", "a/../../x", "a/..", "./index.html", "a/./b", "/etc/passwd",
        "//etc/passwd", "a//b", "a/", "img/", ".env", ".git/config", "a/.hidden", "..\\x", "a\\b",
        "\x01", "a\nb", "\x7f"}) {
    INFO(bad);
    CHECK_FALSE(cc::static_relative_path(bad).has_value());
  }
  CHECK_FALSE(cc::static_relative_path(std::string_view("a\0b", 3)).has_value());
  CHECK_FALSE(cc::static_relative_path(std::string(1025, 'a')).has_value());
  CHECK(cc::static_relative_path(std::string(1024, 'a')).has_value());
}

TEST_CASE("static content types, fingerprints and cache control", "[http][static]") {
  CHECK(cc::static_content_type("index.html") == "text/html; charset=utf-8");
  CHECK(cc::static_content_type("x.0123abcd.js") == "text/javascript; charset=utf-8");
  CHECK(cc::static_content_type("a/b.CSS") == "text/css; charset=utf-8");
  CHECK(cc::static_content_type("data.json") == "application/json");
  CHECK(cc::static_content_type("logo.svg") == "image/svg+xml");
  CHECK(cc::static_content_type("logo.png") == "image/png");
  CHECK(cc::static_content_type("font.woff2") == "font/woff2");
  CHECK(cc::static_content_type("README") == "application/octet-stream");
  CHECK(cc::static_content_type("x.exe") == "application/octet-stream");
  CHECK(cc::static_content_type("dir.js/file") == "application/octet-stream");

  CHECK(cc::is_fingerprinted("dashboard.3f2a9c1b0d4e5f67.js"));
  CHECK(cc::is_fingerprinted("sub/app.0123abcd.css"));
  CHECK_FALSE(cc::is_fingerprinted("dashboard.js"));
  CHECK_FALSE(cc::is_fingerprinted("index.html"));
  CHECK_FALSE(cc::is_fingerprinted("app.0123abc.js"));   // 7 hex: too short
  CHECK_FALSE(cc::is_fingerprinted("app.0123ABCD.js"));  // upper case is not ours
  CHECK_FALSE(cc::is_fingerprinted("app.0123abcg.js"));  // not hex
  CHECK_FALSE(cc::is_fingerprinted(".0123abcd.js"));     // no stem
  CHECK_FALSE(cc::is_fingerprinted("app.0123abcd."));    // no extension
  CHECK_FALSE(cc::is_fingerprinted("0123abcd.js"));      // the hash is not the stem
  CHECK_FALSE(cc::is_fingerprinted("a.0123abcd.js/index.html"));

  CHECK(cc::static_cache_control("app.0123abcd.js") == "public, max-age=31536000, immutable");
  CHECK(cc::static_cache_control("index.html") == "no-cache");
}

TEST_CASE("a static asset is prepared once: variants only when smaller, one ETag each",
          "[http][static]") {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "const connectors = [];\n";
  const auto a = cc::prepare_static_asset("app.0123abcd.js", text);
  CHECK(a.identity == text);
  REQUIRE_FALSE(a.gzip.empty());
  REQUIRE_FALSE(a.brotli.empty());
  CHECK(a.gzip.size() < text.size());
  CHECK(a.brotli.size() < text.size());
  std::string inflated;
  REQUIRE(cc::internal::gzip_decompress(a.gzip, inflated));
  CHECK(inflated == text);
  CHECK(a.content_type == "text/javascript; charset=utf-8");
  CHECK(a.cache_control == "public, max-age=31536000, immutable");
  REQUIRE(a.etag.size() == 34);
  CHECK(a.etag.front() == '"');
  CHECK(a.etag_gzip == a.etag.substr(0, 33) + "-gz\"");
  CHECK(a.etag_brotli == a.etag.substr(0, 33) + "-br\"");
  // Same bytes, same ETag; other bytes, another.
  CHECK(cc::prepare_static_asset("other.html", text).etag == a.etag);
  CHECK(cc::prepare_static_asset("app.0123abcd.js", text + " ").etag != a.etag);

  // Incompressible bytes (and empty files) get no variants.
  std::string noise;
  std::uint32_t x = 12345;
  for (int i = 0; i < 4096; ++i) {
    x = x * 1664525u + 1013904223u;
    noise.push_back(static_cast<char>(x >> 24));
  }
  const auto png = cc::prepare_static_asset("logo.png", noise);
  CHECK(png.gzip.empty());
  CHECK(png.brotli.empty());
  CHECK(png.cache_control == "no-cache");
  const auto empty = cc::prepare_static_asset("empty.txt", "");
  CHECK(empty.gzip.empty());
  CHECK(empty.brotli.empty());
}

TEST_CASE("ascii_iequals and ascii_lower fold A-Z only", "[http]") {
  CHECK(cc::ascii_iequals("Content-Length", "content-length"));
  CHECK(cc::ascii_iequals("", ""));
  CHECK_FALSE(cc::ascii_iequals("gzip", "gzi"));
  CHECK_FALSE(cc::ascii_iequals("[", "{"));                // '[' + 32 is '{': only A-Z fold
  CHECK_FALSE(cc::ascii_iequals("\xC3\x89", "\xC3\xA9"));  // no Unicode folding
  CHECK(cc::ascii_lower("INFO Warn-é@[Z]") == "info warn-é@[z]");
}
