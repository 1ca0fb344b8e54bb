// The limits of the server's connection loop (http_server.h), part of the configuration
// (ServerConfig::hardening): no cpp-httplib here, so the configuration does not depend on it.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

namespace cortex_connectors::server {

struct HardeningOptions {
  std::chrono::milliseconds request_deadline{10000};  // whole request head
  std::chrono::milliseconds keep_alive_timeout{5000};
  std::chrono::milliseconds write_timeout{10000};
  std::size_t keep_alive_max_requests = 1000;
  std::size_t header_budget_bytes = 16384;
  std::size_t max_header_count = 100;
  // Request workers; 0: one per CPU the process may run on. Neither an idle connection nor a
  // client that does not read its response holds one (see http_server.h).
  std::size_t worker_threads = 0;
  // Called with the status of every request answered by the connection loop itself (400, 405,
  // 431) before httplib sees it: for the access log.
  std::function<void(int status)> on_refused;
};

// The workers `options` asks for: worker_threads, or one per CPU in the process's affinity mask.
std::size_t worker_thread_count(const HardeningOptions& options);

}  // namespace cortex_connectors::server
