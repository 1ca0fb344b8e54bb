// Validation of a parsed manifest document against the rules of the manifest format, reporting
// every finding with its JSON pointer. parse_manifest() calls this; it is public for tools that
// want the findings of a document without building a Manifest.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cortex_connectors/export.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/result.h"

namespace cortex_connectors {

// Returns every rule `document` breaks, in document order, at most kMaxIssues (see manifest.h);
// empty when it is a valid manifest. Messages are plain text without the [brAInwav] prefix,
// e.g. {"/connectors/2/scopes/1", "duplicate scope \"search:query\""}.
CORTEX_CONNECTORS_API std::vector<Issue> validate_manifest(const Json& document);

// Returns the JSON Schema (draft 2020-12) of the manifest, pretty-printed with a final newline,
// written from the same rules validate_manifest() applies (`cortex-connectors schema` prints it;
// it is installed as share/cortex_connectors/connectors-manifest.schema.json). A document valid
// under it is a valid manifest except for what its "$comment" lists: connector ids unique across
// connectors, and the limits of the JSON reader (ManifestLimits, duplicate keys, integers beyond
// +-(2^53-1) anywhere).
CORTEX_CONNECTORS_API std::string manifest_json_schema();

// Small predicates of the format, exposed for tests and tools.
CORTEX_CONNECTORS_API bool is_ulid(std::string_view text) noexcept;
CORTEX_CONNECTORS_API bool is_connector_id(std::string_view text) noexcept;
CORTEX_CONNECTORS_API bool is_absolute_uri(std::string_view text) noexcept;
CORTEX_CONNECTORS_API bool is_rfc3339_date_time(std::string_view text) noexcept;

// Appends `token` to a JSON pointer, escaping '~' and '/' (RFC 6901).
CORTEX_CONNECTORS_API void append_pointer_token(std::string& pointer, std::string_view token);

}  // namespace cortex_connectors
