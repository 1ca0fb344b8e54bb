// ServiceMapClient: follows a cortex-connectors server's signed service map from a consuming
// service (an MCP proxy, an agent) and hands the application every new verified version.
//
// It reads GET /v1/connectors/stream (full status events, or `?mode=delta` with apply_delta()),
// reconnecting with exponential backoff and jitter and sending Last-Event-ID, and before each
// reconnect makes a conditional GET of /v1/connectors/service-map (If-None-Match, 304), which
// is also how it keeps the map fresh when the stream is unavailable (polling fallback). Every
// body and every rebuilt delta payload is verified (verify.h) before it can become current; a
// tampered or older map never replaces the current one. on_update runs once per new version.
//
// Part of the optional `cortex_connectors::client` library (cpp-httplib); the core library stays
// network-free. Thread-safety: every method may be called from any thread. Callbacks run one at
// a time on the client's thread (or on the thread calling fetch_now()); they must not throw
// (exceptions are dropped) and must not destroy the client. stop() returns within about a second
// (longer only while a connect to an unreachable host is pending: see connect_timeout).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cortex_connectors/export.h"
#include "cortex_connectors/result.h"
#include "cortex_connectors/verify.h"

namespace cortex_connectors {

struct ServiceMapClientOptions {
  // "http://host:port" or "https://host:port" (no path; see the *_path members).
  std::string base_url = "http://127.0.0.1:3026";
  // Sent as "Authorization: Bearer <api_key>"; empty sends none. Never logged or in an Error.
  std::string api_key;
  // The HMAC key of the service map (CONNECTORS_SIGNATURE_KEY). Never logged or in an Error.
  std::string signing_key;
  // Pinned Ed25519 public keys (keys.h: parse_keys_document() of a saved GET
  // /v1/connectors/keys, or parse_public_key()). When set, bodies and deltas are verified by
  // their "signatures" with these keys instead of the HMAC key, which is then not needed.
  PublicKeySet public_keys;
  ExpiryBase expiry_base = ExpiryBase::kFetchTime;

  std::string service_map_path = "/v1/connectors/service-map";
  std::string stream_path = "/v1/connectors/stream";
  // Follow the SSE stream (true) or only poll with conditional GETs (false).
  bool use_stream = true;
  // Ask for delta events (`?mode=delta`) after the first full one.
  bool delta = false;

  // Conditional GETs while the stream is down (or always, without the stream): this interval,
  // but never longer than the current map's ttlSeconds, minus up to 20 % jitter.
  std::chrono::milliseconds poll_interval{30000};
  // Reconnect delays: initial, doubling per consecutive failure up to max; each delay is drawn
  // uniformly from [delay/2, delay] (jitter). The server's `retry:` replaces the initial delay
  // when honor_server_retry is set.
  std::chrono::milliseconds reconnect_initial{1000};
  std::chrono::milliseconds reconnect_max{30000};
  bool honor_server_retry = true;
  // TCP connect, and one GET's read, timeouts.
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds read_timeout{10000};
  // The stream is considered dead after this long without a byte (heartbeats included; the
  // server sends one every 15 s by default).
  std::chrono::milliseconds stream_idle_timeout{45000};

  // Called with each new verified version (exactly once per version); stats() already counts
  // the fetch or event that delivered it.
  std::function<void(const std::shared_ptr<const VerifiedServiceMap>&)> on_update;
  // Called for each failure: rejected bodies/events (kParse, kInvalid, kSignature, kExpired) and
  // transport failures (kIo: connection refused, HTTP status, stream ended).
  std::function<void(const Error&)> on_error;
};

// Counters since construction, for health pages and tests.
struct ServiceMapClientStats {
  std::uint64_t fetches = 0;          // GETs answered 200 or 304
  std::uint64_t not_modified = 0;     // of which 304
  std::uint64_t stream_connects = 0;  // streams that answered 200 text/event-stream
  std::uint64_t events = 0;           // verified status/delta events
  std::uint64_t deltas = 0;           // of which delta events
  std::uint64_t heartbeats = 0;       // comment lines received on the stream
  std::uint64_t updates = 0;          // on_update calls (new versions)
  std::uint64_t rejected = 0;         // bodies or events that failed verification
  std::uint64_t errors = 0;           // every on_error (rejections and transport failures)
  bool streaming = false;             // a stream is connected now
  std::string last_event_id;          // sent as Last-Event-ID on the next reconnect
};

class CORTEX_CONNECTORS_CLIENT_API ServiceMapClient {
 public:
  explicit ServiceMapClient(ServiceMapClientOptions options);
  ~ServiceMapClient();  // stop()
  ServiceMapClient(const ServiceMapClient&) = delete;
  ServiceMapClient& operator=(const ServiceMapClient&) = delete;

  // Starts the background thread (stream and/or polling). Errors (kUsage) for a bad base_url,
  // an empty signing key, or a second start().
  Status start();
  // Stops the thread and any request in flight; idempotent. From a callback it only requests
  // the stop (the thread ends after the callback returns).
  void stop();

  // One conditional GET now, on the calling thread. Returns the cache's verdict (kReplaced runs
  // on_update first; kUnchanged also for a 304), or the Error (also passed to on_error).
  Result<CacheUpdate> fetch_now();

  // The newest verified map, or nullptr before the first. fresh(): nullptr when it has expired.
  std::shared_ptr<const VerifiedServiceMap> current() const;
  std::shared_ptr<const VerifiedServiceMap> fresh() const;

  ServiceMapClientStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cortex_connectors
