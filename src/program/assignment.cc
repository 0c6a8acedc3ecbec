#include "program/assignment.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <unordered_map>

#include "base/assert.h"

namespace atrium::program {
namespace {

bool Contains(const std::vector<std::string>& values, const std::string& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

// Dense state of one assignment run.
class Assigner {
 public:
  Assigner(const std::vector<ReviewerProfile>& reviewers,
           const std::vector<ProposalProfile>& proposals, const std::vector<Conflict>& conflicts,
           int64_t k)
      : reviewers_(reviewers), proposals_(proposals), k_(static_cast<size_t>(k)) {
    std::unordered_map<std::string, int> tag_ids;
    const auto tag = [&](const std::string& name) {
      return tag_ids.emplace(name, static_cast<int>(tag_ids.size())).first->second;
    };
    for (const ReviewerProfile& reviewer : reviewers) {
      std::vector<int> tags;
      for (const std::string& name : reviewer.expertise) tags.push_back(tag(name));
      std::sort(tags.begin(), tags.end());
      reviewer_tags_.push_back(std::move(tags));
    }
    std::unordered_map<std::string, size_t> reviewer_index;
    for (size_t idx = 0; idx < reviewers.size(); ++idx) reviewer_index[reviewers[idx].id] = idx;
    std::unordered_map<std::string, size_t> proposal_index;
    for (size_t idx = 0; idx < proposals.size(); ++idx) {
      proposal_index[proposals[idx].id] = idx;
      std::vector<int> tags;
      for (const std::string& name : proposals[idx].topics) tags.push_back(tag(name));
      std::sort(tags.begin(), tags.end());
      proposal_tags_.push_back(std::move(tags));
    }
    conflicted_.resize(proposals.size());
    for (const Conflict& conflict : conflicts) {
      const auto reviewer = reviewer_index.find(conflict.reviewer);
      const auto proposal = proposal_index.find(conflict.proposal);
      if (reviewer == reviewer_index.end() || proposal == proposal_index.end()) continue;
      conflicted_[proposal->second].push_back(reviewer->second);
    }
    for (auto& list : conflicted_) std::sort(list.begin(), list.end());
    assigned_.resize(proposals.size());
    assigned_of_reviewer_.resize(reviewers.size());
    load_.assign(reviewers.size(), 0);
    const size_t total = proposals.size() * k_;
    load_cap_ = reviewers.empty() ? 0 : (total + reviewers.size() - 1) / reviewers.size();
    load_floor_ = reviewers.empty() ? 0 : total / reviewers.size();
  }

  Status Run() {
    for (size_t p = 0; p < proposals_.size(); ++p) {
      if (reviewers_.size() - conflicted_[p].size() < k_) {
        return MakeError(ErrorCode::kUnassignable,
                         "fewer non-conflicted reviewers than reviewers per proposal",
                         proposals_[p].id);
      }
    }
    std::vector<size_t> order(proposals_.size());
    std::iota(order.begin(), order.end(), 0);
    std::vector<size_t> experts(proposals_.size(), 0);
    for (size_t p = 0; p < proposals_.size(); ++p) {
      for (size_t r = 0; r < reviewers_.size(); ++r) {
        if (Match(p, r) > 0 && !IsConflicted(p, r)) ++experts[p];
      }
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return experts[a] < experts[b]; });
    for (size_t p : order) ATRIUM_TRY(Fill(p));
    Rebalance();
    return OkStatus();
  }

  std::vector<Assignment> Result(AssignmentStats* stats) const {
    std::vector<Assignment> out;
    int64_t with_expertise = 0;
    for (size_t p = 0; p < proposals_.size(); ++p) {
      std::vector<size_t> chosen = assigned_[p];
      std::sort(chosen.begin(), chosen.end(),
                [&](size_t a, size_t b) { return reviewers_[a].id < reviewers_[b].id; });
      for (size_t r : chosen) {
        const size_t match = Match(p, r);
        if (match > 0) ++with_expertise;
        std::string why = match > 0
                              ? "shares " + std::to_string(match) + " topic(s) with the proposal"
                              : "no topic match; chosen to balance loads";
        why += "; load " + std::to_string(load_[r]) + " (cap " + std::to_string(load_cap_) + ")";
        out.push_back({reviewers_[r].id, proposals_[p].id, std::move(why)});
      }
    }
    if (stats != nullptr && !reviewers_.empty()) {
      stats->load_min = static_cast<int64_t>(*std::min_element(load_.begin(), load_.end()));
      stats->load_max = static_cast<int64_t>(*std::max_element(load_.begin(), load_.end()));
      stats->load_mean =
          static_cast<double>(proposals_.size() * k_) / static_cast<double>(reviewers_.size());
      stats->with_expertise = with_expertise;
    }
    return out;
  }

 private:
  size_t Match(size_t p, size_t r) const {
    const auto& a = proposal_tags_[p];
    const auto& b = reviewer_tags_[r];
    size_t count = 0;
    for (size_t i = 0, j = 0; i < a.size() && j < b.size();) {
      if (a[i] == b[j]) {
        ++count, ++i, ++j;
      } else if (a[i] < b[j]) {
        ++i;
      } else {
        ++j;
      }
    }
    return count;
  }
  bool IsConflicted(size_t p, size_t r) const {
    return std::binary_search(conflicted_[p].begin(), conflicted_[p].end(), r);
  }
  bool IsOn(size_t p, size_t r) const {
    return std::find(assigned_[p].begin(), assigned_[p].end(), r) != assigned_[p].end();
  }
  bool Eligible(size_t p, size_t r) const { return !IsConflicted(p, r) && !IsOn(p, r); }
  uint64_t Tie(size_t p, size_t r) const {
    return StableHash(proposals_[p].id) ^ (StableHash(reviewers_[r].id) * 0x9E3779B97F4A7C15ULL);
  }
  void Place(size_t p, size_t r) {
    assigned_[p].push_back(r);
    assigned_of_reviewer_[r].push_back(p);
    ++load_[r];
  }
  void Unplace(size_t p, size_t r) {
    assigned_[p].erase(std::find(assigned_[p].begin(), assigned_[p].end(), r));
    auto& list = assigned_of_reviewer_[r];
    list.erase(std::find(list.begin(), list.end(), p));
    --load_[r];
  }

  Status Fill(size_t p) {
    struct Choice {
      size_t match;
      size_t load;
      uint64_t tie;
      size_t reviewer;
    };
    std::vector<Choice> choices;
    for (size_t r = 0; r < reviewers_.size(); ++r) {
      if (load_[r] >= load_cap_ || !Eligible(p, r)) continue;
      choices.push_back({Match(p, r), load_[r], Tie(p, r), r});
    }
    const size_t take = std::min(k_, choices.size());
    std::partial_sort(choices.begin(), choices.begin() + static_cast<std::ptrdiff_t>(take),
                      choices.end(), [](const Choice& a, const Choice& b) {
                        if (a.match != b.match) return a.match > b.match;
                        if (a.load != b.load) return a.load < b.load;
                        return a.tie < b.tie;
                      });
    for (size_t idx = 0; idx < take; ++idx) Place(p, choices[idx].reviewer);
    while (assigned_[p].size() < k_) ATRIUM_TRY(Augment(p));
    return OkStatus();
  }

  // Frees a full eligible reviewer for p by moving one of its proposals to a reviewer
  // with room.
  Status Augment(size_t p) {
    for (size_t full = 0; full < reviewers_.size(); ++full) {
      if (!Eligible(p, full)) continue;
      for (size_t q : assigned_of_reviewer_[full]) {
        for (size_t spare = 0; spare < reviewers_.size(); ++spare) {
          if (load_[spare] >= load_cap_ || !Eligible(q, spare)) continue;
          Unplace(q, full);
          Place(q, spare);
          Place(p, full);
          return OkStatus();
        }
      }
    }
    return MakeError(ErrorCode::kUnassignable, "no reviewer can be freed for the proposal",
                     proposals_[p].id);
  }

  // Moves assignments from reviewers above the floor to reviewers below it.
  void Rebalance() {
    for (size_t low = 0; low < reviewers_.size(); ++low) {
      for (size_t high = 0; high < reviewers_.size() && load_[low] < load_floor_; ++high) {
        if (load_[high] <= load_floor_) continue;
        for (size_t q : std::vector<size_t>(assigned_of_reviewer_[high])) {
          if (load_[low] >= load_floor_ || load_[high] <= load_floor_) break;
          if (!Eligible(q, low)) continue;
          Unplace(q, high);
          Place(q, low);
        }
      }
    }
  }

  const std::vector<ReviewerProfile>& reviewers_;
  const std::vector<ProposalProfile>& proposals_;
  size_t k_;
  std::vector<std::vector<int>> reviewer_tags_;
  std::vector<std::vector<int>> proposal_tags_;
  std::vector<std::vector<size_t>> conflicted_;
  std::vector<std::vector<size_t>> assigned_;
  std::vector<std::vector<size_t>> assigned_of_reviewer_;
  std::vector<size_t> load_;
  size_t load_cap_ = 0;
  size_t load_floor_ = 0;
};

}  // namespace

uint64_t StableHash(std::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::vector<Conflict> FindConflicts(const std::vector<ReviewerProfile>& reviewers,
                                    const std::vector<ProposalProfile>& proposals,
                                    const std::vector<Conflict>& declared) {
  std::map<std::pair<std::string, std::string>, Conflict> found;  // (proposal, reviewer)
  for (const Conflict& conflict : declared) {
    found.emplace(std::make_pair(conflict.proposal, conflict.reviewer), conflict);
  }
  for (const ProposalProfile& proposal : proposals) {
    for (const ReviewerProfile& reviewer : reviewers) {
      std::optional<ConflictReason> reason;
      std::string note;
      if (Contains(proposal.people, reviewer.id)) {
        reason = ConflictReason::kCoInvestigator;
        note = "reviewer is on the proposal";
      } else if (Contains(proposal.institutions, reviewer.institution)) {
        reason = ConflictReason::kSameInstitution;
        note = "same institution: " + reviewer.institution;
      } else if (Contains(proposal.collaborators, reviewer.id)) {
        reason = ConflictReason::kCollaborator;
        note = "declared as a collaborator by the proposal's team";
      } else {
        for (const std::string& person : proposal.people) {
          if (Contains(reviewer.collaborators, person)) {
            reason = ConflictReason::kCollaborator;
            note = "reviewer declared a collaboration with the proposal's team";
            break;
          }
        }
      }
      // A declared conflict on the same pair was inserted first and keeps its reason.
      if (reason) {
        found.emplace(std::make_pair(proposal.id, reviewer.id),
                      Conflict{reviewer.id, proposal.id, *reason, note});
      }
    }
  }
  std::vector<Conflict> out;
  out.reserve(found.size());
  for (auto& [key, conflict] : found) out.push_back(std::move(conflict));
  return out;
}

Result<std::vector<Assignment>> AssignReviewers(const std::vector<ReviewerProfile>& reviewers,
                                                const std::vector<ProposalProfile>& proposals,
                                                const std::vector<Conflict>& conflicts,
                                                int64_t reviewers_per_proposal,
                                                AssignmentStats* stats) {
  if (reviewers_per_proposal < 1) {
    return MakeError(ErrorCode::kInvalidArgument, "reviewers per proposal must be at least 1",
                     "reviewers_per_proposal");
  }
  if (proposals.empty()) return std::vector<Assignment>{};
  Assigner assigner(reviewers, proposals, conflicts, reviewers_per_proposal);
  ATRIUM_TRY(assigner.Run());
  return assigner.Result(stats);
}

}  // namespace atrium::program
