#include "request_context.h"

#include <algorithm>
#include <optional>

#include "cortex_connectors/metrics.h"
#include "cortex_connectors/negotiation.h"
#include "cortex_connectors/trace_context.h"
#include "log.h"
#include "otlp_json.h"

namespace cortex_connectors::server {

namespace {

using SteadyClock = std::chrono::steady_clock;

// The routes by name: the path each serves (the dashboard: every path below it) and its
// template, for span names and http.route.
struct Route {
  std::string_view name;
  std::string_view path;
  std::string_view path_template;
};
constexpr Route kRoutes[] = {
    {"health", "/health", "/health"},
    {"ready", "/ready", "/ready"},
    {"service_map", "/v1/connectors/service-map", "/v1/connectors/service-map"},
    {"stream", "/v1/connectors/stream", "/v1/connectors/stream"},
    {"keys", "/v1/connectors/keys", "/v1/connectors/keys"},
    {"metrics", "/metrics", "/metrics"},
    {"apps", kDashboardMount, "/apps/chatgpt-dashboard/*"},
};

// The path template of a route name, or "".
std::string_view route_template(std::string_view route) {
  for (const Route& r : kRoutes) {
    if (r.name == route) return r.path_template;
  }
  return "";
}

}  // namespace

void RequestContext::begin(const ServerContext& context, std::string_view sent_request_id,
                           std::string_view traceparent) {
  const Tracer& tracer = context.tracer;
  start = SteadyClock::now();
  if (is_sane_request_id(sent_request_id)) {
    id.assign(sent_request_id);
  } else {
    generate_request_id(id);
  }
  std::optional<bool> parent_sampled;
  parent_span_id.clear();
  trace_id.clear();
  if (auto tp = traceparent.empty() ? std::nullopt : parse_traceparent(traceparent)) {
    trace_id = std::move(tp->trace_id);
    parent_span_id = std::move(tp->parent_id);
    parent_sampled = (tp->flags & 1) != 0;
  } else if (tracer.enabled() || context.log.enabled(LogLevel::kInfo)) {
    trace_id = generate_trace_id();
  }
  sampled = !trace_id.empty() && tracer.sample(trace_id, parent_sampled);
  if (sampled) start_wall = std::chrono::system_clock::now();
  if (trace_id.empty()) {
    span_id.clear();
  } else {
    span_id = generate_span_id();
  }
  assign_log_ids(id, trace_id, span_id);
}

void RequestContext::end() {
  id.clear();
  trace_id.clear();
  assign_log_ids({}, {}, {});
}

std::string_view route_name(std::string_view path) {
  for (const Route& r : kRoutes) {
    if (path == r.path) return r.name;
  }
  return path.starts_with(kDashboardMount) ? "apps" : "other";
}

void finish_request(const ServerContext& context, const RequestContext& ctx,
                    std::string_view method, std::string_view route, int status, std::size_t bytes,
                    Json extra) {
  const auto elapsed = SteadyClock::now() - ctx.start;
  context.registry.metrics().observe_http_request(
      route, status, std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed));
  if (ctx.sampled) {
    // A fixed-size record: no allocation on the request path (otlp_json.h).
    HttpSpan span;
    std::copy_n(ctx.trace_id.data(), std::min(ctx.trace_id.size(), span.trace_id.size()),
                span.trace_id.begin());
    std::copy_n(ctx.span_id.data(), std::min(ctx.span_id.size(), span.span_id.size()),
                span.span_id.begin());
    span.has_parent = ctx.parent_span_id.size() == span.parent_span_id.size();
    if (span.has_parent) {
      std::copy_n(ctx.parent_span_id.data(), span.parent_span_id.size(),
                  span.parent_span_id.begin());
    }
    span.method_len = static_cast<std::uint8_t>(std::min(method.size(), span.method.size()));
    std::copy_n(method.data(), span.method_len, span.method.begin());
    span.request_id_len =
        static_cast<std::uint8_t>(std::min(ctx.id.size(), span.request_id.size()));
    std::copy_n(ctx.id.data(), span.request_id_len, span.request_id.begin());
    span.route = route_template(route);
    span.status = status;
    span.bytes = bytes;
    span.start_ns = unix_nanos(ctx.start_wall);
    span.end_ns =
        span.start_ns + static_cast<std::uint64_t>(
                            std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
    context.tracer.record(span);
  }
  if (!context.log.enabled(LogLevel::kInfo)) return;
  Json fields = extra.is_object() ? std::move(extra) : Json::object();
  fields.set("method", method);
  fields.set("route", route);
  fields.set("status", status);
  fields.set("bytes", bytes);
  fields.set("duration_ms", std::chrono::duration<double, std::milli>(elapsed).count());
  context.log(LogLevel::kInfo, "request", fields);
}

}  // namespace cortex_connectors::server
