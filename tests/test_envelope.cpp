// Snapshot envelopes (envelope.h): what a publisher signs beside a body in Redis.
#include <array>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/envelope.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/signing.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kKey = "envelope-test-key";
const std::string kBody = R"({"payload":{"a":1},"signature":"x"})";
const auto kAt = std::chrono::system_clock::from_time_t(1760054400);  // 2025-10-10T00:00:00Z

cc::Ed25519Key seeded_key(unsigned char fill) {
  std::array<std::byte, 32> seed{};
  for (auto& b : seed) b = std::byte{fill};
  return cc::Ed25519Key::from_seed(seed).value();
}

// `text` with its signed part's member `name` set to `value`, signatures kept.
std::string with_signed_member(const std::string& text, std::string_view name, cc::Json value) {
  auto doc = cc::parse_json(text);
  REQUIRE_OK(doc);
  doc->find("signed")->set(name, std::move(value));
  return *cc::canonical_json(*doc);
}

}  // namespace

TEST_CASE("an envelope binds version, time, body digest and scope under the body's keys",
          "[envelope]") {
  const auto envelope = cc::make_snapshot_envelope(kBody, 9, kAt + 500ms, "cortex:connectors");
  CHECK(envelope.version == 9);
  CHECK(envelope.published_at == kAt);  // whole seconds
  CHECK(envelope.covers(kBody));
  CHECK_FALSE(envelope.covers(kBody + " "));
  const std::vector<cc::Ed25519Key> keys = {seeded_key(7)};
  const cc::PublicKeySet pinned = {keys.front().public_key()};

  auto text = cc::sign_snapshot_envelope(envelope, cc::as_bytes(kKey), keys);
  REQUIRE_OK(text);
  CHECK(*cc::canonicalize(*text) == *text);
  CHECK(text->find(R"("type":"cortex-connectors/snapshot-envelope","version":9})") !=
        std::string::npos);
  CHECK(text->find(R"("publishedAt":"2025-10-10T00:00:00Z")") != std::string::npos);

  // Either key alone verifies, and both together.
  for (const auto& [hmac, pins] :
       {std::pair{std::string(kKey), cc::PublicKeySet{}}, std::pair{std::string(), pinned},
        std::pair{std::string(kKey), pinned}}) {
    auto verified = cc::verify_snapshot_envelope(*text, cc::as_bytes(hmac), pins);
    REQUIRE_OK(verified);
    CHECK(*verified == envelope);
  }

  // Any change of the signed part breaks every signature.
  for (const auto& changed :
       {with_signed_member(*text, "version", 10), with_signed_member(*text, "scope", "other"),
        with_signed_member(*text, "publishedAt", "2025-10-11T00:00:00Z"),
        with_signed_member(*text, "bodySha256", std::string(64, 'a'))}) {
    auto hmac = cc::verify_snapshot_envelope(changed, cc::as_bytes(kKey), {});
    REQUIRE_FALSE(hmac);
    CHECK(hmac.error().code == cc::ErrorCode::kSignature);
    auto ed = cc::verify_snapshot_envelope(changed, {}, pinned);
    REQUIRE_FALSE(ed);
    CHECK(ed.error().code == cc::ErrorCode::kSignature);
  }
  // Another key, a missing signature: refused, and no key or signature in the message.
  auto other = cc::verify_snapshot_envelope(*text, cc::as_bytes("another-key"), {});
  REQUIRE_FALSE(other);
  CHECK(other.error().code == cc::ErrorCode::kSignature);
  auto hmac_only = cc::sign_snapshot_envelope(envelope, cc::as_bytes(kKey), {});
  REQUIRE_OK(hmac_only);
  auto unsigned_ed = cc::verify_snapshot_envelope(*hmac_only, {}, pinned);
  REQUIRE_FALSE(unsigned_ed);
  CHECK(unsigned_ed.error().code == cc::ErrorCode::kSignature);
  for (const auto& e : {other.error(), unsigned_ed.error()}) {
    CHECK(e.message.find(kKey) == std::string::npos);
    CHECK(e.message.starts_with("[brAInwav] snapshot envelope: "));
  }
}

TEST_CASE("malformed envelopes and unusable arguments are refused", "[envelope]") {
  const auto envelope = cc::make_snapshot_envelope(kBody, 3, kAt, "p");
  auto text = cc::sign_snapshot_envelope(envelope, cc::as_bytes(kKey), {});
  REQUIRE_OK(text);
  CHECK(cc::verify_snapshot_envelope(*text, {}, {}).error().code == cc::ErrorCode::kUsage);
  CHECK(cc::sign_snapshot_envelope(envelope, {}, {}).error().code == cc::ErrorCode::kUsage);
  auto zero = envelope;
  zero.version = 0;
  CHECK(cc::sign_snapshot_envelope(zero, cc::as_bytes(kKey), {}).error().code ==
        cc::ErrorCode::kUsage);
  auto huge = envelope;
  huge.version = cc::kMaxEnvelopeVersion + 1;
  CHECK_FALSE(cc::sign_snapshot_envelope(huge, cc::as_bytes(kKey), {}));

  const auto verify = [](const std::string& t) {
    return cc::verify_snapshot_envelope(t, cc::as_bytes(kKey), {});
  };
  CHECK(verify("").error().code == cc::ErrorCode::kParse);
  CHECK(verify("[]").error().code == cc::ErrorCode::kInvalid);
  CHECK(verify(R"({"signature":"x"})").error().code == cc::ErrorCode::kInvalid);
  CHECK(verify(*text + " ").has_value());  // whitespace is not signed
  auto extra = cc::parse_json(*text);
  extra->set("more", 1);
  CHECK(verify(*cc::canonical_json(*extra)).error().code == cc::ErrorCode::kInvalid);
  for (const auto& [name, value] : {std::pair<std::string, cc::Json>{"type", "something-else"},
                                    {"version", 1.5},
                                    {"version", 0},
                                    {"version", "3"},
                                    {"publishedAt", "yesterday"},
                                    {"bodySha256", "ABC"},
                                    {"scope", 1},
                                    {"unknown", true}}) {
    INFO(name);
    CHECK(verify(with_signed_member(*text, name, value)).error().code == cc::ErrorCode::kInvalid);
  }
}
