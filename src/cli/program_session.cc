#include "cli/program_session.h"

#include <fmt/format.h>

#include <fstream>
#include <random>
#include <sstream>

#include "base/nesting.h"
#include "program/loader.h"
#include "program/synthetic.h"

namespace atrium::cli {
namespace {

using nlohmann::json;

Result<std::string> Field(const json& command, const char* key) {
  if (!command.contains(key) || !command.at(key).is_string()) {
    return MakeError(ErrorCode::kParseError, std::string("command needs a string ") + key, key);
  }
  return command.at(key).get<std::string>();
}

std::string OptionalField(const json& command, const char* key) {
  return command.contains(key) && command.at(key).is_string() ? command.at(key).get<std::string>()
                                                              : std::string();
}

}  // namespace

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

Result<ProgramSession> ProgramSession::Create(const std::string& program_toml, int64_t at_us) {
  ProgramSession session;
  // The seal secret keys the salts of sealed reviews in the public log; it is drawn here,
  // in the shell, and kept in the (private) state file so replay gives the same log.
  std::random_device random;
  std::string secret;
  for (int byte_idx = 0; byte_idx < 32; ++byte_idx) {
    secret += fmt::format("{:02x}", random() & 0xFFu);
  }
  ATRIUM_TRY(session.Apply({{"op", "create"},
                            {"at_us", at_us},
                            {"program_toml", program_toml},
                            {"seal_secret", secret}}));
  return session;
}

Result<ProgramSession> ProgramSession::Load(const std::string& path) {
  ATRIUM_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  if (!JsonDepthWithin(text, kJsonDepthMax)) {
    return MakeError(ErrorCode::kCorruption, path + " is nested too deeply", "state");
  }
  const json file = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (file.is_discarded() || !file.is_object() || !file.contains("commands") ||
      !file.at("commands").is_array() || file.at("commands").empty()) {
    return MakeError(ErrorCode::kCorruption, path + " is not a program state file", "state");
  }
  ProgramSession session;
  size_t index = 0;
  for (const json& command : file.at("commands")) {
    const Status applied = session.Apply(command);
    if (!applied.ok()) {
      return MakeError(ErrorCode::kCorruption,
                       "command " + std::to_string(index) + " of " + path +
                           " no longer applies: " + applied.error().ToString(),
                       "state");
    }
    ++index;
  }
  return session;
}

Status ProgramSession::Save(const std::string& path) const {
  return WriteFile(path, json{{"version", 1}, {"commands", commands_}}.dump(1) + "\n");
}

Status ProgramSession::Apply(json command) {
  if (!command.is_object() || !command.contains("at_us") ||
      !command.at("at_us").is_number_integer()) {
    return MakeError(ErrorCode::kParseError, "a command needs an integer at_us", "at_us");
  }
  ATRIUM_TRY(Dispatch(command));
  last_at_us_ = std::max(last_at_us_, command.at("at_us").get<int64_t>());
  commands_.push_back(std::move(command));
  return OkStatus();
}

Status ProgramSession::Dispatch(const json& command) {
  ATRIUM_ASSIGN_OR_RETURN(const std::string op, Field(command, "op"));
  const int64_t at = command.at("at_us").get<int64_t>();
  if (op == "create") {
    if (state_) return MakeError(ErrorCode::kInvalidState, "the program exists", "op");
    ATRIUM_ASSIGN_OR_RETURN(const std::string text, Field(command, "program_toml"));
    ATRIUM_ASSIGN_OR_RETURN(program::ProgramDefinition definition,
                            program::ParseProgramToml(text, at));
    std::string seal_secret;
    if (command.contains("seal_secret")) {
      ATRIUM_ASSIGN_OR_RETURN(seal_secret, Field(command, "seal_secret"));
    }
    ATRIUM_ASSIGN_OR_RETURN(
        program::ProgramState created,
        program::ProgramState::Create(std::move(definition), at, std::move(seal_secret)));
    state_.emplace(std::move(created));
    return OkStatus();
  }
  if (!state_) return MakeError(ErrorCode::kInvalidState, "no program loaded", "op");
  program::ProgramState& state = *state_;
  if (op == "people") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string text, Field(command, "toml"));
    ATRIUM_ASSIGN_OR_RETURN(program::PeopleFile people, program::ParsePeopleToml(text));
    for (program::Institution& institution : people.institutions) {
      ATRIUM_TRY(state.AddInstitution(std::move(institution), at));
    }
    for (program::Person& person : people.people)
      ATRIUM_TRY(state.AddPerson(std::move(person), at));
    return OkStatus();
  }
  if (op == "submit") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string text, Field(command, "toml"));
    ATRIUM_ASSIGN_OR_RETURN(std::vector<program::ProposalInput> proposals,
                            program::ParseProposalsToml(text));
    for (program::ProposalInput& proposal : proposals) {
      const std::string id = proposal.id;
      const Status submitted = state.SubmitProposal(std::move(proposal), at);
      if (!submitted.ok()) {
        Error error = submitted.error();
        error.message = "proposal " + id + ": " + error.message;
        return error;
      }
    }
    return OkStatus();
  }
  if (op == "open_call" || op == "close_call" || op == "assign" || op == "commit") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string call, Field(command, "call"));
    if (op == "open_call") return state.OpenCall(call, at);
    if (op == "close_call") return state.CloseCall(call, at);
    if (op == "assign") return state.AssignReviewers(call, at).status();
    return state.CommitDecision(call, at);
  }
  if (op == "draft") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string call, Field(command, "call"));
    ATRIUM_ASSIGN_OR_RETURN(program::Decision decision,
                            state.DraftDecision(call, at, OptionalField(command, "policy")));
    last_decision_ = std::move(decision);
    return OkStatus();
  }
  if (op == "withdraw") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string proposal, Field(command, "proposal"));
    return state.WithdrawProposal(proposal, at);
  }
  if (op == "conflict") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string reviewer, Field(command, "reviewer"));
    ATRIUM_ASSIGN_OR_RETURN(const std::string proposal, Field(command, "proposal"));
    return state.DeclareConflict(reviewer, proposal, OptionalField(command, "note"), at);
  }
  if (op == "review") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string reviewer, Field(command, "reviewer"));
    ATRIUM_ASSIGN_OR_RETURN(const std::string proposal, Field(command, "proposal"));
    if (!command.contains("scores") || !command.at("scores").is_array()) {
      return MakeError(ErrorCode::kParseError, "review needs scores", "scores");
    }
    std::vector<int64_t> scores;
    for (const json& score : command.at("scores")) {
      if (!score.is_number_integer()) {
        return MakeError(ErrorCode::kParseError, "scores are integers", "scores");
      }
      scores.push_back(score.get<int64_t>());
    }
    return state.SubmitReview(reviewer, proposal, std::move(scores),
                              OptionalField(command, "comment"), at);
  }
  if (op == "simulate_reviews") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string call, Field(command, "call"));
    const uint64_t seed = command.value("seed", uint64_t{1});
    return program::SimulateReviews(state, call, seed, at);
  }
  if (op == "usage" || op == "allocate") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string grant, Field(command, "grant"));
    ATRIUM_ASSIGN_OR_RETURN(const std::string amount_text, Field(command, "amount"));
    ATRIUM_ASSIGN_OR_RETURN(const Credits amount, Credits::Parse(amount_text));
    if (op == "usage") return state.RecordUsage(grant, amount, at);
    ATRIUM_ASSIGN_OR_RETURN(const std::string student, Field(command, "student"));
    return state.AllocateToStudent(grant, student, amount, at);
  }
  if (op == "close_grant") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string grant, Field(command, "grant"));
    return state.CloseGrant(grant, at);
  }
  if (op == "obligation_submit") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string obligation, Field(command, "obligation"));
    return state.SubmitObligation(obligation, OptionalField(command, "reference"),
                                  OptionalField(command, "license"), at);
  }
  if (op == "obligation_review") {
    ATRIUM_ASSIGN_OR_RETURN(const std::string obligation, Field(command, "obligation"));
    return state.ReviewObligation(obligation, command.value("accept", false), at);
  }
  if (op == "tick") {
    state.Tick(at);
    return OkStatus();
  }
  return MakeError(ErrorCode::kParseError, "unknown command " + op, "op");
}

}  // namespace atrium::cli
