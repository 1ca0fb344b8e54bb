// Ed25519 signatures, key files, rotation and GET /v1/connectors/keys (library, CLI, server).
#include <cstdlib>
#include <filesystem>

#include <httplib.h>
#include <sys/stat.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/keys.h"
#include "cortex_connectors/registry.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/verify.h"
#include "server_process.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
namespace fs = std::filesystem;
using cc::test::run_cli;

namespace {

const std::string kHmacKey = "keys-test-hmac-key";

cc::Ed25519Key seeded_key(unsigned char fill) {
  std::array<std::byte, 32> seed{};
  for (auto& b : seed) b = std::byte{fill};
  return cc::Ed25519Key::from_seed(seed).value();
}

// A signed body of the fixture manifest, signed by `keys`.
cc::SignedServiceMap signed_fixture(std::span<const cc::Ed25519Key> keys) {
  auto doc = cc::parse_json(cc::test::read_data("manifests/original-fixture.manifest.json"));
  REQUIRE_OK(doc);
  auto manifest = cc::manifest_from_json(std::move(*doc));
  REQUIRE_OK(manifest);
  auto signed_map = cc::sign_service_map(cc::build_service_map(*manifest, "2025-10-10T00:00:00Z"),
                                         cc::as_bytes(kHmacKey), keys);
  REQUIRE_OK(signed_map);
  return std::move(*signed_map);
}

// The private key (seed) text stored in a key file.
std::string private_key_of(const fs::path& file) {
  auto doc = cc::parse_json(cc::test::read_file(file));
  REQUIRE_OK(doc);
  const cc::Json* v = doc->find("privateKey");
  REQUIRE(v != nullptr);
  return v->as_string();
}

unsigned file_mode(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// Replaces the "sig" of every signature entry of `body` with `sig`.
std::string with_signatures(const std::string& body, const std::string& signatures) {
  auto doc = cc::parse_json(body);
  REQUIRE_OK(doc);
  auto parsed = cc::parse_json(signatures);
  REQUIRE_OK(parsed);
  doc->set("signatures", std::move(*parsed));
  return cc::canonical_json(*doc).value();
}

}  // namespace

TEST_CASE("ed25519: a signed body verifies with the public key only", "[keys]") {
  const auto key = seeded_key(7);
  const std::vector<cc::Ed25519Key> keys{key};
  const auto signed_map = signed_fixture(keys);
  // Canonical JSON, the HMAC signature unchanged, "signatures" after it.
  CHECK(cc::canonicalize(signed_map.body).value() == signed_map.body);
  const auto hmac_only = signed_fixture({});
  CHECK(hmac_only.signatures.empty());
  CHECK(hmac_only.body.find("signatures") == std::string::npos);
  CHECK(signed_map.signature == hmac_only.signature);
  CHECK(signed_map.body.starts_with(hmac_only.body.substr(0, hmac_only.body.size() - 1)));
  CHECK(signed_map.signatures.starts_with(R"([{"alg":"Ed25519","kid":")" + key.kid() +
                                          R"(","sig":")"));

  const cc::PublicKeySet pinned{key.public_key()};
  auto verified = cc::verify_service_map(signed_map.body, pinned);
  REQUIRE_OK(verified);
  CHECK(verified->kid == key.kid());
  CHECK(verified->canonical_payload == signed_map.canonical_payload());
  CHECK(verified->body() == signed_map.body);
  // The HMAC verifier ignores the extra member.
  REQUIRE_OK(cc::verify_service_map(signed_map.body, cc::as_bytes(kHmacKey)));
  // kid: 16 bytes of SHA-256, base64url.
  CHECK(key.kid().size() == 22);
  CHECK(key.kid() == cc::ed25519_kid(key.public_key().key));
  CHECK(cc::parse_public_key(key.public_key().key_base64url()).value() == key.public_key());
}

TEST_CASE("ed25519: the registry publishes signed snapshots and keeps the payload view", "[keys]") {
  cc::RegistryOptions o;
  o.signing_key = kHmacKey;
  o.ed25519_keys.push_back(seeded_key(9));
  cc::Registry registry(o);
  auto snap = registry.refresh_from_text(
      cc::test::read_data("manifests/original-fixture.manifest.json"), "inline");
  REQUIRE_OK(snap);
  const auto& s = **snap;
  CHECK_FALSE(s.signatures.empty());
  CHECK(s.body.ends_with(",\"signatures\":" + s.signatures + "}"));
  REQUIRE_OK(cc::canonicalize(s.canonical_payload()));
  CHECK(cc::verify_ed25519(o.ed25519_keys[0].public_key(), s.canonical_payload(),
                           cc::parse_json(s.signatures)->as_array()[0].find("sig")->as_string()));
  REQUIRE_OK(cc::verify_service_map(s.body, cc::PublicKeySet{o.ed25519_keys[0].public_key()}));
}

TEST_CASE("ed25519: tampering any byte of the payload fails", "[keys]") {
  const auto key = seeded_key(3);
  const std::vector<cc::Ed25519Key> keys{key};
  const auto signed_map = signed_fixture(keys);
  const std::string sig = key.sign(signed_map.canonical_payload());
  const std::string payload(signed_map.canonical_payload());
  REQUIRE(cc::verify_ed25519(key.public_key(), payload, sig));
  for (std::size_t i = 0; i < payload.size(); ++i) {
    std::string tampered = payload;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    if (cc::verify_ed25519(key.public_key(), tampered, sig)) FAIL("byte " << i << " not covered");
  }
  CHECK_FALSE(cc::verify_ed25519(key.public_key(), payload + " ", sig));
  CHECK_FALSE(cc::verify_ed25519(key.public_key(), payload.substr(1), sig));
  // Through the body: a changed value in the payload is rejected with kSignature.
  std::string body = signed_map.body;
  const auto at = body.find("\"ttlSeconds\":");
  REQUIRE(at != std::string::npos);
  body.insert(at + 13, "1");
  auto r = cc::verify_service_map(body, cc::PublicKeySet{key.public_key()});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == cc::ErrorCode::kSignature);
}

TEST_CASE("ed25519: a consumer holding only public keys cannot produce an accepted body",
          "[keys]") {
  const auto real = seeded_key(1);
  const std::vector<cc::Ed25519Key> real_keys{real};
  const auto genuine = signed_fixture(real_keys);
  const cc::PublicKeySet pinned{real.public_key()};
  REQUIRE_OK(cc::verify_service_map(genuine.body, pinned));

  const auto forger = cc::Ed25519Key::generate();
  const std::vector<cc::Ed25519Key> forger_keys{forger};
  // Its own key: no signature by a pinned kid, and the message names the kid it saw.
  const auto own = signed_fixture(forger_keys);
  auto r1 = cc::verify_service_map(own.body, pinned);
  REQUIRE_FALSE(r1);
  CHECK(r1.error().code == cc::ErrorCode::kSignature);
  CHECK(r1.error().message.find("no Ed25519 signature by a pinned key") != std::string::npos);
  CHECK(r1.error().message.find(forger.kid()) != std::string::npos);
  // Claiming the pinned kid with its own signature.
  const std::string claimed =
      with_signatures(own.body, R"([{"alg":"Ed25519","kid":")" + real.kid() + R"(","sig":")" +
                                    forger.sign(own.canonical_payload()) + "\"}]");
  auto r2 = cc::verify_service_map(claimed, pinned);
  REQUIRE_FALSE(r2);
  CHECK(r2.error().message.find("pinned key " + real.kid() + " does not match") !=
        std::string::npos);
  // A genuine signature moved onto another payload.
  std::string moved = genuine.body;
  moved.replace(moved.find("\"count\":"), 9, "\"count\":9");
  CHECK_FALSE(cc::verify_service_map(moved, pinned));
  // HMAC only (even with the right HMAC key), no or empty signatures, another algorithm.
  auto r3 = cc::verify_service_map(signed_fixture({}).body, pinned);
  REQUIRE_FALSE(r3);
  CHECK(r3.error().message.find("no Ed25519 signatures") != std::string::npos);
  CHECK_FALSE(cc::verify_service_map(with_signatures(genuine.body, "[]"), pinned));
  CHECK_FALSE(cc::verify_service_map(
      with_signatures(genuine.body, R"([{"alg":"HS256","kid":")" + real.kid() + R"(","sig":")" +
                                        genuine.signature + "\"}]"),
      pinned));
  // The cache keyed by public keys refuses all of them and keeps the genuine map.
  cc::ServiceMapCache cache(pinned);
  REQUIRE_OK(cache.offer(genuine.body));
  CHECK_FALSE(cache.offer(claimed));
  CHECK_FALSE(cache.offer(own.body));
  CHECK(cache.current()->body() == genuine.body);
}

TEST_CASE("ed25519: rotation publishes old and new keys while the new one signs", "[keys]") {
  auto old_key = seeded_key(20);
  old_key.set_validity("", "2099-01-01T00:00:00Z");
  const auto new_key = seeded_key(21);
  const std::vector<cc::Ed25519Key> signer{new_key};
  const auto body = signed_fixture(signer).body;
  const std::vector<cc::Ed25519PublicKey> published{new_key.public_key(), old_key.public_key()};
  const auto now = std::chrono::system_clock::now();
  const auto doc = cc::build_keys_document(published, now);
  CHECK(cc::canonicalize(doc.body).value() == doc.body);
  CHECK(doc.body.find(old_key.kid()) != std::string::npos);
  CHECK(doc.body.find("\"notAfter\":\"2099-01-01T00:00:00Z\"") != std::string::npos);
  CHECK(doc.etag.size() == 34);

  auto set = cc::parse_keys_document(doc.body);
  REQUIRE_OK(set);
  CHECK(set->size() == 2);
  REQUIRE_OK(cc::verify_service_map(body, *set));
  REQUIRE_OK(cc::verify_service_map(body, cc::PublicKeySet{new_key.public_key()}));
  auto old_only = cc::verify_service_map(body, cc::PublicKeySet{old_key.public_key()});
  REQUIRE_FALSE(old_only);
  CHECK(old_only.error().message.find(new_key.kid()) != std::string::npos);

  // After the overlap the old key leaves the document (and its ETag changes).
  auto expired = old_key;
  expired.set_validity("", "2000-01-01T00:00:00Z");
  const std::vector<cc::Ed25519PublicKey> later{new_key.public_key(), expired.public_key()};
  const auto after = cc::build_keys_document(later, now);
  CHECK(after.body.find(old_key.kid()) == std::string::npos);
  CHECK(after.etag != doc.etag);
  // A document whose kid does not match its key is refused.
  std::string lying = doc.body;
  lying.replace(lying.find(new_key.kid()), new_key.kid().size(), old_key.kid());
  CHECK_FALSE(cc::parse_keys_document(lying));
}

TEST_CASE("ed25519: a keys document file is read like the route serves it", "[keys]") {
  cc::test::TempDir dir;
  const auto a = seeded_key(30);
  auto b = seeded_key(31);
  b.set_validity("", "2099-01-01T00:00:00Z");
  const std::vector<cc::Ed25519PublicKey> published{a.public_key(), b.public_key()};
  const auto path = (dir / "keys.json").string();
  cc::test::write_file(path,
                       cc::build_keys_document(published, std::chrono::system_clock::now()).body);
  fs::permissions(path, static_cast<fs::perms>(0644));  // public keys: any mode
  auto read = cc::read_keys_document_file(path);
  REQUIRE_OK(read);
  CHECK(*read == cc::PublicKeySet(published.begin(), published.end()));

  const auto missing = (dir / "missing.json").string();
  auto r = cc::read_keys_document_file(missing);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == cc::ErrorCode::kIo);
  CHECK(r.error().message.find(missing) != std::string::npos);
  r = cc::read_keys_document_file(dir.path().string());
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("not a regular file") != std::string::npos);
  for (const char* bad : {"", "{", R"({"keys":[]})", R"({"keys":[{"alg":"Ed25519"}]})"}) {
    CAPTURE(bad);
    cc::test::write_file(path, bad);
    r = cc::read_keys_document_file(path);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find(path + " is not a usable keys document: ") != std::string::npos);
    CHECK(r.error().message.starts_with("[brAInwav] "));
  }
}

TEST_CASE("ed25519: key files are 0600, round-trip and loose permissions are refused", "[keys]") {
  cc::test::TempDir dir;
  const auto path = (dir / "signing.key").string();
  auto key = cc::Ed25519Key::generate();
  key.set_validity("2025-01-01T00:00:00Z", "");
  REQUIRE_OK(cc::write_ed25519_key_file(path, key));
  CHECK(file_mode(path) == 0600);
  auto again = cc::write_ed25519_key_file(path, key);
  REQUIRE_FALSE(again);
  CHECK(again.error().code == cc::ErrorCode::kIo);

  auto read = cc::read_ed25519_key_file(path);
  REQUIRE_OK(read);
  CHECK(read->public_key() == key.public_key());
  CHECK(read->sign("abc") == key.sign("abc"));

  const std::string secret = private_key_of(path);
  for (unsigned mode : {0640U, 0604U, 0644U}) {
    fs::permissions(path, static_cast<fs::perms>(mode));
    auto loose = cc::read_ed25519_key_file(path);
    REQUIRE_FALSE(loose);
    CHECK(loose.error().code == cc::ErrorCode::kIo);
    CHECK(loose.error().message.find(path) != std::string::npos);
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", mode);
    CHECK(loose.error().message.find(octal) != std::string::npos);
    CHECK(loose.error().message.find(secret) == std::string::npos);
  }
  fs::permissions(path, static_cast<fs::perms>(0600));
  // Not a key file: the error never quotes the content.
  const auto bad = (dir / "bad.key").string();
  cc::test::write_file(bad, R"({"alg":"Ed25519","privateKey":"SECRETSECRET"})");
  fs::permissions(bad, static_cast<fs::perms>(0600));
  auto r = cc::read_ed25519_key_file(bad);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("SECRETSECRET") == std::string::npos);
  CHECK(r.error().message.find(bad) != std::string::npos);
}

TEST_CASE("cli: keygen writes a 0600 key file and verify checks Ed25519 signatures", "[keys]") {
  cc::test::TempDir dir;
  const auto key_path = (dir / "k.json").string();
  auto gen = run_cli({"keygen", key_path});
  REQUIRE(gen.exit_code == 0);
  CHECK(file_mode(key_path) == 0600);
  const std::string secret = private_key_of(key_path);
  CHECK(gen.out.find(secret) == std::string::npos);
  CHECK(gen.err.find(secret) == std::string::npos);
  auto key = cc::read_ed25519_key_file(key_path);
  REQUIRE_OK(key);
  CHECK(gen.out.find("kid: " + key->kid()) != std::string::npos);
  const std::string pk = key->public_key().key_base64url();
  CHECK(gen.out.find("public key: " + pk) != std::string::npos);
  auto overwrite = run_cli({"keygen", key_path});
  CHECK(overwrite.exit_code == 1);
  CHECK(private_key_of(key_path) == secret);
  CHECK(run_cli({"keygen"}).exit_code == 2);
  CHECK(run_cli({"keygen", (dir / "x").string(), "--not-after", "soon"}).exit_code == 2);

  const std::vector<cc::Ed25519Key> keys{*key};
  const auto body = signed_fixture(keys).body;
  cc::test::write_file(dir / "body.json", body);
  const auto body_path = (dir / "body.json").string();
  auto ok = run_cli({"verify", "--public-key", pk, body_path});
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find(key->kid()) != std::string::npos);
  CHECK(run_cli({"verify", "--public-key", pk, "-"}, body).exit_code == 0);
  const std::string other = cc::Ed25519Key::generate().public_key().key_base64url();
  auto wrong = run_cli({"verify", "--public-key", other, body_path});
  CHECK(wrong.exit_code == 1);
  CHECK(wrong.err.find("no Ed25519 signature by a pinned key") != std::string::npos);
  std::string tampered = body;
  tampered.replace(tampered.find("\"count\":"), 9, "\"count\":7");
  CHECK(run_cli({"verify", "--public-key", pk, "-"}, tampered).exit_code == 1);
  CHECK(run_cli({"verify", "--public-key", pk, "-"}, signed_fixture({}).body).exit_code == 1);

  const std::vector<cc::Ed25519PublicKey> published{key->public_key()};
  cc::test::write_file(dir / "keys.json",
                       cc::build_keys_document(published, std::chrono::system_clock::now()).body);
  CHECK(run_cli({"verify", "--keys-url-file", (dir / "keys.json").string(), body_path}).exit_code ==
        0);
  CHECK(run_cli({"verify", "--public-key"}).exit_code == 2);
  CHECK(run_cli({"verify", "--public-key", "not-a-key", body_path}).exit_code == 2);
  CHECK(run_cli({"verify", "--keys-url-file", body_path, body_path}).exit_code == 2);
  // Plain verify keeps its HMAC behaviour on the same body.
  CHECK(run_cli({"verify", body_path}, {}, {"CONNECTORS_SIGNATURE_KEY=" + kHmacKey}).exit_code ==
        0);
}

TEST_CASE("ed25519: node's crypto.verify accepts our signature", "[keys]") {
  if (std::system("node --version > /dev/null 2>&1") != 0) {
    WARN("node is not installed: the independent Ed25519 cross-check is skipped");
    return;
  }
  const auto key = seeded_key(42);
  const std::vector<cc::Ed25519Key> keys{key};
  const auto signed_map = signed_fixture(keys);
  cc::test::TempDir dir;
  cc::test::write_file(dir / "payload.json", signed_map.canonical_payload());
  const std::string sig = key.sign(signed_map.canonical_payload());
  const std::string script =
      "const c=require('crypto'),fs=require('fs');"
      "const k=c.createPublicKey({key:{kty:'OKP',crv:'Ed25519',x:process.argv[1]},format:'jwk'});"
      "const p=fs.readFileSync(process.argv[2]);"
      "const ok=c.verify(null,p,k,Buffer.from(process.argv[3],'base64url'));"
      "const bad=c.verify(null,Buffer.concat([p,Buffer.from(' ')]),k,"
      "Buffer.from(process.argv[3],'base64url'));"
      "process.stdout.write(ok&&!bad?'valid':'invalid');";
  auto r =
      cc::test::run_program({"/usr/bin/env", "node", "-e", script, key.public_key().key_base64url(),
                             (dir / "payload.json").string(), sig});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "valid");
}

TEST_CASE("server: GET /v1/connectors/keys with ETag and 304, signed bodies, no key in logs",
          "[keys]") {
  cc::test::TempDir dir;
  const auto manifest = dir / "m.json";
  cc::test::write_file(manifest, cc::test::read_data("manifests/original-fixture.manifest.json"));
  const auto active = (dir / "new.key").string();
  const auto previous = (dir / "old.key").string();
  REQUIRE(run_cli({"keygen", active}).exit_code == 0);
  REQUIRE(run_cli({"keygen", previous}).exit_code == 0);
  const auto active_key = cc::read_ed25519_key_file(active).value();
  const auto previous_key = cc::read_ed25519_key_file(previous).value();
  const std::vector<std::string> env{
      "CONNECTORS_SIGNATURE_KEY=" + kHmacKey, "CONNECTORS_API_KEY=keys-api-key",
      "CONNECTORS_MANIFEST_PATH=" + manifest.string(), "CONNECTORS_SIGNING_KEY_FILE=" + active,
      "CONNECTORS_PREVIOUS_KEYS_NOT_AFTER=2099-01-01T00:00:00Z"};
  cc::test::ServerProcess server({"--port", "0", "--previous-key-file", previous}, env);
  REQUIRE(server.port() > 0);
  httplib::Client client("127.0.0.1", server.port());
  client.set_decompress(false);

  // Public: no Authorization needed.
  auto keys = client.Get("/v1/connectors/keys");
  REQUIRE(keys);
  CHECK(keys->status == 200);
  CHECK(keys->get_header_value("Content-Type") == "application/json");
  CHECK(keys->get_header_value("Cache-Control") == "no-cache");
  const std::string etag = keys->get_header_value("ETag");
  CHECK(etag.size() == 34);
  CHECK(cc::canonicalize(keys->body).value() == keys->body);
  auto set = cc::parse_keys_document(keys->body);
  REQUIRE_OK(set);
  REQUIRE(set->size() == 2);
  CHECK((*set)[0].kid == active_key.kid());
  CHECK((*set)[1].kid == previous_key.kid());
  CHECK((*set)[1].not_after == "2099-01-01T00:00:00Z");
  auto not_modified = client.Get("/v1/connectors/keys", {{"If-None-Match", etag}});
  REQUIRE(not_modified);
  CHECK(not_modified->status == 304);
  CHECK(not_modified->body.empty());
  auto other_etag = client.Get("/v1/connectors/keys", {{"If-None-Match", "\"nope\""}});
  REQUIRE(other_etag);
  CHECK(other_etag->status == 200);

  // The service map is signed by the active key; the published set verifies it.
  std::string map_body;
  REQUIRE(cc::test::eventually_true([&] {
    auto r = client.Get("/v1/connectors/service-map", {{"Authorization", "Bearer keys-api-key"}});
    if (r && r->status == 200) map_body = r->body;
    return r && r->status == 200;
  }));
  auto verified = cc::verify_service_map(map_body, *set);
  REQUIRE_OK(verified);
  CHECK(verified->kid == active_key.kid());
  CHECK_FALSE(cc::verify_service_map(map_body, cc::PublicKeySet{previous_key.public_key()}));
  REQUIRE_OK(cc::verify_service_map(map_body, cc::as_bytes(kHmacKey)));

  const std::string log = server.log() + server.out();
  CHECK(log.find(active_key.kid()) != std::string::npos);
  CHECK(log.find(private_key_of(active)) == std::string::npos);
  CHECK(log.find(private_key_of(previous)) == std::string::npos);
  CHECK(log.find(kHmacKey) == std::string::npos);
}

TEST_CASE("server: keys 404 without Ed25519 keys and a loose key file exits 2", "[keys]") {
  cc::test::TempDir dir;
  const auto manifest = dir / "m.json";
  cc::test::write_file(manifest, cc::test::read_data("manifests/original-fixture.manifest.json"));
  const std::vector<std::string> env{"CONNECTORS_SIGNATURE_KEY=" + kHmacKey, "NO_AUTH=true",
                                     "CONNECTORS_MANIFEST_PATH=" + manifest.string()};
  {
    cc::test::ServerProcess server({"--port", "0"}, env);
    REQUIRE(server.port() > 0);
    httplib::Client client("127.0.0.1", server.port());
    auto keys = client.Get("/v1/connectors/keys");
    REQUIRE(keys);
    CHECK(keys->status == 404);
    CHECK(keys->body.find("CONNECTORS_SIGNING_KEY_FILE") != std::string::npos);
    std::string map_body;
    REQUIRE(cc::test::eventually_true([&] {
      auto r = client.Get("/v1/connectors/service-map");
      if (r && r->status == 200) map_body = r->body;
      return r && r->status == 200;
    }));
    CHECK(map_body.find("signatures") == std::string::npos);
  }
  const auto key = (dir / "loose.key").string();
  REQUIRE(run_cli({"keygen", key}).exit_code == 0);
  fs::permissions(key, static_cast<fs::perms>(0644));
  auto loose_env = env;
  loose_env.push_back("CONNECTORS_SIGNING_KEY_FILE=" + key);
  cc::test::ServerProcess loose({"--port", "0"}, loose_env);
  CHECK(loose.port() == 0);
  CHECK(loose.wait_exit(std::chrono::seconds(5)) == 2);
  CHECK(loose.log().find(key) != std::string::npos);
  CHECK(loose.log().find("0644") != std::string::npos);
  CHECK(loose.log().find(private_key_of(key)) == std::string::npos);
}
