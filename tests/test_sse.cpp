#include <random>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/registry.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/sse.h"
#include "test_utils.h"

namespace cc = cortex_connectors;

TEST_CASE("SSE framing follows the WHATWG rules", "[sse]") {
  CHECK(cc::sse_event("status", "7", "{}") == "id: 7\nevent: status\ndata: {}\n\n");
  CHECK(cc::sse_event("", "", "a\nb\r\nc\rd") == "data: a\ndata: b\ndata: c\ndata: d\n\n");
  CHECK(cc::sse_event("", "", "") == "data: \n\n");
  CHECK(cc::sse_event("ev\r\nil", std::string_view("1\n2\0003", 6), "x") ==
        "id: 123\nevent: evil\ndata: x\n\n");
  CHECK(cc::sse_comment("heartbeat") == ": heartbeat\n\n");
  CHECK(cc::sse_comment("a\nb") == ": ab\n\n");
  CHECK(cc::sse_retry(3000) == "retry: 3000\n\n");
}

TEST_CASE("Last-Event-ID is a version number or nothing", "[sse]") {
  CHECK(cc::parse_last_event_id("0") == 0u);
  CHECK(cc::parse_last_event_id("42") == 42u);
  CHECK(cc::parse_last_event_id("18446744073709551615") == 18446744073709551615u);
  CHECK_FALSE(cc::parse_last_event_id("18446744073709551616"));
  CHECK_FALSE(cc::parse_last_event_id(""));
  CHECK_FALSE(cc::parse_last_event_id("-1"));
  CHECK_FALSE(cc::parse_last_event_id("+1"));
  CHECK_FALSE(cc::parse_last_event_id(" 1"));
  CHECK_FALSE(cc::parse_last_event_id("1a"));
  CHECK_FALSE(cc::parse_last_event_id(std::string(1000, '9')));
}

namespace {

// A random valid manifest: connectors drawn from a pool, with random fields.
std::string random_manifest(std::mt19937& rng) {
  std::uniform_int_distribution<int> coin(0, 1);
  std::uniform_int_distribution<int> ttl(1, 5000);
  std::string text =
      R"({"id": "01J7X5MB4K1ZW0000000000000", "manifestVersion": "1", "ttlSeconds": )" +
      std::to_string(ttl(rng)) + R"(, "metadata": {"round": )" + std::to_string(ttl(rng) % 3) +
      R"(}, "connectors": [)";
  bool first = true;
  for (int i = 0; i < 12; ++i) {
    if (coin(rng) == 0 && !(first && i == 11)) continue;
    if (!first) text += ",";
    first = false;
    text += R"({"id": "conn-)" + std::to_string(i) + R"(", "name": "C)" + std::to_string(i) +
            R"(", "version": ")" + std::to_string(coin(rng) + 1) +
            R"(", "endpoint": "https://c.invalid/)" + std::to_string(i) +
            R"(", "auth": {"type": "none"}, "scopes": ["s"], "ttlSeconds": )" +
            std::to_string(ttl(rng) % 3 + 100) + (coin(rng) ? R"(, "enabled": false)" : "") + "}";
  }
  return text + "]}";
}

}  // namespace

TEST_CASE("status events carry the original's shape", "[sse]") {
  cc::RegistryOptions o;
  o.signing_key = "sse-key";
  cc::Registry registry(o);
  REQUIRE_OK(
      registry.refresh_from_text(cc::test::read_data("manifests/original-fixture.manifest.json")));
  const auto snap = registry.current();
  const std::string event = cc::sse_status_event(*snap, "2025-01-01T00:00:00Z");
  REQUIRE(event.rfind("id: 1\nevent: status\ndata: ", 0) == 0);
  REQUIRE(event.ends_with("\n\n"));
  const auto data_at = event.find("data: ") + 6;
  const std::string data = event.substr(data_at, event.size() - data_at - 2);
  auto parsed = cc::parse_json(data);
  REQUIRE_OK(parsed);
  CHECK(parsed->find("timestamp")->as_string() == "2025-01-01T00:00:00Z");
  auto body = cc::canonical_json(*parsed->find("payload"));
  REQUIRE_OK(body);
  CHECK(*body == snap->body);
  CHECK(cc::verify_signed_body(*body, cc::as_bytes("sse-key")));
}

TEST_CASE("deltas rebuild byte-identical, verifiable payloads over random edits", "[sse]") {
  cc::RegistryOptions o;
  o.signing_key = "delta-key";
  cc::Registry registry(o);
  std::mt19937 rng(20261127);
  REQUIRE_OK(registry.refresh_from_text(random_manifest(rng)));
  auto previous = registry.current();
  cc::Json client = *cc::parse_json(previous->canonical_payload());
  int applied = 0;
  for (int round = 0; round < 200; ++round) {
    REQUIRE_OK(registry.refresh_from_text(random_manifest(rng)));
    const auto next = registry.current();
    if (next == previous) continue;
    auto event = cc::sse_delta_event(*previous, *next);
    REQUIRE_OK(event);
    // The same event from the new version's parts (what the server's hub keeps).
    auto from_parts =
        cc::sse_delta_event(previous->canonical_payload(), previous->version,
                            next->canonical_payload(), next->version, next->signature, "");
    REQUIRE_OK(from_parts);
    CHECK(*from_parts == *event);
    REQUIRE(event->rfind("id: " + std::to_string(next->version) + "\nevent: delta\ndata: ", 0) ==
            0);
    const auto data_at = event->find("data: ") + 6;
    auto delta = cc::parse_json(event->substr(data_at, event->size() - data_at - 2));
    REQUIRE_OK(delta);
    CHECK(delta->find("from")->as_number() == static_cast<double>(previous->version));
    auto rebuilt = cc::apply_delta(client, *delta);
    REQUIRE_OK(rebuilt);
    const std::string canonical = *cc::canonical_json(*rebuilt);
    CHECK(canonical == next->canonical_payload());
    CHECK(cc::verify_hmac_sha256(cc::as_bytes("delta-key"), canonical,
                                 delta->find("signature")->as_string()));
    client = std::move(*rebuilt);
    previous = next;
    ++applied;
  }
  CHECK(applied > 100);
}

TEST_CASE("a delta across the move of count into metadata removes the top-level count", "[sse]") {
  // A payload recorded before metadata.count (resumed from history) to one built after it.
  const cc::Json before = *cc::parse_json(
      R"({"brand":"brAInwav","connectors":[{"id":"a"}],"count":1,"metadata":{"brand":"brAInwav"}})");
  const cc::Json after = *cc::parse_json(
      R"({"brand":"brAInwav","connectors":[{"id":"a"}],"metadata":{"brand":"brAInwav","count":1}})");
  const cc::Json d = cc::compute_delta(before, after, 7, 8, "sig");
  CHECK(*cc::canonical_json(d) ==
        R"({"added":[],"fields":{"metadata":{"brand":"brAInwav","count":1}},"from":7,)"
        R"("removed":[],"removedFields":["count"],"replaced":[],"signature":"sig","to":8})");
  auto rebuilt = cc::apply_delta(before, d);
  REQUIRE_OK(rebuilt);
  CHECK(*cc::canonical_json(*rebuilt) == *cc::canonical_json(after));
  // A removal of a field the base does not have, or of the connectors, is refused.
  cc::Json bad = d;
  bad.set("removedFields", cc::Json(cc::Json::Array{cc::Json("ttlSeconds")}));
  CHECK_FALSE(cc::apply_delta(before, bad));
  bad.set("removedFields", cc::Json(cc::Json::Array{cc::Json("connectors")}));
  CHECK_FALSE(cc::apply_delta(before, bad));
  bad.set("removedFields", cc::Json("count"));
  CHECK_FALSE(cc::apply_delta(before, bad));
}

TEST_CASE("a delta only carries what changed", "[sse]") {
  auto payload = [](std::string_view connectors, int ttl) {
    return *cc::parse_json(R"({"brand":"brAInwav","connectors":[)" + std::string(connectors) +
                           R"(],"count":2,"ttlSeconds":)" + std::to_string(ttl) + "}");
  };
  const cc::Json a = payload(R"({"id":"a","v":1},{"id":"b","v":1})", 60);
  const cc::Json b = payload(R"({"id":"b","v":2},{"id":"c","v":1})", 30);
  const cc::Json d = cc::compute_delta(a, b, 1, 2, "sig");
  CHECK(*cc::canonical_json(d) ==
        R"({"added":[{"id":"c","v":1}],"fields":{"ttlSeconds":30},"from":1,"removed":["a"],)"
        R"("replaced":[{"id":"b","v":2}],"signature":"sig","to":2})");
  CHECK(*cc::canonical_json(*cc::apply_delta(a, d)) == *cc::canonical_json(b));
  // Malformed deltas are refused, never applied halfway.
  CHECK_FALSE(cc::apply_delta(a, *cc::parse_json(R"({"added":[]})")));
  CHECK_FALSE(cc::apply_delta(
      a, *cc::parse_json(R"({"added":[{"id":"a"}],"removed":[],"replaced":[],"fields":{}})")));
  CHECK_FALSE(cc::apply_delta(
      a, *cc::parse_json(R"({"added":[],"removed":["zz"],"replaced":[],"fields":{}})")));
  CHECK_FALSE(cc::apply_delta(
      a, *cc::parse_json(R"({"added":[],"removed":[],"replaced":[{"id":"zz"}],"fields":{}})")));
}
