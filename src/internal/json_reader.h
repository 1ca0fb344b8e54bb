// The only includer of <simdjson.h> besides utf8.cpp: maps simdjson errors to ours and keeps a
// per-thread parser so that small documents do not pay for parser allocation.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "cortex_connectors/result.h"

namespace cortex_connectors::internal {

// A readable description of a simdjson error, for Error::message.
const char* describe_simdjson_error(simdjson::error_code code) noexcept;

// Builds a kParse Error "[brAInwav] invalid JSON at byte N: what".
Error parse_error(std::string what, std::size_t offset);

}  // namespace cortex_connectors::internal
