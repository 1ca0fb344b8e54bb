#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include <fcntl.h>
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

// XREAD BLOCK: how long a replica waits for an announcement before it checks for stop().
constexpr int kBlockMs = 500;

}  // namespace

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

RedisReplica::RedisReplica(const ServerConfig& config, Registry& registry, PublicKeySet pinned,
                           const Log& log)
    : endpoint_(*config.redis),
      prefix_(config.redis_prefix),
      registry_(registry),
      log_(log),
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
      log_.always(
          LogLevel::kInfo, "replica record read: older versions are refused",
          fields({{"record", record_path_.string()}, {"version", recorded_version_.load()}}));
      return;
    }
    std::lock_guard lock(error_mutex_);
    record_error_ = fmt::format("{} is not a replica record of this prefix", record_path_.string());
  }
  std::lock_guard lock(error_mutex_);
  log_.always(LogLevel::kError,
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
    log_.always(LogLevel::kError,
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
  log_.always(LogLevel::kError,
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
      log_(LogLevel::kInfo, "snapshot from Redis verified and published",
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
        log_.always(LogLevel::kWarning,
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
    log_.always(LogLevel::kInfo, "replica connected to Redis",
                fields({{"redis", endpoint_.display()}, {"prefix", prefix_}}));
    const bool stopped = follow(c);
    connected_ = false;
    if (stopped) break;
    {
      std::lock_guard lock(error_mutex_);
      if (last_error_.empty()) last_error_ = c.last_error();
    }
    log_.always(LogLevel::kWarning, "replica lost Redis: serving the last verified snapshot",
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

std::vector<prometheus::MetricFamily> RedisReplica::metric_families() const {
  return {
      series("cortex_connectors_redis_connected", "1 while the Redis connection is up.",
             connected_ ? 1 : 0),
      series("cortex_connectors_redis_snapshots_accepted_total",
             "Snapshots read from Redis, verified and published.", accepted_, true),
      series("cortex_connectors_redis_snapshots_rejected_total",
             "Snapshots read from Redis and refused: envelope or body signature, digest, "
             "rollback or age.",
             rejected_, true),
      series("cortex_connectors_redis_envelope_age_seconds",
             "Seconds since the publisher signed the envelope of the served snapshot (0: none).",
             static_cast<std::uint64_t>(std::max<std::int64_t>(0, envelope_age_seconds()))),
      series("cortex_connectors_redis_reconnects_total", "Reconnections to Redis.", reconnects_,
             true)};
}

}  // namespace cortex_connectors::server
