// Result<T> and Status: how every fallible function of the library reports failure.
//
// A bad manifest, a bad signature or a missing file is ordinary input for a service, so these are
// values, not exceptions. std::bad_alloc and broken preconditions still propagate as exceptions.
// The member names follow std::expected so a later switch to C++23 is mechanical.
// Thread-safety: plain values; distinct objects may be used from distinct threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "cortex_connectors/export.h"

namespace cortex_connectors {

// What kind of failure an Error is. Stable numbers: they may be logged and compared.
enum class ErrorCode : std::uint8_t {
  kParse = 1,  // the input is not well-formed JSON (or exceeds a parser limit)
  kInvalid,    // well-formed, but breaks a rule (manifest schema, signature body shape, ...)
  kSignature,  // a signature does not verify
  kNotFound,   // a file or a version does not exist
  kIo,         // reading or writing failed
  kUsage,      // the caller passed an argument the function cannot accept
  kExpired,    // a signed document is past its expiry (ttlSeconds)
};

// Returns a short lowercase name for `code` ("parse", "invalid", ...).
CORTEX_CONNECTORS_API const char* to_string(ErrorCode code) noexcept;

// One finding: where (a JSON pointer, RFC 6901, "" for the whole document) and what.
// Example: {"/connectors/2/scopes/1", "duplicate scope \"search:query\""}.
struct Issue {
  std::string pointer;
  std::string message;
  friend bool operator==(const Issue&, const Issue&) = default;
};

// A failure: its kind, one summary line, and for validation every finding in document order.
// `offset` is the byte offset into the input for parse errors, when known.
// Messages never contain secrets (keys, signatures, environment values).
struct Error {
  ErrorCode code = ErrorCode::kInvalid;
  std::string message;
  std::vector<Issue> issues;
  std::optional<std::size_t> offset;
};

// Returns "message" followed by one "pointer: message" line per issue, for logs and the CLI.
CORTEX_CONNECTORS_API std::string describe(const Error& error);

// A value of type T, or an Error.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  // REQUIRES: has_value().
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // REQUIRES: !has_value().
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

// Success with no value, or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}  // NOLINT: implicit

  bool ok() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  // REQUIRES: !ok().
  const Error& error() const& { return *error_; }

 private:
  std::optional<Error> error_;
};

}  // namespace cortex_connectors
