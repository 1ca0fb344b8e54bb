// The Debian packages (cmake/packaging.cmake, docs/deploying.md) as an operator gets them. The
// ctest fixture package_build (tests/package/build.cmake) runs cpack -G DEB in this build tree
// into CORTEX_CONNECTORS_PACKAGE_DIR first; these tests read the .deb files with dpkg-deb,
// unpack them into a temporary root and run what they hold: the server (keys from files, the
// dashboard and example manifest found from the installed layout), the command-line tool, and
// systemd-analyze on the unit.
#include <regex>
#include <set>
#include <sstream>

#include <httplib.h>
#include <signal.h>

#include "cortex_connectors/json.h"
#include "cortex_connectors/version.h"
#include "server_process.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using cc::test::log_line;
namespace fs = std::filesystem;
using cc::test::ServerProcess;
using namespace std::chrono_literals;

namespace {

const std::string kSigningKey = "package-signing-key-1c7e30";
const std::string kApiKey = "package-api-key-94d2f5";

cc::test::RunResult run(const std::vector<std::string>& argv,
                        const std::vector<std::string>& env = {}) {
  return cc::test::run_program(argv, {}, env);
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string architecture() {
  const auto r = run({"/usr/bin/dpkg", "--print-architecture"});
  REQUIRE(r.exit_code == 0);
  return trimmed(r.out);
}

// <dir>/<name>_<version>_<arch>.deb, which the fixture must have built.
fs::path package(const std::string& name) {
  const fs::path deb =
      fs::path(CORTEX_CONNECTORS_PACKAGE_DIR) /
      (name + "_" + std::string(cc::version_string()) + "_" + architecture() + ".deb");
  INFO("run the fixture first: ctest -R package_build (" << deb << ")");
  REQUIRE(fs::exists(deb));
  return deb;
}

std::string field(const fs::path& deb, const std::string& name) {
  const auto r = run({"/usr/bin/dpkg-deb", "-f", deb.string(), name});
  REQUIRE(r.exit_code == 0);
  return trimmed(r.out);
}

// The paths a package installs, without the leading "./" (directories end with '/').
std::set<std::string> contents(const fs::path& deb) {
  const auto r = run({"/usr/bin/dpkg-deb", "--contents", deb.string()});
  REQUIRE(r.exit_code == 0);
  std::set<std::string> paths;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    const auto at = line.find(" ./");
    if (at != std::string::npos) paths.insert(line.substr(at + 3));
  }
  return paths;
}

bool has_prefix(const std::set<std::string>& paths, const std::string& prefix) {
  const auto it = paths.lower_bound(prefix);
  return it != paths.end() && it->rfind(prefix, 0) == 0;
}

// Unpacks `deb` under `root`, as dpkg would under /.
void unpack(const fs::path& deb, const fs::path& root) {
  const auto r = run({"/usr/bin/dpkg-deb", "-x", deb.string(), root.string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
}

fs::path secret_file(const fs::path& path, const std::string& content) {
  cc::test::write_file(path, content);
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  return path;
}

std::string string_member(const cc::Json& j, const char* name) {
  const cc::Json* m = j.is_object() ? j.find(name) : nullptr;
  return m != nullptr && m->is_string() ? m->as_string() : std::string();
}

// systemd-analyze, when it can run here: it needs no running systemd for `verify` and
// `security --offline`, but a container may lack it or refuse what it does. The reason
// otherwise.
std::optional<std::string> systemd_analyze_unusable(const fs::path& dir) {
  if (!fs::exists("/usr/bin/systemd-analyze")) return "systemd-analyze is not installed";
  cc::test::write_file(dir / "probe.service",
                       "[Unit]\nDescription=probe\n[Service]\nExecStart=/bin/true\n");
  const auto r = run({"/usr/bin/systemd-analyze", "verify", (dir / "probe.service").string()});
  if (r.exit_code != 0) return "systemd-analyze verify fails on a trivial unit: " + r.err;
  return std::nullopt;
}

}  // namespace

TEST_CASE("package: cpack builds the server and -dev packages with files, fields and depends",
          "[package]") {
  const std::string version(cc::version_string());
  const fs::path server = package("cortex-connectors-server");
  CHECK(field(server, "Package") == "cortex-connectors-server");
  CHECK(field(server, "Version") == version);
  CHECK(field(server, "Architecture") == architecture());
  CHECK(field(server, "Section") == "net");
  CHECK_FALSE(field(server, "Maintainer").empty());
  // From dpkg-shlibdeps: the libraries the ELF files link, with versions.
  const std::string depends = field(server, "Depends");
  INFO("Depends: " << depends);
  CHECK(std::regex_search(depends, std::regex("(^|, )libc6 \\(>= [0-9.]+\\)")));
  CHECK(depends.find("libcpp-httplib0.11") != std::string::npos);
  CHECK(depends.find("libsqlite3-0") != std::string::npos);
  if (CORTEX_CONNECTORS_HAVE_SYSTEMD) CHECK(depends.find("libsystemd0") != std::string::npos);

  const auto files = contents(server);
  for (const std::string path : {"usr/bin/cortex-connectors-server", "usr/bin/cortex-connectors",
                                 "usr/lib/systemd/system/cortex-connectors.service",
                                 "etc/cortex-connectors/cortex-connectors.env",
                                 "usr/share/cortex_connectors/connectors.manifest.json",
                                 "usr/share/cortex_connectors/connectors-manifest.schema.json",
                                 "usr/share/cortex_connectors/apps/chatgpt-dashboard/index.html",
                                 "usr/share/doc/cortex-connectors-server/copyright",
                                 "usr/share/doc/cortex-connectors-server/README.md",
                                 "usr/share/doc/cortex-connectors-server/docs/deploying.md",
                                 "usr/share/doc/cortex-connectors-server/docs/server.md"}) {
    INFO(path);
    CHECK(files.count(path) == 1);
  }
  CHECK_FALSE(has_prefix(files, "usr/include/"));
  CHECK_FALSE(has_prefix(files, "usr/local/"));
  // Files only: no maintainer script (nothing is enabled or started by installing), and the
  // configuration file is a conffile (an upgrade keeps the operator's edits).
  const auto control = run({"/usr/bin/dpkg-deb", "--info", server.string()});
  REQUIRE(control.exit_code == 0);
  for (const char* script : {"preinst", "postinst", "prerm", "postrm", "config", "triggers"}) {
    INFO(control.out);
    CHECK_FALSE(std::regex_search(control.out, std::regex(std::string(" ") + script + "\\s")));
  }
  const auto conffiles = run({"/usr/bin/dpkg-deb", "--info", server.string(), "conffiles"});
  CHECK(conffiles.out == "/etc/cortex-connectors/cortex-connectors.env\n");

  const fs::path dev = package("libcortexconnectors-dev");
  CHECK(field(dev, "Package") == "libcortexconnectors-dev");
  CHECK(field(dev, "Version") == version);
  CHECK(field(dev, "Architecture") == architecture());
  CHECK(field(dev, "Depends").find("libsimdjson-dev") != std::string::npos);
  const auto dev_files = contents(dev);
  CHECK(dev_files.count("usr/include/cortex_connectors/registry.h") == 1);
  CHECK(dev_files.count("usr/include/cortex_connectors/service_map_client.h") == 1);
  CHECK(dev_files.count("usr/share/doc/libcortexconnectors-dev/copyright") == 1);
  auto has_file = [&](const std::string& suffix) {
    return std::any_of(dev_files.begin(), dev_files.end(), [&](const std::string& p) {
      return p.size() >= suffix.size() &&
             p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0;
    });
  };
  CHECK(has_file("/libcortexconnectors.a"));
  CHECK(has_file("/libcortexconnectors_client.a"));
  CHECK(has_file("/cmake/cortex_connectors/cortex_connectorsConfig.cmake"));
  CHECK(has_file("/pkgconfig/cortex_connectors.pc"));
  CHECK_FALSE(has_prefix(dev_files, "usr/bin/"));
  CHECK_FALSE(has_prefix(dev_files, "etc/"));

  // The pkg-config file finds the prefix from where it lies, wherever it is unpacked.
  cc::test::TempDir root;
  unpack(dev, root.path());
  std::string pc_dir;
  for (const auto& p : dev_files) {
    if (p.size() > 18 && p.ends_with("/cortex_connectors.pc")) {
      pc_dir = (root.path() / p).parent_path().string();
    }
  }
  REQUIRE_FALSE(pc_dir.empty());
  const auto prefix = run({"/usr/bin/pkg-config", "--variable=prefix", "cortex_connectors"},
                          {"PKG_CONFIG_PATH=" + pc_dir, "PKG_CONFIG_LIBDIR=" + pc_dir});
  INFO(prefix.err);
  REQUIRE(prefix.exit_code == 0);
  CHECK(fs::equivalent(trimmed(prefix.out), root.path() / "usr"));
}

TEST_CASE("package: the unpacked server and tool run from the installed layout, keys from files",
          "[package]") {
  cc::test::TempDir root;
  unpack(package("cortex-connectors-server"), root.path());
  const fs::path share = root.path() / "usr/share/cortex_connectors";
  const fs::path server = root.path() / "usr/bin/cortex-connectors-server";
  const fs::path cli = root.path() / "usr/bin/cortex-connectors";
  cc::test::TempDir dir;
  const auto signing = secret_file(dir / "signature-key", kSigningKey + "\n");
  const auto api = secret_file(dir / "api-key", kApiKey + "\n");

  const auto version = run({server.string(), "--version"});
  CHECK(version.out == "cortex-connectors-server " + std::string(cc::version_string()) + "\n");

  // --dev serves the example manifest it finds beside the executable; the keys are the files'.
  ServerProcess p({"--dev", "--port", "0"},
                  {"CONNECTORS_SIGNATURE_KEY_FILE=" + signing.string(),
                   "CONNECTORS_API_KEY_FILE=" + api.string()},
                  server.string());
  INFO(p.log());
  REQUIRE(p.port() > 0);
  CHECK(fs::equivalent(string_member(log_line(p.log(), "listening"), "manifest"),
                       share / "connectors.manifest.json"));
  const cc::Json dashboard = log_line(p.log(), "dashboard bundle loaded");
  REQUIRE(dashboard.is_object());
  CHECK(fs::equivalent(string_member(dashboard, "dir"), share / "apps/chatgpt-dashboard"));

  httplib::Client client("127.0.0.1", p.port());
  REQUIRE(cc::test::eventually_true([&] {
    auto r = client.Get("/ready");
    return r && r->status == 200;
  }));
  const auto map =
      client.Get("/v1/connectors/service-map", {{"Authorization", "Bearer " + kApiKey}});
  REQUIRE(map);
  CHECK(map->status == 200);
  const auto page = client.Get("/apps/chatgpt-dashboard/index.html");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->get_header_value("Content-Type").rfind("text/html", 0) == 0);
  // --dev prints the keys it makes; these came from files, so nothing is printed or logged.
  for (const std::string& key : {kSigningKey, kApiKey}) {
    CHECK(p.out().find(key) == std::string::npos);
    CHECK(p.log().find(key) == std::string::npos);
  }

  // The tool: the same manifest validates, and its service map is the bytes the server serves.
  const std::string manifest = (share / "connectors.manifest.json").string();
  CHECK(run({cli.string(), "validate", manifest}).exit_code == 0);
  const auto body =
      run({cli.string(), "service-map", "--plain", "--manifest", manifest},
          {"CONNECTORS_SIGNATURE_KEY=", "CONNECTORS_SIGNATURE_KEY_FILE=" + signing.string()});
  INFO(body.err);
  REQUIRE(body.exit_code == 0);
  CHECK(body.out == map->body);
  CHECK(p.stop(SIGTERM, 5s) == 0);
}

TEST_CASE("package: systemd-analyze verifies the unit and rates its exposure below 2.0",
          "[package]") {
  cc::test::TempDir root;
  unpack(package("cortex-connectors-server"), root.path());
  const std::string unit =
      cc::test::read_file(root.path() / "usr/lib/systemd/system/cortex-connectors.service");
  const std::string type = CORTEX_CONNECTORS_HAVE_SYSTEMD ? "notify" : "exec";
  CHECK(unit.find("\nType=" + type + "\n") != std::string::npos);
  CHECK(unit.find("\nExecStart=/usr/bin/cortex-connectors-server\n") != std::string::npos);
  CHECK(unit.find("\nExecReload=/bin/kill -HUP $MAINPID\n") != std::string::npos);
  CHECK(unit.find("\nDynamicUser=yes\n") != std::string::npos);
  CHECK(unit.find("\nStateDirectory=cortex-connectors\n") != std::string::npos);
  CHECK(unit.find("\nEnvironmentFile=-/etc/cortex-connectors/cortex-connectors.env\n") !=
        std::string::npos);
  CHECK(unit.find("\nLoadCredential=signature-key:/etc/cortex-connectors/signature-key\n") !=
        std::string::npos);
  CHECK(unit.find("\nLoadCredential=api-key:/etc/cortex-connectors/api-key\n") !=
        std::string::npos);
  CHECK(unit.find("\nConditionPathExists=/etc/cortex-connectors/connectors.manifest.json\n") !=
        std::string::npos);
  // No secret is set in the unit: its only variable is the manifest's path.
  std::smatch m;
  std::string rest = unit;
  std::vector<std::string> assignments;
  const std::regex environment("\nEnvironment=([^\n]*)");
  while (std::regex_search(rest, m, environment)) {
    assignments.push_back(m[1]);
    rest = m.suffix();
  }
  CHECK(assignments ==
        std::vector<std::string>{
            "CONNECTORS_MANIFEST_PATH=/etc/cortex-connectors/connectors.manifest.json"});

  cc::test::TempDir work;
  if (auto why = systemd_analyze_unusable(work.path())) {
    WARN("systemd-analyze checks skipped: " << *why);
    return;
  }
  // The unit as installed, but starting the unpacked binary (verify checks that it exists).
  std::string local = unit;
  const std::string exec = "ExecStart=/usr/bin/cortex-connectors-server";
  local.replace(local.find(exec), exec.size(),
                "ExecStart=" + (root.path() / "usr/bin/cortex-connectors-server").string());
  const fs::path copy = work / "cortex-connectors.service";
  cc::test::write_file(copy, local);
  const auto verify = run({"/usr/bin/systemd-analyze", "verify", copy.string()});
  INFO(verify.out << verify.err);
  CHECK(verify.exit_code == 0);
  CHECK(verify.err.empty());

  const auto security =
      run({"/usr/bin/systemd-analyze", "security", "--offline=true", "--no-pager", copy.string()});
  INFO(security.out << security.err);
  REQUIRE(security.exit_code == 0);
  std::smatch level;
  REQUIRE(std::regex_search(security.out, level,
                            std::regex("Overall exposure level for cortex-connectors\\.service: "
                                       "([0-9]+\\.[0-9]+)")));
  const double exposure = std::stod(level[1]);
  WARN("systemd-analyze security --offline=true: exposure " << level[1]);
  CHECK(exposure < 2.0);
}
