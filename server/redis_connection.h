// The Redis plumbing both scaling roles share (redis_publisher.cpp, redis_replica.cpp): one
// hiredis connection per thread, and small helpers for replies, versions, log fields, pauses
// and metrics text. Internal to the two roles.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <hiredis/hiredis.h>
#include <prometheus/metric_family.h>

#include "config.h"
#include "cortex_connectors/json.h"

namespace cortex_connectors::server {

namespace redis_detail {

constexpr auto kConnectTimeout = std::chrono::milliseconds(1000);
// Commands answer within this or the connection counts as lost; above kBlock.
constexpr auto kCommandTimeout = std::chrono::milliseconds(3000);

timeval to_timeval(std::chrono::milliseconds ms);

}  // namespace redis_detail

// One hiredis connection, used by one thread.
class RedisConnection {
 public:
  using Reply = std::unique_ptr<redisReply, void (*)(void*)>;

  ~RedisConnection() { close(); }

  // Connects, authenticates and selects the database; false with `error` set on failure.
  bool open(const RedisEndpoint& e, std::string& error) {
    close();
    ctx_ = redisConnectWithTimeout(e.host.c_str(), e.port,
                                   redis_detail::to_timeval(redis_detail::kConnectTimeout));
    if (ctx_ == nullptr || ctx_->err != 0) {
      error = ctx_ != nullptr ? ctx_->errstr : "cannot allocate a Redis context";
      close();
      return false;
    }
    redisSetTimeout(ctx_, redis_detail::to_timeval(redis_detail::kCommandTimeout));
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

namespace redis_detail {

// A reply's text (string, status, error or integer), "" for other types or null.
std::string reply_text(const redisReply* r);

// A decimal version (at most 19 digits), nullopt otherwise.
std::optional<std::uint64_t> to_version(std::string_view s);

Json fields(std::initializer_list<Json::Member> members);

// Waits `delay` or until `stopping` (under `mutex`) turns true; returns false when stopping.
bool pause(std::mutex& mutex, std::condition_variable& cv, const bool& stopping,
           std::chrono::milliseconds delay);

// A family of one unlabelled series: a gauge, or a counter when `counter`.
prometheus::MetricFamily series(std::string name, std::string help, std::uint64_t value,
                                bool counter = false);

}  // namespace redis_detail

}  // namespace cortex_connectors::server
