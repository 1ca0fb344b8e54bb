// verify_service_map(), parse_rfc3339() and ServiceMapCache: the consumer side without network.
#include <atomic>
#include <thread>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/sse.h"
#include "cortex_connectors/verify.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using cc::test::read_data;
using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

namespace {

constexpr std::string_view kKey = "verify-test-key";

Clock::time_point at(std::string_view rfc3339) { return *cc::parse_rfc3339(rfc3339); }

cc::Json base_payload() {
  auto m = cc::parse_manifest(read_data("manifests/original-fixture.manifest.json"));
  REQUIRE_OK(m);
  return cc::build_service_map(*m, "2025-01-01T00:00:00Z");
}

std::string sign(const cc::Json& payload, std::string_view key = kKey) {
  auto s = cc::sign_service_map(payload, cc::as_bytes(key));
  REQUIRE_OK(s);
  return s->body;
}

cc::Json with(cc::Json payload, std::string_view key, cc::Json value) {
  payload.set(key, std::move(value));
  return payload;
}

// Objects compare member by member in order: compare canonical forms.
std::string canon(const cc::Json& j) { return *cc::canonical_json(j); }

// The exact error of verifying `body` with the test key at `now`.
cc::Error error_of(std::string_view body, cc::VerifyOptions options = {}) {
  auto r = cc::verify_service_map(body, cc::as_bytes(kKey), options);
  REQUIRE_FALSE(r);
  return r.error();
}

}  // namespace

TEST_CASE("parse_rfc3339: UTC offsets fractions and rejects", "[verify]") {
  CHECK(cc::format_rfc3339(at("2025-10-10T00:00:00Z")) == "2025-10-10T00:00:00Z");
  CHECK(at("2025-10-10T02:00:00+02:00") == at("2025-10-10T00:00:00Z"));
  CHECK(at("2025-10-09T22:30:00-01:30") == at("2025-10-10T00:00:00Z"));
  CHECK(at("2025-10-10t00:00:00.250z") - at("2025-10-10T00:00:00Z") == 250ms);
  CHECK(at("2024-02-29T23:59:60Z") == at("2024-02-29T23:59:59Z"));
  CHECK(at("1970-01-01T00:00:00Z") == Clock::time_point{});
  // Beyond the clock's nanosecond range (years ~1678-2262): saturated, not overflowed (found by
  // fuzz_manifest with a generatedAt in the year 9xxx).
  CHECK(at("9999-12-31T23:59:59.999999Z") == Clock::time_point::max());
  CHECK(at("2262-04-12T00:00:00Z") == Clock::time_point::max());
  CHECK(at("0000-01-01T00:00:00Z") == Clock::time_point::min());
  CHECK(at("2262-04-11T00:00:00Z") < Clock::time_point::max());
  for (std::string_view bad :
       {"", "2025-10-10", "2025-10-10T00:00:00", "2025-02-29T00:00:00Z", "2025-13-01T00:00:00Z",
        "2025-10-10 00:00:00Z", "2025-10-10T00:00:00+0200", "2025-10-10T00:00:00.Z"}) {
    CAPTURE(bad);
    CHECK_FALSE(cc::parse_rfc3339(bad));
  }
}

TEST_CASE("verify_service_map: a served body verifies with its expiry", "[verify]") {
  const cc::Json payload = base_payload();
  const std::string body = sign(payload);
  cc::VerifyOptions options;
  options.fetched_at = at("2026-01-01T00:00:00Z");
  options.now = *options.fetched_at + 1s;
  options.version = 7;
  auto r = cc::verify_service_map(body, cc::as_bytes(kKey), options);
  REQUIRE_OK(r);
  CHECK(canon(r->payload) == canon(payload));
  CHECK(r->canonical_payload == *cc::canonical_json(payload));
  CHECK(r->body() == body);
  CHECK(r->id == payload.find("id")->as_string());
  CHECK(r->generated_at == payload.find("generatedAt")->as_string());
  CHECK(r->generated_at_time == at(r->generated_at));
  CHECK(r->ttl.count() == static_cast<long>(payload.find("ttlSeconds")->as_number()));
  CHECK(r->fetched_at == options.fetched_at);
  CHECK(r->expires_at == *options.fetched_at + r->ttl);
  CHECK(r->version == 7);
  CHECK(r->connector_count == payload.find("connectors")->as_array().size());
  CHECK_FALSE(r->expired(r->expires_at - 1s));
  CHECK(r->expired(r->expires_at));

  // The same payload and signature given apart (as a delta event carries them).
  auto apart = cc::verify_service_map_payload(
      payload, cc::parse_json(body)->find("signature")->as_string(), cc::as_bytes(kKey), options);
  REQUIRE_OK(apart);
  CHECK(apart->body() == body);

  // The platform's real manifest: its generatedAt is long past, the fetch-time expiry is not.
  auto m = cc::parse_manifest(read_data("manifests/cortex-os-example.manifest.json"));
  REQUIRE_OK(m);
  CHECK(cc::verify_service_map(sign(cc::build_service_map(*m, "")), cc::as_bytes(kKey)));
}

TEST_CASE("verify_service_map: malformed bodies are precise errors", "[verify]") {
  auto e = error_of("{\"payload\": ");
  CHECK(e.code == cc::ErrorCode::kParse);
  CHECK(e.offset.has_value());
  e = error_of("[]");
  CHECK(e.code == cc::ErrorCode::kInvalid);
  CHECK(e.message == "[brAInwav] signed body must be a JSON object");
  e = error_of(R"({"signature":"x"})");
  CHECK(e.message == "[brAInwav] signed body has no \"payload\" object");
  e = error_of(R"({"payload":{},"signature":1})");
  CHECK(e.message == "[brAInwav] signed body has no \"signature\" string");
}

TEST_CASE("verify_service_map: a bad signature never verifies and is never printed", "[verify]") {
  const cc::Json payload = base_payload();
  const std::string body = sign(payload);
  auto doc = *cc::parse_json(body);
  const std::string signature = doc.find("signature")->as_string();

  auto e = cc::verify_service_map(body, cc::as_bytes("another-key")).error();
  CHECK(e.code == cc::ErrorCode::kSignature);
  CHECK(e.message == "[brAInwav] signature does not match the payload");

  // A tampered payload under the original signature.
  cc::Json tampered = doc;
  tampered.find("payload")->set("ttlSeconds", 1);
  e = error_of(*cc::canonical_json(tampered));
  CHECK(e.code == cc::ErrorCode::kSignature);
  // A tampered signature: one character changed, truncated, not base64url.
  for (std::string bad : {signature.substr(0, 42) + (signature[42] == 'A' ? "B" : "A"),
                          signature.substr(0, 40), std::string(43, '*'), std::string()}) {
    doc.set("signature", bad);
    e = error_of(*cc::canonical_json(doc));
    CHECK(e.code == cc::ErrorCode::kSignature);
    CHECK(cc::describe(e).find(signature.substr(0, 8)) == std::string::npos);
    CHECK(cc::describe(e).find(kKey) == std::string::npos);
  }
}

TEST_CASE("verify_service_map: signed payloads that are no service map of the brand", "[verify]") {
  const cc::Json payload = base_payload();
  struct Case {
    cc::Json payload;
    std::string pointer;
    std::string message;
  };
  cc::Json no_brand = payload;
  std::erase_if(no_brand.as_object(), [](const auto& m) { return m.first == "brand"; });
  const std::vector<Case> cases = {
      {with(payload, "brand", "acme"), "/payload/brand", "must be \"brAInwav\""},
      {no_brand, "/payload/brand", "must be \"brAInwav\""},
      {with(payload, "id", ""), "/payload/id", "must be a non-empty string"},
      {with(payload, "generatedAt", "yesterday"), "/payload/generatedAt",
       "must be an RFC 3339 date-time string"},
      {with(payload, "generatedAt", 5), "/payload/generatedAt",
       "must be an RFC 3339 date-time string"},
      {with(payload, "ttlSeconds", 0), "/payload/ttlSeconds", "must be an integer >= 1"},
      {with(payload, "ttlSeconds", 1.5), "/payload/ttlSeconds", "must be an integer >= 1"},
      {with(payload, "ttlSeconds", "60"), "/payload/ttlSeconds", "must be an integer >= 1"},
      {with(payload, "connectors", cc::Json::object()), "/payload/connectors", "must be an array"},
      {with(payload, "count", 99), "/payload/count", "must equal the number of connectors"},
      {with(payload, "metadata", with(*payload.find("metadata"), "count", 99)),
       "/payload/metadata/count", "must equal the number of connectors"},
      {with(payload, "metadata", with(*payload.find("metadata"), "count", "3")),
       "/payload/metadata/count", "must equal the number of connectors"},
      {with(payload, "metadata", cc::Json::array()), "/payload/metadata", "must be an object"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.pointer, c.message);
    const auto e = error_of(sign(c.payload));
    CHECK(e.code == cc::ErrorCode::kInvalid);
    CHECK(e.message == "[brAInwav] the signed payload is not a service map");
    REQUIRE(e.issues.size() == 1);
    CHECK(e.issues[0] == cc::Issue{c.pointer, c.message});
  }
}

TEST_CASE("verify_service_map: a body of a server before metadata.count still verifies",
          "[verify]") {
  // Such bodies stay in history stores: a top-level count, metadata without one.
  cc::Json old = base_payload();
  const std::size_t n = old.find("connectors")->as_array().size();
  std::erase_if(old.find("metadata")->as_object(),
                [](const auto& m) { return m.first == "count"; });
  old.set("count", n);
  cc::VerifyOptions options;
  options.fetched_at = at("2026-01-01T00:00:00Z");
  options.now = *options.fetched_at;
  auto r = cc::verify_service_map(sign(old), cc::as_bytes(kKey), options);
  REQUIRE_OK(r);
  CHECK(r->payload.find("count")->as_number() == static_cast<double>(n));
}

TEST_CASE("verify_service_map: expired maps by fetch time or by generatedAt", "[verify]") {
  const cc::Json payload =
      with(with(base_payload(), "generatedAt", "2026-01-01T00:00:00Z"), "ttlSeconds", 60);
  const std::string body = sign(payload);
  cc::VerifyOptions options;
  options.fetched_at = at("2026-03-01T00:00:00Z");
  options.now = *options.fetched_at + 59s;
  CHECK(cc::verify_service_map(body, cc::as_bytes(kKey), options));
  options.now = *options.fetched_at + 60s;
  auto e = error_of(body, options);
  CHECK(e.code == cc::ErrorCode::kExpired);
  CHECK(e.message ==
        "[brAInwav] the service map expired at 2026-03-01T00:01:00Z (generatedAt "
        "2026-01-01T00:00:00Z, ttlSeconds 60)");
  CHECK(std::string(cc::to_string(e.code)) == "expired");

  options.expiry_base = cc::ExpiryBase::kGeneratedAt;
  options.now = at("2026-01-01T00:00:59Z");
  auto r = cc::verify_service_map(body, cc::as_bytes(kKey), options);
  REQUIRE_OK(r);
  CHECK(r->expires_at == at("2026-01-01T00:01:00Z"));
  options.now = at("2026-01-01T00:01:00Z");
  CHECK(error_of(body, options).code == cc::ErrorCode::kExpired);
}

TEST_CASE("ServiceMapCache: newest verified map only", "[verify]") {
  cc::ServiceMapCache cache(cc::as_bytes(kKey));
  CHECK(cache.current() == nullptr);
  CHECK_FALSE(cache.confirm());
  const cc::Json v1 = with(base_payload(), "generatedAt", "2026-01-01T00:00:00Z");
  const cc::Json v2 = with(v1, "generatedAt", "2026-01-02T00:00:00Z");
  const cc::Json v2b = with(v2, "ttlSeconds", 30);  // same generatedAt, other content

  // Unverified: wrong key, tampered, malformed. Nothing becomes current.
  CHECK(cache.offer(sign(v1, "wrong-key")).error().code == cc::ErrorCode::kSignature);
  CHECK(cache.offer("{").error().code == cc::ErrorCode::kParse);
  CHECK(cache.current() == nullptr);

  auto r = cache.offer(sign(v1), {}, 3);
  REQUIRE_OK(r);
  CHECK(*r == cc::CacheUpdate::kReplaced);
  CHECK(canon(cache.current()->payload) == canon(v1));
  CHECK(cache.current()->version == 3);

  r = cache.offer(sign(v2));
  REQUIRE_OK(r);
  CHECK(*r == cc::CacheUpdate::kReplaced);
  // An older generatedAt never replaces a newer one, even correctly signed.
  r = cache.offer(sign(v1), {}, 99);
  REQUIRE_OK(r);
  CHECK(*r == cc::CacheUpdate::kOlder);
  CHECK(canon(cache.current()->payload) == canon(v2));
  // The same payload again is no change; a tampered body leaves the current map.
  r = cache.offer(sign(v2));
  REQUIRE_OK(r);
  CHECK(*r == cc::CacheUpdate::kUnchanged);
  CHECK(cache.offer(sign(v2b, "wrong-key")).error().code == cc::ErrorCode::kSignature);
  CHECK(canon(cache.current()->payload) == canon(v2));
  // Another payload with the same generatedAt is the newer one.
  auto sig = cc::parse_json(sign(v2b))->find("signature")->as_string();
  r = cache.offer_payload(v2b, sig, {}, 5);
  REQUIRE_OK(r);
  CHECK(*r == cc::CacheUpdate::kReplaced);
  CHECK(canon(cache.current()->payload) == canon(v2b));
  CHECK(cache.current()->version == 5);
}

TEST_CASE("ServiceMapCache: confirm and fresh follow the fetch-time expiry", "[verify]") {
  cc::ServiceMapCache cache(cc::as_bytes(kKey));
  const cc::Json payload = with(base_payload(), "ttlSeconds", 60);
  const auto t0 = at("2026-05-01T00:00:00Z");
  REQUIRE_OK(cache.offer(sign(payload), t0));
  CHECK(cache.current()->expires_at == t0 + 60s);
  CHECK(cache.fresh(t0 + 59s) != nullptr);
  CHECK(cache.fresh(t0 + 60s) == nullptr);
  CHECK(cache.current() != nullptr);  // an expired map is still the last good one
  CHECK(cache.confirm(t0 + 50s));
  CHECK(cache.current()->expires_at == t0 + 110s);
  CHECK(cache.fresh(t0 + 100s) != nullptr);
  // Seeing the same body later also extends it; an earlier sighting never shortens it.
  REQUIRE(*cache.offer(sign(payload), t0 + 80s) == cc::CacheUpdate::kUnchanged);
  CHECK(cache.current()->expires_at == t0 + 140s);
  REQUIRE(*cache.offer(sign(payload), t0 + 10s) == cc::CacheUpdate::kUnchanged);
  CHECK(cache.current()->expires_at == t0 + 140s);

  cc::ServiceMapCache by_generated(cc::as_bytes(kKey), cc::ExpiryBase::kGeneratedAt);
  const cc::Json old = with(payload, "generatedAt", "2020-01-01T00:00:00Z");
  CHECK(by_generated.offer(sign(old)).error().code == cc::ErrorCode::kExpired);
  CHECK(by_generated.current() == nullptr);
}

TEST_CASE("ServiceMapCache: concurrent offers keep the newest", "[verify]") {
  cc::ServiceMapCache cache(cc::as_bytes(kKey));
  std::vector<std::string> bodies;
  for (int day = 1; day <= 8; ++day) {
    bodies.push_back(sign(
        with(base_payload(), "generatedAt", "2026-01-0" + std::to_string(day) + "T00:00:00Z")));
  }
  std::vector<std::thread> threads;
  std::atomic<int> replaced{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 8; ++i) {
        const auto& body = bodies[static_cast<std::size_t>((i + t * 3) % 8)];
        auto r = cache.offer(body);
        if (r && *r == cc::CacheUpdate::kReplaced) ++replaced;
        (void)cache.current();
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(cache.current()->generated_at == "2026-01-08T00:00:00Z");
  CHECK(replaced.load() >= 1);
}

TEST_CASE("ServiceMapCache with apply_delta rebuilds a verifiable payload", "[verify]") {
  const cc::Json from = base_payload();
  cc::Json to = with(from, "ttlSeconds", 42);
  to.find("connectors")->as_array().pop_back();
  to.find("metadata")->set("count", to.find("connectors")->as_array().size());
  auto signed_to = cc::sign_service_map(to, cc::as_bytes(kKey));
  REQUIRE_OK(signed_to);
  const cc::Json delta = cc::compute_delta(from, to, 1, 2, signed_to->signature);
  auto rebuilt = cc::apply_delta(from, delta);
  REQUIRE_OK(rebuilt);
  cc::ServiceMapCache cache(cc::as_bytes(kKey));
  auto r = cache.offer_payload(*rebuilt, delta.find("signature")->as_string(), {}, 2);
  REQUIRE_OK(r);
  CHECK(*r == cc::CacheUpdate::kReplaced);
  CHECK(cache.current()->body() == signed_to->body);
}

TEST_CASE("verify_service_map: payload numbers of 1e19 and more verify", "[verify]") {
  // The canonical body writes 1e20 as 100000000000000000000, an integer literal beyond 64 bits;
  // the verifier (and SSE deltas, which re-parse payloads) must read what the server serves.
  cc::Json metadata = cc::Json::object();
  metadata.set("big", 1e20);
  metadata.set("negative", -3e19);
  const std::string body = sign(with(base_payload(), "metadata", metadata));
  CHECK(body.find("100000000000000000000") != std::string::npos);
  auto verified = cc::verify_service_map(body, cc::as_bytes(kKey));
  REQUIRE_OK(verified);
  CHECK(verified->payload.find("metadata")->find("big")->as_number() == 1e20);
  CHECK(verified->body() == body);
}
