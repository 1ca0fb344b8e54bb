// Structured logging of the server: one JSON object per line on standard error, with brand,
// component ("connectors"), level, msg, ts (RFC 3339, milliseconds, UTC), request_id, trace_id and
// span_id (null when not known) and any extra fields. Secrets are never passed in.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <string_view>

#include "cortex_connectors/json.h"

namespace cortex_connectors::server {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// LOG_LEVEL text as a level: debug, info, warning (warn), error (critical); any case. nullopt
// when the text is none of them.
std::optional<LogLevel> parse_log_level(std::string_view text);

// The server's log: lines at its level and above, to standard error. ServerApp makes one and
// hands it to every part that logs (the routes through ServerContext), so no part reads a
// process-wide level and a test sets the level of the log it makes. Thread-safe; the level may
// change while other threads log.
class Log {
 public:
  explicit Log(LogLevel level = LogLevel::kInfo) noexcept : level_(static_cast<int>(level)) {}

  void set_level(LogLevel level) noexcept { level_.store(static_cast<int>(level)); }

  // Whether `level` is enabled: lets a caller skip building fields nobody will read.
  bool enabled(LogLevel level) const noexcept {
    return static_cast<int>(level) >= level_.load(std::memory_order_relaxed);
  }

  // Writes one line when `level` is enabled. `fields` (an object or null) adds members.
  void operator()(LogLevel level, std::string_view msg, const Json& fields = {}) const {
    if (enabled(level)) always(level, msg, fields);
  }

  // Writes one line whatever the level: for the few lines an operator always needs (the bound
  // port, shutdown).
  void always(LogLevel level, std::string_view msg, const Json& fields = {}) const;

 private:
  std::atomic<int> level_;
};

// The ids of the request or trace a thread works for: every line it logs carries them, unless
// the line's fields name them. Empty strings log as null.
struct LogIds {
  std::string request_id;
  std::string trace_id;
  std::string span_id;
};

// Sets this thread's ids; returns the previous ones.
LogIds set_log_ids(LogIds ids);

// Sets this thread's ids in place: the strings keep their capacity, so a thread that sets and
// clears them for every request allocates nothing once they have grown.
void assign_log_ids(std::string_view request_id, std::string_view trace_id,
                    std::string_view span_id);

// Sets this thread's ids for the lifetime of the object, then restores the previous ones.
class ScopedLogIds {
 public:
  explicit ScopedLogIds(LogIds ids) : previous_(set_log_ids(std::move(ids))) {}
  ~ScopedLogIds() { set_log_ids(std::move(previous_)); }
  ScopedLogIds(const ScopedLogIds&) = delete;
  ScopedLogIds& operator=(const ScopedLogIds&) = delete;

 private:
  LogIds previous_;
};

}  // namespace cortex_connectors::server
