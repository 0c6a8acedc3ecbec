#include "core/access.h"

#include <algorithm>

namespace atrium::core {

bool IsStaff(const Actor& actor) {
  return actor.role == Role::kAdmin || actor.role == Role::kOfficer;
}

bool IsProposalAuthor(const program::Proposal& proposal, const std::string& person) {
  if (person.empty()) return false;
  const auto& co = proposal.input.co_investigators;
  return proposal.input.pi == person || std::find(co.begin(), co.end(), person) != co.end();
}

bool HasConflict(const program::ProgramState& program, const std::string& proposal,
                 const std::string& person) {
  return std::any_of(program.conflicts().begin(), program.conflicts().end(),
                     [&](const program::Conflict& conflict) {
                       return conflict.proposal == proposal && conflict.reviewer == person;
                     });
}

bool IsAssignedReviewer(const program::ProgramState& program, const std::string& proposal,
                        const std::string& person) {
  if (person.empty()) return false;
  const bool assigned = std::any_of(
      program.assignments().begin(), program.assignments().end(),
      [&](const program::Assignment& a) { return a.proposal == proposal && a.reviewer == person; });
  return assigned && !HasConflict(program, proposal, person);
}

bool BelongsToGrant(const program::Grant& grant, const std::string& person) {
  if (person.empty()) return false;
  return grant.pi == person ||
         std::find(grant.members.begin(), grant.members.end(), person) != grant.members.end() ||
         grant.students.contains(person);
}

bool CanSeeProposal(const program::ProgramState& program, const Actor& actor,
                    const program::Proposal& proposal) {
  switch (actor.role) {
    case Role::kAdmin:
    case Role::kOfficer:
      return true;
    case Role::kReviewer:
      return IsAssignedReviewer(program, proposal.input.id, actor.person);
    case Role::kResearcher:
      return IsProposalAuthor(proposal, actor.person);
    default:
      return false;
  }
}

bool CanSeeGrant(const Actor& actor, const program::Grant& grant) {
  switch (actor.role) {
    case Role::kAdmin:
    case Role::kOfficer:
      return true;
    case Role::kResearcher:
    case Role::kStudent:
      return BelongsToGrant(grant, actor.person);
    default:
      return false;
  }
}

bool CanSeeJob(const AppState& app, const Actor& actor, const JobRecord& job) {
  switch (actor.role) {
    case Role::kAdmin:
    case Role::kOfficer:
    case Role::kOperator:
      return true;
    case Role::kResearcher:
    case Role::kStudent: {
      if (actor.person.empty()) return false;
      if (job.owner == actor.person) return true;
      const program::ProgramState* program = app.FindProgram(job.program);
      if (program == nullptr) return false;
      const auto grant = program->grants().find(job.grant);
      return grant != program->grants().end() && BelongsToGrant(grant->second, actor.person);
    }
    default:
      return false;
  }
}

}  // namespace atrium::core
