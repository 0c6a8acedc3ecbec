// `atrium ledger ...`: the ledger's command line.
#include "cli/commands.h"

namespace atrium::cli {

void RegisterLedgerCommands(CLI::App& app) {
  CLI::App* ledger = app.add_subcommand("ledger", "Credit accounts, transfers, holds and balances");
  ledger->require_subcommand(1);
}

}  // namespace atrium::cli
