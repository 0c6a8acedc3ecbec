#include "program/synthetic.h"

#include <algorithm>

#include "program/validate.h"

namespace atrium::program {
namespace {

// A small deterministic generator (SplitMix64): the standard library's distributions
// are not specified bit for bit, so they could differ between library versions.
class SplitMix {
 public:
  explicit SplitMix(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  int64_t Uniform(int64_t low, int64_t high) {  // inclusive
    return low + static_cast<int64_t>(Next() % static_cast<uint64_t>(high - low + 1));
  }

 private:
  uint64_t state_;
};

constexpr int64_t kDayUs = kMicrosPerDay;
const std::vector<std::string> kTopics = {
    "fundamental-ml", "responsible-ai", "ml-systems", "compilers", "nlp",    "vision",
    "robotics",       "science-ai",     "hpc",        "security",  "theory", "health"};
const std::vector<std::string> kTypes = {"r1", "r1", "r2", "minority_serving", "nonprofit_lab"};
const std::vector<std::string> kCountries = {"US", "CA", "GB", "DE", "IN", "BR", "KE", "JP"};

}  // namespace

Result<ProgramState> MakeSyntheticCall(const SyntheticOptions& options) {
  SplitMix random(options.seed);
  ProgramDefinition definition;
  definition.id = "synthetic";
  definition.name = "Synthetic program";
  definition.total_budget = Credits::FromWhole(110'000'000);
  definition.topics = kTopics;
  definition.rubric = {{"scientific_merit", 3, 1, 5},
                       {"need_for_compute", 2, 1, 5},
                       {"feasibility", 2, 1, 5},
                       {"openness", 1, 1, 5}};
  definition.fairness_floors = {
      {"fundamental_or_responsible_ai", {"fundamental-ml", "responsible-ai"}, {}, 2'000},
      {"outside_r1", {}, {"r2", "minority_serving", "nonprofit_lab"}, 3'000}};
  definition.price_per_chip_hour["trainium2"] = *Credits::Parse("1.5");
  definition.obligations.progress_report_months = {6};
  Track track{.id = "research",
              .name = "Research",
              .budget = Credits::FromWhole(100'000'000),
              .award_cap = Credits::FromWhole(500'000),
              .institution_cap = Credits::FromWhole(11'000'000),
              .partial_floor_bp = 5'000,
              .partial_step_bp = 2'500};
  definition.tracks.push_back(track);
  definition.calls.push_back({.id = kSyntheticCall,
                              .track = "research",
                              .opens_us = 10 * kDayUs,
                              .closes_us = 40 * kDayUs,
                              .review_deadline_us = 70 * kDayUs,
                              .decision_us = 80 * kDayUs,
                              .reviewers_per_proposal = 3});
  ATRIUM_ASSIGN_OR_RETURN(ProgramState state, ProgramState::Create(definition, kDayUs));

  for (int64_t idx = 0; idx < options.institutions; ++idx) {
    ATRIUM_TRY(state.AddInstitution(
        {"inst-" + std::to_string(idx), "Institution " + std::to_string(idx),
         kTypes[static_cast<size_t>(random.Uniform(0, static_cast<int64_t>(kTypes.size()) - 1))],
         kCountries[static_cast<size_t>(
             random.Uniform(0, static_cast<int64_t>(kCountries.size()) - 1))]},
        kDayUs));
  }
  const auto any_institution = [&] {
    return "inst-" + std::to_string(random.Uniform(0, options.institutions - 1));
  };
  const auto any_topic = [&] {
    return kTopics[static_cast<size_t>(
        random.Uniform(0, static_cast<int64_t>(kTopics.size()) - 1))];
  };
  for (int64_t idx = 0; idx < options.reviewers; ++idx) {
    Person reviewer{.id = OrcidFromNumber(static_cast<uint64_t>(1'000'000 + idx)),
                    .name = "Reviewer " + std::to_string(idx),
                    .institution = any_institution(),
                    .role = "faculty",
                    .expertise = {any_topic(), any_topic(), any_topic()},
                    .reviewer = true};
    if (random.Uniform(0, 9) == 0) {
      reviewer.collaborators.push_back(
          OrcidFromNumber(static_cast<uint64_t>(random.Uniform(0, options.proposals - 1))));
    }
    ATRIUM_TRY(state.AddPerson(std::move(reviewer), kDayUs));
  }
  for (int64_t idx = 0; idx < options.proposals; ++idx) {
    ATRIUM_TRY(state.AddPerson({.id = OrcidFromNumber(static_cast<uint64_t>(idx)),
                                .name = "Researcher " + std::to_string(idx),
                                .institution = any_institution(),
                                .role = "faculty"},
                               kDayUs));
  }
  ATRIUM_TRY(state.OpenCall(kSyntheticCall, 10 * kDayUs));
  for (int64_t idx = 0; idx < options.proposals; ++idx) {
    ProposalInput input{.id = "P-" + std::to_string(100'000 + idx),
                        .call = kSyntheticCall,
                        .pi = OrcidFromNumber(static_cast<uint64_t>(idx)),
                        .title = "Synthetic proposal " + std::to_string(idx),
                        .topics = {any_topic()},
                        .requested = Credits::FromWhole(random.Uniform(10, 100) * 5'000),
                        .duration_months = random.Uniform(6, 24)};
    if (random.Uniform(0, 2) == 0) input.topics.push_back(any_topic());
    std::sort(input.topics.begin(), input.topics.end());
    input.topics.erase(std::unique(input.topics.begin(), input.topics.end()), input.topics.end());
    ATRIUM_TRY(state.SubmitProposal(std::move(input), 20 * kDayUs));
  }
  ATRIUM_TRY(state.CloseCall(kSyntheticCall, 40 * kDayUs));
  return state;
}

Status SimulateReviews(ProgramState& state, const std::string& call, uint64_t seed,
                       int64_t now_us) {
  const std::vector<Assignment> assignments = state.assignments();
  const std::vector<Criterion>& rubric = state.definition().rubric;
  for (const Assignment& assignment : assignments) {
    const Proposal& proposal = state.proposals().at(assignment.proposal);
    if (proposal.input.call != call || proposal.status != ProposalStatus::kInReview) continue;
    SplitMix quality_source(seed ^ StableHash(assignment.proposal));
    SplitMix bias_source(seed ^ StableHash(assignment.reviewer));
    SplitMix noise(seed ^ StableHash(assignment.proposal + "/" + assignment.reviewer));
    const int64_t quality = quality_source.Uniform(0, 100);  // percent of the range
    const int64_t bias = bias_source.Uniform(-25, 25);       // harsh .. lenient
    std::vector<int64_t> scores;
    for (const Criterion& criterion : rubric) {
      const int64_t span = criterion.score_max - criterion.score_min;
      const int64_t percent = std::clamp<int64_t>(quality + bias + noise.Uniform(-10, 10), 0, 100);
      scores.push_back(criterion.score_min + (span * percent + 50) / 100);
    }
    ATRIUM_TRY(state.SubmitReview(assignment.reviewer, assignment.proposal, std::move(scores), "",
                                  now_us));
  }
  return OkStatus();
}

}  // namespace atrium::program
