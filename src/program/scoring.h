// Review scores: the weighted raw score of a review and its normalization per reviewer,
// so that a harsh and a lenient reviewer weigh the same before proposals are ranked.
//
// raw = 100 x sum_i w_i (s_i - min_i) / (max_i - min_i) / sum_i w_i       (0..100)
// For a reviewer with at least two reviews, with mean m_r and standard deviation s_r
// of their raw scores, and m, s the mean and deviation of all raw scores:
//   normalized = m + s x (raw - m_r) / s_r      (s_r > 0)
//   normalized = m                              (s_r = 0: the reviewer did not separate)
// A reviewer's only review keeps its raw score. Results are clamped to 0..100. The
// merit of a proposal is the mean normalized score of its reviews. Deterministic:
// sums run in review order.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/error.h"
#include "program/model.h"

namespace atrium::program {

// kInvalidArgument for a wrong number of scores; kScoreOutOfRange for a score outside
// its criterion's range.
Status ValidateScores(const std::vector<Criterion>& rubric, const std::vector<int64_t>& scores);
double RawScore(const std::vector<Criterion>& rubric, const std::vector<int64_t>& scores);
// Sets raw and normalized of every review.
void NormalizeScores(const std::vector<Criterion>& rubric, std::vector<Review>* reviews);
// Mean normalized score per proposal id, over the given (normalized) reviews.
std::map<std::string, double> MeritByProposal(const std::vector<Review>& reviews);

}  // namespace atrium::program
