// The connectors manifest: typed value model, parsing with validation, and loading from disk.
//
// Start here. A manifest is the operator's JSON file listing connectors (endpoint, auth, scopes,
// quotas, TTLs). parse_manifest() turns its text into a Manifest or into an Error whose issues
// list *every* rule broken (capped at kMaxIssues), each with a JSON pointer, in document order.
// load_manifest() adds the file handling: candidate paths, size limits, non-regular files.
//
// Free-form parts (metadata, headers, timeouts, remoteTools) stay Json values so that they reach
// the service map exactly as written. `${VAR}` and `${VAR:default}` in header values are templates
// for the consumer: they are never expanded.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cortex_connectors/export.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/result.h"

namespace cortex_connectors {

// connectors[].auth.type
enum class AuthType : std::uint8_t { kApiKey, kBearer, kNone };
// Returns "apiKey", "bearer" or "none".
CORTEX_CONNECTORS_API std::string_view to_string(AuthType type) noexcept;

// connectors[].status
enum class ConnectorStatus : std::uint8_t { kEnabled, kDisabled, kPreview };
// Returns "enabled", "disabled" or "preview".
CORTEX_CONNECTORS_API std::string_view to_string(ConnectorStatus status) noexcept;

struct Auth {
  AuthType type = AuthType::kNone;
  std::optional<std::string> header_name;  // headerName
  std::optional<std::string> query_param;  // queryParam

  friend bool operator==(const Auth&, const Auth&) = default;
};

// One entry of connectors[].authentication.headers.
struct HeaderTemplate {
  std::string name;
  std::string value;  // may hold ${VAR} templates; never expanded

  friend bool operator==(const HeaderTemplate&, const HeaderTemplate&) = default;
};

// connectors[].quotas: only the limits that are present.
struct Quotas {
  std::optional<std::int64_t> per_minute;
  std::optional<std::int64_t> per_hour;
  std::optional<std::int64_t> per_day;
  std::optional<std::int64_t> concurrent;

  friend bool operator==(const Quotas&, const Quotas&) = default;
};

struct Connector {
  std::string id;  // ^[a-z0-9][a-z0-9-]{1,62}$, unique in the manifest
  std::string name;
  std::string version;
  std::string endpoint;  // absolute URI
  Auth auth;
  std::vector<std::string> scopes;  // non-empty, unique
  std::int64_t ttl_seconds = 1;     // >= 1
  std::optional<std::string> display_name;
  std::optional<std::string> description;
  // authentication.headers; nullopt when there is no "authentication" member.
  std::optional<std::vector<HeaderTemplate>> authentication_headers;
  Json headers;  // object of string -> string, or null when absent
  std::optional<Quotas> quotas;
  Json timeouts;  // object of string -> integer >= 0, or null when absent
  std::optional<ConnectorStatus> status;
  std::optional<bool> enabled;
  Json metadata;  // object, or null when absent
  std::optional<std::vector<std::string>> tags;
  Json remote_tools;  // array of {name, description?, tags?, scopes?}, or null when absent

  // `enabled` if present, else status != disabled (true when there is no status either).
  bool is_enabled() const noexcept {
    if (enabled) return *enabled;
    return status != ConnectorStatus::kDisabled;
  }

  friend bool operator==(const Connector&, const Connector&) = default;
};

struct Manifest {
  std::string id;                     // ULID
  std::string manifest_version;       // manifestVersion
  std::vector<Connector> connectors;  // non-empty, in file order
  std::optional<std::string> schema;  // $schema
  std::optional<std::string> brand;   // always "brAInwav" when present
  std::optional<std::string> schema_version;
  std::optional<std::string> generated_at;  // RFC 3339
  std::optional<std::int64_t> ttl_seconds;  // >= 1
  Json metadata;                            // object, or null when absent

  friend bool operator==(const Manifest&, const Manifest&) = default;
};

// Limits applied to manifest text. The defaults accept the 100 000-connector manifests of the
// benchmarks and refuse what only an attack or an accident produces.
struct ManifestLimits {
  std::size_t max_bytes = std::size_t{128} << 20;        // whole file
  std::size_t max_string_bytes = std::size_t{64} << 10;  // any one string or key
  std::size_t max_depth = 32;                            // nesting, metadata included
  // Not a limit: parse_manifest() copies the connectors of a manifest with at least this many
  // into the Manifest on two threads, half each (after one checking walk over the parsed text);
  // 0 (the default): always on the calling thread. Same result either way. Off by default
  // (bench/README.md has the measurements).
  std::size_t parallel_connectors = 0;
};

// The most issues an Error lists; Error::message still counts them all.
inline constexpr std::size_t kMaxIssues = 100;

// Parses and validates manifest text. Errors: kParse (not JSON, or beyond `limits`; the message
// has the byte offset) or kInvalid (every broken rule in Error::issues, document order).
CORTEX_CONNECTORS_API Result<Manifest> parse_manifest(std::string_view text,
                                                      const ManifestLimits& limits = {});

// Validates an already parsed document and converts it (moving its strings) into a Manifest.
CORTEX_CONNECTORS_API Result<Manifest> manifest_from_json(Json document);

// The default candidate when no path is given, as in the original service.
inline constexpr std::string_view kDefaultManifestPath = "config/connectors.manifest.json";

// The bytes of a manifest file and where they came from.
struct ManifestFile {
  std::string path;
  std::string content;
};

// Reads the first readable candidate: `explicit_path` alone when given, else
// kDefaultManifestPath relative to the working directory. Refuses directories, FIFOs and other
// non-regular files without blocking, empty files and files over `limits.max_bytes` (checked
// before reading). On failure the Error (kNotFound or kIo) lists one Issue per attempt, with the
// path in Issue::pointer and the reason in Issue::message.
CORTEX_CONNECTORS_API Result<ManifestFile> read_manifest_file(
    std::optional<std::string_view> explicit_path, const ManifestLimits& limits = {});

// A loaded, validated manifest and the file it came from.
struct LoadedManifest {
  ManifestFile file;
  Manifest manifest;
};

// read_manifest_file() then parse_manifest(). A parse or validation error names the path.
CORTEX_CONNECTORS_API Result<LoadedManifest> load_manifest(
    std::optional<std::string_view> explicit_path, const ManifestLimits& limits = {});

}  // namespace cortex_connectors
