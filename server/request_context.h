// The per-request bookkeeping every route shares, whichever path answers it (routes.cpp through
// cpp-httplib, fast_routes.cpp from the connection loop): the request's id and trace, and the
// access log line, metrics and span written when it ends.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "context.h"
#include "cortex_connectors/json.h"

namespace cortex_connectors::server {

struct RequestContext {
  std::chrono::steady_clock::time_point start;
  std::chrono::system_clock::time_point start_wall;  // set only when the span is recorded
  std::string id;
  std::string trace_id;
  std::string span_id;
  std::string parent_span_id;  // the caller's span, from a valid traceparent
  bool sampled = false;        // the sampler's decision: the request's span is exported

  // Starts a request: its id (the client's when sane) and, when something reads them, its trace
  // (the caller's when the traceparent is valid, else a new one; W3C Trace Context) and span.
  // Something reads them when a valid traceparent is continued, when spans are exported, or when
  // the access log line (info) carries them; otherwise none is made and they stay empty.
  // The strings keep their capacity: a RequestContext reused per thread allocates nothing for
  // requests without a trace.
  void begin(const ServerContext& context, std::string_view sent_request_id,
             std::string_view traceparent);
  // Ends it: the thread's log ids are cleared.
  void end();
};

// Where the dashboard is served: this path (a redirect) and every path below it.
inline constexpr std::string_view kDashboardMount = "/apps/chatgpt-dashboard";

// A fixed name per route for metrics and logs ("health", "service_map", "apps", ...; "other"
// for unknown paths): raw paths would make cardinality unbounded.
std::string_view route_name(std::string_view path);

// The access log line (info), the request metrics and the server span (when sampled) of one
// request. `extra` (an object or null) adds members to the log line.
void finish_request(const ServerContext& context, const RequestContext& ctx,
                    std::string_view method, std::string_view route, int status, std::size_t bytes,
                    Json extra = {});

}  // namespace cortex_connectors::server
