// The `atrium` command: one binary for every role. Subcommand groups register
// themselves (commands.h). A subcommand that fails prints its error and throws
// CLI::RuntimeError(exit code), which ends up here as the process's exit code. Any other
// exception is a bug: it is reported on stderr with exit code 70 (EX_SOFTWARE in
// sysexits.h) instead of ending the process in std::terminate.
#include <cstdio>
#include <exception>

#include "cli/commands.h"

int main(int argc, char** argv) {
  constexpr int kExitInternal = 70;
  try {
    CLI::App app{"Atrium: research-compute grant programs and the accelerator cluster they fund"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "atrium 0.1.0");
    atrium::cli::RegisterLedgerCommands(app);
    atrium::cli::RegisterSimulateCommands(app);
    atrium::cli::RegisterProgramCommands(app);
    atrium::cli::RegisterAuditCommands(app);
    atrium::cli::RegisterReportCommands(app);
    atrium::cli::RegisterServeCommand(app);
    atrium::cli::RegisterClientCommands(app);
    atrium::cli::RegisterImportCommands(app);
    try {
      app.parse(argc, argv);
    } catch (const CLI::RuntimeError& failure) {
      return failure.get_exit_code();
    } catch (const CLI::ParseError& error) {
      const int code = app.exit(error);
      return code == 0 ? atrium::cli::kExitOk : atrium::cli::kExitUsage;
    }
    return atrium::cli::kExitOk;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "atrium: internal error: %s\n", error.what());
    return kExitInternal;
  } catch (...) {
    std::fprintf(stderr, "atrium: internal error\n");
    return kExitInternal;
  }
}
