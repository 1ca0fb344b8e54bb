#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/signing.h"
#include "internal/digest.h"
#include "test_utils.h"

namespace cc = cortex_connectors;

TEST_CASE("base64url encodes without padding and decodes strictly", "[signing]") {
  CHECK(cc::base64url_encode(cc::as_bytes("")) == "");
  CHECK(cc::base64url_encode(cc::as_bytes("f")) == "Zg");
  CHECK(cc::base64url_encode(cc::as_bytes("fo")) == "Zm8");
  CHECK(cc::base64url_encode(cc::as_bytes("foo")) == "Zm9v");
  CHECK(cc::base64url_encode(cc::as_bytes("\xfb\xff")) == "-_8");
  auto d = cc::base64url_decode("-_8");
  REQUIRE_OK(d);
  CHECK(d->size() == 2);
  CHECK(std::to_integer<int>((*d)[0]) == 0xfb);
  CHECK_FALSE(cc::base64url_decode("Zg=="));   // padding
  CHECK_FALSE(cc::base64url_decode("+/8"));    // standard alphabet
  CHECK_FALSE(cc::base64url_decode("Z"));      // impossible length
  CHECK_FALSE(cc::base64url_decode("Zm9v!"));  // junk
}

TEST_CASE("generated secrets are lowercase hex of the asked size and unrelated", "[signing]") {
  const std::string a = cc::generate_secret_hex(32);
  const std::string b = cc::generate_secret_hex(32);
  CHECK(a.size() == 64);
  CHECK(cc::generate_secret_hex(16).size() == 32);
  CHECK(a.find_first_not_of("0123456789abcdef") == std::string::npos);
  // Unrelated: not even their first 8 bytes agree (a counter-based generator shares a prefix).
  CHECK(a.substr(0, 16) != b.substr(0, 16));
  CHECK(a.substr(48) != b.substr(48));
}

TEST_CASE("HMAC-SHA256 matches RFC 4231 test case 2", "[signing]") {
  // Key "Jefe", data "what do ya want for nothing?" ->
  // 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843
  const std::string sig =
      cc::sign_hmac_sha256(cc::as_bytes("Jefe"), "what do ya want for nothing?");
  CHECK(sig == "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM");
  CHECK(cc::verify_hmac_sha256(cc::as_bytes("Jefe"), "what do ya want for nothing?", sig));
  CHECK_FALSE(cc::verify_hmac_sha256(cc::as_bytes("Jefe"), "what do ya want for nothing!", sig));
  CHECK_FALSE(cc::verify_hmac_sha256(cc::as_bytes("jefe"), "what do ya want for nothing?", sig));
  CHECK_FALSE(cc::verify_hmac_sha256(cc::as_bytes("Jefe"), "what do ya want for nothing?",
                                     sig.substr(0, 42)));
  CHECK_FALSE(cc::verify_hmac_sha256(cc::as_bytes("Jefe"), "x", ""));
  // Keys longer than the block size are hashed first, as RFC 2104 says.
  const std::string long_key(200, 'k');
  CHECK(cc::verify_hmac_sha256(cc::as_bytes(long_key), "m",
                               cc::sign_hmac_sha256(cc::as_bytes(long_key), "m")));
}

TEST_CASE("SHA-256 and HMAC-SHA256 equal Python's on both sides of the small-input size",
          "[signing]") {
  // Small inputs are hashed by libsodium, larger ones by libcrypto (src/internal/digest.h):
  // both must give the standard digests, at the boundary too.
  const std::size_t small = cc::internal::kSmallDigestInput;
  const std::vector<std::size_t> sizes = {0, 1, 55, 64, 1000, small - 1, small, small + 1, 100000};
  const std::vector<std::size_t> key_sizes = {0, 4, 64, 65, 200};
  auto bytes = [](std::size_t n, unsigned mul, unsigned add) {
    std::string out(n, '\0');
    for (std::size_t j = 0; j < n; ++j) out[j] = static_cast<char>((j * mul + add) % 256);
    return out;
  };
  cc::test::TempDir dir;
  cc::test::write_file(dir / "digests.py", R"(import hashlib, hmac, sys
def data(n, mul, add): return bytes((j * mul + add) % 256 for j in range(n))
for n in map(int, sys.argv[1].split(",")):
    m = data(n, 31, n)
    print(hashlib.sha256(m).hexdigest(),
          *(hmac.new(data(k, 7, 1), m, hashlib.sha256).hexdigest() for k in map(int, sys.argv[2].split(","))))
)");
  auto join = [](const std::vector<std::size_t>& v) {
    std::string out;
    for (const auto n : v) out += (out.empty() ? "" : ",") + std::to_string(n);
    return out;
  };
  auto py = cc::test::run_program(
      {"/usr/bin/python3", (dir / "digests.py").string(), join(sizes), join(key_sizes)});
  REQUIRE(py.exit_code == 0);
  std::istringstream lines(py.out);
  for (const std::size_t n : sizes) {
    INFO("message of " << n << " bytes");
    const std::string message = bytes(n, 31, static_cast<unsigned>(n));
    std::string ours = cc::internal::sha256_hex(message);
    for (const std::size_t k : key_sizes) {
      const std::string key = bytes(k, 7, 1);
      ours += " " + cc::internal::to_hex(cc::internal::hmac_sha256(cc::as_bytes(key), message));
    }
    std::string line;
    REQUIRE(std::getline(lines, line));
    CHECK(line == ours);
  }
}

TEST_CASE("signatures equal the Python original's for ASCII integer documents", "[signing]") {
  // Existing Python and TypeScript verifiers compute
  // hmac(key, json.dumps(doc, sort_keys=True, separators=(",",":"))) base64url without padding.
  const std::vector<std::string> docs = {
      R"({"b":1,"a":[3,2,1],"c":{"z":null,"y":true,"x":false}})",
      R"({"payload":{"id":"01J7X5MB4K1ZW0000000000000","brand":"brAInwav","ttlSeconds":60,"connectors":[]}})",
      R"({"nested":{"deep":{"deeper":[{"k":"v \" \\ / \n \t","n":-12345678901}]}},"A":0,"a":1,"_":2})",
      R"({"quotas":{"perMinute":30,"perHour":300},"scopes":["search:query","search:insights"],"enabled":false})",
      R"([1,"two",{"3":3,"10":10,"2":2}])",
  };
  const std::string key = "parity-key-\xc3\xa9";  // the key's UTF-8 bytes, as the original used
  cc::test::TempDir dir;
  std::string script = R"(import sys, json, hmac, hashlib, base64
key = sys.argv[1].encode()
for line in sys.stdin.read().splitlines():
    doc = json.loads(line)
    body = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    sig = base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest()).decode().rstrip("=")
    print(body + "\t" + sig)
)";
  cc::test::write_file(dir / "parity.py", script);
  std::string input;
  for (const auto& d : docs) input += d + "\n";
  auto py = cc::test::run_program({"/usr/bin/python3", (dir / "parity.py").string(), key}, input);
  REQUIRE(py.exit_code == 0);
  std::istringstream lines(py.out);
  std::string line;
  std::size_t i = 0;
  for (; std::getline(lines, line); ++i) {
    REQUIRE(i < docs.size());
    const auto tab = line.find('\t');
    auto ours = cc::canonicalize(docs[i]);
    REQUIRE_OK(ours);
    CHECK(*ours == line.substr(0, tab));
    CHECK(cc::sign_hmac_sha256(cc::as_bytes(key), *ours) == line.substr(tab + 1));
  }
  CHECK(i == docs.size());
}

TEST_CASE("verify_signed_body checks the signature over the canonical payload", "[signing]") {
  const auto key = cc::as_bytes("secret-key");
  const std::string payload = R"({"count":1,"id":"x"})";  // canonical
  const std::string sig = cc::sign_hmac_sha256(key, payload);
  // Whitespace and member order in the body do not matter: the payload is canonicalized.
  const std::string body =
      "{\"signature\": \"" + sig + "\",\n \"payload\": {\"count\": 1, \"id\": \"x\"}}";
  auto ok = cc::verify_signed_body(body, key);
  REQUIRE_OK(ok);
  CHECK(ok->find("count")->as_number() == 1);

  auto wrong_key = cc::verify_signed_body(body, cc::as_bytes("other"));
  REQUIRE_FALSE(wrong_key);
  CHECK(wrong_key.error().code == cc::ErrorCode::kSignature);
  CHECK(wrong_key.error().message.find(sig) == std::string::npos);
  CHECK(wrong_key.error().message.find("secret-key") == std::string::npos);

  std::string tampered = body;
  tampered.replace(tampered.find("\"x\""), 3, "\"y\"");
  CHECK(cc::verify_signed_body(tampered, key).error().code == cc::ErrorCode::kSignature);
  CHECK(cc::verify_signed_body("[]", key).error().code == cc::ErrorCode::kInvalid);
  CHECK(cc::verify_signed_body(R"({"payload":{}})", key).error().code == cc::ErrorCode::kInvalid);
  CHECK(cc::verify_signed_body(R"({"signature":"a"})", key).error().code ==
        cc::ErrorCode::kInvalid);
  CHECK(cc::verify_signed_body("{", key).error().code == cc::ErrorCode::kParse);
}
