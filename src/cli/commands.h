// The `atrium` command's subcommand groups. Each group lives in its own file and adds
// itself to the application here; main.cc calls every Register function in turn.
#pragma once

#include <CLI/CLI.hpp>

namespace atrium::cli {

// Exit codes shared by every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;  // the request was understood and refused (a code says why)
inline constexpr int kExitUsage = 2;    // malformed command line or input file
inline constexpr int kExitStorage = 3;  // the store could not be read or written, or is corrupt
inline constexpr int kExitUnreachable = 4;  // the service could not be reached (client commands)

// `atrium ledger ...`: accounts, transfers, holds, balances, verify, bench, demo.
void RegisterLedgerCommands(CLI::App& app);
// `atrium ledger demo`, added to the ledger group by RegisterLedgerCommands.
void RegisterLedgerDemo(CLI::App* ledger_app);
// `atrium simulate ...`: replay a workload on a cluster under a policy (virtual time).
void RegisterSimulateCommands(CLI::App& app);

// `atrium program ...`: load a program, calls, proposals, review, decisions, grants,
// obligations, demo and bench.
void RegisterProgramCommands(CLI::App& app);

// `atrium audit verify`: check an exported public decision log.
void RegisterAuditCommands(CLI::App& app);

// `atrium report program`: the transparency report.
void RegisterReportCommands(CLI::App& app);

// `atrium import institutions|people|reviewers FILE.csv`: bulk registration (one
// all-or-nothing people_import op per file), to a service or offline (--data).
void RegisterImportCommands(CLI::App& app);

// `atrium serve`: the service.
void RegisterServeCommand(CLI::App& app);
// The client of a running service: token, programs, call, decision, proposal, conflict,
// review, grant, obligation, account, log, report show, job, node, partition, whoami.
// Registered after the offline groups (it adds `report show` to theirs).
void RegisterClientCommands(CLI::App& app);

}  // namespace atrium::cli
