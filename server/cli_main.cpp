// cortex-connectors: the command-line tool.
//
//   canonicalize [FILE|-]   print the RFC 8785 form of a JSON document (no trailing newline)
//   verify [FILE|-]         check a saved service-map body's signature (key from
//                           CONNECTORS_SIGNATURE_KEY, or the file CONNECTORS_SIGNATURE_KEY_FILE
//                           names, as the server reads it); exit 0 valid, 1 invalid
//   verify --public-key KEY | --keys-url-file FILE [FILE|-]
//                           check its Ed25519 "signatures" against pinned public keys instead
//   keygen OUT [--not-before T] [--not-after T]
//                           write a new Ed25519 key file (mode 0600, never overwritten) and
//                           print its kid and public key
//   validate PATH           exit 0 if the manifest is valid, else 1 and every error, one per
//                           line, JSON pointer first
//   schema                  print the JSON Schema (draft 2020-12) of the manifest
//   service-map [--manifest PATH] [--plain]
//                           print the signed service-map body (pretty, or with --plain the exact
//                           canonical bytes the server serves); the manifest as the server
//                           finds it: --manifest, CONNECTORS_MANIFEST_PATH, the default path
//   history list|show VERSION [--service-map]|diff A B [--state-dir DIR]
//                           the recorded snapshots of a server's state directory
//   rollback VERSION [--manifest PATH] [--state-dir DIR]
//                           write a recorded version's manifest back (atomically); the running
//                           server's watcher publishes it as a new version
//
// Exit codes: 0 success, 1 the input is invalid, 2 usage or configuration error.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "cortex_connectors/cortex_connectors.h"
#include "cortex_connectors/sqlite_history.h"

namespace cc = cortex_connectors;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitInvalid = 1;
constexpr int kExitUsage = 2;

constexpr const char* kUsage =
    "usage: cortex-connectors <command> [args]\n"
    "  canonicalize [FILE|-]   print the RFC 8785 canonical form of a JSON document\n"
    "  verify [FILE|-]         check a service-map body's signature (CONNECTORS_SIGNATURE_KEY)\n"
    "  verify (--public-key KEY | --keys-url-file FILE)... [FILE|-]\n"
    "                          check its Ed25519 signatures against pinned public keys\n"
    "  keygen OUT [--not-before RFC3339] [--not-after RFC3339]\n"
    "                          write a new Ed25519 key file (0600) and print kid and public key\n"
    "  validate PATH           check a connectors manifest; every error, one per line\n"
    "  schema                  print the manifest's JSON Schema (draft 2020-12)\n"
    "  service-map [--manifest PATH] [--plain]\n"
    "                          print the signed service map (CONNECTORS_SIGNATURE_KEY;\n"
    "                          default path: CONNECTORS_MANIFEST_PATH, as the server)\n"
    "  history list [--state-dir DIR]\n"
    "  history show VERSION [--service-map] [--state-dir DIR]\n"
    "  history diff A B [--state-dir DIR]\n"
    "                          recorded snapshots (default dir: CONNECTORS_STATE_DIR, else\n"
    "                          $XDG_STATE_HOME/cortex-connectors, ~/.local/state/..., ./state)\n"
    "  rollback VERSION [--manifest PATH] [--state-dir DIR]\n"
    "                          write a recorded manifest back atomically to the manifest\n"
    "                          the history belongs to (another path is refused); the server\n"
    "                          publishes it anew\n"
    "  version                 print the library version\n"
    "The signing key comes from CONNECTORS_SIGNATURE_KEY, or from the file named by\n"
    "CONNECTORS_SIGNATURE_KEY_FILE (mode 0600; one trailing newline removed).\n";

int usage_error(std::string_view message) {
  fmt::print(stderr, "[brAInwav] {}\n{}", message, kUsage);
  return kExitUsage;
}

std::optional<std::string> env_var(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::optional<std::string>(v) : std::nullopt;
}

// The HMAC key as the server takes it: CONNECTORS_SIGNATURE_KEY, or the file that
// CONNECTORS_SIGNATURE_KEY_FILE names (config.h: read_secret_file()). nullopt after printing
// why (never the key): neither is set, both are, or the file is refused.
std::optional<std::string> signature_key() {
  const auto value = env_var("CONNECTORS_SIGNATURE_KEY");
  const auto file = env_var("CONNECTORS_SIGNATURE_KEY_FILE");
  const bool has_value = value && !value->empty();
  const bool has_file = file && !file->empty();
  if (has_value && has_file) {
    usage_error(
        "CONNECTORS_SIGNATURE_KEY and CONNECTORS_SIGNATURE_KEY_FILE are both set: give the "
        "secret one way");
    return std::nullopt;
  }
  if (has_file) {
    auto key = cc::server::read_secret_file("CONNECTORS_SIGNATURE_KEY_FILE", *file,
                                            env_var("CREDENTIALS_DIRECTORY"));
    if (!key) {
      fmt::print(stderr, "{}\n", key.error().message);
      return std::nullopt;
    }
    return std::move(*key);
  }
  if (has_value) return *value;
  usage_error("CONNECTORS_SIGNATURE_KEY is not set");
  return std::nullopt;
}

// Reads a whole file, or standard input for "-". Returns nullopt after printing the reason.
std::optional<std::string> read_input(std::string_view path) {
  std::FILE* f = path == "-" ? stdin : std::fopen(std::string(path).c_str(), "rb");
  if (f == nullptr) {
    fmt::print(stderr, "[brAInwav] cannot open {}: {}\n", path, std::strerror(errno));
    return std::nullopt;
  }
  std::string data;
  char buf[65536];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  if (f != stdin) std::fclose(f);
  if (failed) {
    fmt::print(stderr, "[brAInwav] cannot read {}\n", path);
    return std::nullopt;
  }
  return data;
}

int cmd_canonicalize(std::span<char*> args) {
  if (args.size() > 1) return usage_error("canonicalize takes at most one FILE");
  auto input = read_input(args.empty() ? "-" : args[0]);
  if (!input) return kExitInvalid;
  auto canonical = cc::canonicalize(*input);
  if (!canonical) {
    fmt::print(stderr, "{}\n", cc::describe(canonical.error()));
    return kExitInvalid;
  }
  std::fwrite(canonical->data(), 1, canonical->size(), stdout);
  return kExitOk;
}

// verify with pinned Ed25519 public keys: the body's "signatures" over its canonical payload.
int cmd_verify_public(const cc::PublicKeySet& keys, std::string_view path) {
  auto input = read_input(path);
  if (!input) return kExitInvalid;
  auto doc = cc::parse_json(*input);
  const cc::Json* payload = doc && doc->is_object() ? doc->find("payload") : nullptr;
  if (payload == nullptr || !payload->is_object()) {
    fmt::print(stderr, "[brAInwav] not a signed service-map body\n");
    return kExitInvalid;
  }
  const cc::Json* signatures = doc->find("signatures");
  auto canonical = cc::canonical_json(*payload);
  if (!canonical) {
    fmt::print(stderr, "{}\n", cc::describe(canonical.error()));
    return kExitInvalid;
  }
  auto kid = cc::verify_ed25519_signatures(signatures != nullptr ? *signatures : cc::Json(), keys,
                                           *canonical);
  if (!kid) {
    fmt::print(stderr, "{}\n", cc::describe(kid.error()));
    return kExitInvalid;
  }
  fmt::print("[brAInwav] Ed25519 signature valid (kid {})\n", *kid);
  return kExitOk;
}

int cmd_verify(std::span<char*> args) {
  cc::PublicKeySet keys;
  bool pinned = false;
  std::vector<char*> rest;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--public-key" || a == "--keys-url-file") {
      if (i + 1 >= args.size()) return usage_error(fmt::format("verify: {} needs a value", a));
      const std::string_view value = args[++i];
      pinned = true;
      if (a == "--public-key") {
        auto key = cc::parse_public_key(value);
        if (!key) return usage_error("verify: " + key.error().message);
        keys.push_back(std::move(*key));
      } else {
        auto text = read_input(value);
        if (!text) return kExitUsage;
        auto set = cc::parse_keys_document(*text);
        if (!set) return usage_error(fmt::format("verify: {}: {}", value, set.error().message));
        keys.insert(keys.end(), set->begin(), set->end());
      }
    } else if (a.starts_with("--") && a.size() > 2) {
      return usage_error(fmt::format("verify: unknown option \"{}\"", a.substr(0, 64)));
    } else {
      rest.push_back(args[i]);
    }
  }
  if (rest.size() > 1) return usage_error("verify takes at most one FILE");
  if (pinned) return cmd_verify_public(keys, rest.empty() ? "-" : rest[0]);
  args = std::span<char*>(rest);
  const auto key = signature_key();
  if (!key) return kExitUsage;
  auto input = read_input(args.empty() ? "-" : args[0]);
  if (!input) return kExitInvalid;
  auto verified = cc::verify_signed_body(*input, cc::as_bytes(*key));
  if (!verified) {
    fmt::print(stderr, "{}\n", cc::describe(verified.error()));
    return kExitInvalid;
  }
  fmt::print("[brAInwav] signature valid\n");
  return kExitOk;
}

// Prints a manifest error: the summary, then one "pointer: message" line per finding.
void print_manifest_error(const cc::Error& error) {
  fmt::print(stderr, "{}\n", error.message);
  for (const auto& issue : error.issues) {
    fmt::print(stderr, "{}: {}\n", issue.pointer.empty() ? "(root)" : issue.pointer, issue.message);
  }
}

int cmd_validate(std::span<char*> args) {
  if (args.size() != 1) return usage_error("validate takes exactly one PATH");
  auto loaded = cc::load_manifest(std::string_view(args[0]));
  if (!loaded) {
    print_manifest_error(loaded.error());
    return kExitInvalid;
  }
  fmt::print("[brAInwav] {}: valid manifest, {} connectors\n", loaded->file.path,
             loaded->manifest.connectors.size());
  return kExitOk;
}

int cmd_keygen(std::span<char*> args) {
  std::optional<std::string> out;
  std::string not_before;
  std::string not_after;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--not-before" || a == "--not-after") {
      if (i + 1 >= args.size()) return usage_error(fmt::format("keygen: {} needs a value", a));
      const std::string_view v = args[++i];
      if (!cc::is_rfc3339_date_time(v)) {
        return usage_error(fmt::format("keygen: {} must be an RFC 3339 date-time", a));
      }
      (a == "--not-before" ? not_before : not_after) = std::string(v);
    } else if (a.starts_with("--") || out) {
      return usage_error(fmt::format("keygen: unexpected argument \"{}\"", a.substr(0, 64)));
    } else {
      out = std::string(a);
    }
  }
  if (!out) return usage_error("keygen takes an OUT path");
  auto key = cc::Ed25519Key::generate();
  key.set_validity(std::move(not_before), std::move(not_after));
  if (auto written = cc::write_ed25519_key_file(*out, key); !written) {
    fmt::print(stderr, "{}\n", written.error().message);
    return kExitInvalid;
  }
  fmt::print("[brAInwav] wrote Ed25519 key file {} (mode 0600)\nkid: {}\npublic key: {}\n", *out,
             key.kid(), key.public_key().key_base64url());
  return kExitOk;
}

int cmd_service_map(std::span<char*> args) {
  std::optional<std::string_view> manifest_path;
  bool plain = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--plain") {
      plain = true;
    } else if (a == "--manifest" && i + 1 < args.size()) {
      manifest_path = args[++i];
    } else if (a.starts_with("--manifest=")) {
      manifest_path = a.substr(11);
    } else {
      return usage_error(fmt::format("service-map: unexpected argument \"{}\"", a));
    }
  }
  const auto key = signature_key();
  if (!key) return kExitUsage;
  // As the server: --manifest, else CONNECTORS_MANIFEST_PATH, else the default path.
  const auto env_path = env_var("CONNECTORS_MANIFEST_PATH");
  if (!manifest_path && env_path && !env_path->empty()) manifest_path = *env_path;
  auto loaded = cc::load_manifest(manifest_path);
  if (!loaded) {
    print_manifest_error(loaded.error());
    return kExitInvalid;
  }
  // Without generatedAt in the manifest, the file's modification time stands in for the load
  // time, so that repeated runs on unchanged content print the same bytes.
  struct stat st {};
  auto when = std::chrono::system_clock::now();
  if (::stat(loaded->file.path.c_str(), &st) == 0) {
    when = std::chrono::system_clock::from_time_t(st.st_mtim.tv_sec);
  }
  const std::string generated_at = cc::format_rfc3339(when);
  auto signed_map = cc::sign_service_map(cc::build_service_map(loaded->manifest, generated_at),
                                         cc::as_bytes(*key));
  if (!signed_map) {
    print_manifest_error(signed_map.error());
    return kExitInvalid;
  }
  if (plain) {
    // The bytes the server serves.
    std::fwrite(signed_map->body.data(), 1, signed_map->body.size(), stdout);
    return kExitOk;
  }
  cc::Json body = cc::Json::object();
  body.set("payload", std::move(signed_map->payload));
  body.set("signature", signed_map->signature);
  fmt::print("{}\n", *cc::pretty_json(body));
  return kExitOk;
}

// Options shared by `history` and `rollback`: positional arguments, --state-dir, --manifest and
// --service-map.
struct HistoryArgs {
  std::vector<std::string_view> positional;
  std::string state_dir;
  std::optional<std::string> manifest;
  bool service_map = false;
};

std::optional<HistoryArgs> parse_history_args(std::span<char*> args) {
  HistoryArgs out;
  out.state_dir = cc::server::default_state_dir(env_var);
  if (auto v = env_var("CONNECTORS_STATE_DIR"); v && !v->empty()) out.state_dir = *v;
  if (auto v = env_var("CONNECTORS_MANIFEST_PATH"); v && !v->empty()) out.manifest = *v;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--state-dir" || a == "--manifest") {
      if (i + 1 >= args.size()) {
        usage_error(fmt::format("{} needs a value", a));
        return std::nullopt;
      }
      (a == "--state-dir" ? out.state_dir : out.manifest.emplace()) = args[++i];
    } else if (a == "--service-map") {
      out.service_map = true;
    } else if (a.starts_with("--")) {
      usage_error(fmt::format("unknown option \"{}\"", a.substr(0, 64)));
      return std::nullopt;
    } else {
      out.positional.push_back(a);
    }
  }
  return out;
}

std::optional<std::uint64_t> parse_version(std::string_view text) {
  auto v = cc::parse_last_event_id(text);
  if (!v || *v == 0) usage_error(fmt::format("\"{}\" is not a version", text.substr(0, 64)));
  return v && *v != 0 ? v : std::nullopt;
}

// Opens the history read-only; prints the reason and returns null when it cannot.
std::unique_ptr<cc::SqliteHistoryStore> open_history(const std::string& state_dir) {
  const std::string path = state_dir + "/" + cc::kHistoryDatabaseName;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    fmt::print(stderr, "[brAInwav] no history at {} (set --state-dir or CONNECTORS_STATE_DIR)\n",
               path);
    return nullptr;
  }
  auto store = cc::SqliteHistoryStore::open(path, /*read_only=*/true);
  if (!store) {
    fmt::print(stderr, "{}\n", store.error().message);
    return nullptr;
  }
  return std::move(*store);
}

// The signed service-map body of a recorded entry, as the server served it.
std::string recorded_body(const cc::HistoryEntry& e) { return e.signed_body().body; }

int cmd_history(std::span<char*> args) {
  auto h = parse_history_args(args);
  if (!h) return kExitUsage;
  if (h->positional.empty()) return usage_error("history needs list, show or diff");
  const std::string_view sub = h->positional[0];
  const std::size_t want = sub == "list" ? 1 : sub == "show" ? 2 : sub == "diff" ? 3 : 0;
  if (want == 0)
    return usage_error(fmt::format("unknown history command \"{}\"", sub.substr(0, 64)));
  if (h->positional.size() != want)
    return usage_error(fmt::format("history {}: wrong arguments", sub));
  std::vector<std::uint64_t> versions;
  for (std::size_t i = 1; i < want; ++i) {
    auto v = parse_version(h->positional[i]);
    if (!v) return kExitUsage;
    versions.push_back(*v);
  }
  auto store = open_history(h->state_dir);
  if (!store) return kExitUsage;
  if (sub == "list") {
    auto list = store->list();
    if (!list) {
      fmt::print(stderr, "{}\n", list.error().message);
      return kExitInvalid;
    }
    for (const auto& i : *list) {
      fmt::print("{}\t{}\t{}\t{}\t{}\n", i.version, cc::format_rfc3339(i.loaded_at),
                 i.content_hash.substr(0, 16), i.manifest_bytes, i.path);
    }
    return kExitOk;
  }
  std::vector<cc::HistoryEntry> entries;
  for (const auto v : versions) {
    auto e = store->load(v);
    if (!e) {
      fmt::print(stderr, "{}\n", e.error().message);
      return kExitInvalid;
    }
    entries.push_back(std::move(*e));
  }
  if (sub == "show") {
    const std::string out = h->service_map ? recorded_body(entries[0]) : entries[0].manifest;
    std::fwrite(out.data(), 1, out.size(), stdout);
    return kExitOk;
  }
  auto from = cc::parse_json(entries[0].payload);
  auto to = cc::parse_json(entries[1].payload);
  if (!from || !to) {
    fmt::print(stderr, "[brAInwav] a recorded payload does not parse\n");
    return kExitInvalid;
  }
  const cc::Json delta = cc::compute_delta(*from, *to, versions[0], versions[1], "");
  fmt::print("{} -> {}\n", versions[0], versions[1]);
  auto ids = [](const cc::Json& list, char mark) {
    for (const auto& c : list.as_array()) {
      const cc::Json* id = c.is_string() ? &c : c.find("id");
      if (id != nullptr && id->is_string()) fmt::print("{} {}\n", mark, id->as_string());
    }
  };
  ids(*delta.find("added"), '+');
  ids(*delta.find("removed"), '-');
  ids(*delta.find("replaced"), '~');
  for (const auto& [key, value] : delta.find("fields")->as_object()) {
    fmt::print("field {}: {}\n", key, *cc::canonical_json(value));
  }
  if (const cc::Json* dropped = delta.find("removedFields"); dropped != nullptr) {
    for (const auto& key : dropped->as_array())
      fmt::print("field {}: (removed)\n", key.as_string());
  }
  return kExitOk;
}

// Writes `content` to `path` through a temporary file in the same directory and rename(2), so a
// reader (the server's watcher) sees the old or the new manifest, never a partial one.
bool write_atomically(const std::string& path, std::string_view content) {
  std::string tmp = path + ".rollback-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) {
    fmt::print(stderr, "[brAInwav] cannot create a file next to {}: {}\n", path,
               std::strerror(errno));
    return false;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) ::fchmod(fd, st.st_mode & 07777);
  std::size_t done = 0;
  bool ok = true;
  while (ok && done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    fmt::print(stderr, "[brAInwav] cannot write {}: {}\n", path, std::strerror(errno));
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

int cmd_rollback(std::span<char*> args) {
  auto h = parse_history_args(args);
  if (!h) return kExitUsage;
  if (h->positional.size() != 1) return usage_error("rollback needs one VERSION");
  auto v = parse_version(h->positional[0]);
  if (!v) return kExitUsage;
  auto store = open_history(h->state_dir);
  if (!store) return kExitUsage;
  auto e = store->load(*v);
  if (!e) {
    fmt::print(stderr, "{}\n", e.error().message);
    return kExitInvalid;
  }
  // A store names the manifest it belongs to: that file, and no other, is rolled back.
  const std::string& owner = store->manifest_path();
  const std::string path =
      h->manifest.value_or(!owner.empty()    ? owner
                           : e->path.empty() ? std::string(cc::kDefaultManifestPath)
                                             : e->path);
  if (!owner.empty() && cc::normalize_manifest_path(path) != owner) {
    fmt::print(stderr,
               "[brAInwav] the history at {} belongs to the manifest {}, not {}: roll back with "
               "that server's --state-dir, or with --manifest {}\n",
               h->state_dir, owner, path, owner);
    return kExitUsage;
  }
  if (!write_atomically(path, e->manifest)) return kExitInvalid;
  fmt::print("wrote the manifest of version {} to {}; the server publishes it as a new version\n",
             *v, path);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  std::span<char*> all(argv, static_cast<std::size_t>(argc));
  if (all.size() < 2) return usage_error("missing command");
  const std::string_view command = all[1];
  auto args = all.subspan(2);
  try {
    if (command == "canonicalize") return cmd_canonicalize(args);
    if (command == "verify") return cmd_verify(args);
    if (command == "validate") return cmd_validate(args);
    if (command == "schema") {
      if (!args.empty()) return usage_error("schema takes no arguments");
      fmt::print("{}", cc::manifest_json_schema());
      return kExitOk;
    }
    if (command == "keygen") return cmd_keygen(args);
    if (command == "service-map") return cmd_service_map(args);
    if (command == "history") return cmd_history(args);
    if (command == "rollback") return cmd_rollback(args);
    if (command == "version") {
      fmt::print("cortex-connectors {}\n", cc::version_string());
      return kExitOk;
    }
    if (command == "--help" || command == "-h" || command == "help") {
      fmt::print("{}", kUsage);
      return kExitOk;
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "[brAInwav] internal error: {}\n", e.what());
    return kExitInvalid;
  }
  return usage_error(fmt::format("unknown command \"{}\"", command));
}
