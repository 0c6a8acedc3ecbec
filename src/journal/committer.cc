#include "journal/committer.h"

namespace atrium::journal {

Committer::Committer(std::unique_ptr<DurableCore> durable, CommitterOptions options)
    : durable_(std::move(durable)), options_(options), writer_([this] { Run(); }) {}

Committer::~Committer() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queue_ready_.notify_all();
  writer_.join();
}

std::future<Result<core::CommandResult>> Committer::Submit(core::Command command) {
  std::promise<Result<core::CommandResult>> promise;
  auto future = promise.get_future();
  {
    std::lock_guard lock(queue_mutex_);
    if (stopping_) {
      promise.set_value(MakeError(ErrorCode::kUnavailable, "the journal is shutting down"));
      return future;
    }
    if (queue_.size() >= options_.queue_depth_max) {
      promise.set_value(MakeError(ErrorCode::kUnavailable,
                                  "too many commands waiting for the journal; retry shortly"));
      return future;
    }
    queue_.push_back(Pending{std::move(command), std::move(promise)});
  }
  queue_ready_.notify_one();
  return future;
}

void Committer::Run() {
  std::vector<Pending> group;
  std::vector<core::Command> commands;
  for (;;) {
    {
      std::unique_lock lock(queue_mutex_);
      queue_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything accepted is done
      const size_t take = std::min(queue_.size(), options_.group_commands_max);
      for (size_t taken = 0; taken < take; ++taken) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    commands.clear();
    for (Pending& pending : group) commands.push_back(std::move(pending.command));
    Result<std::vector<core::CommandResult>> results = [&] {
      std::lock_guard lock(state_mutex_);
      auto submitted = durable_->Submit(commands);
      ++stats_.groups;
      stats_.commands += commands.size();
      return submitted;
    }();
    for (size_t pending_idx = 0; pending_idx < group.size(); ++pending_idx) {
      if (results.ok()) {
        group[pending_idx].promise.set_value(std::move((*results)[pending_idx]));
      } else {
        group[pending_idx].promise.set_value(results.error());
      }
    }
    group.clear();
  }
}

void Committer::Read(const std::function<void(const core::Core&)>& read) const {
  std::lock_guard lock(state_mutex_);
  read(durable_->core());
}

CommitterStats Committer::stats() const {
  std::lock_guard lock(state_mutex_);
  return stats_;
}

size_t Committer::queue_depth() const {
  std::lock_guard lock(queue_mutex_);
  return queue_.size();
}

}  // namespace atrium::journal
