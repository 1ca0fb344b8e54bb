// A valid manifest to patch, and a generator of invalid (and some valid) manifests: random edits of
// a valid one, as the tests that compare the manifest walks and the JSON Schema use them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "cortex_connectors/canonical_json.h"
#include "cortex_connectors/json.h"
#include "test_utils.h"

namespace cortex_connectors::test {

// A valid manifest with one connector; tests patch it with with().
inline const std::string kValid = R"({
  "id": "01J7X5MB4K1ZW0000000000000",
  "manifestVersion": "1.0.0",
  "connectors": [
    {"id": "alpha", "name": "Alpha", "version": "1.0.0",
     "endpoint": "https://alpha.example.invalid/mcp",
     "auth": {"type": "bearer"}, "scopes": ["a:read"], "ttlSeconds": 60}
  ]
})";

// `text` with the first `from` replaced by `to` (which must be there).
inline std::string with(std::string_view from, std::string_view to, std::string text = kValid) {
  const auto pos = text.find(from);
  REQUIRE(pos != std::string::npos);
  text.replace(pos, from.size(), to);
  return text;
}

// Random edits of a valid manifest's Json tree: values replaced by others of every type (among
// them the values the rules want), members removed or added (known and unknown names), items
// removed or added.
class Mutator {
 public:
  explicit Mutator(std::uint32_t seed) : rng_(seed) {}

  std::string mutate(cortex_connectors::Json doc) {
    const int edits = 1 + below(3);
    for (int e = 0; e < edits; ++e) {
      std::vector<cortex_connectors::Json*> nodes;
      collect(doc, nodes);
      cortex_connectors::Json& node = *nodes[static_cast<std::size_t>(below(nodes.size()))];
      const int action = below(4);
      if (action == 0 || !(node.is_object() || node.is_array())) {
        node = value();
      } else if (node.is_object()) {
        auto& members = node.as_object();
        if (action == 1 && !members.empty()) {
          members.erase(members.begin() + below(members.size()));
        } else {
          node.set(pick(kKeys), value());
        }
      } else {
        auto& items = node.as_array();
        if (action == 1 && !items.empty()) {
          items.erase(items.begin() + below(items.size()));
        } else if (action == 2 && !items.empty()) {
          items.push_back(items[static_cast<std::size_t>(below(items.size()))]);  // a repeat
        } else {
          items.push_back(value());
        }
      }
    }
    return below(2) == 0 ? *cortex_connectors::canonical_json(doc)
                         : *cortex_connectors::pretty_json(doc);
  }

 private:
  static constexpr const char* kKeys[] = {
      "id",         "name",          "version",     "endpoint",
      "auth",       "type",          "headers",     "value",
      "scopes",     "ttlSeconds",    "tags",        "remoteTools",
      "status",     "enabled",       "metadata",    "quotas",
      "perMinute",  "perHour",       "perDay",      "concurrent",
      "timeouts",   "displayName",   "description", "authentication",
      "headerName", "queryParam",    "brand",       "generatedAt",
      "$schema",    "schemaVersion", "connectors",  "manifestVersion",
      "zzz"};

  static void collect(cortex_connectors::Json& node, std::vector<cortex_connectors::Json*>& out) {
    out.push_back(&node);
    if (node.is_object()) {
      for (auto& m : node.as_object()) collect(m.second, out);
    } else if (node.is_array()) {
      for (auto& item : node.as_array()) collect(item, out);
    }
  }

  cortex_connectors::Json value() {
    switch (below(24)) {
      case 0:
        return "";
      case 1:
        return "x";
      case 2:
        return "c-000001";
      case 3:
        return pick({"apiKey", "bearer", "none", "Bearer"});
      case 4:
        return pick({"enabled", "disabled", "preview", "on"});
      case 5:
        return pick({"https://a.example", "not a uri", "ftp://x"});
      case 6:
        return pick({"brAInwav", "brainwav"});
      case 7:
        return pick({"2025-10-10T00:00:00Z", "2025-02-30T00:00:00Z", "2025-10-10"});
      case 8:
        return pick({"01J7X5MB4K1ZW0000000000000", "01J7X5MB4K1ZW000000000000U"});
      case 9:
        return 0;
      case 10:
        return 1;
      case 11:
        return -1;
      case 12:
        return 1.5;
      case 13:
        return 9007199254740991.0;
      case 14:
        return 9007199254740992.0;  // written 9007199254740992: beyond 2^53-1
      case 15:
        return 1e21;
      case 16:
        return below(2) == 0;
      case 17:
        return nullptr;
      case 18:
        return cortex_connectors::Json::array();
      case 19:
        return cortex_connectors::Json::object();
      case 20: {
        cortex_connectors::Json a = cortex_connectors::Json::array();
        a.push_back("a");
        a.push_back(below(2) == 0 ? cortex_connectors::Json("a") : cortex_connectors::Json("b"));
        return a;
      }
      case 21: {
        cortex_connectors::Json o = cortex_connectors::Json::object();
        o.set("name", "X-Key");
        o.set("value", "${KEY}");
        return o;
      }
      case 22: {
        cortex_connectors::Json o = cortex_connectors::Json::object();
        o.set(pick(kKeys),
              below(2) == 0 ? cortex_connectors::Json(5) : cortex_connectors::Json("v"));
        return o;
      }
      default:
        return 3600;
    }
  }

  template <std::size_t N>
  const char* pick(const char* const (&items)[N]) {
    return items[static_cast<std::size_t>(below(N))];
  }
  const char* pick(std::initializer_list<const char*> items) {
    return items.begin()[below(items.size())];
  }
  int below(std::size_t n) { return static_cast<int>(rng_() % n); }

  std::mt19937 rng_;
};

}  // namespace cortex_connectors::test
