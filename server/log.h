// Structured logging of the server: one JSON object per line on standard error, with brand,
// component ("connectors"), level, msg, ts (RFC 3339, milliseconds, UTC), request_id, trace_id and
// span_id (null when not known) and any extra fields. Secrets are never passed in.
#pragma once

#include <string>
#include <string_view>

#include "cortex_connectors/json.h"

namespace cortex_connectors::server {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// Sets the minimum level from LOG_LEVEL text (debug, info, warning/warn, error; any case).
// Returns false (and keeps the level) when the text is not a level.
bool set_log_level(std::string_view level);

// Whether `level` is enabled: lets a caller skip building fields nobody will read.
bool log_enabled(LogLevel level);

// Writes one line when `level` is enabled. `fields` (an object or null) adds members.
void log(LogLevel level, std::string_view msg, const Json& fields = {});

// Writes one line whatever LOG_LEVEL says: for the few lines an operator always needs (the
// bound port, shutdown).
void log_always(LogLevel level, std::string_view msg, const Json& fields = {});

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
