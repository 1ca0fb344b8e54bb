// CORTEX_CONNECTORS_API marks the symbols exported from the library; everything else is hidden.
#pragma once

#if defined(CORTEX_CONNECTORS_SHARED)
#if defined(CORTEX_CONNECTORS_BUILDING)
#define CORTEX_CONNECTORS_API __attribute__((visibility("default")))
#else
#define CORTEX_CONNECTORS_API
#endif
#else
#define CORTEX_CONNECTORS_API
#endif
