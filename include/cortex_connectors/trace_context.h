// W3C Trace Context without network code: the traceparent header, fresh trace and span ids, and
// the OpenTelemetry trace samplers that decide from them.
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

// The sampler of OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (OpenTelemetry SDK environment
// variables). A sampled trace's spans are exported; an unsampled one still has ids (logs carry
// them) but builds no span.
enum class SamplerKind : std::uint8_t {
  kAlwaysOn,                 // always_on
  kAlwaysOff,                // always_off
  kTraceIdRatio,             // traceidratio
  kParentBasedAlwaysOn,      // parentbased_always_on (the default)
  kParentBasedAlwaysOff,     // parentbased_always_off
  kParentBasedTraceIdRatio,  // parentbased_traceidratio
};

struct Sampler {
  SamplerKind kind = SamplerKind::kParentBasedAlwaysOn;
  double ratio = 1.0;  // the ratio samplers' probability, in [0, 1]
};

// Reads OTEL_TRACES_SAMPLER (`name`, case-insensitive; unset or empty: the default) and
// OTEL_TRACES_SAMPLER_ARG (`arg`, used by the ratio samplers; unset or empty: 1.0). Returns
// nullopt for an unknown name or an argument that is not a number in [0, 1].
CORTEX_CONNECTORS_API std::optional<Sampler> parse_sampler(std::string_view name,
                                                           std::string_view arg);

// The sampling decision for a trace: `parent_sampled` is the sampled flag (trace-flags bit 0) of
// a valid incoming traceparent, nullopt for a root. The parent-based samplers follow the parent's
// flag; a root goes to the inner sampler. traceidratio decides from the trace id alone (its last
// 8 bytes, as the OpenTelemetry SDKs do), so every service with the same ratio agrees on a trace.
CORTEX_CONNECTORS_API bool should_sample(const Sampler& sampler, std::string_view trace_id,
                                         std::optional<bool> parent_sampled) noexcept;

}  // namespace cortex_connectors
