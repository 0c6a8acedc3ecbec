#include "cli/program_session.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "journal/journal.h"
#include "journal/open.h"

namespace atrium::cli {

using nlohmann::json;

std::string ProgramStorePath(const std::string& dir) {
  return (std::filesystem::path(dir) / "atrium.db").string();
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(ErrorCode::kIoError, "cannot read " + path, "path");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Status WriteFile(const std::string& path, const std::string& contents) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out || !(out << contents) || !out.flush()) {
      return MakeError(ErrorCode::kIoError, "cannot write " + temporary, "path");
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    return MakeError(ErrorCode::kIoError, "cannot replace " + path, "path");
  }
  return OkStatus();
}

namespace {

// An old state file (a JSON document of replayed commands) where a data folder is
// expected: refused, with what to do instead.
Status RefuseOldStateFile(const std::string& path) {
  std::error_code ignored;
  if (!std::filesystem::is_regular_file(path, ignored)) return OkStatus();
  return MakeError(ErrorCode::kCorruption,
                   path +
                       " is a state file of an older `atrium program` (a JSON list of "
                       "commands); programs now live in a data folder (--data DIR, the "
                       "service's journal). Migrate by loading the program again: `atrium "
                       "program load PROGRAM.toml --data DIR`, then re-run its commands "
                       "(docs/program.md, \"Migrating from state files\")",
                   "data");
}

}  // namespace

ProgramSession::ProgramSession() = default;
ProgramSession::ProgramSession(ProgramSession&&) noexcept = default;
ProgramSession& ProgramSession::operator=(ProgramSession&&) noexcept = default;
ProgramSession::~ProgramSession() = default;

Result<ProgramSession> ProgramSession::Open(const std::string& dir, bool create) {
  ATRIUM_TRY(RefuseOldStateFile(dir));
  std::error_code error;
  if (create) {
    std::filesystem::create_directories(dir, error);
    if (error) return MakeError(ErrorCode::kIoError, "cannot create " + dir, "data");
  } else if (!std::filesystem::exists(ProgramStorePath(dir), error)) {
    return MakeError(ErrorCode::kNotFound,
                     "no program data in " + dir + " (start with `atrium program load`)", "data");
  }
  ATRIUM_ASSIGN_OR_RETURN(
      auto store,
      journal::OpenJournalStore(ProgramStorePath(dir), create ? journal::OpenMode::kReadWriteCreate
                                                              : journal::OpenMode::kReadWrite));
  ProgramSession session;
  ATRIUM_ASSIGN_OR_RETURN(session.durable_, journal::DurableCore::Open(std::move(store)));
  return session;
}

ProgramSession ProgramSession::InMemory() {
  ProgramSession session;
  session.memory_ = std::make_unique<core::Core>();
  return session;
}

Result<ProgramSession> ProgramSession::Load(const std::string& dir) {
  ATRIUM_TRY(RefuseOldStateFile(dir));
  std::error_code error;
  if (!std::filesystem::exists(ProgramStorePath(dir), error)) {
    return MakeError(ErrorCode::kIoError, "no program data in " + dir, "data");
  }
  ATRIUM_ASSIGN_OR_RETURN(
      auto store, journal::OpenJournalStore(ProgramStorePath(dir), journal::OpenMode::kReadOnly));
  ProgramSession session;
  journal::Options options;
  options.auto_snapshot = false;
  ATRIUM_ASSIGN_OR_RETURN(session.durable_, journal::DurableCore::Open(std::move(store), options));
  return session;
}

const core::AppState& ProgramSession::app() const {
  return durable_ ? durable_->core().app() : memory_->app();
}

Result<json> ProgramSession::Apply(json command, int64_t at_us, const core::Actor& actor) {
  json who = {{"role", core::ToString(actor.role)}};
  if (!actor.person.empty()) who["person"] = actor.person;
  command["actor"] = std::move(who);
  const core::Command wrapped = core::AppCommand{.now_us = at_us, .json = command.dump()};
  core::CommandResult result;
  if (durable_) {
    ATRIUM_ASSIGN_OR_RETURN(result, durable_->Submit(wrapped));
  } else {
    result = memory_->Apply(wrapped);
  }
  if (!result.app) return MakeError(ErrorCode::kInternal, "the core gave no answer", "");
  if (!result.app->status.ok()) return result.app->status.error();
  return result.app->result;
}

Result<const program::ProgramState*> ProgramSession::Program(const std::string& id) const {
  const auto& programs = app().programs();
  if (!id.empty()) {
    const program::ProgramState* found = app().FindProgram(id);
    if (found == nullptr) return MakeError(ErrorCode::kNotFound, "no program " + id, "program");
    return found;
  }
  if (programs.size() != 1) {
    return MakeError(ErrorCode::kInvalidArgument,
                     programs.empty() ? "no program is loaded (atrium program load FILE.toml)"
                                      : "several programs: name one with --program",
                     "program");
  }
  return &programs.begin()->second;
}

}  // namespace atrium::cli
