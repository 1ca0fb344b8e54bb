// The two walks of the manifest rules (internal/manifest_rules.h): over a Json listing every
// finding, and (internal/manifest_dom.h) over simdjson's DOM stopping at the first.
#pragma once

#include <cstddef>
#include <vector>

#include "cortex_connectors/json.h"
#include "cortex_connectors/result.h"
#include "internal/manifest_view.h"

namespace cortex_connectors::internal {

// Walks `document`, storing into `out` (which views `document`; complete only when nothing was
// found) and the first kMaxIssues findings, in document order, into `issues`. Returns the number
// of findings.
std::size_t manifest_view_from_json(const Json& document, ManifestView& out,
                                    std::vector<Issue>& issues);

}  // namespace cortex_connectors::internal
