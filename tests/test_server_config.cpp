// The server's command line, run as the real binary: --help, --version, unknown arguments, the
// options table of docs/server.md (generated from the same table as the parser and --help), and
// what the listening lines and the --dev banner say about the address.
#include <regex>
#include <set>
#include <sstream>

#include <signal.h>

#include "cortex_connectors/json.h"
#include "cortex_connectors/version.h"
#include "server_process.h"
#include "test_utils.h"

namespace cc = cortex_connectors;
using cc::test::log_line;
using cc::test::ServerProcess;
using namespace std::chrono_literals;

namespace {

// Runs the server with `args`; `env` is added to the environment.
cc::test::RunResult server(std::vector<std::string> args, std::vector<std::string> env = {}) {
  args.insert(args.begin(), CORTEX_CONNECTORS_SERVER);
  return cc::test::run_program(args, {}, env);
}

// The flags and variables named in the first two columns of the Markdown table: each code
// span there holds names separated by ", ", a flag followed by its value ("--port PORT").
std::set<std::string> table_names(const std::string& markdown) {
  std::set<std::string> names;
  std::istringstream lines(markdown);
  std::string line;
  const std::regex code("`([^`]+)`");
  while (std::getline(lines, line)) {
    if (line.rfind("| ", 0) != 0 || line.rfind("|---", 0) == 0) continue;
    std::size_t cut = 0;  // the third '|': what follows is the default and the meaning
    for (int bars = 0; bars < 3 && cut != std::string::npos; ++bars) cut = line.find('|', cut + 1);
    const std::string cells = line.substr(0, cut);
    for (std::sregex_iterator it(cells.begin(), cells.end(), code), end; it != end; ++it) {
      std::istringstream parts((*it)[1].str());
      std::string part;
      while (std::getline(parts, part, ',')) {
        const auto start = part.find_first_not_of(' ');
        names.insert(part.substr(start, part.find(' ', start) - start));
      }
    }
  }
  return names;
}

}  // namespace

TEST_CASE("help: --help and -h print every option of the table on stdout and exit 0",
          "[server][config]") {
  const auto markdown = server({"--help-markdown"});
  REQUIRE(markdown.exit_code == 0);
  const auto names = table_names(markdown.out);
  // The table holds the original service's variables, the flags and the new listeners.
  for (const char* expected : {"CONNECTORS_SIGNATURE_KEY",
                               "CONNECTORS_API_KEY",
                               "MCP_API_KEY",
                               "NO_AUTH",
                               "LOG_LEVEL",
                               "APPS_BUNDLE_DIR",
                               "ENABLE_PROMETHEUS",
                               "OTEL_EXPORTER_OTLP_ENDPOINT",
                               "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                               "OTEL_EXPORTER_OTLP_HEADERS",
                               "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                               "OTEL_TRACES_SAMPLER",
                               "CONNECTORS_HOST",
                               "--host",
                               "CONNECTORS_PORT",
                               "--port",
                               "--manifest",
                               "--apps-dir",
                               "--heartbeat-seconds",
                               "--dev",
                               "--no-history",
                               "--previous-key-file",
                               "--trusted-keys",
                               "--role",
                               "--redis",
                               "--metrics-port",
                               "METRICS_PORT",
                               "--metrics-host",
                               "METRICS_HOST",
                               "-h",
                               "--help",
                               "--version",
                               "--help-markdown"}) {
    INFO(expected);
    CHECK(names.count(expected) == 1);
  }
  for (const char* flag : {"--help", "-h"}) {
    // Nothing else is read: no key is needed, a bad variable does not matter.
    const auto r = server({flag}, {"CONNECTORS_PORT=not-a-port"});
    INFO(flag << ": " << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out.rfind("usage: cortex-connectors-server [options]\n", 0) == 0);
    for (const auto& name : names) {
      INFO(name);
      CHECK(r.out.find(name) != std::string::npos);
    }
  }
  // After other flags too.
  CHECK(server({"--port", "0", "--help"}).exit_code == 0);
}

TEST_CASE("version: --version prints the version and exits 0", "[server][config]") {
  const auto r = server({"--version"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "cortex-connectors-server " + std::string(cc::version_string()) + "\n");
  CHECK(r.err.empty());
}

TEST_CASE("an unknown argument names itself and points at --help", "[server][config]") {
  const std::vector<std::string> env{"CONNECTORS_SIGNATURE_KEY=s", "CONNECTORS_API_KEY=a"};
  auto refused = [&](std::vector<std::string> args, std::vector<std::string> extra_env = {}) {
    auto all_env = env;
    all_env.insert(all_env.end(), extra_env.begin(), extra_env.end());
    ServerProcess p(std::move(args), all_env);
    const int code = p.wait_exit(10s);
    CHECK(p.out().empty());
    return std::make_pair(code, p.log());
  };
  using Exit = std::pair<int, std::string>;
  CHECK(refused({"--bogus"}) == Exit{2, "[brAInwav] unknown argument \"--bogus\" (see --help)\n"});
  // An inline value is not repeated (it may be a secret).
  CHECK(refused({"--bogus=s3cret"}) ==
        Exit{2, "[brAInwav] unknown argument \"--bogus\" (see --help)\n"});
  CHECK(refused({"--port"}) == Exit{2, "[brAInwav] --port needs a value\n"});
  CHECK(refused({"--dev=yes"}) == Exit{2, "[brAInwav] --dev takes no value\n"});
  CHECK(refused({"--metrics-port", "99999"}) ==
        Exit{2, "[brAInwav] --metrics-port must be a port number 0-65535\n"});
  CHECK(refused({}, {"METRICS_PORT=-1"}) ==
        Exit{2, "[brAInwav] METRICS_PORT must be a port number 0-65535\n"});
}

TEST_CASE("docs/server.md holds the options table the binary prints", "[server][config]") {
  // scripts/update-options-doc.sh rewrites the block; this fails until it has been run.
  const std::string doc =
      cc::test::read_file(std::filesystem::path(CORTEX_CONNECTORS_SOURCE_DIR) / "docs/server.md");
  const std::string begin = "<!-- options:begin -->\n";
  const std::string end = "<!-- options:end -->";
  const auto b = doc.find(begin);
  const auto e = doc.find(end);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  REQUIRE(b < e);
  const auto r = server({"--help-markdown"});
  REQUIRE(r.exit_code == 0);
  INFO("run scripts/update-options-doc.sh to regenerate the table in docs/server.md");
  CHECK(doc.substr(b + begin.size(), e - b - begin.size()) == r.out);
}

TEST_CASE("a loopback listener says so and names the setting that opens it", "[server][config]") {
  cc::test::TempDir dir;
  cc::test::write_file(dir / "m.json", cc::test::original_fixture());
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    ServerProcess p({"--port", "0", "--host", host, "--manifest", (dir / "m.json").string()},
                    {"CONNECTORS_SIGNATURE_KEY=s", "CONNECTORS_API_KEY=a"});
    REQUIRE(p.port() > 0);
    const cc::Json line = log_line(p.log(), "listening");
    INFO(p.log());
    REQUIRE(line.is_object());
    CHECK(line.find("host")->as_string() == host);
    REQUIRE(line.find("bind_note"));
    CHECK(line.find("bind_note")->as_string() ==
          "loopback only; set CONNECTORS_HOST=0.0.0.0 or --host to listen on all interfaces");
    CHECK(p.stop(SIGTERM, 5s) == 0);
  }
}

TEST_CASE("the --dev banner names the address and the variable that changes it",
          "[server][config]") {
  ServerProcess p({"--dev", "--port", "0"}, {});
  REQUIRE(p.port() > 0);
  REQUIRE(
      cc::test::eventually_true([&] { return p.out().find("try: curl") != std::string::npos; }));
  const std::string out = p.out();
  INFO(out);
  CHECK(out.find("--dev on http://127.0.0.1:" + std::to_string(p.port()) + "\n") !=
        std::string::npos);
  CHECK(out.find("listening on 127.0.0.1 only (loopback)") != std::string::npos);
  CHECK(out.find("CONNECTORS_HOST=0.0.0.0") != std::string::npos);
  CHECK(p.stop(SIGTERM, 5s) == 0);
}
