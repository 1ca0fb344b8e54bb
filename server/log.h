// Structured logging of the server: one JSON object per line on standard error, with brand,
// component, level, msg, ts and any extra fields. Secrets are never passed in.
#pragma once

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

}  // namespace cortex_connectors::server
