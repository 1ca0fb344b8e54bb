// Ed25519 public-key signatures next to the HMAC one: signing keys, key files, public key sets
// and the keys document served by GET /v1/connectors/keys.
//
// A consumer that holds only public keys can verify a service map but cannot produce one that
// verifies, unlike the HMAC key, which every verifier must share with the signer.
//
// Key id (kid): base64url_nopad(the first 16 bytes of SHA-256(public key)), 22 characters.
//
// Key file (written by `cortex-connectors keygen`, mode 0600), canonical JSON:
//   {"alg":"Ed25519","kid":"...","notAfter":"...","notBefore":"...",
//    "privateKey":"<base64url 32-byte seed>","publicKey":"<base64url 32 bytes>"}
// notBefore / notAfter (RFC 3339) are optional; kid and publicKey are checked against the seed
// when present. A key file readable by group or others is refused.
//
// Keys document (canonical JSON): {"keys":[{"alg":"Ed25519","key":"<base64url>","kid":"...",
// "notAfter":"...","notBefore":"..."}]}, the signing key first.
//
// Private keys never appear in an Error, a log line or any output but the key file itself.
// Thread-safety: pure functions; an Ed25519Key may be used for signing from any thread.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cortex_connectors/export.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/result.h"

namespace cortex_connectors {

inline constexpr std::string_view kEd25519 = "Ed25519";
inline constexpr std::size_t kEd25519PublicKeyBytes = 32;
inline constexpr std::size_t kEd25519SeedBytes = 32;

// A published Ed25519 public key.
struct Ed25519PublicKey {
  std::string kid;                                      // derived from `key` (see the file comment)
  std::array<std::byte, kEd25519PublicKeyBytes> key{};  // the raw public key
  std::string not_before;                               // RFC 3339, or "" when unbounded
  std::string not_after;                                // RFC 3339, or "" when unbounded

  CORTEX_CONNECTORS_API std::string key_base64url() const;
  friend bool operator==(const Ed25519PublicKey&, const Ed25519PublicKey&) = default;
};

// A set of trusted (pinned) public keys: a body verifies if a signature by any of them does.
using PublicKeySet = std::vector<Ed25519PublicKey>;

// Returns the kid of a raw public key.
CORTEX_CONNECTORS_API std::string ed25519_kid(std::span<const std::byte> public_key);

// Parses a base64url public key (32 bytes); kid derived. kParse on anything else.
CORTEX_CONNECTORS_API Result<Ed25519PublicKey> parse_public_key(std::string_view base64url);

// An Ed25519 signing key. Copies wipe their secret on destruction.
class CORTEX_CONNECTORS_API Ed25519Key {
 public:
  // A new random key.
  static Ed25519Key generate();
  // The key of a 32-byte seed; kUsage when the size is wrong.
  static Result<Ed25519Key> from_seed(std::span<const std::byte> seed);

  Ed25519Key(const Ed25519Key& other);
  Ed25519Key& operator=(const Ed25519Key& other);
  ~Ed25519Key();

  const std::string& kid() const noexcept { return public_.kid; }
  const Ed25519PublicKey& public_key() const noexcept { return public_; }
  void set_validity(std::string not_before, std::string not_after);

  // base64url_nopad(Ed25519 signature of `message`): 86 characters.
  std::string sign(std::string_view message) const;

  // The key file's text (see the file comment). It holds the private key: write it to a 0600
  // file and nowhere else.
  std::string key_file_text() const;

 private:
  Ed25519Key() = default;
  std::array<unsigned char, 64> secret_{};  // libsodium's seed || public key
  Ed25519PublicKey public_;
};

// True when `signature` (base64url) is a valid Ed25519 signature of `message` by `public_key`.
CORTEX_CONNECTORS_API bool verify_ed25519(const Ed25519PublicKey& public_key,
                                          std::string_view message,
                                          std::string_view signature) noexcept;

// Reads a key file. Errors: kIo (cannot open; group- or other-readable: the message names the
// path and the mode), kParse / kInvalid (not a key file; never quotes its content).
CORTEX_CONNECTORS_API Result<Ed25519Key> read_ed25519_key_file(const std::string& path);

// Writes `key` to a new file `path` with mode 0600; kIo when it exists or cannot be written.
CORTEX_CONNECTORS_API Status write_ed25519_key_file(const std::string& path, const Ed25519Key& key);

// The "signatures" array of a signed body, canonical JSON:
// [{"alg":"Ed25519","kid":"...","sig":"..."},...], one entry per key, in the order given.
CORTEX_CONNECTORS_API std::string ed25519_signatures(std::span<const Ed25519Key> keys,
                                                     std::string_view message);

// Checks the "signatures" array `signatures` of a body against `keys` over `message`: true when
// an entry with alg "Ed25519" and a pinned kid verifies with that key. Errors (kSignature) say
// precisely why not: no signatures, no signature by a pinned kid (naming the kids seen), or the
// pinned kid's signature does not verify. Returns the kid that verified.
CORTEX_CONNECTORS_API Result<std::string> verify_ed25519_signatures(const Json& signatures,
                                                                    const PublicKeySet& keys,
                                                                    std::string_view message);

// The keys document and its strong ETag.
struct KeysDocument {
  std::string body;  // canonical JSON
  std::string etag;  // quotes included
};

// Builds the keys document of `keys`, leaving out keys whose notAfter is before `now`.
CORTEX_CONNECTORS_API KeysDocument build_keys_document(std::span<const Ed25519PublicKey> keys,
                                                       std::chrono::system_clock::time_point now);

// Parses a keys document (as served by GET /v1/connectors/keys) into a key set; entries of
// other algorithms are skipped; a kid that does not match its key is an error (kInvalid).
CORTEX_CONNECTORS_API Result<PublicKeySet> parse_keys_document(std::string_view text);

// Reads a keys document from a file (at most 64 KiB; need not be private: it holds public keys
// only). Errors name the path: kIo (cannot open, not a regular file), kParse / kInvalid (as
// parse_keys_document).
CORTEX_CONNECTORS_API Result<PublicKeySet> read_keys_document_file(const std::string& path);

}  // namespace cortex_connectors
