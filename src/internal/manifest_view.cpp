#include "internal/manifest_view.h"

#include <future>
#include <system_error>
#include <utility>

#include "internal/json_reader.h"

namespace cortex_connectors::internal {

bool FreeForm::is_empty_container() const noexcept {
  if (json_ != nullptr) {
    if (json_->is_object()) return json_->as_object().empty();
    if (json_->is_array()) return json_->as_array().empty();
    return false;
  }
  if (!is_dom()) return false;
  simdjson::dom::object o;
  if (dom_->get_object().get(o) == simdjson::SUCCESS) return o.begin() == o.end();
  simdjson::dom::array a;
  if (dom_->get_array().get(a) == simdjson::SUCCESS) return a.begin() == a.end();
  return false;
}

std::vector<std::string> StringList::to_vector() const {
  if (items_ != nullptr) return *items_;
  std::vector<std::string> out;
  for_each([&out](std::string_view s) { out.emplace_back(s); });
  return out;
}

namespace {

std::optional<std::string_view> view(const std::optional<std::string>& s) {
  if (!s) return std::nullopt;
  return std::string_view(*s);
}

std::optional<std::string> copy(std::optional<std::string_view> s) {
  if (!s) return std::nullopt;
  return std::string(*s);
}

FreeForm view(const Json& json) { return FreeForm(json.is_null() ? nullptr : &json); }

Json copy(const FreeForm& f) {
  if (!f.present()) return Json();
  if (!f.is_dom()) return *f.json();
  Json out;
  // The DOM behind a view was checked when it was read: building its Json checks nothing more.
  (void)json_from_dom(f.dom(), unchecked_dom_limits(), f.depth(), out);
  return out;
}

Connector to_connector(const ConnectorView& v) {
  Connector c;
  c.id = v.id;
  c.name = v.name;
  c.version = v.version;
  c.endpoint = v.endpoint;
  c.auth.type = v.auth_type;
  c.auth.header_name = copy(v.auth_header_name);
  c.auth.query_param = copy(v.auth_query_param);
  c.scopes = v.scopes.to_vector();
  c.ttl_seconds = v.ttl_seconds;
  c.display_name = copy(v.display_name);
  for (const PassThrough& p : kPassThrough) c.*p.model = copy(v.*p.view);
  if (v.authentication_headers.present()) {
    auto& headers = c.authentication_headers.emplace();
    v.authentication_headers.for_each([&headers](std::string_view name, std::string_view value) {
      headers.push_back({std::string(name), std::string(value)});
    });
  }
  c.headers = copy(v.headers);
  c.quotas = v.quotas;
  c.timeouts = copy(v.timeouts);
  c.status = v.status;
  c.enabled = v.enabled;
  c.metadata = copy(v.metadata);
  if (v.tags.present()) c.tags = v.tags.to_vector();
  c.remote_tools = copy(v.remote_tools);
  return c;
}

}  // namespace

ManifestView view_of(const Manifest& manifest) {
  ManifestView out;
  out.id = manifest.id;
  out.manifest_version = manifest.manifest_version;
  out.schema = view(manifest.schema);
  out.brand = view(manifest.brand);
  out.schema_version = view(manifest.schema_version);
  out.generated_at = view(manifest.generated_at);
  out.ttl_seconds = manifest.ttl_seconds;
  out.metadata = view(manifest.metadata);
  out.connectors.reserve(manifest.connectors.size());
  for (const Connector& c : manifest.connectors) {
    ConnectorView& v = out.connectors.emplace_back();
    v.id = c.id;
    v.name = c.name;
    v.version = c.version;
    v.endpoint = c.endpoint;
    v.auth_type = c.auth.type;
    v.auth_header_name = view(c.auth.header_name);
    v.auth_query_param = view(c.auth.query_param);
    v.scopes = StringList(&c.scopes);
    v.ttl_seconds = c.ttl_seconds;
    v.display_name = view(c.display_name);
    for (const PassThrough& p : kPassThrough) v.*p.view = view(c.*p.model);
    if (c.authentication_headers) v.authentication_headers = HeaderList(&*c.authentication_headers);
    v.headers = view(c.headers);
    v.quotas = c.quotas;
    v.timeouts = view(c.timeouts);
    v.status = c.status;
    v.enabled = c.enabled;
    v.metadata = view(c.metadata);
    if (c.tags) v.tags = StringList(&*c.tags);
    v.remote_tools = view(c.remote_tools);
  }
  return out;
}

Manifest to_manifest(const ManifestView& view, std::size_t parallel_from) {
  Manifest m;
  m.id = view.id;
  m.manifest_version = view.manifest_version;
  m.schema = copy(view.schema);
  m.brand = copy(view.brand);
  m.schema_version = copy(view.schema_version);
  m.generated_at = copy(view.generated_at);
  m.ttl_seconds = view.ttl_seconds;
  m.metadata = copy(view.metadata);
  const std::size_t n = view.connectors.size();
  m.connectors.resize(n);
  // Each connector is converted into its own slot from the read-only view, so halves can be
  // converted at once.
  auto convert = [&view, &m](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) m.connectors[i] = to_connector(view.connectors[i]);
  };
  const std::size_t half = n / 2;
  std::future<void> second;
  if (parallel_from != 0 && n >= parallel_from && n >= 2) {
    try {
      second = std::async(std::launch::async, convert, half, n);
    } catch (const std::system_error&) {
      // No thread to be had: convert it all here.
    }
  }
  if (second.valid()) {
    convert(0, half);
    second.get();
  } else {
    convert(0, n);
  }
  return m;
}

}  // namespace cortex_connectors::internal
