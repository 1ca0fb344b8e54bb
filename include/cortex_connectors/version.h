// Version of libcortexconnectors. CMake reads the three macros below; keep them the only copy.
#pragma once

#define CORTEX_CONNECTORS_VERSION_MAJOR 0
#define CORTEX_CONNECTORS_VERSION_MINOR 2
#define CORTEX_CONNECTORS_VERSION_PATCH 0

#define CORTEX_CONNECTORS_VERSION                                                    \
  (CORTEX_CONNECTORS_VERSION_MAJOR * 10000 + CORTEX_CONNECTORS_VERSION_MINOR * 100 + \
   CORTEX_CONNECTORS_VERSION_PATCH)

#include <string_view>

#include "cortex_connectors/export.h"

namespace cortex_connectors {

// Returns the version of the linked library as "MAJOR.MINOR.PATCH".
CORTEX_CONNECTORS_API std::string_view version_string() noexcept;

}  // namespace cortex_connectors
