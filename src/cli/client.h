// The CLI client's connection to a running `atrium serve`, for commands outside the
// client's own table (`atrium import`): the shared options (--server, --token-file,
// --program and their ATRIUM_* variables) and one change sent with an Idempotency-Key
// and retried like every client change. An unreachable service exits with
// kExitUnreachable and a whole sentence saying why.
#pragma once

#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace atrium::cli {

struct ServiceTarget {
  std::string server;      // default ATRIUM_SERVER, else http://127.0.0.1:8080
  std::string token_file;  // default ATRIUM_TOKEN / ATRIUM_TOKEN_FILE
  std::string program;     // default ATRIUM_PROGRAM, else the service's only program
};

void AddServiceOptions(CLI::App* command, ServiceTarget* target);

struct ServiceAnswer {
  int status = 0;
  nlohmann::json body;
};

// Sends the op's change (its route from the op table; path parameters from `body`,
// {program} from the target) and returns the service's answer, refusals included.
ServiceAnswer SendOp(const ServiceTarget& target, std::string_view op, nlohmann::json body);

}  // namespace atrium::cli
