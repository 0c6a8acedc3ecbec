#include "program/assignment.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

namespace atrium::program {
namespace {

struct Instance {
  std::vector<ReviewerProfile> reviewers;
  std::vector<ProposalProfile> proposals;
};

Instance RandomInstance(uint64_t seed, int proposal_count, int reviewer_count) {
  std::mt19937_64 random(seed);
  const auto pick = [&](int count) {
    return static_cast<int>(std::uniform_int_distribution<int>(0, count - 1)(random));
  };
  const std::vector<std::string> topics = {"compilers", "ml-systems", "vision", "nlp",
                                           "theory",    "robotics",   "hpc",    "security"};
  Instance instance;
  for (int idx = 0; idx < reviewer_count; ++idx) {
    ReviewerProfile reviewer{.id = "R" + std::to_string(idx),
                             .institution = "I" + std::to_string(pick(8))};
    reviewer.expertise = {topics[static_cast<size_t>(pick(8))],
                          topics[static_cast<size_t>(pick(8))]};
    if (pick(5) == 0) reviewer.collaborators.push_back("A" + std::to_string(pick(proposal_count)));
    instance.reviewers.push_back(std::move(reviewer));
  }
  for (int idx = 0; idx < proposal_count; ++idx) {
    ProposalProfile proposal{.id = "P" + std::to_string(idx)};
    proposal.people = {"A" + std::to_string(idx)};
    if (pick(6) == 0) proposal.people.push_back("R" + std::to_string(pick(reviewer_count)));
    proposal.institutions = {"I" + std::to_string(pick(8))};
    if (pick(4) == 0) proposal.collaborators.push_back("R" + std::to_string(pick(reviewer_count)));
    proposal.topics = {topics[static_cast<size_t>(pick(8))]};
    instance.proposals.push_back(std::move(proposal));
  }
  return instance;
}

// An independent statement of the conflict rules.
bool InConflict(const ReviewerProfile& reviewer, const ProposalProfile& proposal) {
  const auto has = [](const std::vector<std::string>& values, const std::string& value) {
    return std::find(values.begin(), values.end(), value) != values.end();
  };
  if (has(proposal.people, reviewer.id) || has(proposal.institutions, reviewer.institution) ||
      has(proposal.collaborators, reviewer.id)) {
    return true;
  }
  for (const std::string& person : proposal.people) {
    if (has(reviewer.collaborators, person)) return true;
  }
  return false;
}

TEST(AssignmentTest, NoConflictsBalancedLoadsDeterministic) {
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Instance instance = RandomInstance(seed, 40 + static_cast<int>(seed) * 7, 23);
    std::vector<Conflict> declared = {{"R3", "P5", ConflictReason::kDeclared, "former student"}};
    const std::vector<Conflict> conflicts =
        FindConflicts(instance.reviewers, instance.proposals, declared);
    AssignmentStats stats;
    Result<std::vector<Assignment>> assignments =
        AssignReviewers(instance.reviewers, instance.proposals, conflicts, 3, &stats);
    ASSERT_TRUE(assignments.ok()) << assignments.error().ToString();

    std::map<std::string, const ReviewerProfile*> reviewers;
    for (const auto& reviewer : instance.reviewers) reviewers[reviewer.id] = &reviewer;
    std::map<std::string, std::set<std::string>> per_proposal;
    std::map<std::string, int> load;
    for (const auto& reviewer : instance.reviewers) load[reviewer.id] = 0;
    for (const Assignment& assignment : *assignments) {
      const ProposalProfile& proposal =
          instance.proposals[static_cast<size_t>(std::stoi(assignment.proposal.substr(1)))];
      EXPECT_FALSE(InConflict(*reviewers.at(assignment.reviewer), proposal))
          << assignment.reviewer << " on " << assignment.proposal;
      EXPECT_FALSE(assignment.reviewer == "R3" && assignment.proposal == "P5");
      EXPECT_TRUE(per_proposal[assignment.proposal].insert(assignment.reviewer).second);
      EXPECT_FALSE(assignment.explanation.empty());
      ++load[assignment.reviewer];
    }
    for (const ProposalProfile& proposal : instance.proposals) {
      EXPECT_EQ(per_proposal[proposal.id].size(), 3u) << proposal.id;
    }
    const double mean = 3.0 * static_cast<double>(instance.proposals.size()) /
                        static_cast<double>(instance.reviewers.size());
    int load_min = INT32_MAX, load_max = 0;
    for (const auto& [reviewer, count] : load) {
      EXPECT_LE(std::abs(count - mean), 1.0) << reviewer;
      load_min = std::min(load_min, count);
      load_max = std::max(load_max, count);
    }
    EXPECT_LE(load_max - load_min, 1);
    EXPECT_EQ(stats.load_min, load_min);
    EXPECT_EQ(stats.load_max, load_max);

    Result<std::vector<Assignment>> again =
        AssignReviewers(instance.reviewers, instance.proposals, conflicts, 3);
    ASSERT_TRUE(again.ok());
    ASSERT_EQ(again->size(), assignments->size());
    for (size_t idx = 0; idx < again->size(); ++idx) {
      EXPECT_EQ((*again)[idx].reviewer, (*assignments)[idx].reviewer);
      EXPECT_EQ((*again)[idx].proposal, (*assignments)[idx].proposal);
    }
  }
}

TEST(AssignmentTest, ConflictReasonsAreRecorded) {
  const std::vector<ReviewerProfile> reviewers = {
      {"R1", "mit", {"nlp"}, {}},
      {"R2", "cmu", {"nlp"}, {"A1"}},
      {"R3", "ucb", {"nlp"}, {}},
      {"R4", "eth", {"nlp"}, {}},
  };
  const std::vector<ProposalProfile> proposals = {
      {"P1", {"A1", "R3"}, {"mit", "epfl"}, {}, {"nlp"}},
  };
  const std::vector<Conflict> conflicts =
      FindConflicts(reviewers, proposals, {{"R4", "P1", ConflictReason::kDeclared, "spouse"}});
  ASSERT_EQ(conflicts.size(), 4u);
  std::map<std::string, ConflictReason> reasons;
  for (const Conflict& conflict : conflicts) reasons[conflict.reviewer] = conflict.reason;
  EXPECT_EQ(reasons["R1"], ConflictReason::kSameInstitution);
  EXPECT_EQ(reasons["R2"], ConflictReason::kCollaborator);
  EXPECT_EQ(reasons["R3"], ConflictReason::kCoInvestigator);
  EXPECT_EQ(reasons["R4"], ConflictReason::kDeclared);
  EXPECT_EQ(AssignReviewers(reviewers, proposals, conflicts, 1).code(), ErrorCode::kUnassignable);
}

TEST(AssignmentTest, PrefersMatchingExpertise) {
  std::vector<ReviewerProfile> reviewers;
  for (int idx = 0; idx < 6; ++idx) {
    reviewers.push_back({"R" + std::to_string(idx),
                         "I" + std::to_string(idx),
                         {idx < 2 ? "theory" : "vision"},
                         {}});
  }
  const std::vector<ProposalProfile> proposals = {
      {"P1", {"A"}, {"X"}, {}, {"theory"}},
      {"P2", {"B"}, {"X"}, {}, {"vision"}},
      {"P3", {"C"}, {"X"}, {}, {"vision"}},
  };
  Result<std::vector<Assignment>> assignments = AssignReviewers(reviewers, proposals, {}, 2);
  ASSERT_TRUE(assignments.ok());
  std::set<std::string> on_p1;
  for (const Assignment& assignment : *assignments) {
    if (assignment.proposal == "P1") on_p1.insert(assignment.reviewer);
  }
  EXPECT_EQ(on_p1, (std::set<std::string>{"R0", "R1"}));
}

}  // namespace
}  // namespace atrium::program
