// A running `atrium serve` for tests: started on a free loopback port, its URL read from
// its first lines of output, stopped with SIGTERM (graceful) or SIGKILL (a crash). The
// destructor kills what is still running, so a failed test leaves no server behind.
#pragma once

#include <sys/types.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace atrium::testing {

class ServiceProcess {
 public:
  ServiceProcess() = default;
  ~ServiceProcess();
  ServiceProcess(const ServiceProcess&) = delete;
  ServiceProcess& operator=(const ServiceProcess&) = delete;

  // Runs `atrium serve --listen 127.0.0.1:0 <args>` and waits until it prints where it
  // listens. Returns false (with the output so far in output()) if it exits first.
  bool Start(const std::string& binary, const std::vector<std::string>& args);
  // Sends `signal` and waits for the process; returns its exit code (-signal if killed).
  int Stop(int signal);
  bool running() const { return pid_ > 0; }

  const std::string& url() const { return url_; }
  const std::string& token_file() const { return token_file_; }
  // What it printed so far (a thread keeps reading it, so the pipe never fills up).
  std::string output() const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string url_;
  std::string token_file_;
  mutable std::mutex output_mutex_;
  std::string output_;
  std::thread reader_;
};

// Reads the first line of a file (a token file), without its newline.
std::string ReadFirstLine(const std::string& path);

}  // namespace atrium::testing
