#include "service_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

namespace atrium::testing {

ServiceProcess::~ServiceProcess() {
  if (pid_ > 0) Stop(SIGKILL);
}

bool ServiceProcess::Start(const std::string& binary, const std::vector<std::string>& args) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return false;
  std::vector<std::string> argv = {binary, "serve", "--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_ = fork();
  if (pid_ == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    dup2(pipe_fds[1], STDERR_FILENO);
    std::vector<char*> raw;
    for (std::string& arg : argv) raw.push_back(arg.data());
    raw.push_back(nullptr);
    execv(raw[0], raw.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  out_fd_ = pipe_fds[0];
  url_.clear();
  token_file_.clear();
  output_.clear();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::string pending;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd poll_fd{out_fd_, POLLIN, 0};
    if (poll(&poll_fd, 1, 200) <= 0) continue;
    char buffer[4096];
    const ssize_t got = read(out_fd_, buffer, sizeof(buffer));
    if (got <= 0) break;  // the process ended
    output_.append(buffer, static_cast<size_t>(got));
    pending.append(buffer, static_cast<size_t>(got));
    for (size_t end = pending.find('\n'); end != std::string::npos; end = pending.find('\n')) {
      const std::string line = pending.substr(0, end);
      pending.erase(0, end + 1);
      if (auto at = line.find("admin token written to "); at != std::string::npos) {
        token_file_ = line.substr(at + 23, line.find(" (mode") - at - 23);
      }
      if (auto at = line.find("listening on "); at != std::string::npos) {
        url_ = line.substr(at + 13);
        // From now on a thread drains the output (the service logs one line per event).
        reader_ = std::thread([this] {
          char chunk[4096];
          for (ssize_t n; (n = read(out_fd_, chunk, sizeof(chunk))) > 0;) {
            std::lock_guard lock(output_mutex_);
            output_.append(chunk, static_cast<size_t>(n));
          }
        });
        return true;
      }
    }
  }
  Stop(SIGKILL);
  return false;
}

int ServiceProcess::Stop(int signal) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  // Drain what it printed while stopping.
  if (reader_.joinable()) {
    reader_.join();
  } else {
    char buffer[4096];
    for (ssize_t got; (got = read(out_fd_, buffer, sizeof(buffer))) > 0;) {
      output_.append(buffer, static_cast<size_t>(got));
    }
  }
  close(out_fd_);
  out_fd_ = -1;
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

std::string ServiceProcess::output() const {
  std::lock_guard lock(output_mutex_);
  return output_;
}

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace atrium::testing
