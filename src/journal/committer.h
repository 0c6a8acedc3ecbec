// Committer: group commit for many concurrent clients. Callers on any thread hand it a
// command and get a future; one writer thread takes every command waiting at that
// moment, applies them in arrival order through DurableCore::Submit (one durable
// transaction, one fsync for the whole group), then fulfils their futures. Under load
// the groups grow by themselves, so throughput rises while each fsync is shared.
//
// The queue is bounded: when queue_depth_max commands are waiting, Submit answers
// kUnavailable at once (the service turns it into 503 with Retry-After), instead of
// letting latency grow without limit.
//
//   Committer committer(std::move(durable), {});
//   auto future = committer.Submit(core::CreateTransfers{...});
//   Result<core::CommandResult> result = future.get();  // durable when ok
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "journal/journal.h"

namespace atrium::journal {

struct CommitterOptions {
  size_t queue_depth_max = 65'536;    // commands waiting; beyond it Submit refuses
  size_t group_commands_max = 8'192;  // commands in one durable transaction
};

struct CommitterStats {
  uint64_t commands = 0;
  uint64_t groups = 0;  // durable transactions
};

class Committer {
 public:
  Committer(std::unique_ptr<DurableCore> durable, CommitterOptions options);
  // Finishes every accepted command, then stops the writer.
  ~Committer();
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  std::future<Result<core::CommandResult>> Submit(core::Command command);

  // Runs `read` on the state under the writer's lock: a consistent view that includes
  // every command whose future is ready.
  void Read(const std::function<void(const core::Core&)>& read) const;
  CommitterStats stats() const;
  size_t queue_depth() const;

 private:
  struct Pending {
    core::Command command;
    std::promise<Result<core::CommandResult>> promise;
  };
  void Run();

  std::unique_ptr<DurableCore> durable_;
  const CommitterOptions options_;
  mutable std::mutex queue_mutex_;
  std::condition_variable queue_ready_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  mutable std::mutex state_mutex_;  // held while the writer applies a group
  CommitterStats stats_;
  std::thread writer_;
};

}  // namespace atrium::journal
