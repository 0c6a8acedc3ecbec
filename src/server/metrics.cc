#include "server/metrics.h"

#include <fmt/format.h>

namespace atrium::server {

void Metrics::Observe(std::string_view operation, int status, double seconds) {
  journal::MutexLock lock(&mutex_);
  auto found = operations_.find(operation);
  if (found == operations_.end()) found = operations_.emplace(operation, PerOperation{}).first;
  PerOperation& per = found->second;
  ++per.requests_by_status[status];
  Latency& latency = per.latency;
  for (size_t i = 0; i < latency.le.size(); ++i) {
    if (i == kBoundsS.size() || seconds <= kBoundsS[i]) ++latency.le[i];
  }
  latency.sum += seconds;
  ++latency.count;
}

std::string Metrics::Render(size_t queue_depth, int64_t chips_busy, int64_t jobs_waiting,
                            const journal::CommitterStats& committer) const {
  std::string out;
  journal::MutexLock lock(&mutex_);
  out += "# HELP atrium_http_requests_total HTTP requests answered, by operation and status.\n";
  out += "# TYPE atrium_http_requests_total counter\n";
  for (const auto& [operation, per] : operations_) {
    for (const auto& [status, count] : per.requests_by_status) {
      out += fmt::format("atrium_http_requests_total{{operation=\"{}\",status=\"{}\"}} {}\n",
                         operation, status, count);
    }
  }
  out += "# HELP atrium_http_request_seconds Time to answer a request, by operation.\n";
  out += "# TYPE atrium_http_request_seconds histogram\n";
  for (const auto& [operation, per] : operations_) {
    const Latency& latency = per.latency;
    for (size_t i = 0; i < latency.le.size(); ++i) {
      const std::string bound = i == kBoundsS.size() ? "+Inf" : fmt::format("{}", kBoundsS[i]);
      out += fmt::format("atrium_http_request_seconds_bucket{{operation=\"{}\",le=\"{}\"}} {}\n",
                         operation, bound, latency.le[i]);
    }
    out += fmt::format("atrium_http_request_seconds_sum{{operation=\"{}\"}} {}\n", operation,
                       latency.sum);
    out += fmt::format("atrium_http_request_seconds_count{{operation=\"{}\"}} {}\n", operation,
                       latency.count);
  }
  out += "# HELP atrium_journal_queue_length Commands waiting to be applied and journaled.\n";
  out += "# TYPE atrium_journal_queue_length gauge\n";
  out += fmt::format("atrium_journal_queue_length {}\n", queue_depth);
  out += "# HELP atrium_journal_commands_total Commands made durable.\n";
  out += "# TYPE atrium_journal_commands_total counter\n";
  out += fmt::format("atrium_journal_commands_total {}\n", committer.commands);
  out += "# HELP atrium_journal_fsync_seconds Time of one durable append (one transaction).\n";
  out += "# TYPE atrium_journal_fsync_seconds histogram\n";
  for (size_t i = 0; i < committer.commit_latency_le.size(); ++i) {
    const std::string bound = i == journal::kCommitLatencyBoundsS.size()
                                  ? "+Inf"
                                  : fmt::format("{}", journal::kCommitLatencyBoundsS[i]);
    out += fmt::format("atrium_journal_fsync_seconds_bucket{{le=\"{}\"}} {}\n", bound,
                       committer.commit_latency_le[i]);
  }
  out += fmt::format("atrium_journal_fsync_seconds_sum {}\n", committer.commit_seconds_sum);
  out += fmt::format("atrium_journal_fsync_seconds_count {}\n", committer.groups);
  out +=
      "# HELP atrium_journal_snapshots_total State snapshots taken, by where they were "
      "encoded (a forked child, or the apply thread).\n";
  out += "# TYPE atrium_journal_snapshots_total counter\n";
  out += fmt::format("atrium_journal_snapshots_total{{encode=\"child\"}} {}\n",
                     committer.snapshots_in_child);
  out += fmt::format("atrium_journal_snapshots_total{{encode=\"apply_thread\"}} {}\n",
                     committer.snapshots_in_process);
  out += "# HELP atrium_journal_snapshot_failures_total Snapshot encodes that failed.\n";
  out += "# TYPE atrium_journal_snapshot_failures_total counter\n";
  out += fmt::format("atrium_journal_snapshot_failures_total {}\n", committer.snapshot_failures);
  out +=
      "# HELP atrium_journal_snapshot_pause_seconds How long the apply thread paused for "
      "snapshots (the fork, or the whole encode): total and longest.\n";
  out += "# TYPE atrium_journal_snapshot_pause_seconds gauge\n";
  out += fmt::format("atrium_journal_snapshot_pause_seconds{{stat=\"sum\"}} {}\n",
                     committer.snapshot_pause_seconds_sum);
  out += fmt::format("atrium_journal_snapshot_pause_seconds{{stat=\"max\"}} {}\n",
                     committer.snapshot_pause_seconds_max);
  out +=
      "# HELP atrium_journal_snapshot_write_step_seconds_max The longest step the write "
      "thread took to store snapshots between groups (a part, a head, or a pruned chunk of an "
      "older snapshot): the most a group waited for one.\n";
  out += "# TYPE atrium_journal_snapshot_write_step_seconds_max gauge\n";
  out += fmt::format("atrium_journal_snapshot_write_step_seconds_max {}\n",
                     committer.snapshot_step_seconds_max);
  out +=
      "# HELP atrium_journal_snapshot_chunks_pruned_total Chunks of snapshots no longer "
      "kept, deleted between groups.\n";
  out += "# TYPE atrium_journal_snapshot_chunks_pruned_total counter\n";
  out += fmt::format("atrium_journal_snapshot_chunks_pruned_total {}\n",
                     committer.snapshot_chunks_pruned);
  out +=
      "# HELP atrium_journal_recovered_from_seq The snapshot this start recovered from (0: "
      "the journal alone).\n";
  out += "# TYPE atrium_journal_recovered_from_seq gauge\n";
  out += fmt::format("atrium_journal_recovered_from_seq {}\n",
                     recovered_from_seq_.load(std::memory_order_relaxed));
  out +=
      "# HELP atrium_journal_snapshots_passed_over Damaged snapshots this start passed over "
      "for an older one or the journal alone (each is logged as snapshot_passed_over).\n";
  out += "# TYPE atrium_journal_snapshots_passed_over gauge\n";
  out += fmt::format("atrium_journal_snapshots_passed_over {}\n",
                     snapshots_passed_over_.load(std::memory_order_relaxed));
  out += "# HELP atrium_cluster_chips_busy Chips running jobs.\n";
  out += "# TYPE atrium_cluster_chips_busy gauge\n";
  out += fmt::format("atrium_cluster_chips_busy {}\n", chips_busy);
  out += "# HELP atrium_cluster_jobs_waiting Jobs waiting in the queue.\n";
  out += "# TYPE atrium_cluster_jobs_waiting gauge\n";
  out += fmt::format("atrium_cluster_jobs_waiting {}\n", jobs_waiting);
  out +=
      "# HELP atrium_award_solves_total Award drafts and overrides solved, by the thread "
      "that ran the solver.\n";
  out += "# TYPE atrium_award_solves_total counter\n";
  out += fmt::format("atrium_award_solves_total{{thread=\"request\"}} {}\n",
                     solves_off_apply_.load(std::memory_order_relaxed));
  out += fmt::format("atrium_award_solves_total{{thread=\"apply\"}} {}\n",
                     solves_on_apply_.load(std::memory_order_relaxed));
  return out;
}

}  // namespace atrium::server
