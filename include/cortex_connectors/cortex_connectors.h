// Umbrella header: includes the whole public API of libcortexconnectors.
#pragma once

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/history.h"
#include "cortex_connectors/json.h"
#include "cortex_connectors/keys.h"
#include "cortex_connectors/manifest.h"
#include "cortex_connectors/metrics.h"
#include "cortex_connectors/registry.h"
#include "cortex_connectors/result.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/snapshot.h"
#include "cortex_connectors/sse.h"
#include "cortex_connectors/validate.h"
#include "cortex_connectors/verify.h"
#include "cortex_connectors/version.h"
#include "cortex_connectors/watcher.h"
