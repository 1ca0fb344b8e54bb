// One export pattern for every library of the project (the core, the client, the SQLite history):
// each is built with hidden visibility (CXX_VISIBILITY_PRESET hidden), and the symbols of its
// public headers are marked default-visible with its macro below, so a shared library exports
// exactly its API. On ELF the mark is the same when building and when consuming, and harmless in
// a static archive, so no build-side definition is needed.
#pragma once

#define CORTEX_CONNECTORS_EXPORT __attribute__((visibility("default")))

// libcortexconnectors (include/cortex_connectors/*.h).
#define CORTEX_CONNECTORS_API CORTEX_CONNECTORS_EXPORT
// libcortexconnectors_client (service_map_client.h).
#define CORTEX_CONNECTORS_CLIENT_API CORTEX_CONNECTORS_EXPORT
// libcortexconnectors_history_sqlite (sqlite_history.h).
#define CORTEX_CONNECTORS_HISTORY_SQLITE_API CORTEX_CONNECTORS_EXPORT
