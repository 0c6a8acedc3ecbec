// `atrium audit verify FILE`: recomputes the hash chain of an exported public decision
// log and names the first broken entry. Exit 0 when the chain holds, 1 (refused) with
// code chain_broken when it does not, 3 when the file cannot be read.
#include <fmt/core.h>

#include <memory>

#include "cli/commands.h"
#include "cli/program_session.h"
#include "program/decision_log.h"

namespace atrium::cli {

void RegisterAuditCommands(CLI::App& app) {
  CLI::App* audit = app.add_subcommand("audit", "Verify public records");
  audit->require_subcommand(1);
  auto path = std::make_shared<std::string>();
  auto head = std::make_shared<std::string>();
  CLI::App* verify =
      audit->add_subcommand("verify", "Verify an exported decision log (JSON Lines)");
  verify->add_option("log", *path, "Exported log file")->required();
  verify->add_option("--head", *head, "Expected head hash (as published)");
  verify->callback([path, head] {
    Result<std::string> text = ReadFile(*path);
    if (!text.ok()) {
      fmt::print(stderr, "error: {}\n", text.error().ToString());
      throw CLI::RuntimeError(kExitStorage);
    }
    const program::LogVerification verification = program::VerifyLog(*text);
    if (!verification.ok) {
      fmt::print(stderr, "error: {}: entry {} is broken: {} ({} entries verified before it)\n",
                 ToString(ErrorCode::kChainBroken), verification.first_broken, verification.reason,
                 verification.entries);
      throw CLI::RuntimeError(kExitRefused);
    }
    if (!head->empty() && *head != verification.head) {
      fmt::print(stderr, "error: {}: the chain holds but its head {} is not the published {}\n",
                 ToString(ErrorCode::kChainBroken), verification.head, *head);
      throw CLI::RuntimeError(kExitRefused);
    }
    fmt::print("ok: {} entries, head {}\n", verification.entries, verification.head);
  });
}

}  // namespace atrium::cli
