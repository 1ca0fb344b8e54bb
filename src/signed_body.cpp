#include "cortex_connectors/signed_body.h"

#include <cstring>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/signing.h"

namespace cortex_connectors {

namespace {

constexpr std::string_view kPayloadPrefix = R"({"payload":)";

// A forward-only reader over JSON text that finds where values start and end without building
// anything. It trusts the text to be JSON (it was signed, or written here) but never reads past
// its end: malformed text makes a step fail.
class Scanner {
 public:
  explicit Scanner(std::string_view text) noexcept : text_(text) {}

  std::size_t pos() const noexcept { return pos_; }
  bool at_end() const noexcept { return pos_ == text_.size(); }
  bool peek(char c) const noexcept { return pos_ < text_.size() && text_[pos_] == c; }
  bool take(char c) noexcept {
    if (!peek(c)) return false;
    ++pos_;
    return true;
  }

  // A string; sets `inner` to the bytes between its quotes. Its closing quote is the first one
  // not escaped, i.e. not after an odd number of backslashes.
  bool string(ByteSpan& inner) noexcept {
    if (!take('"')) return false;
    const std::size_t start = pos_;
    for (std::size_t from = pos_; from < text_.size();) {
      const void* hit = std::memchr(text_.data() + from, '"', text_.size() - from);
      if (hit == nullptr) return false;
      const auto quote = static_cast<std::size_t>(static_cast<const char*>(hit) - text_.data());
      std::size_t backslashes = 0;
      while (quote - backslashes > start && text_[quote - backslashes - 1] == '\\') ++backslashes;
      if (backslashes % 2 == 0) {
        inner = {start, quote - start};
        pos_ = quote + 1;
        return true;
      }
      from = quote + 1;
    }
    return false;
  }

  // Any value: a string, a container (skipping nested strings), or a literal or number.
  bool value() noexcept {
    if (pos_ >= text_.size()) return false;
    ByteSpan ignored;
    if (text_[pos_] == '"') return string(ignored);
    if (text_[pos_] != '{' && text_[pos_] != '[') {
      const std::size_t start = pos_;
      while (pos_ < text_.size() && text_[pos_] != ',' && text_[pos_] != '}' &&
             text_[pos_] != ']') {
        ++pos_;
      }
      return pos_ != start;
    }
    std::size_t depth = 0;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '"') {
        if (!string(ignored)) return false;
        continue;
      }
      ++pos_;
      if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        return true;
      }
    }
    return false;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// One connector object at `s`: its span and the span of its string "id".
bool scan_connector(Scanner& s, std::string_view text, PayloadLayout::Connector& out) {
  const std::size_t start = s.pos();
  if (!s.take('{')) return false;
  bool has_id = false;
  if (!s.take('}')) {
    do {
      ByteSpan key;
      if (!s.string(key) || !s.take(':')) return false;
      if (key.of(text) == "id" && s.peek('"')) {
        if (!s.string(out.id)) return false;
        has_id = true;
      } else if (!s.value()) {
        return false;
      }
    } while (s.take(','));
    if (!s.take('}')) return false;
  }
  out.entry = {start, s.pos() - start};
  return has_id;
}

}  // namespace

std::optional<PayloadLayout> scan_payload_layout(std::string_view payload) {
  PayloadLayout layout;
  Scanner s(payload);
  bool has_connectors = false;
  if (!s.take('{')) return std::nullopt;
  if (!s.take('}')) {
    do {
      PayloadLayout::Member m;
      if (!s.string(m.key) || !s.take(':')) return std::nullopt;
      const std::size_t start = s.pos();
      if (m.key.of(payload) == "connectors" && s.take('[')) {
        has_connectors = true;
        if (!s.take(']')) {
          do {
            PayloadLayout::Connector c;
            if (!scan_connector(s, payload, c)) return std::nullopt;
            layout.connectors.push_back(c);
          } while (s.take(','));
          if (!s.take(']')) return std::nullopt;
        }
      } else if (!s.value()) {
        return std::nullopt;
      }
      m.value = {start, s.pos() - start};
      layout.members.push_back(m);
    } while (s.take(','));
    if (!s.take('}')) return std::nullopt;
  }
  if (!s.at_end() || !has_connectors) return std::nullopt;
  return layout;
}

std::string SignedBody::begin() { return std::string(kPayloadPrefix); }

SignedBody SignedBody::sign(std::string begun, std::span<const std::byte> key,
                            std::span<const Ed25519Key> ed25519_keys,
                            std::shared_ptr<const PayloadLayout> layout) {
  const std::string_view payload = std::string_view(begun).substr(kPayloadPrefix.size());
  std::string signature = sign_hmac_sha256(key, payload);
  std::string signatures =
      ed25519_keys.empty() ? std::string() : ed25519_signatures(ed25519_keys, payload);
  return finish(std::move(begun), std::move(signature), std::move(signatures), std::move(layout));
}

SignedBody SignedBody::assemble(std::string_view canonical_payload, std::string signature,
                                std::string signatures) {
  std::string begun;
  begun.reserve(kPayloadPrefix.size() + canonical_payload.size() + signature.size() +
                signatures.size() + 32);
  begun.append(kPayloadPrefix);
  begun.append(canonical_payload);
  return finish(std::move(begun), std::move(signature), std::move(signatures), nullptr);
}

SignedBody SignedBody::finish(std::string begun, std::string signature, std::string signatures,
                              std::shared_ptr<const PayloadLayout> layout) {
  SignedBody out;
  out.payload_ = {kPayloadPrefix.size(), begun.size() - kPayloadPrefix.size()};
  if (!layout) {
    if (auto found = scan_payload_layout(std::string_view(begun).substr(kPayloadPrefix.size()))) {
      layout = std::make_shared<const PayloadLayout>(std::move(*found));
    }
  }
  out.layout_ = std::move(layout);
  // Members in canonical order ("payload" < "signature" < "signatures"), so the body is
  // canonical JSON too.
  out.body = std::move(begun);
  out.body.reserve(out.body.size() + signature.size() + signatures.size() + 32);
  out.body.append(R"(,"signature":)");
  append_canonical_string(out.body, signature);
  if (!signatures.empty()) {
    out.body.append(R"(,"signatures":)");
    out.body.append(signatures);
  }
  out.body.push_back('}');
  out.signature = std::move(signature);
  out.signatures = std::move(signatures);
  return out;
}

}  // namespace cortex_connectors
