#include "cortex_connectors/sse.h"

#include <algorithm>
#include <charconv>
#include <map>

#include "cortex_connectors/canonical_json.h"

namespace cortex_connectors {

namespace {

void append_clean(std::string& out, std::string_view field, bool drop_nul) {
  for (char c : field) {
    if (c == '\r' || c == '\n' || (drop_nul && c == '\0')) continue;
    out.push_back(c);
  }
}

Error invalid_delta(const char* what) {
  return Error{ErrorCode::kInvalid, std::string("[brAInwav] invalid delta: ") + what, {}, {}};
}

const std::string* connector_id(const Json& connector) {
  const Json* id = connector.find("id");
  return id != nullptr && id->is_string() ? &id->as_string() : nullptr;
}

}  // namespace

namespace {

// Appends the event to `out`; returns where the text of its first data line starts.
std::size_t append_event(std::string& out, std::string_view event, std::string_view id,
                         std::string_view data) {
  out.reserve(out.size() + data.size() + event.size() + id.size() + 32);
  if (!id.empty()) {
    out.append("id: ");
    append_clean(out, id, true);
    out.push_back('\n');
  }
  if (!event.empty()) {
    out.append("event: ");
    append_clean(out, event, false);
    out.push_back('\n');
  }
  const std::size_t data_at = out.size() + sizeof("data: ") - 1;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t eol = data.find_first_of("\r\n", pos);
    out.append("data: ");
    out.append(
        data.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos));
    out.push_back('\n');
    if (eol == std::string_view::npos) break;
    pos = eol + 1;
    if (data[eol] == '\r' && pos < data.size() && data[pos] == '\n') ++pos;
  }
  out.push_back('\n');
  return data_at;
}

}  // namespace

std::string sse_event(std::string_view event, std::string_view id, std::string_view data) {
  std::string out;
  append_event(out, event, id, data);
  return out;
}

std::string sse_comment(std::string_view text) {
  std::string out = ": ";
  append_clean(out, text, false);
  out.append("\n\n");
  return out;
}

std::string sse_retry(std::uint32_t milliseconds) {
  return "retry: " + std::to_string(milliseconds) + "\n\n";
}

std::string sse_status_event(const Snapshot& snapshot, std::string_view timestamp) {
  return sse_status_event_with_body(snapshot, timestamp).bytes;
}

SseStatusEvent sse_status_event_with_body(const Snapshot& snapshot, std::string_view timestamp) {
  std::string data;
  data.reserve(snapshot.body.size() + 64);
  data.append(R"({"payload":)");
  const std::size_t body_at = data.size();
  data.append(snapshot.body);
  data.append(R"(,"timestamp":)");
  append_canonical_string(data, timestamp);
  data.push_back('}');
  SseStatusEvent out;
  const std::size_t data_at =
      append_event(out.bytes, "status", std::to_string(snapshot.version), data);
  // One data line, the body verbatim, unless it has a line break (canonical JSON has none).
  if (data.find_first_of("\r\n") == std::string::npos) out.body_offset = data_at + body_at;
  return out;
}

Json compute_delta(const Json& from, const Json& to, std::uint64_t from_version,
                   std::uint64_t to_version, std::string_view to_signature) {
  std::map<std::string_view, const Json*> old_by_id;
  if (const Json* list = from.find("connectors"); list != nullptr && list->is_array()) {
    for (const Json& c : list->as_array()) {
      if (const auto* id = connector_id(c)) old_by_id.emplace(*id, &c);
    }
  }
  Json added = Json::array();
  Json replaced = Json::array();
  Json removed = Json::array();
  std::map<std::string_view, bool> seen;
  if (const Json* list = to.find("connectors"); list != nullptr && list->is_array()) {
    for (const Json& c : list->as_array()) {
      const auto* id = connector_id(c);
      if (id == nullptr) continue;
      seen.emplace(*id, true);
      auto it = old_by_id.find(*id);
      if (it == old_by_id.end()) {
        added.push_back(c);
      } else if (!(*it->second == c)) {
        replaced.push_back(c);
      }
    }
  }
  for (const auto& [id, c] : old_by_id) {
    if (!seen.contains(id)) removed.push_back(Json(id));
  }
  Json fields = Json::object();
  if (to.is_object()) {
    for (const auto& [key, value] : to.as_object()) {
      if (key == "connectors") continue;
      const Json* old = from.find(key);
      if (old == nullptr || !(*old == value)) fields.set(key, value);
    }
  }
  // Top-level members the new payload no longer has: only across a change of the payload's
  // shape (a recorded payload with a top-level "count" before one with "metadata.count"), so the
  // member is absent from every other delta and their bytes stay as they were.
  Json dropped = Json::array();
  if (from.is_object()) {
    for (const auto& [key, value] : from.as_object()) {
      if (key != "connectors" && to.find(key) == nullptr) dropped.push_back(Json(key));
    }
  }
  Json delta = Json::object();
  delta.set("from", from_version);
  delta.set("to", to_version);
  delta.set("added", std::move(added));
  delta.set("removed", std::move(removed));
  delta.set("replaced", std::move(replaced));
  delta.set("fields", std::move(fields));
  if (!dropped.as_array().empty()) delta.set("removedFields", std::move(dropped));
  delta.set("signature", to_signature);
  return delta;
}

Result<Json> apply_delta(const Json& payload, const Json& delta) {
  if (!payload.is_object()) return invalid_delta("the base payload is not an object");
  if (!delta.is_object()) return invalid_delta("not an object");
  const Json* added = delta.find("added");
  const Json* removed = delta.find("removed");
  const Json* replaced = delta.find("replaced");
  const Json* fields = delta.find("fields");
  if (added == nullptr || !added->is_array() || removed == nullptr || !removed->is_array() ||
      replaced == nullptr || !replaced->is_array() || fields == nullptr || !fields->is_object()) {
    return invalid_delta("missing added/removed/replaced/fields");
  }
  const Json* base_list = payload.find("connectors");
  if (base_list == nullptr || !base_list->is_array()) {
    return invalid_delta("the base payload has no connectors");
  }
  std::map<std::string, Json> by_id;
  for (const Json& c : base_list->as_array()) {
    const auto* id = connector_id(c);
    if (id == nullptr) return invalid_delta("a base connector has no id");
    by_id.insert_or_assign(*id, c);
  }
  for (const Json& id : removed->as_array()) {
    if (!id.is_string() || by_id.erase(id.as_string()) == 0) {
      return invalid_delta("removes an unknown connector");
    }
  }
  for (const Json& c : replaced->as_array()) {
    const auto* id = connector_id(c);
    if (id == nullptr || !by_id.contains(*id))
      return invalid_delta("replaces an unknown connector");
    by_id[*id] = c;
  }
  for (const Json& c : added->as_array()) {
    const auto* id = connector_id(c);
    if (id == nullptr || by_id.contains(*id)) return invalid_delta("adds an existing connector");
    by_id.emplace(*id, c);
  }
  Json out = payload;
  Json::Array list;
  list.reserve(by_id.size());
  // std::map orders ids bytewise, as the service map sorts them.
  for (auto& [id, c] : by_id) list.push_back(std::move(c));
  out.set("connectors", Json(std::move(list)));
  for (const auto& [key, value] : fields->as_object()) out.set(key, value);
  if (const Json* dropped = delta.find("removedFields"); dropped != nullptr) {
    if (!dropped->is_array()) return invalid_delta("removedFields is not an array");
    for (const Json& key : dropped->as_array()) {
      if (!key.is_string() || key.as_string() == "connectors" ||
          out.find(key.as_string()) == nullptr)
        return invalid_delta("removes an unknown field");
      std::erase_if(out.as_object(),
                    [&key](const Json::Member& m) { return m.first == key.as_string(); });
    }
  }
  return out;
}

Result<std::string> sse_delta_event(const Snapshot& previous, const Snapshot& next) {
  return sse_delta_event(previous.payload_view(), previous.version, next.payload_view(),
                         next.version, next.signature, next.signatures);
}

Result<std::string> sse_delta_event(std::string_view from_payload, std::uint64_t from_version,
                                    const Snapshot& next) {
  return sse_delta_event(PayloadView{from_payload, nullptr}, from_version, next.payload_view(),
                         next.version, next.signature, next.signatures);
}

Result<std::string> sse_delta_event(std::string_view from_payload, std::uint64_t from_version,
                                    std::string_view to_payload, std::uint64_t to_version,
                                    std::string_view to_signature, std::string_view to_signatures) {
  return sse_delta_event(PayloadView{from_payload, nullptr}, from_version,
                         PayloadView{to_payload, nullptr}, to_version, to_signature, to_signatures);
}

namespace {

// True when the connector ids of `layout` are escape-free and strictly increasing bytewise: the
// order compute_delta() lists removed ids in, with no id twice.
bool plain_sorted_ids(std::string_view payload, const PayloadLayout& layout) {
  std::string_view last;
  for (std::size_t i = 0; i < layout.connectors.size(); ++i) {
    const std::string_view id = layout.connectors[i].id.of(payload);
    if (id.find('\\') != std::string_view::npos || (i != 0 && !(last < id))) return false;
    last = id;
  }
  return true;
}

const PayloadLayout::Member* member(std::string_view payload, const PayloadLayout& layout,
                                    std::string_view key) {
  for (const auto& m : layout.members) {
    if (m.key.of(payload) == key) return &m;
  }
  return nullptr;
}

// canonical_json(compute_delta(...)) (plus "signatures") of two canonical payloads with their
// layouts, written by comparing the spans of their connectors and members: a subtree of a
// canonical document is the canonical form of that subtree, and two canonical texts are equal
// exactly when the values are. `signatures` is canonical JSON or empty.
std::string delta_by_spans(std::string_view from, const PayloadLayout& from_layout,
                           std::uint64_t from_version, std::string_view to,
                           const PayloadLayout& to_layout, std::uint64_t to_version,
                           std::string_view to_signature, std::string_view signatures) {
  std::string added;
  std::string removed;
  std::string replaced;
  auto append = [](std::string& list, std::string_view bytes, bool quoted) {
    if (!list.empty()) list.push_back(',');
    if (quoted) list.push_back('"');
    list.append(bytes);
    if (quoted) list.push_back('"');
  };
  // Both lists are sorted by id: one merge walk.
  const auto& a = from_layout.connectors;
  const auto& b = to_layout.connectors;
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < a.size() || j < b.size()) {
    const std::string_view old_id = i < a.size() ? a[i].id.of(from) : std::string_view();
    const std::string_view new_id = j < b.size() ? b[j].id.of(to) : std::string_view();
    if (j == b.size() || (i < a.size() && old_id < new_id)) {
      append(removed, old_id, true);
      ++i;
    } else if (i == a.size() || new_id < old_id) {
      append(added, b[j].entry.of(to), false);
      ++j;
    } else {
      if (a[i].entry.of(from) != b[j].entry.of(to)) append(replaced, b[j].entry.of(to), false);
      ++i;
      ++j;
    }
  }
  std::string fields;
  for (const auto& m : to_layout.members) {
    const std::string_view key = m.key.of(to);
    if (key == "connectors") continue;
    const auto* old = member(from, from_layout, key);
    if (old != nullptr && old->value.of(from) == m.value.of(to)) continue;
    if (!fields.empty()) fields.push_back(',');
    fields.push_back('"');
    fields.append(key);
    fields.append("\":");
    fields.append(m.value.of(to));
  }
  std::string dropped;
  for (const auto& m : from_layout.members) {
    const std::string_view key = m.key.of(from);
    if (key != "connectors" && member(to, to_layout, key) == nullptr) append(dropped, key, true);
  }
  std::string out;
  out.reserve(added.size() + removed.size() + replaced.size() + fields.size() + dropped.size() +
              to_signature.size() + signatures.size() + 128);
  out.append(R"({"added":[)").append(added);
  out.append(R"(],"fields":{)").append(fields);
  out.append(R"(},"from":)");
  append_canonical_number(out, static_cast<double>(from_version));
  out.append(R"(,"removed":[)").append(removed).push_back(']');
  if (!dropped.empty()) out.append(R"(,"removedFields":[)").append(dropped).push_back(']');
  out.append(R"(,"replaced":[)").append(replaced);
  out.append(R"(],"signature":)");
  append_canonical_string(out, to_signature);
  if (!signatures.empty()) out.append(R"(,"signatures":)").append(signatures);
  out.append(R"(,"to":)");
  append_canonical_number(out, static_cast<double>(to_version));
  out.push_back('}');
  return out;
}

}  // namespace

Result<std::string> sse_delta_event(PayloadView from, std::uint64_t from_version, PayloadView to,
                                    std::uint64_t to_version, std::string_view to_signature,
                                    std::string_view to_signatures) {
  // The Ed25519 signatures of the new payload, so that a pinned-key client can verify too.
  std::string signatures;
  if (!to_signatures.empty()) {
    auto canonical = canonicalize(to_signatures);
    if (!canonical) return std::move(canonical).error();
    signatures = std::move(*canonical);
  }
  std::optional<PayloadLayout> from_found;
  std::optional<PayloadLayout> to_found;
  if (from.layout == nullptr && (from_found = scan_payload_layout(from.bytes))) {
    from.layout = &*from_found;
  }
  if (to.layout == nullptr && (to_found = scan_payload_layout(to.bytes))) to.layout = &*to_found;
  if (from.layout != nullptr && to.layout != nullptr &&
      plain_sorted_ids(from.bytes, *from.layout) && plain_sorted_ids(to.bytes, *to.layout)) {
    return sse_event("delta", std::to_string(to_version),
                     delta_by_spans(from.bytes, *from.layout, from_version, to.bytes, *to.layout,
                                    to_version, to_signature, signatures));
  }
  // Payloads that are no service map of this shape (no layout, ids out of order or escaped):
  // both parsed and diffed as trees.
  auto from_tree = parse_json(from.bytes);
  if (!from_tree) return std::move(from_tree).error();
  auto to_tree = parse_json(to.bytes);
  if (!to_tree) return std::move(to_tree).error();
  Json delta = compute_delta(*from_tree, *to_tree, from_version, to_version, to_signature);
  if (!signatures.empty()) delta.set("signatures", *parse_json(signatures));
  auto data = canonical_json(delta);
  if (!data) return std::move(data).error();
  return sse_event("delta", std::to_string(to_version), *data);
}

std::optional<std::uint64_t> parse_last_event_id(std::string_view header) noexcept {
  if (header.empty() || header.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(header.data(), header.data() + header.size(), v);
  if (ec != std::errc() || end != header.data() + header.size()) return std::nullopt;
  for (char c : header) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return v;
}

}  // namespace cortex_connectors
