#include "otlp_json.h"

#include <algorithm>

#include <fmt/format.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/version.h"

namespace cortex_connectors::server {

namespace {

// Appends an OTLP AnyValue. Written directly (not through a Json tree): the exporter serialises
// every span the server makes, so this is its main cost.
void append_any_value(std::string& out, const Json& v) {
  switch (v.type()) {
    case Json::Type::kString:
      out.append(R"({"stringValue":)");
      append_canonical_string(out, v.as_string());
      break;
    case Json::Type::kBool:
      out.append(v.as_bool() ? R"({"boolValue":true)" : R"({"boolValue":false)");
      break;
    case Json::Type::kNumber:
      // int64 is a decimal string in OTLP/JSON.
      fmt::format_to(std::back_inserter(out), R"({{"intValue":"{}")",
                     static_cast<std::int64_t>(v.as_number()));
      break;
    case Json::Type::kArray: {
      out.append(R"({"arrayValue":{"values":[)");
      bool first = true;
      for (const auto& item : v.as_array()) {
        if (!first) out.push_back(',');
        first = false;
        append_any_value(out, item);
      }
      out.append("]}");
      break;
    }
    default:
      out.append(R"({"stringValue":"")");
      break;
  }
  out.push_back('}');
}

void append_key_value(std::string& out, std::string_view key, const Json& value) {
  out.append(R"({"key":)");
  append_canonical_string(out, key);
  out.append(R"(,"value":)");
  append_any_value(out, value);
  out.push_back('}');
}

}  // namespace

std::uint64_t unix_nanos(std::chrono::system_clock::time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

namespace {

void append_decimal(std::string& out, std::uint64_t n) {
  char buf[20];
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  out.append(p, static_cast<std::size_t>(buf + sizeof buf - p));
}

// Ids are lowercase hex (generated or checked by parse_traceparent): no escaping needed.
void append_span_head(std::string& out, std::string_view trace_id, std::string_view span_id,
                      std::string_view parent_span_id) {
  out.append(R"({"traceId":")").append(trace_id).append(R"(","spanId":")").append(span_id);
  out.push_back('"');
  if (!parent_span_id.empty()) {
    out.append(R"(,"parentSpanId":")").append(parent_span_id).push_back('"');
  }
}

void append_span_times(std::string& out, SpanKind kind, std::uint64_t start_ns,
                       std::uint64_t end_ns) {
  out.append(R"(,"kind":)");
  out.push_back(static_cast<char>('0' + static_cast<int>(kind)));
  out.append(R"(,"startTimeUnixNano":")");
  append_decimal(out, start_ns);
  out.append(R"(","endTimeUnixNano":")");
  append_decimal(out, std::max(end_ns, start_ns));
  out.append(R"(","attributes":[{"key":"brand","value":{"stringValue":"brAInwav"}})");
}

void append_int_attribute(std::string& out, std::string_view key, std::uint64_t value) {
  out.append(R"(,{"key":")").append(key).append(R"(","value":{"intValue":")");
  append_decimal(out, value);
  out.append(R"("}})");
}

}  // namespace

void append_otlp_head(std::string& out, std::string_view service_name) {
  out.append(R"({"resourceSpans":[{"resource":{"attributes":[)");
  append_key_value(out, "service.name", service_name);
  out.push_back(',');
  append_key_value(out, "service.version", version_string());
  out.push_back(',');
  append_key_value(out, "brand", "brAInwav");
  out.push_back(',');
  append_key_value(out, "telemetry.sdk.name", "cortex_connectors");
  out.push_back(',');
  append_key_value(out, "telemetry.sdk.language", "cpp");
  out.append(R"(]},"scopeSpans":[{"scope":{"name":"cortex_connectors","version":)");
  append_canonical_string(out, version_string());
  out.append(R"(},"spans":[)");
}

void append_otlp_tail(std::string& out) { out.append("]}]}]}"); }

void append_span(std::string& out, const Span& s) {
  append_span_head(out, s.trace_id, s.span_id, s.parent_span_id);
  out.append(R"(,"name":)");
  append_canonical_string(out, s.name);
  append_span_times(out, s.kind, s.start_ns, s.end_ns);
  for (const auto& [k, v] : s.attributes) {
    out.push_back(',');
    append_key_value(out, k, v);
  }
  // STATUS_CODE_ERROR (2) or STATUS_CODE_OK (1).
  out.append(s.error ? R"(],"status":{"code":2)" : R"(],"status":{"code":1)");
  if (s.error && !s.status_message.empty()) {
    out.append(R"(,"message":)");
    append_canonical_string(out, s.status_message);
  }
  out.append("}}");
}

void append_span(std::string& out, const HttpSpan& s) {
  const std::string_view method(s.method.data(), s.method_len);
  append_span_head(out, {s.trace_id.data(), s.trace_id.size()},
                   {s.span_id.data(), s.span_id.size()},
                   s.has_parent ? std::string_view(s.parent_span_id.data(), 16) : "");
  // The method is whatever the client sent: escaped; the route is a literal of ours (no
  // character to escape), appended inside the same JSON string.
  out.append(R"(,"name":)");
  append_canonical_string(out, method);
  if (!s.route.empty()) {
    out.pop_back();  // the closing quote
    out.append(" ").append(s.route).push_back('"');
  }
  append_span_times(out, SpanKind::kServer, s.start_ns, s.end_ns);
  out.append(R"(,{"key":"http.request.method","value":{"stringValue":)");
  append_canonical_string(out, method);
  out.append("}}");
  append_int_attribute(out, "http.response.status_code", static_cast<std::uint64_t>(s.status));
  append_int_attribute(out, "http.response.body.size", s.bytes);
  out.append(R"(,{"key":"request_id","value":{"stringValue":)");
  append_canonical_string(out, std::string_view(s.request_id.data(), s.request_id_len));
  out.append("}}");
  if (!s.route.empty()) {
    out.append(R"(,{"key":"http.route","value":{"stringValue":)");
    append_canonical_string(out, s.route);
    out.append("}}");
  }
  // Server spans: only 5xx is an error (a 4xx is the client's).
  out.append(s.status >= 500 ? R"(],"status":{"code":2}})" : R"(],"status":{"code":1}})");
}

std::string otlp_json(std::span<const Span> spans, std::string_view service_name) {
  std::string out;
  out.reserve(512 + spans.size() * 600);
  append_otlp_head(out, service_name);
  bool first = true;
  for (const Span& s : spans) {
    if (!first) out.push_back(',');
    first = false;
    append_span(out, s);
  }
  append_otlp_tail(out);
  return out;
}

}  // namespace cortex_connectors::server
