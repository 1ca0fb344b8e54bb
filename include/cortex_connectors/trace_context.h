// W3C Trace Context without network code: the traceparent header and fresh trace and span ids.
//
// Thread-safety: pure functions (the id generators use a per-thread state).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cortex_connectors/export.h"

namespace cortex_connectors {

// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` request header.
struct TraceParent {
  std::string trace_id;    // 32 lowercase hex characters, not all zero
  std::string parent_id;   // 16 lowercase hex characters, not all zero: the caller's span
  std::uint8_t flags = 0;  // trace-flags; bit 0 is "sampled"
};

// Parses a traceparent header value by the W3C rules: version 00 is exactly
// "00-<trace-id>-<parent-id>-<flags>" (55 characters, lowercase hex); a higher version is read
// by its first four fields and may only continue with "-..."; version ff, upper-case hex, an
// all-zero trace-id or parent-id, or any other shape is invalid. Returns nullopt when invalid:
// the caller then ignores the header and starts a new trace.
CORTEX_CONNECTORS_API std::optional<TraceParent> parse_traceparent(std::string_view value);

// A traceparent header value (version 00) for `trace_id` and `span_id`.
CORTEX_CONNECTORS_API std::string format_traceparent(std::string_view trace_id,
                                                     std::string_view span_id,
                                                     std::uint8_t flags = 1);

// A fresh trace id (32 lowercase hex characters, never all zero) and span id (16): random bits
// from a per-thread generator seeded once from the operating system. Not secrets.
CORTEX_CONNECTORS_API std::string generate_trace_id();
CORTEX_CONNECTORS_API std::string generate_span_id();

}  // namespace cortex_connectors
