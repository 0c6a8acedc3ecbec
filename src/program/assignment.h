// Reviewer assignment: conflicts of interest found automatically, and k reviewers per
// proposal with matching expertise, never a conflicted one, and balanced loads.
//
// Conflicts (FindConflicts) are recorded with their reason: the reviewer works at the
// PI's or a co-investigator's institution, is the PI or a co-investigator, or is a
// declared collaborator of one of them (either side's declaration counts); conflicts
// declared by hand are passed in and kept.
//
// Assignment (AssignReviewers) is a deterministic greedy with repair:
//   - each reviewer's load is capped at ceil(P*k / R), so no one is above the mean by
//     one or more;
//   - proposals are served most-constrained first (fewest eligible experts), each taking
//     the eligible reviewers that share the most topics, then the least loaded, then a
//     fixed hash of (proposal, reviewer) so ties do not always fall on the same person;
//   - a proposal that finds no free reviewer takes one from a full reviewer by moving
//     one of that reviewer's other proposals to someone with room (one augmenting step);
//   - finally, reviewers below floor(P*k / R) take assignments from reviewers above it.
// The same input gives the same assignment, each with a sentence saying why.
#pragma once

#include <string>
#include <vector>

#include "base/error.h"
#include "program/model.h"

namespace atrium::program {

struct ReviewerProfile {
  std::string id;
  std::string institution;
  std::vector<std::string> expertise;
  std::vector<std::string> collaborators;
};

struct ProposalProfile {
  std::string id;
  std::vector<std::string> people;         // PI first, then co-investigators
  std::vector<std::string> institutions;   // of the PI and co-investigators
  std::vector<std::string> collaborators;  // declared by the PI or co-investigators
  std::vector<std::string> topics;
};

// Automatic conflicts plus `declared`, one per (reviewer, proposal) pair, the first
// reason found, sorted by proposal then reviewer.
std::vector<Conflict> FindConflicts(const std::vector<ReviewerProfile>& reviewers,
                                    const std::vector<ProposalProfile>& proposals,
                                    const std::vector<Conflict>& declared);

struct AssignmentStats {
  int64_t load_min = 0;
  int64_t load_max = 0;
  double load_mean = 0;
  int64_t with_expertise = 0;  // assignments sharing at least one topic
};

// kUnassignable when some proposal has fewer than k non-conflicted reviewers or the
// repair cannot place an assignment.
Result<std::vector<Assignment>> AssignReviewers(const std::vector<ReviewerProfile>& reviewers,
                                                const std::vector<ProposalProfile>& proposals,
                                                const std::vector<Conflict>& conflicts,
                                                int64_t reviewers_per_proposal,
                                                AssignmentStats* stats = nullptr);

// FNV-1a 64: a stable hash for tie-breaking (std::hash is not stable across builds).
uint64_t StableHash(std::string_view text);

}  // namespace atrium::program
