#include <random>
#include <string>
#include <vector>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/keys.h"
#include "cortex_connectors/manifest.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/signed_body.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/sse.h"
#include "internal/service_map.h"
#include "test_utils.h"
// The benchmarks' manifest generator (header-only, self-contained).
#include "../bench/manifest_generator.h"

namespace cc = cortex_connectors;

namespace {

constexpr std::string_view kKey = "signed-body-key";
constexpr std::string_view kFallback = "2025-10-10T00:00:00Z";

cc::Manifest parsed(std::string_view text) {
  auto m = cc::parse_manifest(text);
  REQUIRE_OK(m);
  return std::move(*m);
}

// Every span of `body`'s layout is the canonical form of the part it names.
void check_layout(const cc::SignedBody& body) {
  const std::string_view payload = body.canonical_payload();
  REQUIRE(body.layout() != nullptr);
  const cc::PayloadLayout& layout = *body.layout();
  const cc::Json tree = *cc::parse_json(payload);
  REQUIRE(layout.members.size() == tree.as_object().size());
  for (std::size_t i = 0; i < layout.members.size(); ++i) {
    const auto& [key, value] = tree.as_object()[i];
    CHECK(layout.members[i].key.of(payload) == key);
    CHECK(layout.members[i].value.of(payload) == *cc::canonical_json(value));
  }
  const auto& connectors = tree.find("connectors")->as_array();
  REQUIRE(layout.connectors.size() == connectors.size());
  for (std::size_t i = 0; i < connectors.size(); ++i) {
    CHECK(layout.connectors[i].id.of(payload) == connectors[i].find("id")->as_string());
    CHECK(layout.connectors[i].entry.of(payload) == *cc::canonical_json(connectors[i]));
  }
  // Where the writer recorded them, the scan of the bytes finds them too.
  const auto scanned = cc::scan_payload_layout(payload);
  REQUIRE(scanned);
  CHECK(*scanned == layout);
}

// The delta event as the tree diff writes it: both payloads parsed and compute_delta().
std::string tree_delta(std::string_view from, std::uint64_t from_version, std::string_view to,
                       std::uint64_t to_version, std::string_view signature,
                       std::string_view signatures) {
  cc::Json delta = cc::compute_delta(*cc::parse_json(from), *cc::parse_json(to), from_version,
                                     to_version, signature);
  if (!signatures.empty()) delta.set("signatures", *cc::parse_json(signatures));
  return cc::sse_event("delta", std::to_string(to_version), *cc::canonical_json(delta));
}

}  // namespace

TEST_CASE("a signed body knows where its payload sits", "[signed_body]") {
  const cc::Manifest m = parsed(cc::test::read_data("manifests/original-fixture.manifest.json"));
  const std::vector<cc::Ed25519Key> keys{cc::Ed25519Key::generate()};
  for (const bool ed25519 : {false, true}) {
    INFO("ed25519 " << ed25519);
    const auto ed_keys =
        ed25519 ? std::span<const cc::Ed25519Key>(keys) : std::span<const cc::Ed25519Key>();
    auto s = cc::sign_service_map(cc::build_service_map(m, kFallback), cc::as_bytes(kKey), ed_keys);
    REQUIRE_OK(s);
    const std::string canonical = *cc::canonical_json(s->payload);
    CHECK(s->canonical_payload() == canonical);
    CHECK(s->canonical_payload().data() == s->body.data() + sizeof(R"({"payload":)") - 1);
    std::string want = R"({"payload":)" + canonical + R"(,"signature":")" + s->signature + "\"";
    if (ed25519) want += R"(,"signatures":)" + s->signatures;
    CHECK(s->body == want + "}");
    CHECK(cc::verify_hmac_sha256(cc::as_bytes(kKey), s->canonical_payload(), s->signature));
    CHECK(s->signatures.empty() == !ed25519);
    check_layout(*s);
    // The body again from its parts: the same bytes, the same layout.
    const auto again = cc::SignedBody::assemble(canonical, s->signature, s->signatures);
    CHECK(again.body == s->body);
    CHECK(again.canonical_payload() == canonical);
    REQUIRE(again.layout() != nullptr);
    CHECK(*again.layout() == *s->layout());
    // A copy that holds the body verbatim (an SSE status event) finds the payload in itself.
    const std::string event = "data: " + s->body + "\n";
    CHECK(s->canonical_payload_in(std::string_view(event).substr(6)) == canonical);
  }
  CHECK(cc::SignedBody().canonical_payload().empty());
  CHECK(cc::SignedBody().layout() == nullptr);
  // A moved-from body's accessor stays within what its body holds (no throw from noexcept).
  auto s = cc::sign_service_map(cc::build_service_map(m, kFallback), cc::as_bytes(kKey));
  REQUIRE_OK(s);
  cc::SignedBody moved = std::move(*s);
  CHECK_FALSE(moved.canonical_payload().empty());
  // NOLINTNEXTLINE(bugprone-use-after-move): what it pins
  CHECK(s->canonical_payload().size() <= s->body.size());
}

TEST_CASE("the writer records the layout the bytes have", "[signed_body]") {
  for (const std::size_t n : {std::size_t{1}, std::size_t{3}, std::size_t{100}, std::size_t{700}}) {
    for (const std::uint64_t seed : {std::uint64_t{301}, std::uint64_t{7}}) {
      INFO("connectors " << n << ", seed " << seed);
      const std::string text = cc::bench::generate_manifest(n, seed);
      auto from_text = cc::sign_manifest_text(text, kFallback, cc::as_bytes(kKey));
      REQUIRE_OK(from_text);
      check_layout(*from_text);
      auto via_manifest =
          cc::internal::sign_manifest_service_map(parsed(text), kFallback, cc::as_bytes(kKey));
      REQUIRE_OK(via_manifest);
      CHECK(via_manifest->body == from_text->body);
      CHECK(*via_manifest->layout() == *from_text->layout());
    }
  }
}

TEST_CASE("scan_payload_layout() takes only service-map payloads apart", "[signed_body]") {
  const auto layout = cc::scan_payload_layout(
      R"({"a":[1,{"x":"]}"}],"connectors":[{"id":"b\"c","n":{}},{"z":null,"id":"d"}],"e":"\\"})");
  REQUIRE(layout);
  REQUIRE(layout->members.size() == 3);
  REQUIRE(layout->connectors.size() == 2);
  const std::string_view text =
      R"({"a":[1,{"x":"]}"}],"connectors":[{"id":"b\"c","n":{}},{"z":null,"id":"d"}],"e":"\\"})";
  CHECK(layout->members[0].value.of(text) == R"([1,{"x":"]}"}])");
  CHECK(layout->members[2].value.of(text) == R"("\\")");
  CHECK(layout->connectors[0].id.of(text) == R"(b\"c)");
  CHECK(layout->connectors[1].entry.of(text) == R"({"z":null,"id":"d"})");
  CHECK(cc::scan_payload_layout(R"({"connectors":[]})"));
  for (const std::string_view bad :
       {"", "[]", "{}", R"({"connectors":{}})", R"({"connectors":[1]})",
        R"({"connectors":[{"name":"x"}]})", R"({"connectors":[{"id":1}]})", R"({"connectors":[]}x)",
        R"({"connectors":[])", R"({"connectors":[{"id":"a})"}) {
    INFO(bad);
    CHECK_FALSE(cc::scan_payload_layout(bad));
  }
}

TEST_CASE("the delta by spans equals the delta by trees over a random edit series",
          "[signed_body][sse]") {
  std::mt19937 rng(20261207);
  cc::Manifest m = parsed(cc::bench::generate_manifest(40, 301));
  const std::vector<cc::Ed25519Key> keys{cc::Ed25519Key::generate()};
  std::vector<cc::SignedServiceMap> history;
  int fresh_id = 0;
  for (int round = 0; round < 120; ++round) {
    const auto pick = [&] {
      return std::uniform_int_distribution<std::size_t>(0, m.connectors.size() - 1)(rng);
    };
    switch (std::uniform_int_distribution<int>(0, 6)(rng)) {
      case 0:
        m.connectors[pick()].version += ".1";
        break;
      case 1:
        m.connectors[pick()].endpoint += "/x";
        break;
      case 2: {
        cc::Connector c = m.connectors[pick()];
        // Ids that sort before, among and after the generated c-000001...
        c.id = std::string(round % 3 == 0   ? "a"
                           : round % 3 == 1 ? "c-0000"
                                            : "z") +
               "-new-" + std::to_string(++fresh_id);
        m.connectors.push_back(std::move(c));
        break;
      }
      case 3:
        if (m.connectors.size() > 1)
          m.connectors.erase(m.connectors.begin() + static_cast<long>(pick()));
        break;
      case 4:
        if (!m.metadata.is_object()) m.metadata = cc::Json::object();
        m.metadata.set("round", round);
        break;
      case 5:
        m.ttl_seconds = 1 + round;
        break;
      default:
        m.connectors[pick()].enabled = round % 2 == 0;
        break;
    }
    const bool ed25519 = round % 4 == 0;
    auto s = round % 2 == 0
                 ? cc::internal::sign_manifest_service_map(
                       m, kFallback, cc::as_bytes(kKey),
                       ed25519 ? std::span<const cc::Ed25519Key>(keys)
                               : std::span<const cc::Ed25519Key>())
                 : cc::sign_service_map(cc::build_service_map(m, kFallback), cc::as_bytes(kKey),
                                        ed25519 ? std::span<const cc::Ed25519Key>(keys)
                                                : std::span<const cc::Ed25519Key>());
    REQUIRE_OK(s);
    REQUIRE(s->layout() != nullptr);
    history.push_back(std::move(*s));
  }
  int compared = 0;
  for (std::size_t to = 1; to < history.size(); ++to) {
    // From the previous version and from a few older ones (a subscriber resuming).
    for (const std::size_t back : {std::size_t{1}, std::size_t{2}, std::size_t{9}}) {
      if (back > to) continue;
      const std::size_t from = to - back;
      INFO("from " << from << " to " << to);
      const auto& a = history[from];
      const auto& b = history[to];
      auto spans = cc::sse_delta_event(a.payload_view(), from + 1, b.payload_view(), to + 1,
                                       b.signature, b.signatures);
      REQUIRE_OK(spans);
      CHECK(*spans == tree_delta(a.canonical_payload(), from + 1, b.canonical_payload(), to + 1,
                                 b.signature, b.signatures));
      ++compared;
    }
  }
  CHECK(compared > 300);
}

TEST_CASE("payloads the spans cannot compare are diffed as trees, with the same bytes",
          "[signed_body][sse]") {
  // A payload recorded before metadata.count moved (history of an older server): by spans.
  const std::string before =
      R"({"brand":"brAInwav","connectors":[{"id":"a","v":1},{"id":"b"}],"count":2,)"
      R"("metadata":{"brand":"brAInwav"}})";
  const std::string after = R"({"brand":"brAInwav","connectors":[{"id":"a","v":2},{"id":"c"}],)"
                            R"("metadata":{"brand":"brAInwav","count":2}})";
  auto event = cc::sse_delta_event(before, 7, after, 8, "sig", "");
  REQUIRE_OK(event);
  CHECK(*event == tree_delta(before, 7, after, 8, "sig", ""));
  CHECK(event->find(R"("removedFields":["count"])") != std::string::npos);
  // Ids out of order, repeated or escaped: no spans, the trees' bytes.
  for (const std::string_view odd : {R"({"connectors":[{"id":"b"},{"id":"a"}]})",
                                     R"({"connectors":[{"id":"a"},{"id":"a","x":1}]})",
                                     R"({"connectors":[{"id":"\u0061"},{"id":"b"}]})"}) {
    INFO(odd);
    auto to_odd = cc::sse_delta_event(after, 1, odd, 2, "s", R"([{"kid":"k","sig":"x"}])");
    REQUIRE_OK(to_odd);
    CHECK(*to_odd == tree_delta(after, 1, odd, 2, "s", R"([{"kid":"k","sig":"x"}])"));
    auto from_odd = cc::sse_delta_event(odd, 1, after, 2, "s", "");
    REQUIRE_OK(from_odd);
    CHECK(*from_odd == tree_delta(odd, 1, after, 2, "s", ""));
  }
  // Not JSON: an error, as before.
  CHECK_FALSE(cc::sse_delta_event("{", 1, after, 2, "s", ""));
}
