// HardenedServer: cpp-httplib's parser and router behind a connection loop of our own.
//
// cpp-httplib 0.11.4 (pinned in server/CMakeLists.txt: this class overrides
// Server::process_and_close_socket, a private virtual of that version) applies its read
// timeout per recv(), lets a header line grow without bound, counts no headers, parses Range
// with a recursive std::regex and pins a worker per keep-alive connection. Here every request
// head is read by HeadReader first — within a whole-request deadline and a byte budget, GET and
// HEAD only, no body, Range and If-Range dropped — and only then handed to httplib to parse and
// route. Anything refused is answered (405, 400, 431) or closed without reaching httplib.
//
// Two paths answer a checked head. The hot routes (the service map and its 304, /health,
// /ready, the dashboard's files: fast_routes.h) answer it at once from prepared response heads
// (set_fast_path()), without cpp-httplib parsing it again; whatever they do not take (any other
// route, a request they would answer differently, a state they do not prepare) goes to
// cpp-httplib's parser and router, which keeps every other request. Both give the same status,
// headers and body for the same request (tests/test_fast_path.cpp).
//
// Connections do not own threads. A connection waiting for its next request, or for the rest
// of a request head, waits in one epoll set; a small pool of workers (HardeningOptions::
// worker_threads, the TaskQueue httplib's accept loop hands sockets to) takes whichever
// connection becomes readable, reads without blocking, serves every complete request and parks
// the connection again. A response the socket does not take at once waits in the epoll set
// too, for the socket to drain (up to the write timeout). Idle keep-alive connections, slow
// clients and clients that do not read therefore cost a descriptor and a few hundred bytes, not
// a thread; a worker blocks only on a response over 64 KiB from cpp-httplib's routes (none of
// the hot routes) to a client that does not read. Deadlines are enforced by a timer that
// sweeps the parked connections.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <httplib.h>

#include "hardening.h"

namespace cortex_connectors::server {

// A checked request head, split into views (valid during the takeover call).
struct RequestHead {
  std::string_view method;
  std::string_view target;   // as sent: path plus query
  std::string_view version;  // "HTTP/1.1", as sent
  std::string_view path;
  std::string_view query;  // after '?', without it
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  // The first header named `name` (give it in lower case; matching ignores case), or "".
  std::string_view header(std::string_view name) const;
  // The value of query parameter `name`, or "" (no percent-decoding: parameters are tokens).
  std::string_view query_param(std::string_view name) const;
};

// The outcome of check_head().
enum class HeadResult : std::uint8_t {
  kOk,
  kNeedMore,  // nothing more to read now: park the connection
  kClosed,
  kTimeout,
  kTooLarge,
  kTooManyHeaders,
  kMethod,
  kBody,
  kDuplicateAuthorization,
  kBad
};

// Checks a complete request head (request line, header lines, ending with an empty line; what
// the connection loop extracts up to the first CRLF CRLF) in place: the method, the header
// lines and their number, bodies; drops Range / If-Range. kOk leaves the head to be parsed.
// Two Authorization lines are refused: httplib and RequestHead::header() would read the first,
// a proxy in front might read the last, and a request both accept differently must not pass.
// REQUIRES: `head` ends with "\r\n\r\n".
HeadResult check_head(std::string& head, const HardeningOptions& options);

// Splits a head that check_head() accepted into its parts (views into `head`).
RequestHead parse_head(std::string_view head);
// The same into `out`, whose header vector keeps its capacity.
void parse_head(std::string_view head, RequestHead& out);

// A response the fast path made. Each connection keeps one and reuses it: its strings keep
// their capacity between requests.
struct FastResponse {
  std::string head;                   // status line and header lines, ending with the empty line
  std::string_view body;              // sent after `head` (empty for HEAD and 304)
  std::string owned_body;             // a body made for this request (`body` then points here)
  std::shared_ptr<const void> owner;  // keeps `body` alive while it is sent
  // When >= 0, a file holding the same bytes as `body` from offset 0: they are sent from it with
  // sendfile(), without copying them through the socket's buffer. `file_owner` keeps it open.
  int body_file = -1;
  std::shared_ptr<const void> file_owner;
  bool close = false;  // close the connection once it is sent
};

// Answers a request from its checked head into `out`, or returns false to leave it to
// cpp-httplib. `close`: the connection closes after this response whatever the request says
// (its last allowed request, or the server is stopping).
using FastPath = std::function<bool(const RequestHead& head, bool close, FastResponse& out)>;

// What a takeover hook did with a connection.
enum class Takeover {
  kAdopted,   // the socket now belongs to someone else: do not close it
  kAnswered,  // a complete response was written: close the connection
};
using TakeoverHook = std::function<Takeover(int fd, const RequestHead& head)>;

// "HTTP/1.1 <status> <reason>\r\n" for the statuses the server writes itself (200, 304, 400,
// 401, 403, 405, 431, 503; cpp-httplib's reason phrases).
std::string status_line(int status);

// Writes all of `data` to socket `fd` (MSG_NOSIGNAL), waiting up to a second whenever its
// buffer is full; gives up on the first error.
void send_all(int fd, std::string_view data);

class HardenedServer : public httplib::Server {
 public:
  explicit HardenedServer(HardeningOptions options);
  ~HardenedServer() override;
  HardenedServer(const HardenedServer&) = delete;
  HardenedServer& operator=(const HardenedServer&) = delete;

  // Binds with SO_REUSEADDR only (never SO_REUSEPORT: a busy port is an error) and listens with
  // `backlog`. Returns the bound port, or -1 with errno set.
  int bind(const std::string& host, int port, int backlog);

  // Stops accepting, closes every connection waiting for its next request and lets the
  // requests being served finish. Also before listen_after_bind() has begun: it then returns at
  // once.
  void shutdown();

  // Requests for exactly `path` (GET or HEAD) skip httplib and go to `hook` with the socket:
  // the SSE stream leaves the worker pool this way once its response head is written.
  // REQUIRES: called before listening.
  void set_takeover(std::string path, TakeoverHook hook);

  // Requests the fast path answers skip httplib (see the top of this file).
  // REQUIRES: called before listening.
  void set_fast_path(FastPath fast_path) { fast_path_ = std::move(fast_path); }

  // Connections currently waiting in the epoll set (between or inside requests).
  std::size_t parked_connections() const;

 private:
  struct Connection;
  class WorkerPool;

  bool process_and_close_socket(socket_t sock) override;
  // Serves every complete request `c` has, then parks it or closes it.
  void serve(std::unique_ptr<Connection> c);
  // Sends what is left of `c`'s response without blocking. True when it is sent and the
  // connection goes on to its next request; false when `c` was parked (the socket is full) or
  // closed.
  bool finish_response(std::unique_ptr<Connection>& c);
  void park(std::unique_ptr<Connection> c);
  void close_connection(std::unique_ptr<Connection> c);
  // A parked connection became readable (or hung up): serve it.
  void on_ready(std::uint64_t id);
  // Closes parked connections past their deadline (all of them when `all`).
  void sweep(bool all);
  void begin_stop();

  HardeningOptions options_;
  std::string takeover_path_;
  TakeoverHook takeover_;
  FastPath fast_path_;
  int epoll_fd_ = -1;  // parked connections, the job eventfd, stop_fd_ and timer_fd_
  int stop_fd_ = -1;   // eventfd, readable once shutdown() ran
  int timer_fd_ = -1;  // periodic: deadline sweeps
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> next_id_{16};  // ids below 16 name the control descriptors
  mutable std::mutex parked_mutex_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> parked_;
};

}  // namespace cortex_connectors::server
