#include "redis_scaling.h"

#include <array>
#include <cerrno>
#include <cstring>
#include <random>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/signing.h"
#include "log.h"

namespace cortex_connectors::server {

namespace {

std::atomic<const ScalingRole*> g_role{nullptr};

constexpr auto kConnectTimeout = std::chrono::milliseconds(1000);
// Commands answer within this or the connection counts as lost; above kBlock.
constexpr auto kCommandTimeout = std::chrono::milliseconds(3000);
// XREAD BLOCK: how long a replica waits for an announcement before it checks for stop().
constexpr int kBlockMs = 500;
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

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::optional<std::uint64_t> to_version(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

Json fields(std::initializer_list<Json::Member> members) { return Json(Json::Object(members)); }

// Waits `delay` or until `stopping` (under `mutex`) turns true; returns false when stopping.
bool pause(std::mutex& mutex, std::condition_variable& cv, const bool& stopping,
           std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex);
  return !cv.wait_for(lock, delay, [&] { return stopping; });
}

}  // namespace

void set_scaling_role(const ScalingRole* role) { g_role.store(role); }
const ScalingRole* scaling_role() { return g_role.load(); }

std::chrono::milliseconds Backoff::next() {
  thread_local std::minstd_rand rng(std::random_device{}());
  const int base = std::min(2000, 100 << std::min(attempt_, 5));
  ++attempt_;
  std::uniform_int_distribution<int> jitter(base / 2, base);
  return std::chrono::milliseconds(jitter(rng));
}

// One hiredis connection, used by one thread.
class RedisConnection {
 public:
  using Reply = std::unique_ptr<redisReply, void (*)(void*)>;

  ~RedisConnection() { close(); }

  // Connects, authenticates and selects the database; false with `error` set on failure.
  bool open(const RedisEndpoint& e, std::string& error) {
    close();
    ctx_ = redisConnectWithTimeout(e.host.c_str(), e.port, to_timeval(kConnectTimeout));
    if (ctx_ == nullptr || ctx_->err != 0) {
      error = ctx_ != nullptr ? ctx_->errstr : "cannot allocate a Redis context";
      close();
      return false;
    }
    redisSetTimeout(ctx_, to_timeval(kCommandTimeout));
    if (!e.password.empty()) {
      auto r = command({"AUTH", e.password});
      if (!r || r->type == REDIS_REPLY_ERROR) {
        error = "AUTH refused";  // never the password
        close();
        return false;
      }
    }
    if (e.db != 0) {
      auto r = command({"SELECT", std::to_string(e.db)});
      if (!r || r->type == REDIS_REPLY_ERROR) {
        error = r ? std::string(r->str, r->len) : last_error();
        close();
        return false;
      }
    }
    return true;
  }

  bool is_open() const { return ctx_ != nullptr; }

  void close() {
    if (ctx_ != nullptr) redisFree(ctx_);
    ctx_ = nullptr;
  }

  // Sends one command; null on a connection error (the connection is then closed).
  Reply command(const std::vector<std::string>& args) {
    if (ctx_ == nullptr) return {nullptr, freeReplyObject};
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    void* reply = redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data());
    if (reply == nullptr) {
      error_ = ctx_->errstr;
      close();
    }
    return {static_cast<redisReply*>(reply), freeReplyObject};
  }

  Reply eval(std::string_view script, const std::vector<std::string>& keys,
             const std::vector<std::string>& args) {
    std::vector<std::string> argv{"EVAL", std::string(script), std::to_string(keys.size())};
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return command(argv);
  }

  std::string last_error() const { return error_.empty() ? "connection lost" : error_; }

 private:
  redisContext* ctx_ = nullptr;
  std::string error_;
};

namespace {

std::string reply_text(const redisReply* r) {
  if (r == nullptr) return {};
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
      r->type == REDIS_REPLY_ERROR) {
    return std::string(r->str, r->len);
  }
  if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
  return {};
}

std::string gauge(std::string_view name, std::string_view help, std::uint64_t value,
                  std::string_view type = "gauge") {
  return fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help, type, value);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Publisher

RedisPublisher::RedisPublisher(const ServerConfig& config, std::vector<Ed25519Key> ed25519_keys)
    : endpoint_(*config.redis),
      prefix_(config.redis_prefix),
      token_(fmt::format("{}:{}", ::getpid(), generate_secret_hex(8))),
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
        log_always(LogLevel::kInfo, "publisher connected to Redis",
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
    log(LogLevel::kWarning, "publisher waiting for Redis",
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
      log_always(LogLevel::kInfo, "publisher holds the Redis lease: publishing",
                 fields({{"redis", endpoint_.display()}, {"prefix", prefix_}}));
    } else {
      log_always(LogLevel::kError,
                 "ANOTHER PUBLISHER holds the Redis lease: this one does not publish (only one "
                 "publisher may run per prefix; see /health)",
                 fields({{"redis", endpoint_.display()}, {"prefix", prefix_}}));
    }
  } else if (!held && written_version_ == 0 && refused_ == 0) {
    // First check and not held (leader_ was already false): say so once.
    log_always(LogLevel::kError,
               "ANOTHER PUBLISHER holds the Redis lease: this one does not publish (only one "
               "publisher may run per prefix; see /health)",
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
      log_always(LogLevel::kError, "cannot sign the snapshot envelope: not written to Redis",
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
    log(LogLevel::kError, "Redis refused the snapshot write", fields({{"error", last_error_}}));
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
      log(LogLevel::kInfo, "snapshot written to Redis",
          fields({{"version", snap.version}, {"bytes", snap.body.size()}}));
    }
  } else if (code == 0) {
    // Never overwrite a newer snapshot: another publisher (or an earlier run that this one did
    // not see at start) wrote it. Replicas keep serving that one.
    written_version_ = snap.version;  // do not retry this version
    stored_version_ = stored;
    refused_ += 1;
    if (!stale_.exchange(true)) {
      log_always(LogLevel::kError,
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
    log(LogLevel::kError, "Redis refused the envelope refresh", fields({{"error", last_error_}}));
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
        log_always(LogLevel::kWarning, "publisher lost Redis: retrying; serving locally",
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
      log_always(LogLevel::kInfo, "publisher reconnected to Redis",
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

std::string RedisPublisher::metrics_text() const {
  return gauge("cortex_connectors_redis_connected", "1 while the Redis connection is up.",
               connected_ ? 1 : 0) +
         gauge("cortex_connectors_redis_lease", "1 while this publisher holds the Redis lease.",
               leader_ ? 1 : 0) +
         gauge("cortex_connectors_redis_writes_total", "Snapshots written to Redis.", writes_,
               "counter") +
         gauge("cortex_connectors_redis_writes_refused_total",
               "Writes refused: lease held by another publisher or a newer version stored.",
               refused_, "counter") +
         gauge("cortex_connectors_redis_reconnects_total", "Reconnections to Redis.", reconnects_,
               "counter");
}

// ---------------------------------------------------------------------------------------------
// Replica

namespace {

// The record's file name for `prefix`: every byte outside [A-Za-z0-9._-] percent-encoded, so
// that each prefix has its own file.
std::string record_name(std::string_view prefix) {
  std::string name = "redis-replica.";
  for (const char ch : prefix) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
        c == '_' || c == '-') {
      name.push_back(ch);
    } else {
      name += fmt::format("%{:02X}", c);
    }
  }
  return name + ".json";
}

std::string_view refusal_name(int reason) {
  constexpr std::array<std::string_view, 7> kNames = {"envelope", "scope",  "version", "rollback",
                                                      "stale",    "digest", "body"};
  return kNames.at(static_cast<std::size_t>(reason));
}

std::int64_t epoch_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

// One read of the snapshot hash (HMGET version envelope [body contentHash]).
struct RedisReplica::Stored {
  std::string version;   // the hash's version field ("" when missing)
  std::string envelope;  // "" when missing
  std::string body;
  std::string content_hash;
  bool any = false;  // anything was stored

  static std::optional<Stored> read(RedisConnection& c, const std::string& key, bool with_body) {
    std::vector<std::string> args = {"HMGET", key, "version", "envelope"};
    if (with_body) args.insert(args.end(), {"body", "contentHash"});
    auto r = c.command(args);
    if (!r) return std::nullopt;
    Stored s;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != args.size() - 2) return s;
    for (std::size_t i = 0; i < r->elements; ++i) {
      if (r->element[i]->type == REDIS_REPLY_STRING) s.any = true;
    }
    s.version = reply_text(r->element[0]);
    s.envelope = reply_text(r->element[1]);
    if (with_body) {
      s.body = reply_text(r->element[2]);
      s.content_hash = reply_text(r->element[3]);
    }
    return s;
  }
};

RedisReplica::RedisReplica(const ServerConfig& config, Registry& registry, PublicKeySet pinned)
    : endpoint_(*config.redis),
      prefix_(config.redis_prefix),
      registry_(registry),
      pinned_(std::move(pinned)),
      hmac_key_(config.signing_key),
      max_age_(config.max_snapshot_age),
      record_path_(std::filesystem::path(config.state_dir) / record_name(config.redis_prefix)) {}

RedisReplica::~RedisReplica() { stop(); }

void RedisReplica::start() {
  load_record();
  thread_ = std::thread([this] { run(); });
}

void RedisReplica::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RedisReplica::load_record() {
  const int fd = ::open(record_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return;  // a first start
    std::lock_guard lock(error_mutex_);
    record_error_ = fmt::format("cannot read {}: {}", record_path_.string(), std::strerror(errno));
  } else {
    std::string text(4096, '\0');  // a record is ~100 bytes
    const ssize_t n = ::read(fd, text.data(), text.size());
    ::close(fd);
    text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    auto doc = parse_json(text);
    const Json* prefix = doc ? doc->find("prefix") : nullptr;
    const Json* version = doc ? doc->find("version") : nullptr;
    if (prefix != nullptr && prefix->is_string() && prefix->as_string() == prefix_ &&
        version != nullptr && version->is_number() && version->as_number() >= 0) {
      recorded_version_ = static_cast<std::uint64_t>(version->as_number());
      log_always(
          LogLevel::kInfo, "replica record read: older versions are refused",
          fields({{"record", record_path_.string()}, {"version", recorded_version_.load()}}));
      return;
    }
    std::lock_guard lock(error_mutex_);
    record_error_ = fmt::format("{} is not a replica record of this prefix", record_path_.string());
  }
  std::lock_guard lock(error_mutex_);
  log_always(LogLevel::kError,
             "replica record unusable: rollbacks across this restart are not detected (see "
             "/health); it is written again at the next accepted version",
             fields({{"error", record_error_}}));
}

void RedisReplica::write_record(std::uint64_t version) {
  // Written to a temporary file, flushed, then renamed over the record: a crash leaves the
  // old record or the new one, never a torn one.
  std::error_code ec;
  std::filesystem::create_directories(record_path_.parent_path(), ec);
  Json doc = Json::object();
  doc.set("prefix", prefix_);
  doc.set("version", version);
  auto canonical = canonical_json(doc);
  const std::string text = (canonical ? *canonical : std::string()) + "\n";
  const std::string tmp = fmt::format("{}.{}.tmp", record_path_.string(), ::getpid());
  std::string error;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = fmt::format("cannot write {}: {}", tmp, std::strerror(errno));
  } else {
    const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    const bool synced = written && ::fsync(fd) == 0;
    ::close(fd);
    if (!synced) {
      error = fmt::format("cannot write {}: {}", tmp, std::strerror(errno));
    } else if (::rename(tmp.c_str(), record_path_.c_str()) != 0) {
      error = fmt::format("cannot rename to {}: {}", record_path_.string(), std::strerror(errno));
    } else if (const int dir = ::open(record_path_.parent_path().c_str(), O_RDONLY | O_CLOEXEC);
               dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
    if (!error.empty()) ::unlink(tmp.c_str());
  }
  recorded_version_ = version;
  std::lock_guard lock(error_mutex_);
  if (error.empty()) {
    record_error_.clear();
  } else if (record_error_ != error) {
    record_error_ = error;
    log_always(LogLevel::kError,
               "replica record not written: rollbacks across a restart are not detected",
               fields({{"error", error}}));
  }
}

std::optional<SnapshotEnvelope> RedisReplica::assess(const Stored& s) {
  const std::string evidence = s.version + "\n" + s.envelope;
  const std::uint64_t hash_version = to_version(s.version).value_or(0);
  if (s.envelope.empty()) {
    refuse(Refusal::kEnvelope,
           "no envelope beside the snapshot (a publisher older than this replica, or a write "
           "that is not the publisher's)",
           hash_version, evidence);
    return std::nullopt;
  }
  auto envelope = verify_snapshot_envelope(s.envelope, as_bytes(hmac_key_), pinned_);
  if (!envelope) {
    refuse(Refusal::kEnvelope, envelope.error().message, hash_version, evidence);
    return std::nullopt;
  }
  if (envelope->scope != prefix_) {
    refuse(Refusal::kScope,
           fmt::format("the envelope is for another deployment (scope \"{}\")",
                       envelope->scope.substr(0, 128)),
           envelope->version, evidence);
    return std::nullopt;
  }
  if (hash_version != envelope->version) {
    refuse(Refusal::kVersion,
           fmt::format("the stored version {} is not the envelope's {}", s.version.substr(0, 32),
                       envelope->version),
           envelope->version, evidence);
    return std::nullopt;
  }
  const auto current = registry_.current();
  const std::uint64_t floor = std::max(recorded_version_.load(), current ? current->version : 0);
  if (envelope->version < floor) {
    refuse(Refusal::kRollback,
           fmt::format("version {} is below version {}, accepted already: a rollback",
                       envelope->version, floor),
           envelope->version, evidence);
    return std::nullopt;
  }
  if (max_age_.count() > 0 &&
      std::chrono::system_clock::now() - envelope->published_at > max_age_) {
    refuse(Refusal::kStale,
           fmt::format("the envelope was published at {}, more than {} s ago (--max-snapshot-age)",
                       format_rfc3339(envelope->published_at), max_age_.count()),
           envelope->version, evidence);
    return std::nullopt;
  }
  seen_version_ = envelope->version;
  return std::move(*envelope);
}

void RedisReplica::accept(const SnapshotEnvelope& envelope, bool published) {
  served_sha256_ = envelope.body_sha256;
  envelope_at_ = epoch_seconds(envelope.published_at);
  refusing_ = false;
  if (published) accepted_ += 1;
  if (envelope.version > recorded_version_) write_record(envelope.version);
}

void RedisReplica::refuse(Refusal reason, const std::string& message, std::uint64_t version,
                          const std::string& evidence) {
  refusing_ = true;
  const std::string_view name = refusal_name(static_cast<int>(reason));
  const std::string key = fmt::format("{}:{}", name, std::hash<std::string>{}(evidence));
  std::lock_guard lock(error_mutex_);
  if (key == rejected_key_) return;  // alarmed already
  rejected_key_ = key;
  rejected_ += 1;
  last_rejection_ = message;
  last_rejection_reason_ = std::string(name);
  const auto kept = registry_.current();
  log_always(LogLevel::kError,
             fmt::format("ALARM: snapshot in Redis REJECTED ({}); the last good snapshot keeps "
                         "being served",
                         name),
             fields({{"version", version},
                     {"reason", std::string(name)},
                     {"error", message},
                     {"serving_version", kept ? kept->version : 0}}));
}

std::int64_t RedisReplica::envelope_age_seconds() const {
  const std::int64_t at = envelope_at_.load();
  if (at == 0) return 0;
  return epoch_seconds(std::chrono::system_clock::now()) - at;
}

void RedisReplica::check_age() {
  const std::int64_t at = envelope_at_.load();
  if (!stale() || stale_alarmed_at_ == at) return;
  stale_alarmed_at_ = at;
  refuse(
      Refusal::kStale,
      fmt::format("the envelope of the served snapshot was published at {}, more than {} s "
                  "ago: the publisher has not signed it again (is it running, does it hold "
                  "the lease?)",
                  format_rfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(at))),
                  max_age_.count()),
      registry_.current() ? registry_.current()->version : 0, fmt::format("served:{}", at));
}

bool RedisReplica::load_latest(RedisConnection& c) {
  // The envelope first (small); the body only when it names a version not served yet.
  auto head = Stored::read(c, prefix_ + ":snapshot", false);
  if (!head) return false;
  if (!head->any) return true;  // nothing published yet
  if (auto seen = to_version(head->version)) seen_version_ = *seen;
  auto envelope = assess(*head);
  if (!envelope) return true;
  std::string envelope_text = std::move(head->envelope);
  auto current = registry_.current();
  if (!current || envelope->version > current->version) {
    // Envelope and body from one read: a write in between cannot pair them wrongly.
    auto full = Stored::read(c, prefix_ + ":snapshot", true);
    if (!full) return false;
    envelope = assess(*full);
    if (!envelope) return true;
    envelope_text = full->envelope;
    current = registry_.current();
    if (!current || envelope->version > current->version) {
      const std::string evidence = full->envelope + "\n" + full->body;
      if (!envelope->covers(full->body)) {
        refuse(Refusal::kDigest, "the body is not the one its envelope names (SHA-256 differs)",
               envelope->version, evidence);
        return true;
      }
      SignedSnapshot s;
      s.version = envelope->version;
      s.body = std::move(full->body);
      s.content_hash = std::move(full->content_hash);
      s.source = "redis";
      const auto t0 = std::chrono::steady_clock::now();
      auto published = registry_.publish_signed(s, pinned_.empty() ? nullptr : &pinned_);
      if (!published || !*published || (*published)->version != envelope->version) {
        refuse(Refusal::kBody,
               published ? std::string("the body was not published") : published.error().message,
               envelope->version, evidence);
        return true;
      }
      accept(*envelope, true);
      log(LogLevel::kInfo, "snapshot from Redis verified and published",
          fields({{"version", envelope->version},
                  {"bytes", s.body.size()},
                  {"ms",
                   std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                       .count()}}));
      return true;
    }
  }
  // The served version, signed again: fresh, if it names the served body.
  if (envelope->body_sha256 != served_sha256_) {
    refuse(
        Refusal::kDigest,
        fmt::format("the envelope of the served version {} names another body", envelope->version),
        envelope->version, envelope_text);
    return true;
  }
  accept(*envelope, false);
  return true;
}

bool RedisReplica::follow(RedisConnection& c) {
  // The newest announcement before the snapshot is read: nothing announced after it is missed.
  std::string last_id = "0-0";
  auto newest = c.command({"XREVRANGE", prefix_ + ":events", "+", "-", "COUNT", "1"});
  if (!newest) return false;
  if (newest->type == REDIS_REPLY_ARRAY && newest->elements == 1 &&
      newest->element[0]->type == REDIS_REPLY_ARRAY && newest->element[0]->elements >= 1) {
    last_id = reply_text(newest->element[0]->element[0]);
  }
  if (!load_latest(c)) return false;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return true;
    }
    check_age();
    auto r = c.command({"XREAD", "COUNT", "100", "BLOCK", std::to_string(kBlockMs), "STREAMS",
                        prefix_ + ":events", last_id});
    if (!r) return false;
    if (r->type == REDIS_REPLY_ERROR) {
      std::lock_guard lock(error_mutex_);
      last_error_ = reply_text(r.get());
      return false;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) continue;  // timeout: nil
    // [[stream, [[id, [field, value]], ...]]]: only the newest matters (catch up to it).
    const redisReply* stream = r->element[0];
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2) continue;
    const redisReply* entries = stream->element[1];
    if (entries->type != REDIS_REPLY_ARRAY || entries->elements == 0) continue;
    const redisReply* last = entries->element[entries->elements - 1];
    if (last->type == REDIS_REPLY_ARRAY && last->elements >= 1) {
      last_id = reply_text(last->element[0]);
    }
    if (!load_latest(c)) return false;
  }
}

void RedisReplica::run() {
  RedisConnection c;
  Backoff backoff;
  int attempt = 0;
  bool ever_connected = false;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
    }
    std::string error;
    if (!c.open(endpoint_, error)) {
      ++attempt;
      {
        std::lock_guard lock(error_mutex_);
        last_error_ = error;
      }
      const auto delay = backoff.next();
      if (attempt == 1 || attempt % 10 == 0) {
        log_always(LogLevel::kWarning,
                   registry_.has_snapshot()
                       ? "replica cannot reach Redis: serving the last verified snapshot"
                       : "replica cannot reach Redis: no snapshot yet (503)",
                   fields({{"redis", endpoint_.display()},
                           {"attempt", attempt},
                           {"error", error},
                           {"retry_ms", static_cast<std::int64_t>(delay.count())}}));
      }
      if (!pause(mutex_, cv_, stopping_, delay)) break;
      continue;
    }
    backoff.reset();
    if (ever_connected) reconnects_ += 1;
    ever_connected = true;
    attempt = 0;
    connected_ = true;
    {
      std::lock_guard lock(error_mutex_);
      last_error_.clear();
    }
    log_always(LogLevel::kInfo, "replica connected to Redis",
               fields({{"redis", endpoint_.display()}, {"prefix", prefix_}}));
    const bool stopped = follow(c);
    connected_ = false;
    if (stopped) break;
    {
      std::lock_guard lock(error_mutex_);
      if (last_error_.empty()) last_error_ = c.last_error();
    }
    log_always(LogLevel::kWarning, "replica lost Redis: serving the last verified snapshot",
               fields({{"redis", endpoint_.display()}, {"error", c.last_error()}}));
    c.close();
    if (!pause(mutex_, cv_, stopping_, backoff.next())) break;
  }
  connected_ = false;
}

Json RedisReplica::status() const {
  Json j = Json::object();
  j.set("role", "replica");
  j.set("redis", endpoint_.display());
  j.set("prefix", prefix_);
  j.set("connected", connected_.load());
  j.set("redisVersion", seen_version_.load());
  j.set("recordedVersion", recorded_version_.load());
  if (const auto at = envelope_at_.load(); at != 0) {
    j.set("envelopePublishedAt",
          format_rfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(at))));
    j.set("envelopeAgeSeconds", envelope_age_seconds());
  }
  if (max_age_.count() > 0) {
    j.set("maxSnapshotAgeSeconds", static_cast<std::int64_t>(max_age_.count()));
  }
  j.set("stale", stale());
  j.set("rejected", rejected_.load());
  j.set("record", record_path_.string());
  std::lock_guard lock(error_mutex_);
  if (!last_rejection_.empty()) {
    j.set("lastRejection", last_rejection_);
    j.set("lastRejectionReason", last_rejection_reason_);
  }
  if (!record_error_.empty()) j.set("recordError", record_error_);
  if (!last_error_.empty()) j.set("lastError", last_error_);
  return j;
}

bool RedisReplica::stale() const {
  return max_age_.count() > 0 && envelope_at_.load() != 0 &&
         envelope_age_seconds() > max_age_.count();
}

bool RedisReplica::degraded() const {
  if (!connected_ || refusing_ || stale()) return true;
  std::lock_guard lock(error_mutex_);
  return !record_error_.empty();
}

std::string RedisReplica::metrics_text() const {
  return gauge("cortex_connectors_redis_connected", "1 while the Redis connection is up.",
               connected_ ? 1 : 0) +
         gauge("cortex_connectors_redis_snapshots_accepted_total",
               "Snapshots read from Redis, verified and published.", accepted_, "counter") +
         gauge("cortex_connectors_redis_snapshots_rejected_total",
               "Snapshots read from Redis and refused: envelope or body signature, digest, "
               "rollback or age.",
               rejected_, "counter") +
         gauge("cortex_connectors_redis_envelope_age_seconds",
               "Seconds since the publisher signed the envelope of the served snapshot (0: none).",
               static_cast<std::uint64_t>(std::max<std::int64_t>(0, envelope_age_seconds()))) +
         gauge("cortex_connectors_redis_reconnects_total", "Reconnections to Redis.", reconnects_,
               "counter");
}

}  // namespace cortex_connectors::server
