#include "log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <utility>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/negotiation.h"

namespace cortex_connectors::server {

namespace {

thread_local LogIds t_ids;

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const auto t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z", tm, ms.count());
}

}  // namespace

LogIds set_log_ids(LogIds ids) {
  std::swap(ids, t_ids);
  return ids;
}

void assign_log_ids(std::string_view request_id, std::string_view trace_id,
                    std::string_view span_id) {
  t_ids.request_id.assign(request_id);
  t_ids.trace_id.assign(trace_id);
  t_ids.span_id.assign(span_id);
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
  const std::string lower = ascii_lower(text);
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warning" || lower == "warn") return LogLevel::kWarning;
  if (lower == "error" || lower == "critical") return LogLevel::kError;
  return std::nullopt;
}

void Log::always(LogLevel level, std::string_view msg, const Json& fields) const {
  Json line = Json::object();
  line.set("ts", timestamp());
  line.set("level", level_name(level));
  line.set("brand", "brAInwav");
  line.set("component", "connectors");
  line.set("msg", msg);
  if (fields.is_object()) {
    for (const auto& [k, v] : fields.as_object()) line.set(k, v);
  }
  auto known = [](const std::string& id) { return id.empty() ? Json() : Json(id); };
  if (!line.find("request_id")) line.set("request_id", known(t_ids.request_id));
  if (!line.find("trace_id")) line.set("trace_id", known(t_ids.trace_id));
  if (!line.find("span_id")) line.set("span_id", known(t_ids.span_id));
  std::string out;
  if (!append_canonical_json(out, line)) return;
  out.push_back('\n');
  static std::mutex mutex;  // whole lines, never interleaved
  std::lock_guard lock(mutex);
  std::fwrite(out.data(), 1, out.size(), stderr);
  std::fflush(stderr);
}

}  // namespace cortex_connectors::server
