#include "cortex_connectors/keys.h"

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/validate.h"
#include "cortex_connectors/verify.h"
#include "internal/digest.h"
#include "internal/secret_file.h"
#include "internal/sodium.h"

namespace cortex_connectors {

std::variant<std::string, internal::SecretFileFailure> internal::read_secret_file(
    const std::string& path, const SecretFileRules& rules) {
  using Kind = SecretFileFailure::Kind;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return SecretFileFailure{Kind::kOpen, errno};
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return SecretFileFailure{Kind::kStat, errno};
  if (!S_ISREG(st.st_mode)) return SecretFileFailure{Kind::kNotRegular};
  if (rules.owner_only && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return SecretFileFailure{Kind::kOpenToOthers, 0, static_cast<unsigned>(st.st_mode & 07777)};
  }
  if (rules.refuse_larger && st.st_size > static_cast<off_t>(rules.max_bytes)) {
    return SecretFileFailure{Kind::kTooLarge};
  }
  std::string data;
  char buffer[4096];
  struct Wiper {
    char* bytes;
    std::size_t size;
    ~Wiper() { sodium_memzero(bytes, size); }
  } wiper{buffer, sizeof buffer};
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SecretFileFailure{Kind::kRead, errno};
    if (n == 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
    if (data.size() > rules.max_bytes) {
      if (rules.refuse_larger) return SecretFileFailure{Kind::kTooLarge};
      break;
    }
  }
  return data;
}

namespace {

const unsigned char* uchars(const void* p) { return static_cast<const unsigned char*>(p); }

Error error(ErrorCode code, std::string message) {
  return Error{code, "[brAInwav] " + std::move(message), {}, {}};
}

Ed25519PublicKey public_key_of(std::span<const unsigned char, 32> pk) {
  Ed25519PublicKey out;
  std::memcpy(out.key.data(), pk.data(), pk.size());
  out.kid = ed25519_kid(out.key);
  return out;
}

// Reads a whole key file (at most a little over 64 KiB); a private one must not be readable by
// group or others.
Result<std::string> read_key_file(const std::string& path, bool is_private) {
  using Kind = internal::SecretFileFailure::Kind;
  auto read = internal::read_secret_file(
      path, {.owner_only = is_private, .max_bytes = 65536, .refuse_larger = false});
  if (auto* data = std::get_if<std::string>(&read)) return std::move(*data);
  const auto& failure = std::get<internal::SecretFileFailure>(read);
  switch (failure.kind) {
    case Kind::kOpen:
      return error(ErrorCode::kIo, fmt::format("cannot open key file {}: {}", path,
                                               std::strerror(failure.error_number)));
    case Kind::kOpenToOthers:
      return error(ErrorCode::kIo,
                   fmt::format("key file {} has mode {:04o}: it must not be accessible by group or "
                               "others (chmod 600 {})",
                               path, failure.mode, path));
    case Kind::kRead:
    case Kind::kTooLarge:  // not with refuse_larger = false
      return error(ErrorCode::kIo, fmt::format("cannot read key file {}", path));
    case Kind::kStat:
    case Kind::kNotRegular:
      break;
  }
  return error(ErrorCode::kIo, fmt::format("key file {} is not a regular file", path));
}

const std::string* string_member(const Json& doc, std::string_view name) {
  const Json* v = doc.find(name);
  return v != nullptr && v->is_string() ? &v->as_string() : nullptr;
}

// Wipes a string's bytes before it goes.
struct WipedString {
  std::string text;
  ~WipedString() { sodium_memzero(text.data(), text.size()); }
};

}  // namespace

std::string Ed25519PublicKey::key_base64url() const { return base64url_encode(key); }

std::string ed25519_kid(std::span<const std::byte> public_key) {
  const std::string_view bytes(reinterpret_cast<const char*>(public_key.data()),  // NOLINT
                               public_key.size());
  const auto digest = internal::sha256(bytes);
  return base64url_encode(std::as_bytes(std::span(digest).first<16>()));
}

Result<Ed25519PublicKey> parse_public_key(std::string_view base64url) {
  auto raw = base64url_decode(base64url);
  if (!raw || raw->size() != kEd25519PublicKeyBytes) {
    return error(ErrorCode::kParse, "an Ed25519 public key is 32 bytes in base64url (43 chars)");
  }
  Ed25519PublicKey out;
  std::memcpy(out.key.data(), raw->data(), out.key.size());
  out.kid = ed25519_kid(out.key);
  return out;
}

Ed25519Key Ed25519Key::generate() {
  internal::ensure_sodium();
  Ed25519Key key;
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_keypair(pk, key.secret_.data());
  key.public_ = public_key_of(std::span<const unsigned char, 32>(pk, 32));
  return key;
}

Result<Ed25519Key> Ed25519Key::from_seed(std::span<const std::byte> seed) {
  if (seed.size() != kEd25519SeedBytes) {
    return error(ErrorCode::kUsage, "an Ed25519 seed is 32 bytes");
  }
  internal::ensure_sodium();
  Ed25519Key key;
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_seed_keypair(pk, key.secret_.data(), uchars(seed.data()));
  key.public_ = public_key_of(std::span<const unsigned char, 32>(pk, 32));
  return key;
}

Ed25519Key::Ed25519Key(const Ed25519Key& other) = default;
Ed25519Key& Ed25519Key::operator=(const Ed25519Key& other) = default;
Ed25519Key::~Ed25519Key() { sodium_memzero(secret_.data(), secret_.size()); }

void Ed25519Key::set_validity(std::string not_before, std::string not_after) {
  public_.not_before = std::move(not_before);
  public_.not_after = std::move(not_after);
}

std::string Ed25519Key::sign(std::string_view message) const {
  internal::ensure_sodium();
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, uchars(message.data()), message.size(), secret_.data());
  return base64url_encode(std::as_bytes(std::span(sig)));
}

std::string Ed25519Key::key_file_text() const {
  Json doc = Json::object();
  doc.set("alg", kEd25519);
  doc.set("kid", public_.kid);
  if (!public_.not_after.empty()) doc.set("notAfter", public_.not_after);
  if (!public_.not_before.empty()) doc.set("notBefore", public_.not_before);
  WipedString seed{base64url_encode(std::as_bytes(std::span(secret_).first<32>()))};
  doc.set("privateKey", seed.text);
  doc.set("publicKey", public_.key_base64url());
  std::string out = canonical_json(doc).value();
  if (Json* v = doc.find("privateKey")) {
    std::string& s = const_cast<std::string&>(v->as_string());  // NOLINT: wiped in place
    sodium_memzero(s.data(), s.size());
  }
  out.push_back('\n');
  return out;
}

bool verify_ed25519(const Ed25519PublicKey& public_key, std::string_view message,
                    std::string_view signature) noexcept {
  try {
    auto sig = base64url_decode(signature);
    if (!sig || sig->size() != crypto_sign_BYTES) return false;
    internal::ensure_sodium();
    return crypto_sign_verify_detached(uchars(sig->data()), uchars(message.data()), message.size(),
                                       uchars(public_key.key.data())) == 0;
  } catch (...) {
    return false;
  }
}

Result<Ed25519Key> read_ed25519_key_file(const std::string& path) {
  auto text = read_key_file(path, /*is_private=*/true);
  if (!text) return std::move(text).error();
  WipedString content{std::move(*text)};
  auto not_a_key = [&](const char* why) {
    return error(ErrorCode::kInvalid, fmt::format("{} is not an Ed25519 key file: {}", path, why));
  };
  auto doc = parse_json(content.text);
  if (!doc || !doc->is_object()) return not_a_key("not a JSON object");
  auto wipe_doc = [&] {
    if (Json* v = doc->find("privateKey"); v != nullptr && v->is_string()) {
      std::string& s = const_cast<std::string&>(v->as_string());  // NOLINT: wiped in place
      sodium_memzero(s.data(), s.size());
    }
  };
  const std::string* alg = string_member(*doc, "alg");
  const std::string* seed_text = string_member(*doc, "privateKey");
  if (alg == nullptr || *alg != kEd25519) {
    wipe_doc();
    return not_a_key("\"alg\" must be \"Ed25519\"");
  }
  if (seed_text == nullptr) {
    wipe_doc();
    return not_a_key("no \"privateKey\"");
  }
  auto seed = base64url_decode(*seed_text);
  wipe_doc();
  if (!seed || seed->size() != kEd25519SeedBytes) {
    if (seed) sodium_memzero(seed->data(), seed->size());
    return not_a_key("\"privateKey\" must be a 32-byte seed in base64url");
  }
  auto key = Ed25519Key::from_seed(*seed);
  sodium_memzero(seed->data(), seed->size());
  if (!key) return std::move(key).error();
  if (const std::string* pk = string_member(*doc, "publicKey");
      pk != nullptr && *pk != key->public_key().key_base64url()) {
    return not_a_key("\"publicKey\" does not belong to \"privateKey\"");
  }
  if (const std::string* kid = string_member(*doc, "kid"); kid != nullptr && *kid != key->kid()) {
    return not_a_key("\"kid\" does not belong to the key");
  }
  std::string validity[2];
  const char* names[2] = {"notBefore", "notAfter"};
  for (int i = 0; i < 2; ++i) {
    const Json* v = doc->find(names[i]);
    if (v == nullptr) continue;
    if (!v->is_string() || !is_rfc3339_date_time(v->as_string())) {
      return not_a_key(i == 0 ? "\"notBefore\" must be an RFC 3339 date-time"
                              : "\"notAfter\" must be an RFC 3339 date-time");
    }
    validity[i] = v->as_string();
  }
  key->set_validity(std::move(validity[0]), std::move(validity[1]));
  return key;
}

Status write_ed25519_key_file(const std::string& path, const Ed25519Key& key) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return error(ErrorCode::kIo,
                 fmt::format("cannot create key file {}: {}", path, std::strerror(errno)));
  }
  // O_CREAT applies the umask, which can only remove bits; make the mode exact anyway.
  ::fchmod(fd, 0600);
  WipedString text{key.key_file_text()};
  std::size_t done = 0;
  while (done < text.text.size()) {
    const ssize_t n = ::write(fd, text.text.data() + done, text.text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      ::unlink(path.c_str());
      return error(ErrorCode::kIo, fmt::format("cannot write key file {}", path));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(path.c_str());
    return error(ErrorCode::kIo, fmt::format("cannot write key file {}", path));
  }
  return {};
}

std::string ed25519_signatures(std::span<const Ed25519Key> keys, std::string_view message) {
  // Member names in canonical order: alg < kid < sig.
  std::string out = "[";
  for (const auto& key : keys) {
    if (out.size() > 1) out.push_back(',');
    out.append(R"({"alg":"Ed25519","kid":)");
    append_canonical_string(out, key.kid());
    out.append(R"(,"sig":)");
    append_canonical_string(out, key.sign(message));
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

Result<std::string> verify_ed25519_signatures(const Json& signatures, const PublicKeySet& keys,
                                              std::string_view message) {
  if (!signatures.is_array() || signatures.as_array().empty()) {
    return error(ErrorCode::kSignature, "the body carries no Ed25519 signature");
  }
  std::string seen;
  bool pinned_failed = false;
  std::string failed_kid;
  for (const Json& entry : signatures.as_array()) {
    if (!entry.is_object()) continue;
    const std::string* alg = string_member(entry, "alg");
    const std::string* kid = string_member(entry, "kid");
    const std::string* sig = string_member(entry, "sig");
    if (alg == nullptr || *alg != kEd25519 || kid == nullptr || sig == nullptr) continue;
    for (const auto& key : keys) {
      if (key.kid != *kid) continue;
      if (verify_ed25519(key, message, *sig)) return *kid;
      pinned_failed = true;
      failed_kid = *kid;
    }
    if (kid->size() <= 64) {
      if (!seen.empty()) seen.append(", ");
      seen.append(*kid);
    }
  }
  if (pinned_failed) {
    return error(ErrorCode::kSignature,
                 fmt::format("the Ed25519 signature of pinned key {} does not match the payload",
                             failed_kid));
  }
  return error(ErrorCode::kSignature,
               fmt::format("no Ed25519 signature by a pinned key (signed by: {})",
                           seen.empty() ? "none" : seen));
}

KeysDocument build_keys_document(std::span<const Ed25519PublicKey> keys,
                                 std::chrono::system_clock::time_point now) {
  Json::Array list;
  for (const auto& key : keys) {
    // system_clock counts nanoseconds up to 2262: later dates never expire here.
    if (!key.not_after.empty() && key.not_after < "2262") {
      const auto until = parse_rfc3339(key.not_after);
      if (until && *until < now) continue;
    }
    Json entry = Json::object();
    entry.set("alg", kEd25519);
    entry.set("key", key.key_base64url());
    entry.set("kid", key.kid);
    if (!key.not_after.empty()) entry.set("notAfter", key.not_after);
    if (!key.not_before.empty()) entry.set("notBefore", key.not_before);
    list.push_back(std::move(entry));
  }
  Json doc = Json::object();
  doc.set("keys", Json(std::move(list)));
  KeysDocument out;
  out.body = canonical_json(doc).value();
  const std::string digest = internal::sha256_hex(out.body);
  out.etag.reserve(34);
  out.etag.push_back('"');
  out.etag.append(digest, 0, 32);
  out.etag.push_back('"');
  return out;
}

Result<PublicKeySet> parse_keys_document(std::string_view text) {
  auto doc = parse_json(text);
  if (!doc) return std::move(doc).error();
  const Json* keys = doc->is_object() ? doc->find("keys") : nullptr;
  if (keys == nullptr || !keys->is_array()) {
    return error(ErrorCode::kInvalid, "a keys document is {\"keys\":[...]}");
  }
  PublicKeySet out;
  for (const Json& entry : keys->as_array()) {
    if (!entry.is_object()) return error(ErrorCode::kInvalid, "a key entry must be an object");
    const std::string* alg = string_member(entry, "alg");
    if (alg == nullptr || *alg != kEd25519) continue;
    const std::string* key_text = string_member(entry, "key");
    if (key_text == nullptr) return error(ErrorCode::kInvalid, "an Ed25519 entry has no \"key\"");
    auto key = parse_public_key(*key_text);
    if (!key) return std::move(key).error();
    if (const std::string* kid = string_member(entry, "kid"); kid != nullptr && *kid != key->kid) {
      return error(ErrorCode::kInvalid,
                   fmt::format("key entry kid {} does not match its key", kid->substr(0, 64)));
    }
    if (const std::string* v = string_member(entry, "notBefore")) key->not_before = *v;
    if (const std::string* v = string_member(entry, "notAfter")) key->not_after = *v;
    out.push_back(std::move(*key));
  }
  if (out.empty()) return error(ErrorCode::kInvalid, "the keys document lists no Ed25519 key");
  return out;
}

Result<PublicKeySet> read_keys_document_file(const std::string& path) {
  auto text = read_key_file(path, /*is_private=*/false);
  if (!text) return std::move(text).error();
  auto keys = parse_keys_document(*text);
  if (!keys) {
    Error e = std::move(keys).error();
    std::string_view why = e.message;
    if (why.starts_with("[brAInwav] ")) why.remove_prefix(sizeof("[brAInwav] ") - 1);
    return error(e.code, fmt::format("{} is not a usable keys document: {}", path, why));
  }
  return keys;
}

}  // namespace cortex_connectors
