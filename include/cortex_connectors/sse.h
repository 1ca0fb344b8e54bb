// Server-Sent Events: WHATWG framing, the status event of the original service, delta events
// between two service-map payloads and their application, and Last-Event-ID parsing.
//
// Event bytes are built once per snapshot and shared by every subscriber; nothing here touches
// a socket. A client that applies delta events to the payload of the first full event rebuilds
// the canonical payload byte for byte and can verify the signature each delta carries.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cortex_connectors/export.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/result.h"
#include "cortex_connectors/signed_body.h"
#include "cortex_connectors/snapshot.h"

namespace cortex_connectors {

// One event: "id: <id>\nevent: <event>\ndata: <line>\n...\n\n". `data` is split on LF, CR and
// CRLF into one data line each. CR and LF in `event` and `id` are removed (they would end the
// field); a NUL in `id` is removed too (WHATWG ignores such ids). Empty `event`/`id` are omitted.
CORTEX_CONNECTORS_API std::string sse_event(std::string_view event, std::string_view id,
                                            std::string_view data);

// A comment line (": <text>\n\n"), which clients ignore: the heartbeat.
CORTEX_CONNECTORS_API std::string sse_comment(std::string_view text);

// "retry: <ms>\n\n": the reconnection delay a client should use.
CORTEX_CONNECTORS_API std::string sse_retry(std::uint32_t milliseconds);

// The original service's status event of `snapshot`:
//   id: <version>
//   event: status
//   data: {"payload":<service-map body>,"timestamp":"<RFC 3339>"}
CORTEX_CONNECTORS_API std::string sse_status_event(const Snapshot& snapshot,
                                                   std::string_view timestamp);

// The same event, and where `snapshot.body` sits in it, verbatim: a holder of the event bytes
// finds the payload there (SignedBody::canonical_payload_in()) without keeping the Snapshot.
struct SseStatusEvent {
  std::string bytes;
  std::size_t body_offset = std::string::npos;  // npos: the body is split over data lines
};
CORTEX_CONNECTORS_API SseStatusEvent sse_status_event_with_body(const Snapshot& snapshot,
                                                                std::string_view timestamp);

// The changes from payload `from` to payload `to` (both service-map payload objects):
//   {"from":<version>,"to":<version>,"added":[connector…],"removed":["id"…],
//    "replaced":[connector…],"fields":{"<top-level field>":<new value>…},"signature":"…"}
// `fields` holds every top-level member other than "connectors" whose value changed. A member
// "removedFields":["<top-level field>"…] lists those `to` no longer has; it is there only when
// that list is not empty (across the change of the payload's shape that moved "count" into
// "metadata": a payload recorded before it, resumed from history, to one built after it).
// REQUIRES: both are service-map payloads (objects with a "connectors" array of objects with
// string "id"s).
CORTEX_CONNECTORS_API Json compute_delta(const Json& from, const Json& to,
                                         std::uint64_t from_version, std::uint64_t to_version,
                                         std::string_view to_signature);

// Applies a delta to `payload` (the payload of version delta.from) and returns the new payload,
// whose canonical form equals the signed one. Errors (kInvalid) for a malformed delta.
CORTEX_CONNECTORS_API Result<Json> apply_delta(const Json& payload, const Json& delta);

// The delta event from `previous` to `next`: "id: <next version>\nevent: delta\ndata: <delta>",
// whose data is canonical_json(compute_delta(...)) of the two payloads. When `next` carries
// Ed25519 signatures, the delta carries them too ("signatures", as in the body). The payloads
// are compared by the spans of their layouts (signed_body.h), not parsed; see the PayloadView
// overload. Errors only if a snapshot's bytes are not a payload.
CORTEX_CONNECTORS_API Result<std::string> sse_delta_event(const Snapshot& previous,
                                                          const Snapshot& next);

// As above, from a recorded payload (history.h: HistoryEntry::payload) of version
// `from_version`: what a subscriber resuming from an older version is sent.
CORTEX_CONNECTORS_API Result<std::string> sse_delta_event(std::string_view from_payload,
                                                          std::uint64_t from_version,
                                                          const Snapshot& next);

// As above, with the new version given by its parts (`to_signatures`: the canonical
// "signatures" array or ""): for a holder that keeps a snapshot's bytes but not the Snapshot.
CORTEX_CONNECTORS_API Result<std::string> sse_delta_event(
    std::string_view from_payload, std::uint64_t from_version, std::string_view to_payload,
    std::uint64_t to_version, std::string_view to_signature, std::string_view to_signatures);

// As above, from payloads with their layouts (a null layout is found by scan_payload_layout()).
// With both layouts and each payload's connector ids in increasing byte order without escapes
// (every payload build_service_map() or the Registry writes), the delta is written from the
// spans of the connectors and members that differ; otherwise both payloads are parsed and
// diffed as Json trees. The bytes are the same either way.
CORTEX_CONNECTORS_API Result<std::string> sse_delta_event(PayloadView from,
                                                          std::uint64_t from_version,
                                                          PayloadView to, std::uint64_t to_version,
                                                          std::string_view to_signature,
                                                          std::string_view to_signatures);

// Parses a Last-Event-ID header: a version number (1-20 ASCII digits, no sign, no spaces,
// within 64 bits). Anything else is nullopt: the client then gets a full status event.
CORTEX_CONNECTORS_API std::optional<std::uint64_t> parse_last_event_id(
    std::string_view header) noexcept;

}  // namespace cortex_connectors
