// Running the real `atrium` binary from tests: with arguments, optional standard input,
// captured output, and an optional SIGKILL after a delay. Tests use it to treat the
// command line exactly as a user or a crash would.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace atrium::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 if killed by a signal
  int signal = 0;      // the signal that ended it, if any
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] is the program path) to completion.
ProcessResult Run(const std::vector<std::string>& argv, const std::string& input = {});

// Runs `argv`, passes each complete line of its standard output to `on_line`, and sends
// SIGKILL once `kill_after` has passed or `on_line` returns true. Returns what was read,
// including lines that arrived between the decision and the kill.
ProcessResult RunAndKill(const std::vector<std::string>& argv, std::chrono::milliseconds kill_after,
                         const std::function<bool(const std::string&)>& on_line);

}  // namespace atrium::testing
