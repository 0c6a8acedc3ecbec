#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace atrium::testing {
namespace {

struct Child {
  pid_t pid = -1;
  int out_fd = -1;
  int err_fd = -1;
};

Child Spawn(const std::vector<std::string>& argv, const std::string& input) {
  int out_pipe[2], err_pipe[2], in_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0 || pipe(in_pipe) != 0) {
    throw std::runtime_error("pipe failed");
  }
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) {
      close(fd);
    }
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  // Inputs in tests are small: write them whole, then close.
  if (!input.empty()) (void)!write(in_pipe[1], input.data(), input.size());
  close(in_pipe[1]);
  return Child{pid, out_pipe[0], err_pipe[0]};
}

// Reads from both pipes until both close or `deadline` passes (if `stop_at_deadline`).
void Pump(Child& child, ProcessResult& result,
          const std::function<bool(const std::string&)>& on_line,
          std::chrono::steady_clock::time_point deadline, bool* stop_requested) {
  std::string pending_line;
  bool out_open = true;
  bool err_open = true;
  while (out_open || err_open) {
    int timeout_ms = -1;
    if (stop_requested != nullptr && !*stop_requested) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      timeout_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    pollfd fds[2] = {{out_open ? child.out_fd : -1, POLLIN, 0},
                     {err_open ? child.err_fd : -1, POLLIN, 0}};
    const int ready = poll(fds, 2, timeout_ms);
    if (ready == 0 && stop_requested != nullptr && !*stop_requested) {
      *stop_requested = true;
      kill(child.pid, SIGKILL);
      continue;
    }
    char buffer[4096];
    if (out_open && (fds[0].revents & (POLLIN | POLLHUP))) {
      const ssize_t got = read(child.out_fd, buffer, sizeof(buffer));
      if (got <= 0) {
        out_open = false;
      } else {
        result.out.append(buffer, static_cast<size_t>(got));
        pending_line.append(buffer, static_cast<size_t>(got));
        size_t newline;
        while ((newline = pending_line.find('\n')) != std::string::npos) {
          const std::string line = pending_line.substr(0, newline);
          pending_line.erase(0, newline + 1);
          if (on_line && on_line(line) && stop_requested != nullptr && !*stop_requested) {
            *stop_requested = true;
            kill(child.pid, SIGKILL);
          }
        }
      }
    }
    if (err_open && (fds[1].revents & (POLLIN | POLLHUP))) {
      const ssize_t got = read(child.err_fd, buffer, sizeof(buffer));
      if (got <= 0) {
        err_open = false;
      } else {
        result.err.append(buffer, static_cast<size_t>(got));
      }
    }
  }
}

void Reap(Child& child, ProcessResult& result) {
  close(child.out_fd);
  close(child.err_fd);
  int status = 0;
  waitpid(child.pid, &status, 0);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
}

}  // namespace

ProcessResult Run(const std::vector<std::string>& argv, const std::string& input) {
  Child child = Spawn(argv, input);
  ProcessResult result;
  Pump(child, result, nullptr, {}, nullptr);
  Reap(child, result);
  return result;
}

ProcessResult RunAndKill(const std::vector<std::string>& argv, std::chrono::milliseconds kill_after,
                         const std::function<bool(const std::string&)>& on_line) {
  Child child = Spawn(argv, {});
  ProcessResult result;
  bool stop_requested = false;
  Pump(child, result, on_line, std::chrono::steady_clock::now() + kill_after, &stop_requested);
  Reap(child, result);
  return result;
}

}  // namespace atrium::testing
