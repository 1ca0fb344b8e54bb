// The fast path of parse_manifest() and of the rebuild: every rule checked in one walk over
// simdjson's DOM, into a ManifestView (internal/manifest_view.h) without a Json tree or a
// Manifest.
//
// It only says yes or "not sure": at the first broken rule or limit it stops, and the caller
// takes the slow path (parse_json() then manifest_from_json()), which lists every finding with
// its pointer. Both are the one walker of src/validate.cpp over the rules of
// internal/manifest_rules.h, with another source and policy; the DOM source adds the checks of
// parse_json() (tests/test_manifest.cpp and fuzz/fuzz_manifest.cpp compare the two).
#pragma once

#include <cstddef>
#include <string_view>

#include "cortex_connectors/manifest.h"
#include "cortex_connectors/result.h"
#include "internal/json_reader.h"
#include "internal/manifest_view.h"

namespace cortex_connectors::internal {

// Fills `out` from `root` and returns true when `root` is a valid manifest within `limits` (the
// JsonParseOptions parse_manifest() derives from ManifestLimits); returns false otherwise, with
// `out` partly filled. `out` views `root`'s DOM.
bool manifest_view_from_dom(simdjson::dom::element root, const DomLimits& limits,
                            ManifestView& out);

// The JsonParseOptions of manifest text under `limits`.
JsonParseOptions manifest_parse_options(const ManifestLimits& limits);

// The Error parse_manifest() reports for `text`, which the fast path did not accept: the slow
// path's findings. Never OK for a valid manifest.
Error manifest_error(std::string_view text, const JsonParseOptions& options);

// Parses and validates `text` and, when it is a valid manifest, calls `visit(view)` while the DOM
// the view reads is alive. Returns what parse_manifest() would report otherwise (then `visit` is
// not called).
template <class F>
Status visit_manifest(std::string_view text, const ManifestLimits& limits, F&& visit) {
  const JsonParseOptions options = manifest_parse_options(limits);
  const DomLimits dom_limits(options);
  bool valid = false;
  auto read = [&](simdjson::dom::element root) {
    ManifestView view;
    valid = manifest_view_from_dom(root, dom_limits, view);
    if (valid) visit(static_cast<const ManifestView&>(view));
    return true;  // the text is JSON: an invalid manifest only means "ask the slow path"
  };
  Status parsed = visit_dom(text, options, read);
  if (!parsed) return parsed;  // what parse_json() reports for this text
  if (valid) return {};
  return manifest_error(text, options);
}

}  // namespace cortex_connectors::internal
