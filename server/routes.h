// The HTTP routes: each translates a library decision (http.h, Registry, Metrics) into a
// response. No manifest, ETag or auth rule lives here.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "context.h"
#include "cortex_connectors/negotiation.h"
#include "cortex_connectors/registry.h"
#include "http_server.h"
#include "sse_hub.h"
#include "static_files.h"

namespace cortex_connectors::server {

// The body of GET /ready once a snapshot exists.
inline constexpr std::string_view kReadyBody = R"({"brand":"brAInwav","status":"ready"})";

// The dashboard's Content-Security-Policy: the page loads only its own files and talks only to
// this origin, so an injected script could not send the API key elsewhere.
inline constexpr std::string_view kDashboardContentSecurityPolicy =
    "default-src 'self'; object-src 'none'; base-uri 'none'";

// The JSON body of a 401 or 403 for `auth` (not kOk).
std::string_view auth_refusal_body(AuthResult auth);

// The body of GET /health: the library's, with the scaling role's member when there is one.
std::string server_health_body(const ServerContext& context);

// Registers every route, the access log, X-Request-Id and the error handlers on `server`.
// `context` must outlive the server.
void install_routes(HardenedServer& server, const ServerContext& context);

// Serves only GET /metrics (always) and GET /health, without auth, with the hooks of
// install_routes(); everything else is 404. For a listener of its own (--metrics-port) that a
// Prometheus scraper reaches without a key: it serves no service map, stream or keys.
// `context` must outlive the server.
void install_metrics_listener_routes(HardenedServer& server, const ServerContext& context);

// The access log line, metrics and span of a request the connection loop refused before
// routing (HardeningOptions::on_refused: 400, 405, 431).
void log_refused_request(const ServerContext& context, int status);

// Serves GET /v1/connectors/keys: the keys document of `published` (keys.h), without auth
// (public keys are not secret), strong ETag, 304 on If-None-Match; 404 when `published` is empty.
void install_keys_route(HardenedServer& server, PublicKeySet published);

// Serves GET /apps/chatgpt-dashboard/... from the slot's bundle without auth (the page holds no
// data; it asks the operator for the API key and sends it only to the data routes): the rules of
// http.h's static section, 404 for any path they refuse or the bundle lacks, a redirect from the
// path without its trailing slash, and 503 branded JSON saying how to fix it while `bundle` is
// null (the slot's bundle is read per request: it is replaced once compressed).
void install_dashboard_route(HardenedServer& server, std::shared_ptr<const BundleSlot> slot);

// Serves GET /v1/connectors/stream: authenticates, writes the event-stream head and hands the
// socket to `hub` (503 when it is full).
void install_stream(HardenedServer& server, SseHub& hub, const ServerContext& context);

}  // namespace cortex_connectors::server
