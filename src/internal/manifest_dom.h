// The fast path of parse_manifest(): every rule checked and the Manifest filled in one walk over
// simdjson's DOM, without a Json tree of the document (only the free-form parts become Json).
//
// It only says yes or "not sure": at the first broken rule or limit it stops, and the caller
// takes the slow path (parse_json() then manifest_from_json()), which lists every finding with
// its pointer. So the errors are those of the slow path by construction, and this walk must
// accept exactly the documents the slow path accepts, giving the same Manifest
// (tests/test_manifest.cpp and fuzz/fuzz_manifest.cpp compare the two).
#pragma once

#include <cstddef>

#include "cortex_connectors/manifest.h"
#include "internal/json_reader.h"

namespace cortex_connectors::internal {

// Fills `out` from `root` and returns true when `root` is a valid manifest within `limits` (the
// JsonParseOptions parse_manifest() derives from ManifestLimits); returns false otherwise, with
// `out` partly filled. With `parallel_from` connectors or more (0: never), a second thread reads
// the second half of them (ManifestLimits::parallel_connectors); the Manifest is the same.
bool manifest_from_dom(simdjson::dom::element root, const DomLimits& limits, Manifest& out,
                       std::size_t parallel_from = 0);

}  // namespace cortex_connectors::internal
