// Compatibility umbrella for the HTTP decisions of the service, split by concept:
// negotiation.h (encodings, ETags, bearer auth, request ids, error bodies), trace_context.h
// (W3C traceparent), health.h (/health and the 503 body) and static_files.h (the dashboard's
// file rules). New code includes the header it needs.
#pragma once

#include "cortex_connectors/health.h"
#include "cortex_connectors/negotiation.h"
#include "cortex_connectors/static_files.h"
#include "cortex_connectors/trace_context.h"
