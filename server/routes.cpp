#include "routes.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string_view>

#include <sys/socket.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/health.h"
#include "cortex_connectors/negotiation.h"
#include "cortex_connectors/sse.h"
#include "cortex_connectors/static_files.h"
#include "cortex_connectors/trace_context.h"
#include "internal/metrics_text.h"
#include "log.h"
#include "redis_scaling.h"
#include "request_context.h"
#include "tracing.h"

namespace cortex_connectors::server {

namespace {

// Per-request state. cpp-httplib 0.11.4's Request has no slot for a caller's data, and it runs
// the pre-routing handler, the route and the logger of one request on one worker thread, one
// request at a time: a thread-local (t_request below) is where those hooks find it. Everything
// process-wide comes from the ServerContext instead.
thread_local RequestContext t_request;

constexpr const char* kJson = "application/json";

// Serves `bytes` without copying them and without httplib's on-the-fly compression (which a
// content provider with a length bypasses); `owner` keeps the bytes alive.
void send_bytes(httplib::Response& res, std::shared_ptr<const void> owner, std::string_view bytes,
                const char* content_type) {
  res.set_content_provider(bytes.size(), content_type,
                           [owner, bytes](size_t offset, size_t length, httplib::DataSink& sink) {
                             return sink.write(bytes.data() + offset, length);
                           });
}

void send_text(httplib::Response& res, int status, std::string text,
               const char* content_type = kJson) {
  auto owned = std::make_shared<const std::string>(std::move(text));
  res.status = status;
  send_bytes(res, owned, *owned, content_type);
}

// Returns true when the request may proceed; otherwise fills a 401/403 response.
bool authorize(const httplib::Request& req, httplib::Response& res, const ServerConfig& config) {
  if (config.no_auth) return true;
  const AuthResult auth = check_bearer(req.get_header_value("Authorization"), config.api_keys);
  if (auth == AuthResult::kOk) return true;
  if (auth != AuthResult::kForbidden) res.set_header("WWW-Authenticate", "Bearer");
  send_text(res, auth == AuthResult::kForbidden ? 403 : 401, std::string(auth_refusal_body(auth)));
  return false;
}

// The hooks every listener shares: request ids and traces, X-Request-Id, error bodies without
// internals, and the access log line, metrics and span of each request. A `listener` other
// than "" is named in the access log lines ("listener":"metrics").
void install_request_hooks(HardenedServer& server, const ServerContext& context,
                           std::string_view listener = {}) {
  server.set_pre_routing_handler([&context](const httplib::Request& req, httplib::Response&) {
    t_request.begin(context, req.get_header_value("X-Request-Id"),
                    req.get_header_value("traceparent"));
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Runs for every response httplib writes, routed or not (a request httplib could not parse
  // skipped the pre-routing handler).
  server.set_post_routing_handler([&context](const httplib::Request&, httplib::Response& res) {
    if (t_request.id.empty()) t_request.begin(context, {}, {});
    res.set_header("X-Request-Id", t_request.id);
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    // A route that answered an error with its own body keeps it.
    if (res.content_length_ > 0) return;
    if (res.status == 404) send_text(res, 404, detail_body("not found"));
    if (res.status == 400) send_text(res, 400, detail_body("bad request"));
  });
  // Never put an exception's text in a response (httplib's default does, in a header).
  server.set_exception_handler(
      [&log = context.log](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          log(LogLevel::kError, "request failed", Json(Json::Object{{"error", e.what()}}));
        } catch (...) {
          log(LogLevel::kError, "request failed");
        }
        send_text(res, 500, detail_body("internal error"));
      });
  server.set_logger(
      [&context, listener](const httplib::Request& req, const httplib::Response& res) {
        if (t_request.id.empty()) t_request.begin(context, {}, {});
        finish_request(context, t_request, req.method, route_name(req.path), res.status,
                       res.content_length_ ? res.content_length_ : res.body.size(),
                       listener.empty() ? Json() : Json(Json::Object{{"listener", listener}}));
        t_request.end();
      });
}

void install_health_route(HardenedServer& server, const ServerContext& context) {
  server.Get("/health", [&context](const httplib::Request&, httplib::Response& res) {
    send_text(res, 200, server_health_body(context));
  });
}

// The Prometheus text of the registry, the span exporter and the scaling role.
void send_metrics(httplib::Response& res, const ServerContext& context) {
  const auto snap = context.registry.current();
  const ScalingRole* role = context.scaling_role();
  std::vector<prometheus::MetricFamily> extra = context.tracer.metric_families();
  if (role != nullptr) internal::append_families(extra, role->metric_families());
  send_text(res, 200, internal::render_text(context.registry.metrics(), snap.get(), extra),
            "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace

std::string_view auth_refusal_body(AuthResult auth) {
  static const std::string missing = detail_body("missing bearer token");
  static const std::string malformed = detail_body("malformed Authorization header");
  static const std::string forbidden = detail_body("invalid API key");
  switch (auth) {
    case AuthResult::kMissing:
      return missing;
    case AuthResult::kMalformed:
      return malformed;
    default:
      return forbidden;
  }
}

std::string server_health_body(const ServerContext& context) {
  const auto now = std::chrono::system_clock::now();
  // The scaling role's member; a role that cannot do its job (no Redis, no lease) makes an
  // "ok" server "degraded".
  if (const ScalingRole* role = context.scaling_role()) {
    const HealthComponent scaling{"scaling", role->status(), role->degraded()};
    return health_body(context.registry, now, {&scaling, 1});
  }
  return health_body(context.registry, now);
}

void log_refused_request(const ServerContext& context, int status) {
  RequestContext ctx;
  ctx.begin(context, {}, {});
  finish_request(context, ctx, "", "refused", status, 0);
  ctx.end();
}

void install_routes(HardenedServer& server, const ServerContext& context) {
  install_request_hooks(server, context);
  install_health_route(server, context);
  Registry& registry = context.registry;
  const ServerConfig& config = context.config;

  server.Get("/ready", [&registry](const httplib::Request&, httplib::Response& res) {
    if (registry.has_snapshot()) {
      send_text(res, 200, std::string(kReadyBody));
    } else {
      res.set_header("Retry-After", "1");
      send_text(res, 503, R"({"brand":"brAInwav","status":"starting"})");
    }
  });

  server.Get("/v1/connectors/service-map", [&registry, &config](const httplib::Request& req,
                                                                httplib::Response& res) {
    if (!authorize(req, res, config)) return;
    res.set_header("Cache-Control", "no-cache");
    const auto snap = registry.current();
    if (!snap) {
      res.set_header("Retry-After", "1");
      send_text(res, 503, unavailable_body(registry));
      return;
    }
    res.set_header("ETag", snap->etag);
    res.set_header("Vary", "Accept-Encoding");
    if (if_none_match(req.get_header_value("If-None-Match"), snap->etag)) {
      res.status = 304;
      return;
    }
    // A large snapshot is served identity-only until its compressed bodies are
    // ready (RegistryOptions::gzip_level).
    const auto encoding = choose_encoding(req.get_header_value("Accept-Encoding"),
                                          !snap->body_gzip.empty(), !snap->body_brotli.empty());
    std::string_view bytes = snap->body;
    if (encoding == ContentEncoding::kBrotli) {
      bytes = snap->body_brotli;
      res.set_header("Content-Encoding", "br");
    } else if (encoding == ContentEncoding::kGzip) {
      bytes = snap->body_gzip;
      res.set_header("Content-Encoding", "gzip");
    }
    res.status = 200;
    send_bytes(res, snap, bytes, kJson);
  });

  server.Get("/metrics", [&context, &config](const httplib::Request& req, httplib::Response& res) {
    if (!config.enable_prometheus) {
      send_text(res, 404,
                detail_body("metrics are disabled (ENABLE_PROMETHEUS=true enables them)"));
      return;
    }
    if (!config.api_keys.empty() && !authorize(req, res, config)) return;
    send_metrics(res, context);
  });
}

void install_metrics_listener_routes(HardenedServer& server, const ServerContext& context) {
  install_request_hooks(server, context, "metrics");
  install_health_route(server, context);
  server.Get("/metrics", [&context](const httplib::Request&, httplib::Response& res) {
    send_metrics(res, context);
  });
}

void install_dashboard_route(HardenedServer& server, std::shared_ptr<const BundleSlot> slot) {
  server.Get("/apps/chatgpt-dashboard", [](const httplib::Request&, httplib::Response& res) {
    // Relative asset URLs in index.html resolve against the directory, so send the slash.
    res.set_header("Location", std::string(kDashboardMount) + "/");
    send_text(res, 308, detail_body("the dashboard is at /apps/chatgpt-dashboard/"));
  });
  server.Get("/apps/chatgpt-dashboard/(.*)", [slot = std::move(slot)](const httplib::Request& req,
                                                                      httplib::Response& res) {
    const std::shared_ptr<const StaticBundle> bundle = slot->get();
    if (!bundle) {
      res.set_header("Retry-After", "60");
      send_text(res, 503,
                detail_body("dashboard bundle is not installed: build the project (cmake --build) "
                            "or install it, or point APPS_BUNDLE_DIR / --apps-dir at a directory "
                            "holding index.html; see docs/dashboard.md"));
      return;
    }
    // req.path is percent-decoded: "%2e%2e" arrives as "..", "%00" as a NUL byte.
    const auto name =
        static_relative_path(std::string_view(req.path).substr(kDashboardMount.size() + 1));
    const StaticAsset* asset = name ? bundle->find(*name) : nullptr;
    if (asset == nullptr) {
      send_text(res, 404, detail_body("not found"));
      return;
    }
    res.set_header("Cache-Control", std::string(asset->cache_control));
    res.set_header("Vary", "Accept-Encoding");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Content-Security-Policy", std::string(kDashboardContentSecurityPolicy));
    const auto encoding = choose_encoding(req.get_header_value("Accept-Encoding"),
                                          !asset->gzip.empty(), !asset->brotli.empty());
    std::string_view bytes = asset->identity;
    const std::string* etag = &asset->etag;
    if (encoding == ContentEncoding::kBrotli) {
      bytes = asset->brotli;
      etag = &asset->etag_brotli;
    } else if (encoding == ContentEncoding::kGzip) {
      bytes = asset->gzip;
      etag = &asset->etag_gzip;
    }
    res.set_header("ETag", *etag);
    if (if_none_match(req.get_header_value("If-None-Match"), *etag)) {
      res.status = 304;
      return;
    }
    if (encoding != ContentEncoding::kIdentity) {
      res.set_header("Content-Encoding", std::string(to_string(encoding)));
    }
    res.status = 200;
    send_bytes(res, bundle, bytes, asset->content_type.data());
  });
}

void install_keys_route(HardenedServer& server, PublicKeySet published) {
  server.Get("/v1/connectors/keys", [published = std::move(published)](const httplib::Request& req,
                                                                       httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    if (published.empty()) {
      send_text(res, 404,
                detail_body("no Ed25519 signing key is configured (CONNECTORS_SIGNING_KEY_FILE)"));
      return;
    }
    // Built per request: a previous key leaves the document once its notAfter has passed.
    auto doc = std::make_shared<const KeysDocument>(
        build_keys_document(published, std::chrono::system_clock::now()));
    res.set_header("ETag", doc->etag);
    if (if_none_match(req.get_header_value("If-None-Match"), doc->etag)) {
      res.status = 304;
      return;
    }
    res.status = 200;
    send_bytes(res, doc, doc->body, kJson);
  });
}

}  // namespace cortex_connectors::server

namespace cortex_connectors::server {

namespace {

// Returns the body bytes written.
std::size_t answer(int fd, int status, std::string_view request_id, std::string_view extra_headers,
                   std::string_view body, bool head_only) {
  std::string out = status_line(status);
  out.append("Content-Type: application/json\r\nContent-Length: ")
      .append(std::to_string(body.size()))
      .append("\r\nConnection: close\r\nX-Request-Id: ")
      .append(request_id)
      .append("\r\n")
      .append(extra_headers)
      .append("\r\n");
  if (!head_only) out.append(body);
  send_all(fd, out);
  return head_only ? 0 : body.size();
}

// The registry stores a snapshot before its listeners (the hub) are told. A hub behind it
// would answer a new stream from the older version: with nothing yet, take it for one opened
// before the first snapshot and ignore its Last-Event-ID; else resume it to the older version.
// Hands the hub the registry's snapshot (the listener's publish() of it is then a no-op).
void bring_hub_up_to_date(SseHub& hub, const Registry& registry) {
  if (auto snapshot = registry.current(); snapshot && hub.latest_version() < snapshot->version) {
    hub.publish(std::move(snapshot));
  }
}

}  // namespace

void install_stream(HardenedServer& server, SseHub& hub, const ServerContext& context) {
  server.set_takeover("/v1/connectors/stream", [&hub, &context](int fd, const RequestHead& head) {
    const Registry& registry = context.registry;
    const ServerConfig& config = context.config;
    RequestContext ctx;
    ctx.begin(context, head.header("x-request-id"), head.header("traceparent"));
    const std::string& request_id = ctx.id;
    const bool head_only = head.method == "HEAD";
    int status = 200;
    std::size_t bytes = 0;
    // The span and the access line cover the handshake, not the stream's lifetime.
    auto finish = [&](Takeover outcome) {
      finish_request(context, ctx, head.method, "stream", status, bytes,
                     Json(Json::Object{{"subscribers", hub.subscribers()}}));
      ctx.end();
      return outcome;
    };
    if (!config.no_auth) {
      const auto auth = check_bearer(head.header("authorization"), config.api_keys);
      if (auth != AuthResult::kOk) {
        status = auth == AuthResult::kForbidden ? 403 : 401;
        bytes = answer(fd, status, request_id, status == 401 ? "WWW-Authenticate: Bearer\r\n" : "",
                       auth_refusal_body(auth), head_only);
        return finish(Takeover::kAnswered);
      }
    }
    std::string preamble =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "Connection: keep-alive\r\nX-Accel-Buffering: no\r\nX-Request-Id: " +
        request_id + "\r\n\r\n";
    if (head_only) {
      send_all(fd, preamble);
      return finish(Takeover::kAnswered);
    }
    const bool delta = head.query_param("mode") == "delta";
    bring_hub_up_to_date(hub, registry);
    if (!hub.adopt(fd, std::move(preamble), delta,
                   parse_last_event_id(head.header("last-event-id")))) {
      status = 503;
      bytes = answer(fd, 503, request_id, "Retry-After: 5\r\n",
                     detail_body("too many stream subscribers"), false);
      return finish(Takeover::kAnswered);
    }
    return finish(Takeover::kAdopted);
  });
}

}  // namespace cortex_connectors::server
