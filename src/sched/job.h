// Jobs as the scheduler holds them. A JobSpec is what a user (or a trace) submits; a Job
// is the scheduler's record of it: its validated shape, its state, its current or last
// run. Jobs are gangs: all their chips, of one accelerator type, start and stop together.
//
// States: pending -> running -> completed | killed_at_walltime, or pending -> rejected at
// submission; a preempted run sends the job back to pending, keeping its submit time (its
// age) and the time it already ran.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "base/credits.h"
#include "base/error.h"
#include "base/id.h"
#include "cluster/cluster.h"
#include "sched/node_index.h"

namespace atrium::sched {

using JobId = uint32_t;

struct JobSpec {
  std::string id;
  std::string grant;
  cluster::JobClass job_class = cluster::JobClass::kResearch;
  bool class_given = true;  // false: take the grant's default class
  std::string accelerator;  // "" = the cluster's default type
  int64_t chips = 0;
  int64_t submit_s = 0;
  int64_t duration_s = 0;  // simulation only: how long the job really runs
  int64_t walltime_s = 0;  // the limit: a run is killed when the job's total run time hits it
};

enum class JobState : uint8_t {
  kPending,
  kRunning,
  kCompleted,
  kKilledAtWalltime,
  kRejected,
  kCancelled,  // by its owner or an operator, waiting or running (then charged for what ran)
};
std::string_view ToString(JobState state);

// Why a job started while an older job of its pool and shape class, fitting the free
// capacity, kept waiting (the policy's reason, recorded on the later job).
enum class StartedAhead : uint8_t {
  kNo,           // no older job of its class that fitted was waiting
  kPriority,     // the policy ranked it first (fair share, job class)
  kReservation,  // the older job would have run past a reservation's start; this one ends by it
  kCredits,      // the older job's grant could not hold its cost
};
std::string_view ToString(StartedAhead ahead);

// Why a run ended; the strings are runs.csv's `ended_by`.
enum class RunEnd : uint8_t { kCompleted, kWalltime, kPreempted };
std::string_view ToString(RunEnd end);

// Where a run's chips are: one Alloc per node, kept inline for a job of one node or less
// (most jobs), so such a job's placement takes no heap block.
using Placement = absl::InlinedVector<Alloc, 1>;

// Fields are ordered by size, so that a job carries no padding (224 bytes; the service
// keeps one per job ever submitted).
struct Job {
  std::string id;
  Id128 hold_id = kIdNone;  // the current run's hold
  cluster::JobShape shape;
  int64_t submit_s = 0;
  int64_t duration_s = 0;
  int64_t walltime_s = 0;

  int64_t first_start_s = -1;
  int64_t end_s = -1;
  int64_t ran_s = 0;  // total over finished runs
  Credits charged;

  // The current run (or the last one, once finished).
  int64_t run_start_s = -1;
  int64_t run_limit_s = 0;       // this run's walltime: walltime_s - ran_s at its start
  int64_t preempt_at_s = -1;     // set when the job was told to yield
  int64_t preempt_retry_s = -1;  // no new preemption for this job before then
  Placement placement;

  uint32_t grant = 0;
  uint32_t runs = 0;
  uint32_t waiting_pos = UINT32_MAX;  // position in the waiting list
  uint32_t shape_class = UINT32_MAX;  // its queue: pool and shape (while waiting)
  uint32_t group = UINT32_MAX;        // its group in that queue (grant and class)
  int32_t reservation = -1;           // slot in its pool's reservations this pass, if any
  // The capacity reservation whose nodes the current run uses (-1: none); as the
  // booking's owner inside its window (booking_owner: free of charge), or before its
  // window (ending by its start).
  int32_t booking = -1;

  cluster::JobClass job_class = cluster::JobClass::kResearch;
  JobState state = JobState::kPending;
  // Rejected: why (the text: Scheduler::rejection_text). Pending: kInsufficientCredits
  // while its grant cannot hold its cost.
  ErrorCode reason = ErrorCode::kOk;
  StartedAhead ahead = StartedAhead::kNo;  // of its last start
  bool preempt_under_way = false;          // its last attempt asked jobs to yield
  bool booking_owner = false;

  // When the current run will end at the latest, as far as the scheduler knows.
  int64_t expected_end_s() const {
    const int64_t by_walltime = run_start_s + run_limit_s;
    return preempt_at_s >= 0 && preempt_at_s < by_walltime ? preempt_at_s : by_walltime;
  }
};

// The scheduler's jobs, indexed by JobId, in chunks of kChunkJobs: growing never copies
// the jobs already stored (a std::vector<Job> briefly holds 1.5x its jobs when it grows,
// and keeps up to twice their size reserved), and references to jobs stay valid.
class JobTable {
 public:
  static constexpr size_t kChunkJobs = 256;

  JobTable() = default;
  JobTable(JobTable&&) noexcept = default;
  JobTable& operator=(JobTable&&) noexcept = default;
  JobTable(const JobTable& other) { *this = other; }
  JobTable& operator=(const JobTable& other) {
    if (this == &other) return *this;
    clear();
    for (size_t i = 0; i < other.size(); ++i) emplace_back() = other[i];
    return *this;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  Job& operator[](size_t id) { return chunks_[id / kChunkJobs][id % kChunkJobs]; }
  const Job& operator[](size_t id) const { return chunks_[id / kChunkJobs][id % kChunkJobs]; }
  // A new job, default-initialized, at the end.
  Job& emplace_back() {
    if (size_ == chunks_.size() * kChunkJobs) {
      chunks_.push_back(std::make_unique<Job[]>(kChunkJobs));
    } else {
      (*this)[size_] = Job{};
    }
    return (*this)[size_++];
  }
  // Grows (only) to `count` default-initialized jobs.
  void resize(size_t count) {
    while (size_ < count) emplace_back();
  }
  void clear() {
    chunks_.clear();
    size_ = 0;
  }

  template <class Table, class Item>
  class Iterator {
   public:
    Iterator(Table* table, size_t at) : table_(table), at_(at) {}
    Item& operator*() const { return (*table_)[at_]; }
    Item* operator->() const { return &(*table_)[at_]; }
    Iterator& operator++() {
      ++at_;
      return *this;
    }
    bool operator==(const Iterator& other) const { return at_ == other.at_; }

   private:
    Table* table_;
    size_t at_;
  };
  using iterator = Iterator<JobTable, Job>;
  using const_iterator = Iterator<const JobTable, const Job>;
  iterator begin() { return {this, 0}; }
  iterator end() { return {this, size_}; }
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size_}; }

 private:
  std::vector<std::unique_ptr<Job[]>> chunks_;
  size_t size_ = 0;
};

}  // namespace atrium::sched
