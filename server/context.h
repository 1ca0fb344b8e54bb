// ServerContext: what the routes share, made once by server_main.cpp and handed to them by
// reference instead of process globals: the configuration, the registry, where spans and log
// lines go and the Redis role the server runs as.
//
// Thread-safety: the members are set before the server serves (the scaling role may also be
// cleared while it stops); every method may be called from any thread.
#pragma once

#include <atomic>

#include "config.h"
#include "cortex_connectors/registry.h"
#include "log.h"
#include "tracing.h"

namespace cortex_connectors::server {

class ScalingRole;  // redis_scaling.h

struct ServerContext {
  // `config`, `registry`, `tracer` and `log` must outlive the context.
  ServerContext(const ServerConfig& server_config, Registry& server_registry,
                const Tracer& server_tracer, const Log& server_log)
      : config(server_config), registry(server_registry), tracer(server_tracer), log(server_log) {}
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  const ServerConfig& config;
  Registry& registry;
  // Where the spans of requests go (server_main.cpp sets it up before the registry exists: the
  // registry's loads are traced too).
  const Tracer& tracer;
  // Where the access lines and the routes' errors go.
  const Log& log;

  // The publisher or replica this server runs as, reported on /health, /metrics and the
  // service status; null (the default) for a single server. `role` must outlive its use.
  void set_scaling_role(const ScalingRole* role) noexcept { scaling_role_.store(role); }
  const ScalingRole* scaling_role() const noexcept { return scaling_role_.load(); }

 private:
  std::atomic<const ScalingRole*> scaling_role_{nullptr};
};

}  // namespace cortex_connectors::server
