// `atrium report program --state FILE --format json|html`: the program's transparency
// report (see src/report/program_report.h).
#include <fmt/core.h>

#include <memory>

#include "cli/commands.h"
#include "cli/program_session.h"
#include "report/program_report.h"

namespace atrium::cli {

void RegisterReportCommands(CLI::App& app) {
  CLI::App* report = app.add_subcommand("report", "Usage, fairness and transparency reports");
  report->require_subcommand(1);
  auto state_path = std::make_shared<std::string>("atrium-program");
  auto format = std::make_shared<std::string>("json");
  auto out = std::make_shared<std::string>();
  CLI::App* program = report->add_subcommand("program", "The grant program's transparency report");
  program->add_option("--data,--state", *state_path, "Program data folder (atrium program --data)")
      ->capture_default_str();
  program->add_option("--format", *format, "json or html")
      ->check(CLI::IsMember({"json", "html"}))
      ->capture_default_str();
  program->add_option("--out", *out, "File (default: standard output)");
  program->callback([state_path, format, out] {
    Result<ProgramSession> session = ProgramSession::Load(*state_path);
    if (!session.ok()) {
      fmt::print(stderr, "error: {}\n", session.error().ToString());
      throw CLI::RuntimeError(session.code() == ErrorCode::kParseError ? kExitUsage : kExitStorage);
    }
    Result<const program::ProgramState*> state = session->Program();
    if (!state.ok()) {
      fmt::print(stderr, "error: {}\n", state.error().ToString());
      throw CLI::RuntimeError(kExitUsage);
    }
    const std::string text = *format == "html" ? report::ProgramReportHtml(**state)
                                               : report::ProgramReportJson(**state).dump(2) + "\n";
    if (out->empty()) {
      fmt::print("{}", text);
      return;
    }
    const Status written = WriteFile(*out, text);
    if (!written.ok()) {
      fmt::print(stderr, "error: {}\n", written.error().ToString());
      throw CLI::RuntimeError(kExitStorage);
    }
  });
}

}  // namespace atrium::cli
