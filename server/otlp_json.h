// Spans of the server and their encoding as an OTLP/HTTP JSON ExportTraceServiceRequest
// (otlp_exporter.h sends them). Pure functions.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cortex_connectors/json.h"

namespace cortex_connectors::server {

// Nanoseconds since the Unix epoch, as OTLP counts time.
std::uint64_t unix_nanos(std::chrono::system_clock::time_point t);

enum class SpanKind : std::uint8_t { kInternal = 1, kServer = 2 };  // OTLP SpanKind numbers

struct Span {
  std::string trace_id;        // 32 lowercase hex characters
  std::string span_id;         // 16 lowercase hex characters
  std::string parent_span_id;  // "" for a root span
  std::string name;            // e.g. "manifest.parse", "GET service_map"
  SpanKind kind = SpanKind::kInternal;
  std::uint64_t start_ns = 0;  // unix_nanos()
  std::uint64_t end_ns = 0;
  // Values are strings, integral numbers, booleans or arrays of strings.
  std::vector<std::pair<std::string, Json>> attributes;
  bool error = false;
  std::string status_message;  // with error; never a secret
};

// The server span of one HTTP request as a fixed-size record: the request path fills it without
// touching the heap and copies it into the exporter's preallocated queue; the exporter thread
// turns it into OTLP JSON (name "<method> <route>", kind SERVER, attributes http.request.method,
// http.response.status_code, http.response.body.size, request_id, http.route).
struct HttpSpan {
  std::array<char, 32> trace_id{};
  std::array<char, 16> span_id{};
  std::array<char, 16> parent_span_id{};  // with has_parent
  bool has_parent = false;
  std::uint8_t method_len = 0;
  std::uint8_t request_id_len = 0;
  std::array<char, 16> method{};       // truncated beyond 16 characters
  std::array<char, 128> request_id{};  // is_sane_request_id(): at most 128 characters
  std::string_view route;              // a route template: a string literal, or "" for none
  int status = 0;
  std::uint64_t bytes = 0;
  std::uint64_t start_ns = 0;
  std::uint64_t end_ns = 0;
};

// An OTLP/HTTP JSON ExportTraceServiceRequest holding `spans`: one resourceSpans (service.name,
// service.version, brand, telemetry.sdk.*), one scopeSpans (scope "cortex_connectors"), ids in
// hex, times as decimal strings.
std::string otlp_json(std::span<const Span> spans, std::string_view service_name);

// The same in parts, for a sender that reuses its buffer: the head (up to the spans array),
// each span (comma-separated by the caller), the tail.
void append_otlp_head(std::string& out, std::string_view service_name);
void append_span(std::string& out, const Span& span);
void append_span(std::string& out, const HttpSpan& span);
void append_otlp_tail(std::string& out);

}  // namespace cortex_connectors::server
