// FailingStore: a JournalStore for tests that wraps a real one and fails its appends on
// demand, the way a full disk or a lost connection would. Fault injection, after
// LevelDB's ErrorEnv; only tests include it.
#pragma once

#include <atomic>
#include <memory>

#include "journal/store.h"

namespace atrium::journal::testing {

class FailingStore final : public JournalStore {
 public:
  explicit FailingStore(std::unique_ptr<JournalStore> inner) : inner_(std::move(inner)) {}

  // While set, Append fails with kIoError and writes nothing.
  void set_fail_appends(bool fail) { fail_appends_ = fail; }

  Status Append(std::span<const StoredEntry> entries) override {
    if (fail_appends_) return MakeError(ErrorCode::kIoError, "disk full (injected)");
    return inner_->Append(entries);
  }
  Status Scan(uint64_t after, const std::function<Status(const StoredEntry&)>& visit) override {
    return inner_->Scan(after, visit);
  }
  Result<std::optional<StoredEntry>> LastEntry() override { return inner_->LastEntry(); }
  Status PutSnapshot(const StoredSnapshot& snapshot) override {
    return inner_->PutSnapshot(snapshot);
  }
  Status PutSnapshotChunk(uint64_t seq, uint64_t chunk, std::string_view data) override {
    return inner_->PutSnapshotChunk(seq, chunk, data);
  }
  Status PutSnapshotHead(const StoredSnapshot& head, uint64_t state_bytes,
                         uint64_t chunks) override {
    return inner_->PutSnapshotHead(head, state_bytes, chunks);
  }
  Result<uint64_t> PruneSnapshotChunks(uint64_t chunks_max) override {
    return inner_->PruneSnapshotChunks(chunks_max);
  }
  Result<StoredSnapshot> ReadSnapshot(uint64_t seq) override { return inner_->ReadSnapshot(seq); }
  Result<std::optional<StoredSnapshot>> LatestSnapshot() override {
    return inner_->LatestSnapshot();
  }
  Result<std::vector<StoredSnapshot>> SnapshotIndex() override { return inner_->SnapshotIndex(); }
  bool read_only() const override { return inner_->read_only(); }

 private:
  std::unique_ptr<JournalStore> inner_;
  std::atomic<bool> fail_appends_ = false;
};

}  // namespace atrium::journal::testing
