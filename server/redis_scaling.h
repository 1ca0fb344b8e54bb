// Horizontal scale over Redis (docs/scaling.md): the publisher writes every signed snapshot to
// Redis and announces it; replicas read, verify and serve it. The only users of hiredis: the
// publisher in redis_publisher.cpp, the replica in redis_replica.cpp, the connection and the
// helpers they share in redis_connection.{h,cpp}.
//
// Keys (`prefix` = ServerConfig::redis_prefix):
//   <prefix>:snapshot   hash: version, body (the signed service-map body), generatedAt,
//                       contentHash, envelope (envelope.h: version, publication time and
//                       SHA-256 of the body, signed by the publisher, scope = prefix),
//                       bodySha256; written only by Lua scripts that check the lease and that
//                       the version is higher than the stored one (compare-and-set), or, to
//                       re-sign the envelope, that version and body are the stored ones
//   <prefix>:events     stream, capped (~1000 entries): one entry {version} per write
//   <prefix>:publisher  the lease: the token of the publisher allowed to write (SET NX PX,
//                       renewed); a second publisher refuses to write while it is held
//
// Thread-safety: start()/stop() from one thread; status() and metric_families() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/metric_family.h>

#include "config.h"
#include "cortex_connectors/envelope.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/keys.h"
#include "cortex_connectors/registry.h"
#include "log.h"

namespace cortex_connectors::server {

// What /health and /metrics show of a role that uses Redis.
class ScalingRole {
 public:
  virtual ~ScalingRole() = default;
  virtual void stop() = 0;
  // The "scaling" member of /health.
  virtual Json status() const = 0;
  // The families of its gauges and counters (/metrics).
  virtual std::vector<prometheus::MetricFamily> metric_families() const = 0;
  // True when the role cannot do its job now (/health reports "degraded").
  virtual bool degraded() const = 0;
};

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
  // Writes to config.redis under config.redis_prefix; signs envelopes with config.signing_key
  // and `ed25519_keys` (the active key, when configured) and re-signs the current one every
  // config.envelope_refresh. Logs to `log`, which must outlive it.
  // REQUIRES: config.redis is set.
  RedisPublisher(const ServerConfig& config, std::vector<Ed25519Key> ed25519_keys, const Log& log);
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
  std::vector<prometheus::MetricFamily> metric_families() const override;
  bool degraded() const override;

 private:
  void run();
  bool renew_lease(RedisConnection& c);
  // The signed envelope of `snap` as of now; nullopt (logged) when it cannot be signed.
  std::optional<std::pair<std::string, SnapshotEnvelope>> envelope_of(const Snapshot& snap);
  void write(RedisConnection& c, const Snapshot& snap);
  // Re-signs the stored envelope of `snap` (the one last written) with the current time.
  void refresh(RedisConnection& c, const Snapshot& snap);

  RedisEndpoint endpoint_;
  std::string prefix_;
  std::string token_;  // this process's lease token
  const Log& log_;
  std::string hmac_key_;  // never logged
  std::vector<Ed25519Key> ed25519_keys_;
  std::chrono::seconds envelope_refresh_;
  std::chrono::steady_clock::time_point next_refresh_;  // run()'s thread only
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
  std::atomic<std::int64_t> envelope_at_{0};  // publishedAt of the last envelope written (s)
  mutable std::mutex error_mutex_;
  std::string last_error_;
};

class RedisReplica final : public ScalingRole {
 public:
  // Reads config.redis under config.redis_prefix. Bodies and envelopes are verified with
  // config.signing_key (HMAC) when set and with `pinned` (Ed25519 public keys) when not empty:
  // both when both are given. The highest version accepted is recorded in config.state_dir
  // (record_path()); config.max_snapshot_age > 0 refuses older envelopes. Logs to `log`, which
  // must outlive it.
  // REQUIRES: config.redis is set.
  RedisReplica(const ServerConfig& config, Registry& registry, PublicKeySet pinned, const Log& log);
  ~RedisReplica() override;

  void start();
  void stop() override;

  Json status() const override;
  std::vector<prometheus::MetricFamily> metric_families() const override;
  bool degraded() const override;

  // The file holding the highest version this replica accepted for its prefix:
  // <state dir>/redis-replica.<prefix, percent-encoded>.json.
  const std::filesystem::path& record_path() const { return record_path_; }

 private:
  // Why a snapshot in Redis is refused (/health "lastRejectionReason").
  enum class Refusal : std::uint8_t {
    kEnvelope,
    kScope,
    kVersion,
    kRollback,
    kStale,
    kDigest,
    kBody
  };
  struct Stored;  // what one read of the hash returned

  void run();
  bool follow(RedisConnection& c);
  bool load_latest(RedisConnection& c);
  // The checks that need no body: a verified envelope of this deployment, beside its version,
  // not below what was accepted, not too old. Refuses (and returns nullopt) otherwise.
  std::optional<SnapshotEnvelope> assess(const Stored& s);
  void accept(const SnapshotEnvelope& envelope, bool published);
  void refuse(Refusal reason, const std::string& message, std::uint64_t version,
              const std::string& evidence);
  // Refuses (once) the served snapshot when its envelope has grown older than the maximum age.
  void check_age();
  void load_record();
  void write_record(std::uint64_t version);
  std::int64_t envelope_age_seconds() const;
  // The served snapshot's envelope is older than the maximum age.
  bool stale() const;

  RedisEndpoint endpoint_;
  std::string prefix_;
  Registry& registry_;
  const Log& log_;
  PublicKeySet pinned_;
  std::string hmac_key_;  // never logged
  std::chrono::seconds max_age_;
  std::filesystem::path record_path_;

  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;

  std::thread thread_;
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> seen_version_{0};  // the newest version read from Redis
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> reconnects_{0};
  // The highest version accepted, as recorded (also from earlier runs): nothing below it is
  // ever accepted again.
  std::atomic<std::uint64_t> recorded_version_{0};
  std::atomic<bool> refusing_{false};  // the newest state read from Redis was refused
  // publishedAt of the served snapshot's newest verified envelope (s since the epoch; 0: none).
  std::atomic<std::int64_t> envelope_at_{0};
  std::string served_sha256_;          // the served body's digest; the replica's thread only
  std::int64_t stale_alarmed_at_ = 0;  // envelope_at_ of the last age alarm; the same thread
  mutable std::mutex error_mutex_;
  std::string last_error_;
  std::string last_rejection_;
  std::string last_rejection_reason_;
  std::string record_error_;  // the record cannot be read or written
  std::string rejected_key_;  // reason + evidence of the last rejection: alarm once for each
};

}  // namespace cortex_connectors::server
