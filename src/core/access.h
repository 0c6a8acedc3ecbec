// Who may see or touch what, as predicates over the state. The core uses them to refuse
// changes; the service uses the same ones to filter what it shows, so a list and a
// direct read never disagree.
//
//   if (!CanSeeProposal(program, actor, proposal)) return NotFound();
#pragma once

#include <string>

#include "core/app_state.h"
#include "program/program_state.h"

namespace atrium::core {

// Admin or program officer: sees and manages every program.
bool IsStaff(const Actor& actor);

// The proposal's PI or a co-investigator.
bool IsProposalAuthor(const program::Proposal& proposal, const std::string& person);
// Assigned to review the proposal and not in conflict with it.
bool IsAssignedReviewer(const program::ProgramState& program, const std::string& proposal,
                        const std::string& person);
bool HasConflict(const program::ProgramState& program, const std::string& proposal,
                 const std::string& person);

// The grant's PI, a member, or (education) a student with an allocation.
bool BelongsToGrant(const program::Grant& grant, const std::string& person);

// Staff; a reviewer assigned to it and not conflicted; a researcher who wrote it.
bool CanSeeProposal(const program::ProgramState& program, const Actor& actor,
                    const program::Proposal& proposal);
// Staff; a researcher or student who belongs to it.
bool CanSeeGrant(const Actor& actor, const program::Grant& grant);
// Staff or operator; a researcher or student who belongs to the job's grant.
bool CanSeeJob(const AppState& app, const Actor& actor, const JobRecord& job);

}  // namespace atrium::core
