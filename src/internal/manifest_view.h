// ManifestView: a validated manifest as views, either into simdjson's DOM of its text or into a
// Manifest. The service-map writer and the connector series read it, so that the rebuild of a
// manifest file (text -> signed body) never builds the typed Manifest: at 10 000 connectors,
// allocating and freeing that model cost more than parsing the text (bench/README.md). A
// Manifest is made from a view only where one is asked for (parse_manifest(), a registry that
// keeps it).
//
// A view holds no string of its own: it is valid while the DOM (or the Manifest) it was read
// from is.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "cortex_connectors/json.h"
#include "cortex_connectors/manifest.h"
#include "cortex_connectors/result.h"
#include "cortex_connectors/service_map.h"

namespace cortex_connectors::internal {

// A free-form value (metadata, headers, timeouts, remoteTools and the values inside them): a Json
// of a Manifest, or an element of the DOM with its nesting depth (the root is 1); absent when
// neither.
class FreeForm {
 public:
  FreeForm() = default;
  // `json` may be null: absent.
  explicit FreeForm(const Json* json) noexcept : json_(json) {}
  FreeForm(simdjson::dom::element dom, std::size_t depth) noexcept : dom_(dom), depth_(depth) {}

  bool present() const noexcept { return json_ != nullptr || depth_ != 0; }
  bool is_dom() const noexcept { return depth_ != 0; }
  const Json* json() const noexcept { return json_; }
  simdjson::dom::element dom() const noexcept { return *dom_; }  // REQUIRES: is_dom()
  std::size_t depth() const noexcept { return depth_; }

  bool is_object() const noexcept {
    if (json_ != nullptr) return json_->is_object();
    return is_dom() && dom_->type() == simdjson::dom::element_type::OBJECT;
  }
  bool is_array() const noexcept {
    if (json_ != nullptr) return json_->is_array();
    return is_dom() && dom_->type() == simdjson::dom::element_type::ARRAY;
  }
  // An object without members or an array without items.
  bool is_empty_container() const noexcept;
  // Calls f(std::string_view key, FreeForm value) for each member, in document order.
  // REQUIRES: is_object().
  template <class F>
  void for_each_member(F&& f) const {
    if (json_ != nullptr) {
      for (const auto& [key, value] : json_->as_object())
        f(std::string_view(key), FreeForm(&value));
      return;
    }
    // get(), not value_unsafe(): on the (unreachable) wrong type that would be an object without
    // a document, which GCC's -Wnull-dereference sees flowing into simdjson's accessors.
    simdjson::dom::object members;
    if (dom_->get_object().get(members) != simdjson::SUCCESS) return;
    for (const simdjson::dom::key_value_pair m : members) {
      f(m.key, FreeForm(m.value, depth_ + 1));
    }
  }

 private:
  const Json* json_ = nullptr;
  std::optional<simdjson::dom::element> dom_;
  std::size_t depth_ = 0;  // 0: not the DOM
};

// scopes, tags: the strings of a Manifest, of a Json array of strings or of a DOM array of
// strings; absent when none.
class StringList {
 public:
  StringList() = default;
  explicit StringList(const std::vector<std::string>* items) noexcept : items_(items) {}
  explicit StringList(const Json* json) noexcept : json_(json) {}
  explicit StringList(simdjson::dom::element dom) noexcept : dom_(dom) {}

  bool present() const noexcept {
    return items_ != nullptr || json_ != nullptr || dom_.has_value();
  }
  // Calls f(std::string_view) for each item. REQUIRES: present().
  template <class F>
  void for_each(F&& f) const {
    if (items_ != nullptr) {
      for (const std::string& s : *items_) f(std::string_view(s));
      return;
    }
    if (json_ != nullptr) {
      for (const Json& item : json_->as_array()) f(std::string_view(item.as_string()));
      return;
    }
    simdjson::dom::array items;
    if (dom_->get_array().get(items) != simdjson::SUCCESS) return;
    for (const simdjson::dom::element item : items) {
      f(item.get_string().value_unsafe());
    }
  }
  // A copy of the items. REQUIRES: present().
  std::vector<std::string> to_vector() const;

 private:
  const std::vector<std::string>* items_ = nullptr;
  const Json* json_ = nullptr;
  std::optional<simdjson::dom::element> dom_;
};

// authentication.headers: {name, value} items of a Manifest, of a Json array or of the DOM;
// absent when there is no "authentication" member.
class HeaderList {
 public:
  HeaderList() = default;
  explicit HeaderList(const std::vector<HeaderTemplate>* items) noexcept : items_(items) {}
  explicit HeaderList(const Json* json) noexcept : json_(json) {}
  explicit HeaderList(simdjson::dom::element dom) noexcept : dom_(dom) {}

  bool present() const noexcept {
    return items_ != nullptr || json_ != nullptr || dom_.has_value();
  }
  // Calls f(std::string_view name, std::string_view value) for each item. REQUIRES: present().
  template <class F>
  void for_each(F&& f) const {
    if (items_ != nullptr) {
      for (const HeaderTemplate& h : *items_)
        f(std::string_view(h.name), std::string_view(h.value));
      return;
    }
    if (json_ != nullptr) {
      for (const Json& item : json_->as_array()) {
        const Json* name = item.find("name");
        const Json* value = item.find("value");
        if (name == nullptr || value == nullptr) continue;  // not after a walk without findings
        f(std::string_view(name->as_string()), std::string_view(value->as_string()));
      }
      return;
    }
    simdjson::dom::array items;
    if (dom_->get_array().get(items) != simdjson::SUCCESS) return;
    for (const simdjson::dom::element item : items) {
      simdjson::dom::object fields;
      std::string_view name;
      std::string_view value;
      if (item.get_object().get(fields) != simdjson::SUCCESS ||
          fields["name"].get(name) != simdjson::SUCCESS ||
          fields["value"].get(value) != simdjson::SUCCESS) {
        continue;  // not after manifest_view_from_dom()
      }
      f(name, value);
    }
  }

 private:
  const std::vector<HeaderTemplate>* items_ = nullptr;
  const Json* json_ = nullptr;
  std::optional<simdjson::dom::element> dom_;
};

// Connector, field by field, as views.
struct ConnectorView {
  std::string_view id;
  std::string_view name;
  std::string_view version;
  std::string_view endpoint;
  AuthType auth_type = AuthType::kNone;
  std::optional<std::string_view> auth_header_name;
  std::optional<std::string_view> auth_query_param;
  StringList scopes;
  std::int64_t ttl_seconds = 1;
  std::optional<std::string_view> display_name;
  std::optional<std::string_view> description;
  HeaderList authentication_headers;
  FreeForm headers;
  std::optional<Quotas> quotas;
  FreeForm timeouts;
  std::optional<ConnectorStatus> status;
  std::optional<bool> enabled;
  FreeForm metadata;
  StringList tags;
  FreeForm remote_tools;

  // Connector::is_enabled().
  bool is_enabled() const noexcept {
    if (enabled) return *enabled;
    return status != ConnectorStatus::kDisabled;
  }
};

// The optional text fields of a connector that are passed through to the service map as they
// are, in key order. Each also has a row in kConnectorFields (manifest_rules.h) that stores into
// `view`; view_of(), to_manifest() and the payload writer (src/service_map.cpp) copy and write
// them from this list. Adding one: its row there, its members in ConnectorView and Connector,
// and its line here (CONTRIBUTING.md).
struct PassThrough {
  std::string_view key;
  std::optional<std::string_view> ConnectorView::*view;
  std::optional<std::string> Connector::*model;
};
inline constexpr std::array kPassThrough = {
    PassThrough{"description", &ConnectorView::description, &Connector::description},
};

namespace pass_through_check {
constexpr bool sorted() {
  for (std::size_t i = 1; i < kPassThrough.size(); ++i) {
    if (!(kPassThrough[i - 1].key < kPassThrough[i].key)) return false;
  }
  return true;
}
// The payload writer emits them in canonical (RFC 8785) key order between its own members: it
// needs them sorted, and none before "auth", the first member of an entry.
static_assert(sorted(), "kPassThrough must be sorted by key");
static_assert(kPassThrough.front().key > "auth", "a pass-through key must sort after \"auth\"");
}  // namespace pass_through_check

// Manifest, field by field, as views.
struct ManifestView {
  std::string_view id;
  std::string_view manifest_version;
  std::vector<ConnectorView> connectors;  // in file order
  std::optional<std::string_view> schema;
  std::optional<std::string_view> brand;
  std::optional<std::string_view> schema_version;
  std::optional<std::string_view> generated_at;
  std::optional<std::int64_t> ttl_seconds;
  FreeForm metadata;
};

// The view of `manifest`: valid while `manifest` is, and unchanged.
ManifestView view_of(const Manifest& manifest);

// The Manifest of a view read by visit_manifest() or walked from a Json: its strings copied, its
// free-form parts as parse_json() builds them. With `parallel_from` connectors or more (0: never),
// a second thread converts the second half (ManifestLimits::parallel_connectors); the Manifest is
// the same.
Manifest to_manifest(const ManifestView& view, std::size_t parallel_from = 0);

// Metrics::render_manifest_text() of a view (src/metrics.cpp).
std::string render_manifest_text(const ManifestView& view);

}  // namespace cortex_connectors::internal
