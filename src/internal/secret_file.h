// Reading a small file that holds a secret or a private key, with the checks the key loader
// (keys.cpp) and the server's secret files (server/config.cpp) share: a regular file, not open
// to group or others, bounded in size. Each caller words its own messages from the failure.
#pragma once

#include <cstddef>
#include <string>
#include <variant>

#include "cortex_connectors/export.h"

namespace cortex_connectors::internal {

struct SecretFileRules {
  bool owner_only = true;  // refuse a file whose mode lets group or others in (any of 077)
  std::size_t max_bytes = 64 * 1024;
  // Refuse a larger file (kTooLarge); else stop reading past max_bytes (a key loader's parser
  // then refuses what it got).
  bool refuse_larger = true;
};

struct SecretFileFailure {
  enum class Kind { kOpen, kStat, kNotRegular, kOpenToOthers, kTooLarge, kRead };
  Kind kind;
  int error_number = 0;  // errno, for kOpen, kStat and kRead
  unsigned mode = 0;     // the file's permission bits (07777), for kOpenToOthers
};

// The bytes of the file at `path`, or why not. A FIFO opens at once (O_NONBLOCK) and is refused
// as not a regular file. The read buffer is wiped.
// Exported (though not installed) because the server links it from a shared library too.
CORTEX_CONNECTORS_API std::variant<std::string, SecretFileFailure> read_secret_file(
    const std::string& path, const SecretFileRules& rules);

}  // namespace cortex_connectors::internal
