#include "server_process.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_utils.h"

namespace cortex_connectors::test {

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

ServerProcess::ServerProcess(std::vector<std::string> args, std::vector<std::string> env,
                             std::string binary) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "cortex-server-XXXXXX").string();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  dir_ = tmpl;
  const std::string out_path = (dir_ / "stdout").string();
  const std::string err_path = (dir_ / "stderr").string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::vector<std::string> argv{binary.empty() ? std::string(CORTEX_CONNECTORS_SERVER)
                                               : std::move(binary)};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> c_args;
  for (auto& a : argv) c_args.push_back(a.data());
  c_args.push_back(nullptr);
  env.emplace_back("PATH=/usr/bin:/bin");
  // Each server keeps its history in its own directory unless the test names one.
  if (std::none_of(env.begin(), env.end(),
                   [](const std::string& e) { return e.rfind("CONNECTORS_STATE_DIR=", 0) == 0; })) {
    env.push_back("CONNECTORS_STATE_DIR=" + (dir_ / "state").string());
  }
  // Sanitizer settings reach the server too, unless the test set its own.
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS"}) {
    const char* value = std::getenv(name);
    const std::string prefix = std::string(name) + "=";
    const bool given = std::any_of(env.begin(), env.end(),
                                   [&](const std::string& e) { return e.rfind(prefix, 0) == 0; });
    if (value != nullptr && !given) env.push_back(prefix + value);
  }
  std::vector<char*> c_env;
  for (auto& e : env) c_env.push_back(e.data());
  c_env.push_back(nullptr);
  const int rc = ::posix_spawn(&pid_, c_args[0], &actions, nullptr, c_args.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  const std::regex port_re("\"msg\":\"listening\"[^\\n]*\"port\":([0-9]+)");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    std::smatch m;
    const std::string text = log();
    if (std::regex_search(text, m, port_re)) {
      port_ = std::stoi(m[1]);
      return;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) stop(SIGKILL, std::chrono::seconds(5));
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string ServerProcess::log() const { return slurp(dir_ / "stderr"); }
std::string ServerProcess::out() const { return slurp(dir_ / "stdout"); }

int ServerProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_code_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      pid_ = -1;
      return exit_code_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return -1;
}

int ServerProcess::stop(int sig, std::chrono::milliseconds timeout,
                        std::chrono::milliseconds* took) {
  if (pid_ <= 0) return exit_code_;
  const auto start = std::chrono::steady_clock::now();
  ::kill(pid_, sig);
  const int code = wait_exit(timeout);
  if (took) {
    *took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start);
  }
  if (code == -1 && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  return code;
}

}  // namespace cortex_connectors::test
