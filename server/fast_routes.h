// FastRoutes: the hot routes answered by the connection loop itself (HardenedServer::
// set_fast_path), from the request head it has already read and checked: GET and HEAD of the
// service map (200 per encoding, 304, 401, 403), /health, /ready and the dashboard's files
// (200 per encoding, 304).
//
// Response heads are prepared once per snapshot, per dashboard bundle and per representation,
// in the order cpp-httplib writes headers; a request only copies them around its own lines
// (X-Request-Id, Connection or Keep-Alive, Accept-Ranges for HEAD, Content-Length of /health).
// No heap allocation or formatted printing per request once a connection's buffers have grown;
// trace and span ids are made only where something reads them (request_context.h).
//
// Whatever they would not answer exactly as routes.cpp does through cpp-httplib is declined and
// goes there: other routes and methods, HTTP/1.0, a query string, a percent-encoded path, a
// Connection header other than "close", Expect, the 503s before the first snapshot, a
// dashboard path that is not a file of the bundle (404), a missing bundle (503). Same status,
// headers (but Date, which neither path sends) and body either way: tests/test_fast_path.cpp.
//
// Thread-safety: answer() may be called from any number of threads at once.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "context.h"
#include "http_server.h"
#include "static_files.h"

namespace cortex_connectors::server {

// A response head prepared ahead of the requests it answers: the status line and its fixed
// header lines, sorted as cpp-httplib sorts them (by name, ignoring case), with the place each
// per-request line goes.
struct PreparedHead {
  // The per-request lines, in the order their names sort.
  enum Line : std::uint8_t { kAcceptRanges, kConnection, kContentLength, kKeepAlive, kRequestId };
  static constexpr std::size_t kLines = 5;

  std::string status_line;               // "HTTP/1.1 200 OK\r\n"
  std::string lines;                     // the fixed header lines
  std::array<std::size_t, kLines> at{};  // where each per-request line goes in `lines`
};

// Prepares the head of `status` with the fixed `headers` (name, value).
using HeaderLine = std::pair<std::string_view, std::string_view>;
PreparedHead prepare_head(int status, std::vector<HeaderLine> headers);

// What a request adds to a prepared head.
struct HeadLines {
  bool head_only = false;       // a HEAD request: "Accept-Ranges: bytes", as cpp-httplib adds
  bool close = false;           // "Connection: close"; otherwise `keep_alive`
  std::string_view keep_alive;  // the whole "Keep-Alive: ...\r\n" line
  std::string_view request_id;
  // A body made per request has its Content-Length here (-1: the head has a fixed one).
  long long content_length = -1;
};

// Writes `head` with `lines` into `out` (replacing its contents), ending with the empty line.
void write_head(const PreparedHead& head, const HeadLines& lines, std::string& out);

class FastRoutes {
 public:
  // `dashboard` may be null (no dashboard route). `context` must outlive this object.
  FastRoutes(const ServerContext& context, std::shared_ptr<const BundleSlot> dashboard);
  ~FastRoutes();
  FastRoutes(const FastRoutes&) = delete;
  FastRoutes& operator=(const FastRoutes&) = delete;

  // HardenedServer's FastPath: answers into `out` or returns false (see the top of this file).
  bool answer(const RequestHead& head, bool close, FastResponse& out);

 private:
  struct MapHeads;
  struct BundleHeads;
  struct Cache;  // the heads of the current snapshot and bundle (fast_routes.cpp)
  enum class Outcome : std::uint8_t { kDeclined, kAnswered };

  Outcome service_map(const RequestHead& head, HeadLines& lines, FastResponse& out, int& status,
                      std::size_t& bytes);
  Outcome dashboard(const RequestHead& head, std::string_view name, HeadLines& lines,
                    FastResponse& out, int& status, std::size_t& bytes);
  // The heads of `snapshot` / `bundle`, prepared by the first request that needs them.
  std::shared_ptr<const MapHeads> map_heads(const std::shared_ptr<const Snapshot>& snapshot);
  std::shared_ptr<const BundleHeads> bundle_heads(
      const std::shared_ptr<const StaticBundle>& bundle);

  const ServerContext& context_;
  std::shared_ptr<const BundleSlot> dashboard_;
  std::string keep_alive_;        // "Keep-Alive: timeout=T, max=N\r\n", as cpp-httplib writes it
  PreparedHead missing_token_;    // 401
  PreparedHead malformed_token_;  // 401
  PreparedHead forbidden_;        // 403
  PreparedHead ready_;
  PreparedHead health_;  // Content-Length per request
  std::unique_ptr<Cache> cache_;
};

// Serves the hot routes of `server` from the connection loop. `routes` must outlive the server.
void install_fast_routes(HardenedServer& server, FastRoutes& routes);

}  // namespace cortex_connectors::server
