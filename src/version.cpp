#include "cortex_connectors/version.h"

#define CORTEX_CONNECTORS_STR2(x) #x
#define CORTEX_CONNECTORS_STR(x) CORTEX_CONNECTORS_STR2(x)

namespace cortex_connectors {

std::string_view version_string() noexcept {
  return CORTEX_CONNECTORS_STR(CORTEX_CONNECTORS_VERSION_MAJOR) "." CORTEX_CONNECTORS_STR(
      CORTEX_CONNECTORS_VERSION_MINOR) "." CORTEX_CONNECTORS_STR(CORTEX_CONNECTORS_VERSION_PATCH);
}

}  // namespace cortex_connectors
