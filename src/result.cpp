#include "cortex_connectors/result.h"

namespace cortex_connectors {

const char* to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kParse:
      return "parse";
    case ErrorCode::kInvalid:
      return "invalid";
    case ErrorCode::kSignature:
      return "signature";
    case ErrorCode::kNotFound:
      return "not-found";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kUsage:
      return "usage";
    case ErrorCode::kExpired:
      return "expired";
  }
  return "unknown";
}

std::string describe(const Error& error) {
  std::string out = error.message;
  for (const Issue& issue : error.issues) {
    out.push_back('\n');
    out.append(issue.pointer.empty() ? "(root)" : issue.pointer);  // "" is the whole document
    out.append(": ");
    out.append(issue.message);
  }
  return out;
}

}  // namespace cortex_connectors
