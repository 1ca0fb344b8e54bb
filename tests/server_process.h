// Runs the real cortex-connectors-server binary for a test: port 0, logs captured, the bound
// port read from the "listening" log line, SIGTERM on destruction.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <sys/types.h>

namespace cortex_connectors::test {

class ServerProcess {
 public:
  // Starts the server with `args` and `env` ("NAME=value", added to a minimal environment).
  // Waits until it logs the port (or exits). port() is 0 when it never listened.
  // `binary` is another copy of the server (empty: the one built with the tests).
  ServerProcess(std::vector<std::string> args, std::vector<std::string> env,
                std::string binary = {});
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Everything written to stderr (the JSON log) and stdout so far.
  std::string log() const;
  std::string out() const;
  // Sends `sig` and waits up to `timeout` for the exit; returns the exit code, or -1 on timeout
  // (the process is then killed).
  int stop(int sig, std::chrono::milliseconds timeout, std::chrono::milliseconds* took = nullptr);
  // Waits for the process to exit on its own; returns its exit code or -1 on timeout.
  int wait_exit(std::chrono::milliseconds timeout);

 private:
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_code_ = -1;
};

}  // namespace cortex_connectors::test
