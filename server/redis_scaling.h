// Horizontal scale over Redis (docs/scaling.md): the publisher writes every signed snapshot to
// Redis and announces it; replicas read, verify and serve it. The only users of hiredis.
//
// Keys (`prefix` = ServerConfig::redis_prefix):
//   <prefix>:snapshot   hash: version, body (the signed service-map body), generatedAt,
//                       contentHash; written only by a Lua script that checks the lease and
//                       that the version is higher than the stored one (compare-and-set)
//   <prefix>:events     stream, capped (~1000 entries): one entry {version} per write
//   <prefix>:publisher  the lease: the token of the publisher allowed to write (SET NX PX,
//                       renewed); a second publisher refuses to write while it is held
//
// Thread-safety: start()/stop() from one thread; status() and metrics_text() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "config.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/keys.h"
#include "cortex_connectors/registry.h"

namespace cortex_connectors::server {

// What /health and /metrics show of a role that uses Redis.
class ScalingRole {
 public:
  virtual ~ScalingRole() = default;
  virtual void stop() = 0;
  // The "scaling" member of /health.
  virtual Json status() const = 0;
  // Prometheus text 0.0.4 of its counters.
  virtual std::string metrics_text() const = 0;
  // True when the role cannot do its job now (/health reports "degraded").
  virtual bool degraded() const = 0;
};

// The role routes.cpp reports on /health and /metrics; null (the default) for a single server.
void set_scaling_role(const ScalingRole* role);
const ScalingRole* scaling_role();

// Delays between connection attempts: 100 ms doubling to 2 s, each with 50-100 % jitter, so
// replicas restarted together do not reconnect in step.
class Backoff {
 public:
  std::chrono::milliseconds next();
  void reset() { attempt_ = 0; }

 private:
  int attempt_ = 0;
};

class RedisConnection;

class RedisPublisher final : public ScalingRole {
 public:
  RedisPublisher(RedisEndpoint endpoint, std::string prefix);
  ~RedisPublisher() override;

  // Before the registry exists: waits (with Backoff) until Redis answers, tries to take the
  // lease and returns the snapshot stored there (version 0 when none), for
  // RegistryOptions::resume_from: the registry's versions start above it, and the same body
  // keeps its version. Returns nullopt when `stopping()` turns true first.
  std::optional<SignedSnapshot> prepare(const std::function<bool()>& stopping);
  // Writes every snapshot `registry` publishes from now on (and the current one) from a
  // background thread. `registry` must outlive stop().
  void start(Registry& registry);
  void stop() override;  // releases the lease

  Json status() const override;
  std::string metrics_text() const override;
  bool degraded() const override;

 private:
  void run();
  bool renew_lease(RedisConnection& c);
  void write(RedisConnection& c, const Snapshot& snap);

  RedisEndpoint endpoint_;
  std::string prefix_;
  std::string token_;  // this process's lease token
  Registry* registry_ = nullptr;
  std::unique_ptr<RedisConnection> initial_;  // prepare()'s connection, handed to run()
  std::uint64_t listener_ = 0;

  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool dirty_ = false;  // a snapshot was published since the last write

  std::thread thread_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> leader_{false};
  std::atomic<bool> stale_{false};  // Redis holds a newer version than ours
  std::atomic<std::uint64_t> written_version_{0};
  std::atomic<std::uint64_t> stored_version_{0};
  std::atomic<std::uint64_t> writes_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> reconnects_{0};
  mutable std::mutex error_mutex_;
  std::string last_error_;
};

class RedisReplica final : public ScalingRole {
 public:
  // `pinned`: Ed25519 public keys that must also have signed every snapshot (empty: HMAC only,
  // with the registry's signing key).
  RedisReplica(RedisEndpoint endpoint, std::string prefix, Registry& registry, PublicKeySet pinned);
  ~RedisReplica() override;

  void start();
  void stop() override;

  Json status() const override;
  std::string metrics_text() const override;
  bool degraded() const override;

 private:
  void run();
  bool follow(RedisConnection& c);
  bool load_latest(RedisConnection& c);

  RedisEndpoint endpoint_;
  std::string prefix_;
  Registry& registry_;
  PublicKeySet pinned_;

  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;

  std::thread thread_;
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> seen_version_{0};  // the newest version read from Redis
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> reconnects_{0};
  mutable std::mutex error_mutex_;
  std::string last_error_;
  std::string last_rejection_;
  std::string rejected_key_;  // version + body hash of the last rejection: alarm once per body
};

}  // namespace cortex_connectors::server
