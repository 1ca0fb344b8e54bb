#include <filesystem>
#include <map>
#include <sstream>

#include "cortex_connectors/json.h"
#include "cortex_connectors/manifest.h"
#include "cortex_connectors/validate.h"
#include "manifest_mutator.h"
#include "test_utils.h"
// The benchmarks' manifest generator (header-only, self-contained).
#include "../bench/manifest_generator.h"

namespace cc = cortex_connectors;
using cc::test::read_data;

namespace {

using cc::test::kValid;
using cc::test::with;

// One edit of kValid per rule and per edge of a rule: each is valid or invalid on purpose.
std::vector<std::string> edited_manifests() {
  const std::string ttl = R"("ttlSeconds": 60)";
  const auto extra = [&](std::string_view member) {
    return with(ttl, ttl + ", " + std::string(member));
  };
  const auto root = [&](std::string_view member) {
    return with(R"("manifestVersion")", std::string(member) + R"(, "manifestVersion")");
  };
  std::vector<std::string> out;
  for (const char* id : {"01J7X5MB4K1ZW000000000000I", "01j7x5mb4k1zw0000000000000",
                         "01J7X5MB4K1ZW00000000000000", "01J7X5MB4K1ZW0000000000000\\n", ""}) {
    out.push_back(with("01J7X5MB4K1ZW0000000000000", id));
  }
  for (const char* id : {"Alpha", "a", "-ab", "a_b", "ab\\n", "a-", "0a", ""}) {
    out.push_back(with(R"("id": "alpha")", std::string(R"("id": ")") + id + "\""));
  }
  out.push_back(with(R"("id": "alpha")", R"("id": ")" + std::string(63, 'a') + "\""));
  out.push_back(with(R"("id": "alpha")", R"("id": ")" + std::string(64, 'a') + "\""));
  for (const char* uri :
       {"alpha.example.invalid/mcp", "https://", "https:///x", "https://?q", "https://#f",
        "1http://host", "http://ho st", "mailto:a@b", "https://a\\n", "https://a\\u007f",
        "https://a\\t", "git+ssh://host", "redis://user@host:6379", "a:b://x", "https://\\u00e9"}) {
    out.push_back(with("https://alpha.example.invalid/mcp", uri));
  }
  for (const char* t : {"2025-10-10T00:00:00Z",
                        "2024-02-29T23:59:60.123+05:30",
                        "2025-10-10t00:00:00z",
                        "2023-02-29T00:00:00Z",
                        "1900-02-29T00:00:00Z",
                        "2000-02-29T00:00:00Z",
                        "0000-02-29T00:00:00Z",
                        "2025-04-31T00:00:00Z",
                        "2025-12-31T00:00:00-23:59",
                        "2025-10-10 00:00:00Z",
                        "2025-10-10T24:00:00Z",
                        "2025-10-10T00:00:00",
                        "2025-10-10T00:00:00.Z",
                        "2025-10-10T00:00:00+5:30",
                        "2025-10-10",
                        "2025-13-01T00:00:00Z",
                        "2025-10-10T00:00:00Z\\n",
                        "2025-10-10T00:00:61Z",
                        "2025-10-10T00:00:00+24:00",
                        ""}) {
    out.push_back(root(std::string(R"("generatedAt": ")") + t + "\""));
  }
  for (const char* member :
       {R"("brand": "brAInwav")", R"("brand": "brainwav")", R"("brand": 1)", R"("$schema": "")",
        R"("$schema": 1)", R"("schemaVersion": "")", R"("schemaVersion": null)",
        R"("ttlSeconds": 1)", R"("ttlSeconds": 0)", R"("metadata": {})", R"("metadata": [])",
        R"("extra": 1)", R"("manifestVersion": "")"}) {
    out.push_back(root(member));
  }
  for (const char* v : {"0", "-0", "1", "0.5", "60.0", "6e1", "1e300", "-1e300", "9007199254740991",
                        "9007199254740992.0", "\"60\"", "true", "null"}) {
    out.push_back(with(ttl, std::string(R"("ttlSeconds": )") + v));
  }
  for (const char* member :
       {R"("displayName": "")",
        R"("displayName": "A")",
        R"("description": "")",
        R"("status": "preview")",
        R"("status": "on")",
        R"("status": 1)",
        R"("enabled": false)",
        R"("enabled": "yes")",
        R"("metadata": {"a": [1, {"b": null}]})",
        R"("metadata": 1)",
        R"("headers": {"X-A": "${KEY}", "X-B": ""})",
        R"("headers": {"X-A": 1})",
        R"("headers": [])",
        R"("timeouts": {"connect": 0, "read": 1000})",
        R"("timeouts": {"connect": -5})",
        R"("timeouts": {"connect": 1.5})",
        R"("quotas": {"perMinute": 0, "perHour": 1, "perDay": 2, "concurrent": 3})",
        R"("quotas": {"perWeek": 1})",
        R"("quotas": {"perDay": -1})",
        R"("quotas": {})",
        R"("tags": [])",
        R"("tags": ["a", "a", ""])",
        R"("tags": ["a", null])",
        R"("tags": "a")",
        R"("authentication": {"headers": [{"name": "X-Key", "value": "${KEY:x}"}]})",
        R"("authentication": {"headers": []})",
        R"("authentication": {})",
        R"("authentication": {"headers": [{"name": ""}]})",
        R"("authentication": {"headers": [{"name": "a", "value": "", "x": 1}]})",
        R"("authentication": {"headers": [1]})",
        R"("authentication": [])",
        R"("remoteTools": [])",
        R"("remoteTools": [{"name": "t", "description": "",
            "tags": ["a", "a"], "scopes": []}])",
        R"("remoteTools": [{"tags": []}])",
        R"("remoteTools": [{"name": ""}])",
        R"("remoteTools": [{"name": "t", "other": 1}])",
        R"("remoteTools": {})",
        R"("color": "red")"}) {
    out.push_back(extra(member));
  }
  for (const char* scopes : {R"([])", R"(["a", ""])", R"(["a", "a"])", R"("a")", R"(["a", 1])",
                             R"(["search:query", "x"])"}) {
    out.push_back(with(R"(["a:read"])", scopes));
  }
  for (const char* auth : {R"({})", R"({"type": "apiKey", "headerName": "X-Key"})",
                           R"({"type": "none", "queryParam": ""})", R"({"type": "oauth"})",
                           R"({"type": "bearer", "header": "x"})", R"("bearer")"}) {
    out.push_back(with(R"({"type": "bearer"})", auth));
  }
  out.push_back(with(R"("id": "alpha", "name": "Alpha", "version": "1.0.0",)", ""));
  out.push_back("{}");
  out.push_back("[]");
  out.push_back(
      R"({"id": "01J7X5MB4K1ZW0000000000000", "manifestVersion": "1", "connectors": []})");
  // Duplicate connector ids, alone and with another finding.
  const std::string second = R"(,
    {"id": "alpha", "name": "Alpha", "version": "1.0.0",
     "endpoint": "https://alpha.example.invalid/mcp",
     "auth": {"type": "bearer"}, "scopes": ["a:read"], "ttlSeconds": 60}
  ])";
  out.push_back(with("}\n  ]", "}" + second));
  out.push_back(with("}\n  ]", "}" + with(R"("ttlSeconds": 60)", R"("ttlSeconds": 0)", second)));
  // Beyond the reader's limits: duplicate keys, unsafe integers, invalid UTF-8.
  out.push_back(extra(R"("ttlSeconds": 60)"));
  out.push_back(extra(R"("metadata": {"n": 9007199254740993})"));
  out.push_back(with("Alpha", "Al\xff"));
  return out;
}

// Every manifest of the tests: the data files, generated ones, the edits above and random edits.
std::vector<std::string> all_manifests() {
  std::vector<std::string> out = {read_data("manifests/cortex-os-example.manifest.json"),
                                  read_data("manifests/original-fixture.manifest.json"), kValid};
  for (const std::size_t n : {std::size_t{1}, std::size_t{10}, std::size_t{100}}) {
    for (const std::uint64_t seed : {std::uint64_t{301}, std::uint64_t{302}}) {
      out.push_back(cc::bench::generate_manifest(n, seed));
    }
  }
  for (std::string& text : edited_manifests()) out.push_back(std::move(text));
  auto generated = cc::parse_json(cc::bench::generate_manifest(6, 303));
  auto platform = cc::parse_json(read_data("manifests/cortex-os-example.manifest.json"));
  REQUIRE(generated);
  REQUIRE(platform);
  cc::test::Mutator mutator(20251207);
  for (int round = 0; round < 3000; ++round) {
    out.push_back(mutator.mutate(round % 2 == 0 ? *generated : *platform));
  }
  return out;
}

}  // namespace

TEST_CASE("the JSON Schema is written from the rules, and says what it leaves out",
          "[validate][schema]") {
  const std::string schema = cc::manifest_json_schema();
  auto doc = cc::parse_json(schema);
  REQUIRE_OK(doc);
  CHECK(doc->find("$schema")->as_string() == "https://json-schema.org/draft/2020-12/schema");
  const std::string comment = doc->find("$comment")->as_string();
  CHECK(comment.find("connector ids are unique") != std::string::npos);
  CHECK(comment.find("no duplicate keys") != std::string::npos);
  CHECK(comment.find("+-(2^53-1)") != std::string::npos);
  CHECK_FALSE(doc->find("additionalProperties")->as_bool());
  const cc::Json* required = doc->find("required");
  REQUIRE(required != nullptr);
  CHECK(*required == cc::Json(cc::Json::Array{"id", "manifestVersion", "connectors"}));
  const cc::Json* connector = doc->find("properties")->find("connectors")->find("items");
  CHECK(connector->find("required")->as_array().size() == 7);
  CHECK(schema.back() == '\n');
  auto cli = cc::test::run_cli({"schema"});
  CHECK(cli.exit_code == 0);
  CHECK(cli.out == schema);
  CHECK(cc::test::run_cli({"schema", "extra"}).exit_code == 2);
}

// python3-jsonschema, an independent validator, and validate() agree on every manifest of the
// tests, except where the schema's $comment says a JSON Schema cannot follow: findings that are
// all duplicate connector ids (the schema accepts those), and text the JSON reader refuses
// (kParse: duplicate keys, unsafe integers, limits; not a question for a schema).
TEST_CASE("python3-jsonschema and validate() agree on every manifest of the tests",
          "[validate][schema]") {
  const cc::test::TempDir dir;
  cc::test::write_file(dir / "schema.json", cc::manifest_json_schema());
  const std::filesystem::path docs = dir / "manifests";
  std::filesystem::create_directory(docs);
  const std::vector<std::string> manifests = all_manifests();
  enum class Verdict { kValid, kInvalid, kOnlyDuplicateIds, kUnreadable };
  std::map<std::string, std::size_t> index;  // file name -> manifest
  std::vector<Verdict> ours;
  for (std::size_t i = 0; i < manifests.size(); ++i) {
    std::string name = std::to_string(i);
    name = std::string(6 - name.size(), '0') + name + ".json";
    cc::test::write_file(docs / name, manifests[i]);
    index[name] = i;
    auto r = cc::parse_manifest(manifests[i]);
    if (r) {
      ours.push_back(Verdict::kValid);
    } else if (r.error().code == cc::ErrorCode::kParse) {
      ours.push_back(Verdict::kUnreadable);
    } else {
      bool only_ids = true;
      for (const cc::Issue& issue : r.error().issues) {
        only_ids = only_ids && issue.message.starts_with("duplicate connector id ");
      }
      ours.push_back(only_ids ? Verdict::kOnlyDuplicateIds : Verdict::kInvalid);
    }
  }
  const auto result = cc::test::run_program(
      {CORTEX_CONNECTORS_SCHEMA_PYTHON,
       std::string(CORTEX_CONNECTORS_SOURCE_DIR) + "/tests/schema/jsonschema_check.py",
       (dir / "schema.json").string(), docs.string()});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);

  std::istringstream lines(result.out);
  std::string name;
  std::string theirs;
  std::map<Verdict, std::size_t> counts;
  std::size_t checked = 0;
  while (lines >> name >> theirs) {
    REQUIRE(index.count(name) == 1);
    const std::size_t i = index[name];
    ++checked;
    ++counts[ours[i]];
    INFO(name << ": " << manifests[i].substr(0, 3000));
    switch (ours[i]) {
      case Verdict::kValid:
        CHECK(theirs == "valid");
        break;
      case Verdict::kInvalid:
        CHECK(theirs == "invalid");
        break;
      case Verdict::kOnlyDuplicateIds:  // the rule a schema cannot state
        CHECK(theirs == "valid");
        break;
      case Verdict::kUnreadable:  // the reader's limits: excluded
        break;
    }
  }
  CHECK(checked == manifests.size());
  // The corpus exercises every side.
  CHECK(counts[Verdict::kValid] > 100);
  CHECK(counts[Verdict::kInvalid] > 1000);
  CHECK(counts[Verdict::kOnlyDuplicateIds] >= 1);
  CHECK(counts[Verdict::kUnreadable] >= 3);
}
