// HardenedServer: cpp-httplib's parser and router behind a connection loop of our own.
//
// cpp-httplib 0.11.4 (pinned in server/CMakeLists.txt: this class overrides
// Server::process_and_close_socket, a private virtual of that version) applies its read
// timeout per recv(), lets a header line grow without bound, counts no headers, parses Range
// with a recursive std::regex and pins a worker per keep-alive connection. Here every request
// head is read by HeadReader first — within a whole-request deadline and a byte budget, GET and
// HEAD only, no body, Range and If-Range dropped — and only then handed to httplib to parse and
// route. Anything refused is answered (405, 400, 431) or closed without reaching httplib.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>

#include <httplib.h>

namespace cortex_connectors::server {

struct HardeningOptions {
  std::chrono::milliseconds request_deadline{10000};
  std::chrono::milliseconds keep_alive_timeout{5000};
  std::chrono::milliseconds write_timeout{10000};
  std::size_t keep_alive_max_requests = 1000;
  std::size_t header_budget_bytes = 16384;
  std::size_t max_header_count = 100;
};

class HardenedServer : public httplib::Server {
 public:
  explicit HardenedServer(HardeningOptions options);
  ~HardenedServer() override;

  // Binds with SO_REUSEADDR only (never SO_REUSEPORT: a busy port is an error) and listens with
  // `backlog`. Returns the bound port, or -1 with errno set.
  int bind(const std::string& host, int port, int backlog);

  // Stops accepting and wakes every connection waiting for its next request.
  void shutdown();

 private:
  bool process_and_close_socket(socket_t sock) override;

  HardeningOptions options_;
  int stop_fd_ = -1;  // eventfd, readable once shutdown() ran
  std::atomic<bool> stopping_{false};
};

}  // namespace cortex_connectors::server
