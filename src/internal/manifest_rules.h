// The rules of the manifest format, written once as data: for each object of the format, its
// fields, what each must be, and where a valid value goes in the ManifestView. One walker
// (src/validate.cpp) applies them, over the simdjson DOM stopping at the first broken rule
// (parse_manifest()'s fast path) or over a Json listing every finding with its pointer
// (validate_manifest()); manifest_json_schema() writes the same tables as a JSON Schema.
//
// Adding an optional text field of a connector, passed through to the service map: a row in
// kConnectorFields below (the validation and the JSON Schema follow from it), a member in
// Connector (cortex_connectors/manifest.h) and in ConnectorView (manifest_view.h), and its line
// in kPassThrough (manifest_view.h), from which the copies and the payload writer take it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>

#include <simdjson.h>

#include "cortex_connectors/json.h"
#include "cortex_connectors/manifest.h"
#include "internal/manifest_view.h"

namespace cortex_connectors::internal {

// What a value must be.
enum class Rule : std::uint8_t {
  kString,       // a string
  kNonEmpty,     // a non-empty string
  kUlid,         // a non-empty string, is_ulid()
  kConnectorId,  // a non-empty string, is_connector_id()
  kUri,          // a non-empty string, is_absolute_uri()
  kDateTime,     // a string, is_rfc3339_date_time()
  kBrand,        // the string "brAInwav"
  kEnum,         // a string, one of Field::values
  kInteger,      // an integer >= Field::min (and within +-(2^53-1))
  kBoolean,      // true or false
  kFreeObject,   // any object
  kStringMap,    // an object of string values
  kIntegerMap,   // an object of integer values >= Field::min
  kStrings,      // an array of strings (Field::min_items, non_empty_items, unique)
  kObject,       // an object of Field::shape
  kObjects,      // an array of objects of Field::shape (Field::min_items)
};

// A value the walk read, handed to Field::set once it passed its rule.
struct Read {
  std::string_view text;       // the string rules
  std::int64_t integer = 0;    // kInteger
  bool boolean = false;        // kBoolean
  std::size_t index = 0;       // kEnum: the index in Field::values
  const Json* json = nullptr;  // the value, when the walk is over a Json
  simdjson::dom::element dom;  // else the value in the DOM,
  std::size_t depth = 0;       // at this nesting depth (the root is 1)

  FreeForm free_form() const { return json != nullptr ? FreeForm(json) : FreeForm(dom, depth); }
  StringList strings() const { return json != nullptr ? StringList(json) : StringList(dom); }
  HeaderList headers() const { return json != nullptr ? HeaderList(json) : HeaderList(dom); }
};

struct Shape;

// One member of an object of the format.
struct Field {
  std::string_view key;
  Rule rule = Rule::kString;
  bool required = false;
  std::int64_t min = 0;          // kInteger, kIntegerMap
  std::size_t min_items = 0;     // kStrings, kObjects: 1 for "non-empty"
  bool non_empty_items = false;  // kStrings
  const char* unique = nullptr;  // kStrings: items unique, "duplicate <unique> ..."
  std::span<const std::string_view> values = {};  // kEnum
  const Shape* shape = nullptr;                   // kObject, kObjects
  // Stores a value that passed its rule into the walk's target (a ManifestView or a
  // ConnectorView); kObject members write into the same target. nullptr: checked only.
  void (*set)(void* target, const Read& value) = nullptr;
  std::string_view description = {};  // for the JSON Schema
};

// An object of the format: its fields (required ones first, in the order their absence is
// reported); any other member is an error. Built by shape(), which indexes the keys.
struct Shape {
  static constexpr std::size_t kSlots = 32;  // also the most fields: Field indexes fit a bitmask

  // The slot of `key` in `first`: a few bytes of it, so that finding a member's field costs one
  // comparison, not one per field (most keys differ early; the walk compares whole keys after).
  static constexpr std::size_t slot(std::string_view key) noexcept {
    if (key.empty()) return 0;
    const auto byte = [&key](std::size_t i) { return static_cast<unsigned char>(key[i]); };
    return (key.size() * 3 + byte(0) * 4 + byte(key.size() > 1 ? 1 : 0) * 3 +
            byte(key.size() - 1) * 3) %
           kSlots;
  }

  std::span<const Field> fields;
  std::string_view description;
  std::array<std::int8_t, kSlots> first{};      // slot -> the first field in it, or -1
  std::array<std::int8_t, kSlots> next{};       // field -> the next field in its slot, or -1
  std::uint32_t required = 0;                   // bit i: fields[i] is required
  std::array<std::string_view, kSlots> keys{};  // fields[i].key, packed for the lookup
};

template <std::size_t N>
constexpr Shape shape(const std::array<Field, N>& fields, std::string_view description) {
  static_assert(N <= Shape::kSlots, "more fields than a Shape indexes");
  Shape s{fields, description};
  s.first.fill(-1);
  s.next.fill(-1);
  for (std::size_t i = N; i-- > 0;) {
    const std::size_t h = Shape::slot(fields[i].key);
    s.next[i] = s.first[h];
    s.first[h] = static_cast<std::int8_t>(i);
    if (fields[i].required) s.required |= std::uint32_t{1} << i;
    s.keys[i] = fields[i].key;
  }
  return s;
}

// Stores `Read` into the member M of its target, by the member's type.
template <class T>
struct MemberOf;
template <class C, class V>
struct MemberOf<V C::*> {
  using Class = C;
  using Value = V;
};
template <auto M>
void store(void* target, const Read& r) {
  using C = typename MemberOf<decltype(M)>::Class;
  using V = typename MemberOf<decltype(M)>::Value;
  V& out = static_cast<C*>(target)->*M;
  if constexpr (std::is_same_v<V, std::string_view> ||
                std::is_same_v<V, std::optional<std::string_view>>) {
    out = r.text;
  } else if constexpr (std::is_same_v<V, std::int64_t> ||
                       std::is_same_v<V, std::optional<std::int64_t>>) {
    out = r.integer;
  } else if constexpr (std::is_same_v<V, std::optional<bool>>) {
    out = r.boolean;
  } else if constexpr (std::is_same_v<V, FreeForm>) {
    out = r.free_form();
  } else if constexpr (std::is_same_v<V, StringList>) {
    out = r.strings();
  } else {
    static_assert(std::is_same_v<V, HeaderList>, "no rule stores this type");
    out = r.headers();
  }
}

// Stores a quota limit into ConnectorView::quotas.
template <std::optional<std::int64_t> Quotas::*M>
void store_quota(void* target, const Read& r) {
  static_cast<ConnectorView*>(target)->quotas.value().*M = r.integer;
}

inline constexpr std::array<std::string_view, 3> kAuthTypes = {"apiKey", "bearer", "none"};
inline constexpr std::array<std::string_view, 3> kStatuses = {"enabled", "disabled", "preview"};
inline constexpr std::string_view kBrandName = "brAInwav";

// ---- the format ---------------------------------------------------------------------------

inline constexpr std::array kHeaderTemplateFields = {
    Field{.key = "name", .rule = Rule::kNonEmpty, .required = true},
    Field{.key = "value",
          .rule = Rule::kString,
          .required = true,
          .description = "May hold ${VAR} or ${VAR:default} templates for the consumer; never "
                         "expanded by the server."},
};
inline constexpr Shape kHeaderTemplate =
    shape(kHeaderTemplateFields, "One header the consumer sends.");

inline constexpr std::array kAuthenticationFields = {
    Field{.key = "headers",
          .rule = Rule::kObjects,
          .required = true,
          .min_items = 1,
          .shape = &kHeaderTemplate,
          .set = store<&ConnectorView::authentication_headers>},
};
inline constexpr Shape kAuthentication =
    shape(kAuthenticationFields, "Headers the consumer sends.");

inline constexpr std::array kAuthFields = {
    Field{.key = "type",
          .rule = Rule::kEnum,
          .required = true,
          .values = kAuthTypes,
          .set =
              [](void* t, const Read& r) {
                static_cast<ConnectorView*>(t)->auth_type = static_cast<AuthType>(r.index);
              }},
    Field{.key = "headerName",
          .rule = Rule::kNonEmpty,
          .set = store<&ConnectorView::auth_header_name>},
    Field{.key = "queryParam",
          .rule = Rule::kNonEmpty,
          .set = store<&ConnectorView::auth_query_param>},
};
inline constexpr Shape kAuth =
    shape(kAuthFields, "How the consumer authenticates to the connector.");

inline constexpr std::array kQuotasFields = {
    Field{.key = "perMinute", .rule = Rule::kInteger, .set = store_quota<&Quotas::per_minute>},
    Field{.key = "perHour", .rule = Rule::kInteger, .set = store_quota<&Quotas::per_hour>},
    Field{.key = "perDay", .rule = Rule::kInteger, .set = store_quota<&Quotas::per_day>},
    Field{.key = "concurrent", .rule = Rule::kInteger, .set = store_quota<&Quotas::concurrent>},
};
inline constexpr Shape kQuotas =
    shape(kQuotasFields, "Rate limits; only those present are served.");

inline constexpr std::array kRemoteToolFields = {
    Field{.key = "name", .rule = Rule::kNonEmpty, .required = true},
    Field{.key = "description", .rule = Rule::kString},
    Field{.key = "tags", .rule = Rule::kStrings},
    Field{.key = "scopes", .rule = Rule::kStrings},
};
inline constexpr Shape kRemoteTool = shape(kRemoteToolFields, "A tool the connector offers.");

inline constexpr std::array kConnectorFields = {
    Field{.key = "id",
          .rule = Rule::kConnectorId,
          .required = true,
          .set = store<&ConnectorView::id>,
          .description = "Unique in the manifest."},
    Field{.key = "name",
          .rule = Rule::kNonEmpty,
          .required = true,
          .set = store<&ConnectorView::name>},
    Field{.key = "version",
          .rule = Rule::kNonEmpty,
          .required = true,
          .set = store<&ConnectorView::version>},
    Field{.key = "endpoint",
          .rule = Rule::kUri,
          .required = true,
          .set = store<&ConnectorView::endpoint>,
          .description = "An absolute URI: scheme://authority..."},
    Field{.key = "auth", .rule = Rule::kObject, .required = true, .shape = &kAuth},
    Field{.key = "scopes",
          .rule = Rule::kStrings,
          .required = true,
          .min_items = 1,
          .non_empty_items = true,
          .unique = "scope",
          .set = store<&ConnectorView::scopes>},
    Field{.key = "ttlSeconds",
          .rule = Rule::kInteger,
          .required = true,
          .min = 1,
          .set = store<&ConnectorView::ttl_seconds>},
    Field{
        .key = "displayName", .rule = Rule::kNonEmpty, .set = store<&ConnectorView::display_name>},
    Field{.key = "description", .rule = Rule::kNonEmpty, .set = store<&ConnectorView::description>},
    Field{.key = "authentication", .rule = Rule::kObject, .shape = &kAuthentication},
    Field{.key = "headers", .rule = Rule::kStringMap, .set = store<&ConnectorView::headers>},
    Field{.key = "quotas",
          .rule = Rule::kObject,
          .shape = &kQuotas,
          .set = [](void* t, const Read&) { static_cast<ConnectorView*>(t)->quotas.emplace(); }},
    Field{.key = "timeouts", .rule = Rule::kIntegerMap, .set = store<&ConnectorView::timeouts>},
    Field{.key = "status",
          .rule = Rule::kEnum,
          .values = kStatuses,
          .set =
              [](void* t, const Read& r) {
                static_cast<ConnectorView*>(t)->status = static_cast<ConnectorStatus>(r.index);
              }},
    Field{.key = "enabled", .rule = Rule::kBoolean, .set = store<&ConnectorView::enabled>},
    Field{.key = "metadata", .rule = Rule::kFreeObject, .set = store<&ConnectorView::metadata>},
    Field{.key = "tags", .rule = Rule::kStrings, .set = store<&ConnectorView::tags>},
    Field{.key = "remoteTools",
          .rule = Rule::kObjects,
          .shape = &kRemoteTool,
          .set = store<&ConnectorView::remote_tools>},
};
inline constexpr Shape kConnector = shape(kConnectorFields, "One connector.");

inline constexpr std::array kManifestFields = {
    Field{.key = "id",
          .rule = Rule::kUlid,
          .required = true,
          .set = store<&ManifestView::id>,
          .description = "A ULID."},
    Field{.key = "manifestVersion",
          .rule = Rule::kNonEmpty,
          .required = true,
          .set = store<&ManifestView::manifest_version>},
    Field{.key = "connectors",
          .rule = Rule::kObjects,
          .required = true,
          .min_items = 1,
          .shape = &kConnector,
          .description = "Connector ids are unique."},
    Field{.key = "$schema", .rule = Rule::kString, .set = store<&ManifestView::schema>},
    Field{.key = "brand", .rule = Rule::kBrand, .set = store<&ManifestView::brand>},
    Field{
        .key = "schemaVersion", .rule = Rule::kString, .set = store<&ManifestView::schema_version>},
    Field{.key = "generatedAt",
          .rule = Rule::kDateTime,
          .set = store<&ManifestView::generated_at>,
          .description = "An RFC 3339 date-time."},
    Field{.key = "ttlSeconds",
          .rule = Rule::kInteger,
          .min = 1,
          .set = store<&ManifestView::ttl_seconds>},
    Field{.key = "metadata", .rule = Rule::kFreeObject, .set = store<&ManifestView::metadata>},
};
inline constexpr Shape kManifest = shape(kManifestFields, "A cortex_connectors manifest.");

// The connectors: the walker stores each into ManifestView::connectors and applies the one rule
// across them, which no row carries and a JSON Schema cannot state: their ids are unique.
inline constexpr const Field& kConnectorsField = kManifestFields[2];
static_assert(kConnectorsField.key == "connectors");

}  // namespace cortex_connectors::internal
