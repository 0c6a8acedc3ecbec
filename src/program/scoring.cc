#include "program/scoring.h"

#include <algorithm>
#include <cmath>

namespace atrium::program {

Status ValidateScores(const std::vector<Criterion>& rubric, const std::vector<int64_t>& scores) {
  if (scores.size() != rubric.size()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "expected " + std::to_string(rubric.size()) + " scores, one per criterion",
                     "scores");
  }
  for (size_t idx = 0; idx < rubric.size(); ++idx) {
    if (scores[idx] < rubric[idx].score_min || scores[idx] > rubric[idx].score_max) {
      return MakeError(ErrorCode::kScoreOutOfRange,
                       "score " + std::to_string(scores[idx]) + " for " + rubric[idx].name +
                           " is outside " + std::to_string(rubric[idx].score_min) + ".." +
                           std::to_string(rubric[idx].score_max),
                       rubric[idx].name);
    }
  }
  return OkStatus();
}

double RawScore(const std::vector<Criterion>& rubric, const std::vector<int64_t>& scores) {
  double weighted = 0;
  double weights = 0;
  for (size_t idx = 0; idx < rubric.size() && idx < scores.size(); ++idx) {
    const Criterion& criterion = rubric[idx];
    const double span = static_cast<double>(criterion.score_max - criterion.score_min);
    const double unit =
        span > 0 ? static_cast<double>(scores[idx] - criterion.score_min) / span : 1.0;
    weighted += static_cast<double>(criterion.weight) * unit;
    weights += static_cast<double>(criterion.weight);
  }
  return weights > 0 ? 100.0 * weighted / weights : 0;
}

namespace {
struct Moments {
  double sum = 0;
  double sum_squares = 0;
  int64_t count = 0;
  void Add(double value) {
    sum += value;
    sum_squares += value * value;
    ++count;
  }
  double Mean() const { return count > 0 ? sum / static_cast<double>(count) : 0; }
  double Deviation() const {
    if (count < 2) return 0;
    const double mean = Mean();
    const double variance = sum_squares / static_cast<double>(count) - mean * mean;
    return variance > 1e-12 ? std::sqrt(variance) : 0;
  }
};
}  // namespace

void NormalizeScores(const std::vector<Criterion>& rubric, std::vector<Review>* reviews) {
  Moments all;
  std::map<std::string, Moments> per_reviewer;
  for (Review& review : *reviews) {
    review.raw = RawScore(rubric, review.scores);
    all.Add(review.raw);
    per_reviewer[review.reviewer].Add(review.raw);
  }
  const double mean = all.Mean();
  const double deviation = all.Deviation();
  for (Review& review : *reviews) {
    const Moments& mine = per_reviewer[review.reviewer];
    double normalized = review.raw;
    if (mine.count >= 2) {
      const double my_deviation = mine.Deviation();
      normalized =
          my_deviation > 0 ? mean + deviation * (review.raw - mine.Mean()) / my_deviation : mean;
    }
    review.normalized = std::clamp(normalized, 0.0, 100.0);
  }
}

std::map<std::string, double> MeritByProposal(const std::vector<Review>& reviews) {
  std::map<std::string, Moments> per_proposal;
  for (const Review& review : reviews) per_proposal[review.proposal].Add(review.normalized);
  std::map<std::string, double> merit;
  for (const auto& [proposal, moments] : per_proposal) merit[proposal] = moments.Mean();
  return merit;
}

}  // namespace atrium::program
