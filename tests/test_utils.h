// Helpers shared by the tests: test data, temporary directories and running the CLI.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "cortex_connectors/json.h"
#include "cortex_connectors/result.h"

namespace cortex_connectors::test {

// Reads tests/data/<relative> whole; fails the test when it cannot.
std::string read_data(std::string_view relative);
std::filesystem::path data_path(std::string_view relative);

std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, std::string_view content);
// Replaces `path` whole in one rename (a watcher never sees a half-written file).
void replace_file(const std::filesystem::path& path, std::string_view content);

// tests/data/manifests/original-fixture.manifest.json, the original service's fixture.
std::string original_fixture();
// The same with the manifest ttl set to `ttl`: a new payload for every value <= 120.
std::string original_fixture_with_ttl(int ttl);
// A valid manifest of `connectors` connectors "connector-0", "connector-1", ... (about 250 bytes
// of service map each), without generatedAt.
std::string generated_manifest(int connectors);

// A fresh directory under the system temporary directory, removed with the object.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// The outcome of running a program.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] is a path) with `env` added to the environment ("NAME=value") and `input`
// on standard input; captures both outputs.
RunResult run_program(const std::vector<std::string>& argv, std::string_view input = {},
                      const std::vector<std::string>& env = {});

// Polls `condition` every 10 ms until it holds or `timeout` passes; returns its last value.
// For outcomes with no event to wait on (a failure being recorded); never a fixed sleep.
template <class F>
bool eventually_true(F condition, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// A TCP connection to 127.0.0.1:`port` (fails the test when refused).
int connect_to(int port);

// A raw TCP exchange: sends `request` (optionally byte by byte with a delay) and returns what
// the server sent before closing or before `timeout`.
std::string raw_exchange(int port, const std::string& request, std::chrono::milliseconds timeout,
                         std::chrono::milliseconds per_byte_delay = std::chrono::milliseconds(0));

// Runs the cortex-connectors tool built with the tests.
RunResult run_cli(const std::vector<std::string>& args, std::string_view input = {},
                  const std::vector<std::string>& env = {});

// Checks `text` with `promtool check metrics` when promtool is installed (Debian package
// prometheus; scripts/install-deps.sh adds it).
void check_promtool_metrics(const std::string& text);

// The JSON log line (of a server's log) whose msg is `msg`, or null.
Json log_line(const std::string& log, const std::string& msg);

}  // namespace cortex_connectors::test

// Requires a Result or Status to hold success, printing the error otherwise.
#define REQUIRE_OK(r)                                                                     \
  do {                                                                                    \
    const auto& require_ok_r_ = (r);                                                      \
    if (!require_ok_r_) FAIL_CHECK(::cortex_connectors::describe(require_ok_r_.error())); \
    REQUIRE(static_cast<bool>(require_ok_r_));                                            \
  } while (false)
