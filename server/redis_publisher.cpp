#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/signing.h"
#include "log.h"
#include "redis_connection.h"
#include "redis_scaling.h"

namespace cortex_connectors::server {

using namespace redis_detail;  // NOLINT(google-build-using-namespace): the roles' own helpers

namespace {

constexpr auto kLease = std::chrono::milliseconds(10000);
constexpr auto kLeaseRenew = std::chrono::milliseconds(3000);
constexpr int kStreamMaxLen = 1000;

// Takes or renews the lease: KEYS[1] lease; ARGV token, milliseconds. 1: held by us.
constexpr std::string_view kLeaseScript = R"lua(
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
)lua";

// Releases the lease if we hold it.
constexpr std::string_view kReleaseScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

// The compare-and-set write: KEYS snapshot, events, lease; ARGV token, version, body,
// generatedAt, contentHash, stream length, envelope, bodySha256. Returns {code, stored
// version}: 1 written and announced; 2 the same version and body are stored already (the
// envelope is replaced and announced); 0 a version at or above ours is stored (refused); -1
// the lease is not ours (refused).
constexpr std::string_view kPublishScript = R"lua(
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return {-1, 0} end
local stored = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local version = tonumber(ARGV[2])
if version <= stored then
  if version == stored and redis.call('HGET', KEYS[1], 'body') == ARGV[3] then
    redis.call('HSET', KEYS[1], 'envelope', ARGV[7], 'bodySha256', ARGV[8])
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'version', ARGV[2])
    return {2, stored}
  end
  return {0, stored}
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'body', ARGV[3], 'generatedAt', ARGV[4],
           'contentHash', ARGV[5], 'envelope', ARGV[7], 'bodySha256', ARGV[8])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'version', ARGV[2])
return {1, version}
)lua";

// Re-signs the envelope of the stored snapshot: KEYS snapshot, events, lease; ARGV token,
// version, bodySha256, envelope, stream length. 1 replaced and announced; 0 Redis holds
// another snapshot (write it again); -1 the lease is not ours.
constexpr std::string_view kRefreshScript = R"lua(
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return -1 end
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[2] or
   redis.call('HGET', KEYS[1], 'bodySha256') ~= ARGV[3] then
  return 0
end
redis.call('HSET', KEYS[1], 'envelope', ARGV[4])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'version', ARGV[2])
return 1
)lua";

// Logged when another publisher holds the lease: on a change to that, and on a first check.
constexpr std::string_view kLeaseHeldElsewhere =
    "ANOTHER PUBLISHER holds the Redis lease: this one does not publish (only one publisher may "
    "run per prefix; see /health)";

}  // namespace

RedisPublisher::RedisPublisher(const ServerConfig& config, std::vector<Ed25519Key> ed25519_keys,
                               const Log& log)
    : endpoint_(*config.redis),
      prefix_(config.redis_prefix),
      token_(fmt::format("{}:{}", ::getpid(), generate_secret_hex(8))),
      log_(log),
      hmac_key_(config.signing_key),
      ed25519_keys_(std::move(ed25519_keys)),
      envelope_refresh_(config.envelope_refresh) {}

RedisPublisher::~RedisPublisher() { stop(); }

std::optional<SignedSnapshot> RedisPublisher::prepare(const std::function<bool()>& stopping) {
  auto c = std::make_unique<RedisConnection>();
  Backoff backoff;
  for (int attempt = 1;; ++attempt) {
    if (stopping()) return std::nullopt;
    std::string error;
    if (c->open(endpoint_, error)) {
      auto stored = c->command({"HMGET", prefix_ + ":snapshot", "version", "body", "contentHash"});
      if (stored && stored->type == REDIS_REPLY_ARRAY && stored->elements == 3) {
        SignedSnapshot s;
        s.version = to_version(reply_text(stored->element[0])).value_or(0);
        s.body = reply_text(stored->element[1]);
        s.content_hash = reply_text(stored->element[2]);
        s.source = "redis";
        const std::uint64_t version = s.version;
        stored_version_ = version;
        connected_ = true;
        renew_lease(*c);
        log_.always(LogLevel::kInfo, "publisher connected to Redis",
                    fields({{"redis", endpoint_.display()},
                            {"prefix", prefix_},
                            {"stored_version", version},
                            {"lease", leader_.load()}}));
        initial_ = std::move(c);
        return s;
      }
      error = stored ? reply_text(stored.get()) : c->last_error();
    }
    const auto delay = backoff.next();
    log_(LogLevel::kWarning, "publisher waiting for Redis",
         fields({{"redis", endpoint_.display()},
                 {"attempt", attempt},
                 {"error", error},
                 {"retry_ms", static_cast<std::int64_t>(delay.count())}}));
    // Short steps, so that a SIGTERM meanwhile is seen within ~100 ms.
    for (auto waited = std::chrono::milliseconds(0); waited < delay;
         waited += std::chrono::milliseconds(100)) {
      if (stopping()) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

void RedisPublisher::start(Registry& registry) {
  registry_ = &registry;
  listener_ = registry.subscribe([this](const std::shared_ptr<const Snapshot>&) {
    {
      std::lock_guard lock(mutex_);
      dirty_ = true;
    }
    cv_.notify_one();
  });
  thread_ = std::thread([this] { run(); });
}

void RedisPublisher::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (registry_ != nullptr && listener_ != 0) registry_->unsubscribe(listener_);
  listener_ = 0;
  if (thread_.joinable()) thread_.join();
}

bool RedisPublisher::renew_lease(RedisConnection& c) {
  auto r = c.eval(kLeaseScript, {prefix_ + ":publisher"}, {token_, std::to_string(kLease.count())});
  if (!r || r->type == REDIS_REPLY_ERROR) return false;
  const bool held = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  if (held != leader_.exchange(held)) {
    if (held) {
      log_.always(LogLevel::kInfo, "publisher holds the Redis lease: publishing",
                  fields({{"redis", endpoint_.display()}, {"prefix", prefix_}}));
    } else {
      log_.always(LogLevel::kError, kLeaseHeldElsewhere,
                  fields({{"redis", endpoint_.display()}, {"prefix", prefix_}}));
    }
  } else if (!held && written_version_ == 0 && refused_ == 0) {
    // First check and not held (leader_ was already false): say so once.
    log_.always(LogLevel::kError, kLeaseHeldElsewhere,
                fields({{"redis", endpoint_.display()}, {"prefix", prefix_}}));
    refused_ += 1;
  }
  return true;
}

std::optional<std::pair<std::string, SnapshotEnvelope>> RedisPublisher::envelope_of(
    const Snapshot& snap) {
  auto envelope =
      make_snapshot_envelope(snap.body, snap.version, std::chrono::system_clock::now(), prefix_);
  auto text = sign_snapshot_envelope(envelope, as_bytes(hmac_key_), ed25519_keys_);
  if (!text) {
    std::lock_guard lock(error_mutex_);
    if (last_error_ != text.error().message) {
      last_error_ = text.error().message;
      log_.always(LogLevel::kError, "cannot sign the snapshot envelope: not written to Redis",
                  fields({{"version", snap.version}, {"error", last_error_}}));
    }
    return std::nullopt;
  }
  return std::pair{std::move(*text), std::move(envelope)};
}

void RedisPublisher::write(RedisConnection& c, const Snapshot& snap) {
  auto envelope = envelope_of(snap);
  if (!envelope) {
    written_version_ = snap.version;  // not retried: the next version is tried
    return;
  }
  auto r =
      c.eval(kPublishScript, {prefix_ + ":snapshot", prefix_ + ":events", prefix_ + ":publisher"},
             {token_, std::to_string(snap.version), snap.body, snap.generated_at, snap.content_hash,
              std::to_string(kStreamMaxLen), envelope->first, envelope->second.body_sha256});
  if (!r) return;  // connection lost: run() reconnects and writes again
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[0]->type != REDIS_REPLY_INTEGER) {
    std::lock_guard lock(error_mutex_);
    last_error_ = reply_text(r.get());
    log_(LogLevel::kError, "Redis refused the snapshot write", fields({{"error", last_error_}}));
    return;
  }
  const long long code = r->element[0]->integer;
  const auto stored = static_cast<std::uint64_t>(r->element[1]->integer);
  if (code == 1 || code == 2) {
    written_version_ = snap.version;
    stored_version_ = snap.version;
    stale_ = false;
    envelope_at_ = std::chrono::duration_cast<std::chrono::seconds>(
                       envelope->second.published_at.time_since_epoch())
                       .count();
    next_refresh_ = std::chrono::steady_clock::now() + envelope_refresh_;
    if (code == 1) {
      writes_ += 1;
      log_(LogLevel::kInfo, "snapshot written to Redis",
           fields({{"version", snap.version}, {"bytes", snap.body.size()}}));
    }
  } else if (code == 0) {
    // Never overwrite a newer snapshot: another publisher (or an earlier run that this one did
    // not see at start) wrote it. Replicas keep serving that one.
    written_version_ = snap.version;  // do not retry this version
    stored_version_ = stored;
    refused_ += 1;
    if (!stale_.exchange(true)) {
      log_.always(LogLevel::kError,
                  "Redis holds a newer snapshot version than this publisher: not overwriting it; "
                  "restart this publisher to continue above it",
                  fields({{"version", snap.version}, {"stored_version", stored}}));
    }
  } else {
    leader_ = false;
    refused_ += 1;
  }
}

void RedisPublisher::refresh(RedisConnection& c, const Snapshot& snap) {
  auto envelope = envelope_of(snap);
  next_refresh_ = std::chrono::steady_clock::now() + envelope_refresh_;
  if (!envelope) return;
  auto r =
      c.eval(kRefreshScript, {prefix_ + ":snapshot", prefix_ + ":events", prefix_ + ":publisher"},
             {token_, std::to_string(snap.version), envelope->second.body_sha256, envelope->first,
              std::to_string(kStreamMaxLen)});
  if (!r) return;  // connection lost: run() reconnects and writes again
  if (r->type != REDIS_REPLY_INTEGER) {
    std::lock_guard lock(error_mutex_);
    last_error_ = reply_text(r.get());
    log_(LogLevel::kError, "Redis refused the envelope refresh", fields({{"error", last_error_}}));
    return;
  }
  if (r->integer == 1) {
    envelope_at_ = std::chrono::duration_cast<std::chrono::seconds>(
                       envelope->second.published_at.time_since_epoch())
                       .count();
  } else if (r->integer == 0) {
    written_version_ = 0;  // Redis lost or replaced it: write it again (compare-and-set)
  } else {
    leader_ = false;
  }
}

void RedisPublisher::run() {
  std::unique_ptr<RedisConnection> c = std::move(initial_);
  if (!c) c = std::make_unique<RedisConnection>();
  Backoff backoff;
  auto next_renew = std::chrono::steady_clock::now();
  bool was_connected = c->is_open();
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
    }
    if (!c->is_open()) {
      if (was_connected) {
        log_.always(LogLevel::kWarning, "publisher lost Redis: retrying; serving locally",
                    fields({{"redis", endpoint_.display()}, {"error", c->last_error()}}));
        was_connected = false;
        connected_ = false;
      }
      std::string error;
      if (!c->open(endpoint_, error)) {
        {
          std::lock_guard lock(error_mutex_);
          last_error_ = error;
        }
        if (!pause(mutex_, cv_, stopping_, backoff.next())) break;
        continue;
      }
      backoff.reset();
      reconnects_ += 1;
      connected_ = true;
      was_connected = true;
      // Redis may have restarted empty: write the current snapshot again (the script makes
      // this a no-op when it is there already).
      written_version_ = 0;
      next_renew = std::chrono::steady_clock::now();
      log_.always(LogLevel::kInfo, "publisher reconnected to Redis",
                  fields({{"redis", endpoint_.display()}}));
    }
    if (std::chrono::steady_clock::now() >= next_renew) {
      if (!renew_lease(*c)) continue;
      next_renew = std::chrono::steady_clock::now() + kLeaseRenew;
    }
    {
      std::lock_guard lock(mutex_);
      dirty_ = false;
    }
    const auto snap = registry_->current();
    if (leader_ && snap && snap->version != written_version_) {
      write(*c, *snap);
      if (!c->is_open()) continue;
    } else if (leader_ && snap && std::chrono::steady_clock::now() >= next_refresh_) {
      // An idle deployment: the envelope is signed anew so that replicas see it is current.
      refresh(*c, *snap);
      if (!c->is_open()) continue;
      if (written_version_ == 0) continue;
    }
    std::unique_lock lock(mutex_);
    const auto wake =
        leader_ && written_version_ != 0 ? std::min(next_renew, next_refresh_) : next_renew;
    cv_.wait_until(lock, wake, [this] { return stopping_ || dirty_; });
  }
  if (c->is_open() && leader_) {
    c->eval(kReleaseScript, {prefix_ + ":publisher"}, {token_});
  }
  connected_ = false;
}

Json RedisPublisher::status() const {
  Json j = Json::object();
  j.set("role", "publisher");
  j.set("redis", endpoint_.display());
  j.set("prefix", prefix_);
  j.set("connected", connected_.load());
  j.set("lease", leader_.load());
  j.set("writtenVersion", written_version_.load());
  j.set("storedVersion", stored_version_.load());
  j.set("stale", stale_.load());
  j.set("envelopeRefreshSeconds", static_cast<std::int64_t>(envelope_refresh_.count()));
  if (const auto at = envelope_at_.load(); at != 0) {
    j.set("envelopePublishedAt",
          format_rfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(at))));
  }
  std::lock_guard lock(error_mutex_);
  if (!last_error_.empty()) j.set("lastError", last_error_);
  return j;
}

bool RedisPublisher::degraded() const { return !connected_ || !leader_ || stale_; }

std::vector<prometheus::MetricFamily> RedisPublisher::metric_families() const {
  return {
      series("cortex_connectors_redis_connected", "1 while the Redis connection is up.",
             connected_ ? 1 : 0),
      series("cortex_connectors_redis_lease", "1 while this publisher holds the Redis lease.",
             leader_ ? 1 : 0),
      series("cortex_connectors_redis_writes_total", "Snapshots written to Redis.", writes_, true),
      series("cortex_connectors_redis_writes_refused_total",
             "Writes refused: lease held by another publisher or a newer version stored.", refused_,
             true),
      series("cortex_connectors_redis_reconnects_total", "Reconnections to Redis.", reconnects_,
             true)};
}

}  // namespace cortex_connectors::server
