// parse_manifest + build_service_map + sign_service_map + verify_service_map on arbitrary bytes.
//
// Beyond "never crashes": parse_manifest() succeeds exactly when validate_manifest() finds
// nothing in the same document, an invalid manifest always names at least one finding (at most
// kMaxIssues), and every valid manifest builds a payload that signs and verifies, whose
// connectors are sorted by id and counted. The direct paths agree with the Json ones: the DOM
// walk of parse_manifest() accepts exactly what parse_json() + manifest_from_json() accept, with
// the same Manifest, and sign_manifest_service_map() writes the same body as sign_service_map().
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cortex_connectors/json.h"
#include "cortex_connectors/manifest.h"
#include "cortex_connectors/service_map.h"
#include "cortex_connectors/signing.h"
#include "cortex_connectors/validate.h"
#include "cortex_connectors/verify.h"
#include "fuzz_check.h"  // last: it defines the FUZZ_CHECK() macro
#include "internal/json_reader.h"
#include "internal/manifest_dom.h"
#include "internal/service_map.h"

namespace cc = cortex_connectors;

namespace {

const std::string kKey = "fuzz-signing-key";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);  // NOLINT
  cc::ManifestLimits limits;
  limits.max_string_bytes = 4096;
  auto manifest = cc::parse_manifest(text, limits);

  const cc::JsonParseOptions options = cc::internal::manifest_parse_options(limits);
  auto json_doc = cc::parse_json(text, options);
  const bool json_valid = json_doc && cc::validate_manifest(*json_doc).empty();
  FUZZ_CHECK(static_cast<bool>(manifest) == json_valid);
  bool walked = false;
  cc::Manifest direct;
  const cc::internal::DomLimits dom_limits(options);
  auto walk = [&](simdjson::dom::element root) {
    cc::internal::ManifestView view;
    walked = cc::internal::manifest_view_from_dom(root, dom_limits, view);
    if (walked) direct = cc::internal::to_manifest(view);
    return true;
  };
  (void)cc::internal::visit_dom(text, options, walk);
  FUZZ_CHECK(walked == json_valid);
  if (json_valid) {
    auto from_json = cc::manifest_from_json(std::move(*json_doc));
    FUZZ_CHECK(from_json && *from_json == direct && *manifest == direct);
  }

  if (!manifest) {
    const cc::Error& e = manifest.error();
    auto from_text =
        cc::sign_manifest_text(text, "2025-01-01T00:00:00Z", cc::as_bytes(kKey), {}, limits);
    FUZZ_CHECK(!from_text && from_text.error().message == e.message);
    FUZZ_CHECK(e.code == cc::ErrorCode::kParse || e.code == cc::ErrorCode::kInvalid);
    if (e.code == cc::ErrorCode::kInvalid) {
      FUZZ_CHECK(!e.issues.empty() && e.issues.size() <= cc::kMaxIssues);
    }
    return 0;
  }
  auto document = cc::parse_json(text);
  FUZZ_CHECK(document && cc::validate_manifest(*document).empty());

  cc::Json payload = cc::build_service_map(*manifest, "2025-01-01T00:00:00Z");
  const auto& connectors = payload.find("connectors")->as_array();
  FUZZ_CHECK(connectors.size() == manifest->connectors.size());
  FUZZ_CHECK(payload.find("metadata")->find("count")->as_number() ==
             static_cast<double>(connectors.size()));
  FUZZ_CHECK(payload.find("count") == nullptr);
  for (std::size_t i = 1; i < connectors.size(); ++i) {
    FUZZ_CHECK(connectors[i - 1].find("id")->as_string() < connectors[i].find("id")->as_string());
  }
  auto signed_map = cc::sign_service_map(payload, cc::as_bytes(kKey));
  FUZZ_CHECK(static_cast<bool>(signed_map));
  auto verified = cc::verify_service_map(signed_map->body, cc::as_bytes(kKey));
  FUZZ_CHECK(verified && verified->canonical_payload == signed_map->canonical_payload());
  auto written = cc::internal::sign_manifest_service_map(*manifest, "2025-01-01T00:00:00Z",
                                                         cc::as_bytes(kKey));
  FUZZ_CHECK(written && written->body == signed_map->body);
  // The rebuild's path: the body written from the DOM of the text, without a Manifest.
  auto from_text =
      cc::sign_manifest_text(text, "2025-01-01T00:00:00Z", cc::as_bytes(kKey), {}, limits);
  FUZZ_CHECK(from_text && from_text->body == signed_map->body);
  return 0;
}
