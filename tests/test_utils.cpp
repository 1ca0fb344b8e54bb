#include "test_utils.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;  // NOLINT

namespace cortex_connectors::test {

std::filesystem::path data_path(std::string_view relative) {
  return std::filesystem::path(CORTEX_CONNECTORS_TEST_DATA_DIR) / relative;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::filesystem::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  REQUIRE(out.good());
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  REQUIRE(out.good());
}

std::string read_data(std::string_view relative) { return read_file(data_path(relative)); }

void replace_file(const std::filesystem::path& path, std::string_view content) {
  const auto tmp = path.parent_path() / ".tmp-manifest";
  write_file(tmp, content);
  std::filesystem::rename(tmp, path);
}

std::string original_fixture() { return read_data("manifests/original-fixture.manifest.json"); }

std::string original_fixture_with_ttl(int ttl) {
  std::string text = original_fixture();
  text.replace(text.find("\"ttlSeconds\": 600"), 17, "\"ttlSeconds\": " + std::to_string(ttl));
  return text;
}

std::string generated_manifest(int connectors) {
  std::string manifest = R"({"id":"01J7X5MB4K1ZW0000000000000","manifestVersion":"1.0.0",)"
                         R"("brand":"brAInwav","ttlSeconds":600,"connectors":[)";
  for (int i = 0; i < connectors; ++i) {
    const std::string n = std::to_string(i);
    manifest += (i ? "," : "") + std::string(R"({"id":"connector-)") + n +
                R"(","name":"Connector )" + n +
                R"(","version":"1.0.0","endpoint":"https://c.example.invalid/)" + n +
                R"(","auth":{"type":"none"},"scopes":["read","write"],"ttlSeconds":60})";
  }
  return manifest + "]}";
}

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);  // NOLINT
  return fd;
}

std::string raw_exchange(int port, const std::string& request, std::chrono::milliseconds timeout,
                         std::chrono::milliseconds per_byte_delay) {
  const int fd = connect_to(port);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (per_byte_delay.count() == 0) {
    ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  } else {
    for (char c : request) {
      if (::send(fd, &c, 1, MSG_NOSIGNAL) != 1) break;
      if (std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(per_byte_delay);
    }
  }
  std::string got;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return got;
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "cortex-test-XXXXXX").string();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  // Restore permissions a test may have removed, so removal succeeds.
  for (auto it = std::filesystem::recursive_directory_iterator(
           path_, std::filesystem::directory_options::skip_permission_denied, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
  }
  std::filesystem::remove_all(path_, ec);
}

RunResult run_program(const std::vector<std::string>& argv, std::string_view input,
                      const std::vector<std::string>& env) {
  // A program may exit without reading its input (a usage error): writing to the closed pipe
  // must be an EPIPE here, not a SIGPIPE that kills the test binary.
  static const bool sigpipe_ignored = [] {
    ::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)sigpipe_ignored;
  int in_pipe[2];
  int out_pipe[2];
  int err_pipe[2];
  REQUIRE(::pipe2(in_pipe, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);

  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  for (const auto& extra : env) {
    const auto name = extra.substr(0, extra.find('=') + 1);
    std::erase_if(env_strings, [&](const std::string& s) { return s.rfind(name, 0) == 0; });
    env_strings.push_back(extra);
  }
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> c_args;
  for (auto& a : args) c_args.push_back(a.data());
  c_args.push_back(nullptr);

  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, c_args[0], &actions, nullptr, c_args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  REQUIRE(rc == 0);

  RunResult result;
  std::size_t written = 0;
  if (input.empty()) ::close(in_pipe[1]), in_pipe[1] = -1;
  pollfd fds[3] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}, {in_pipe[1], POLLOUT, 0}};
  int open_reads = 2;
  while (open_reads > 0) {
    const nfds_t nfds = in_pipe[1] >= 0 ? 3 : 2;
    if (::poll(fds, nfds, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[65536];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_reads;
      } else {
        (i == 0 ? result.out : result.err).append(buf, static_cast<std::size_t>(n));
      }
    }
    if (in_pipe[1] >= 0 && fds[2].revents != 0) {
      const ssize_t n = ::write(in_pipe[1], input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if (n < 0 || written == input.size()) {
        ::close(in_pipe[1]);
        in_pipe[1] = -1;
      }
    }
  }
  if (in_pipe[1] >= 0) ::close(in_pipe[1]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

RunResult run_cli(const std::vector<std::string>& args, std::string_view input,
                  const std::vector<std::string>& env) {
  std::vector<std::string> argv{CORTEX_CONNECTORS_CLI};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv, input, env);
}

void check_promtool_metrics(const std::string& text) {
  if (::access("/usr/bin/promtool", X_OK) != 0) return;
  auto check = run_program({"/usr/bin/promtool", "check", "metrics"}, text);
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
}

Json log_line(const std::string& log, const std::string& msg) {
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    auto j = parse_json(line);
    if (j && j->find("msg") && j->find("msg")->is_string() && j->find("msg")->as_string() == msg) {
      return std::move(*j);
    }
  }
  return {};
}

}  // namespace cortex_connectors::test
