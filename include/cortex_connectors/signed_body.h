// SignedBody: the signed service-map body, {"payload":...,"signature":"..."} (plus "signatures"
// with Ed25519 keys) as canonical JSON, with where its parts sit in it. The one place that
// assembles such a body and the one that knows its offsets: Snapshot and SignedServiceMap are
// SignedBodies, VerifiedServiceMap and HistoryEntry return one.
//
// PayloadLayout says where each top-level member and each connector of a canonical payload sit,
// as spans of the payload bytes; it holds wherever those bytes are copied (a body, an SSE
// event, a history entry). The SSE delta between two payloads compares these spans instead of
// parsing both (sse.h).
//
// Thread-safety: value types; a const SignedBody may be read from any number of threads.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cortex_connectors/export.h"
#include "cortex_connectors/keys.h"

namespace cortex_connectors {

// The bytes [offset, offset + size) of a text.
struct ByteSpan {
  std::size_t offset = 0;
  std::size_t size = 0;

  // The bytes of `text` this span covers. REQUIRES: within `text`.
  std::string_view of(std::string_view text) const noexcept { return text.substr(offset, size); }
  friend bool operator==(const ByteSpan&, const ByteSpan&) = default;
};

// Where the parts of a canonical service-map payload sit, as spans of the payload's bytes.
struct PayloadLayout {
  // A top-level member: its key (the bytes between the quotes, as escaped) and its value.
  struct Member {
    ByteSpan key;
    ByteSpan value;
    friend bool operator==(const Member&, const Member&) = default;
  };
  // A connector of the "connectors" array: its "id" (the bytes between the quotes) and the whole
  // entry, braces included.
  struct Connector {
    ByteSpan id;
    ByteSpan entry;
    friend bool operator==(const Connector&, const Connector&) = default;
  };
  std::vector<Member> members;        // in payload order, "connectors" among them
  std::vector<Connector> connectors;  // in payload order

  friend bool operator==(const PayloadLayout&, const PayloadLayout&) = default;
};

// Finds the layout of `payload`: for bytes written elsewhere (a history entry, a body received
// from a publisher). nullopt unless `payload` is compact JSON (no whitespace between tokens, as
// canonical JSON) of an object whose "connectors" member is an array of objects each with a
// string "id". It finds where values start and end; it does not validate them.
CORTEX_CONNECTORS_API std::optional<PayloadLayout> scan_payload_layout(std::string_view payload);

// A canonical payload and its layout, owning neither (SignedBody::payload_view()).
struct PayloadView {
  std::string_view bytes;
  const PayloadLayout* layout = nullptr;  // null: not a service-map payload's
};

// A signed body and where its payload sits. `body`, `signature` and `signatures` are the served
// bytes; the payload's offsets are set when the body is assembled and kept.
// REQUIRES: `body` is not modified afterwards (the offsets describe it).
class CORTEX_CONNECTORS_API SignedBody {
 public:
  SignedBody() = default;

  // {"payload":...,"signature":"..."} (plus ,"signatures":[...]), itself canonical JSON: the
  // bytes served as they are.
  std::string body;
  std::string signature;  // base64url HMAC-SHA256 of the canonical payload
  // The body's "signatures" array (keys.h: ed25519_signatures()) as canonical JSON, or "".
  std::string signatures;

  // The signed bytes: the "payload" member of `body` ("" for an empty or moved-from one).
  std::string_view canonical_payload() const noexcept { return canonical_payload_in(body); }
  // Where the connectors and top-level members sit in canonical_payload(); null for an empty
  // SignedBody.
  const PayloadLayout* layout() const noexcept { return layout_.get(); }
  // The same, shared: for a holder of the payload's bytes that outlives this SignedBody.
  std::shared_ptr<const PayloadLayout> shared_layout() const noexcept { return layout_; }
  PayloadView payload_view() const noexcept { return {canonical_payload(), layout_.get()}; }
  // The payload inside `copy`, a text that holds `body` verbatim from its first byte (an SSE
  // status event that carries the body); "" when `copy` is too short to hold it.
  std::string_view canonical_payload_in(std::string_view copy) const noexcept {
    if (copy.size() < payload_.offset + payload_.size) return {};
    return copy.substr(payload_.offset, payload_.size);
  }

  // A body to write a payload into: the payload's bytes are appended to the returned text, then
  // handed to sign() (the payload is written into the body itself, never copied).
  static std::string begin();
  // Signs the payload appended to `begun` (begin()) with the HMAC `key` and each of
  // `ed25519_keys`, and ends the body. `layout`: the payload's, when its writer recorded it;
  // null: found by scan_payload_layout().
  static SignedBody sign(std::string begun, std::span<const std::byte> key,
                         std::span<const Ed25519Key> ed25519_keys = {},
                         std::shared_ptr<const PayloadLayout> layout = nullptr);
  // The body of a payload signed elsewhere, from its parts: `signature` and `signatures` as the
  // body carried them (a history entry, a verified map).
  static SignedBody assemble(std::string_view canonical_payload, std::string signature,
                             std::string signatures);

 private:
  // Ends the body of begin() + payload with the signature members.
  static SignedBody finish(std::string begun, std::string signature, std::string signatures,
                           std::shared_ptr<const PayloadLayout> layout);

  ByteSpan payload_;
  std::shared_ptr<const PayloadLayout> layout_;
};

}  // namespace cortex_connectors
