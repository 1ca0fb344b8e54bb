#include "redis_connection.h"

#include <algorithm>
#include <random>

#include <fmt/format.h>

#include "internal/metrics_text.h"
#include "redis_scaling.h"

namespace cortex_connectors::server {

namespace redis_detail {

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

bool pause(std::mutex& mutex, std::condition_variable& cv, const bool& stopping,
           std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex);
  return !cv.wait_for(lock, delay, [&] { return stopping; });
}

std::string reply_text(const redisReply* r) {
  if (r == nullptr) return {};
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
      r->type == REDIS_REPLY_ERROR) {
    return std::string(r->str, r->len);
  }
  if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
  return {};
}

prometheus::MetricFamily series(std::string name, std::string help, std::uint64_t value,
                                bool counter) {
  return internal::metric_family(
      std::move(name), std::move(help),
      counter ? prometheus::MetricType::Counter : prometheus::MetricType::Gauge,
      {{{}, static_cast<double>(value)}});
}

}  // namespace redis_detail

std::chrono::milliseconds Backoff::next() {
  thread_local std::minstd_rand rng(std::random_device{}());
  const int base = std::min(2000, 100 << std::min(attempt_, 5));
  ++attempt_;
  std::uniform_int_distribution<int> jitter(base / 2, base);
  return std::chrono::milliseconds(jitter(rng));
}

}  // namespace cortex_connectors::server
