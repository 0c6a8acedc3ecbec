#include "journal/journal.h"

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "base/bytes.h"
#include "journal/mutex.h"

namespace atrium::journal {
namespace {

Error Broken(uint64_t seq, const std::string& why) {
  return MakeError(ErrorCode::kChainBroken, "entry " + std::to_string(seq) + ": " + why);
}

// Checks one entry against the chain so far and decodes its command.
Result<core::Command> Follow(const StoredEntry& entry, uint64_t expected_seq,
                             const Digest& previous) {
  if (entry.seq != expected_seq) {
    return Broken(expected_seq, "missing (next stored entry is " + std::to_string(entry.seq) + ")");
  }
  if (ChainHash(previous, entry.seq, entry.payload) != entry.hash) {
    return Broken(entry.seq, "hash does not match its content and predecessor");
  }
  auto command = core::DecodeCommand(entry.payload);
  if (!command.ok()) {
    return MakeError(ErrorCode::kCorruption,
                     "entry " + std::to_string(entry.seq) + ": " + command.error().message);
  }
  return command;
}

// A restart's second thread (docs/journal.md, "Restart on two threads"). It checks the
// snapshot's digest and decodes the snapshot's ledger while the opening thread decodes the
// rest; then it reads the entries after the snapshot, checks each against the chain,
// decodes it and parses its JSON, and hands them over in batches, so the opening thread
// only applies.
// Until it is joined the store is this thread's alone.
class RestartReader {
 public:
  struct Entry {
    uint64_t seq = 0;
    Digest hash{};
    uint64_t payload_bytes = 0;
    core::Core::ParsedCommand command;
  };

  // Reads from the entry after `snapshot` (or from the start, if there is none); the
  // snapshot is read until TakeLedger returns.
  RestartReader(JournalStore* store, const StoredSnapshot* snapshot)
      : store_(store),
        snapshot_(snapshot),
        from_seq_(snapshot != nullptr ? snapshot->seq : 0),
        from_hash_(snapshot != nullptr ? snapshot->chain_hash : Digest{}),
        thread_([this] {
          // What the store or an allocation throws ends the restart with an error, not
          // the process.
          try {
            Run();
          } catch (const std::exception& thrown) {
            Fail(thrown.what());
          }
        }) {}
  ~RestartReader() {
    {
      MutexLock lock(&mutex_);
      stopped_ = true;
    }
    changed_.SignalAll();
    thread_.join();
  }
  RestartReader(const RestartReader&) = delete;
  RestartReader& operator=(const RestartReader&) = delete;

  // The snapshot's ledger, decoded once its digest matched (waits for it).
  Result<ledger::Ledger> TakeLedger() {
    MutexLock lock(&mutex_);
    while (!ledger_.has_value()) changed_.Wait(&mutex_);
    return std::move(*ledger_);
  }

  // The next entries in order; empty at the end of the journal or at the first problem
  // (then status() says which).
  std::vector<Entry> NextBatch() {
    std::vector<Entry> batch;
    MutexLock lock(&mutex_);
    while (batches_.empty() && !finished_) changed_.Wait(&mutex_);
    if (!batches_.empty()) {
      batch = std::move(batches_.front());
      batches_.pop_front();
      changed_.SignalAll();
    }
    return batch;
  }
  // Gives an applied batch back: the reader thread frees it (its parsed documents are
  // many small blocks, and freeing them is work the applying thread need not do).
  void Recycle(std::vector<Entry> batch) {
    MutexLock lock(&mutex_);
    spent_.push_back(std::move(batch));
  }
  // Once NextBatch came back empty: the first problem met, and the store's last entry as
  // last seen (for the opening thread's check that the replay reached it).
  Status status() {
    MutexLock lock(&mutex_);
    return status_;
  }
  std::optional<StoredEntry> last() {
    MutexLock lock(&mutex_);
    return last_;
  }

 private:
  static constexpr size_t kBatchEntries = 256;
  static constexpr size_t kBatchesQueued = 8;

  void Run() {
    if (snapshot_ != nullptr) {
      Result<ledger::Ledger> ledger = DecodeSnapshotLedger(*snapshot_);
      snapshot_ = nullptr;
      const bool decoded = ledger.ok();
      {
        MutexLock lock(&mutex_);
        ledger_ = std::move(ledger);
      }
      changed_.SignalAll();
      if (!decoded) return Finish(OkStatus(), std::nullopt);
    }
    uint64_t seq = from_seq_;
    Digest hash = from_hash_;
    std::vector<Entry> batch;
    std::optional<StoredEntry> last;
    Status status = OkStatus();
    // Another process may be appending while this one reads (a reader beside the
    // service): entries that appear during a scan are read by another scan.
    for (;;) {
      status = store_->Scan(seq, [&](const StoredEntry& entry) -> Status {
        ATRIUM_ASSIGN_OR_RETURN(core::Command command, Follow(entry, seq + 1, hash));
        seq = entry.seq;
        hash = entry.hash;
        batch.push_back(Entry{.seq = entry.seq,
                              .hash = entry.hash,
                              .payload_bytes = entry.payload.size(),
                              .command = core::Core::Parse(std::move(command))});
        if (batch.size() < kBatchEntries) return OkStatus();
        if (!Hand(std::move(batch))) {
          return MakeError(ErrorCode::kUnavailable, "the restart stopped reading");
        }
        batch = {};
        return OkStatus();
      });
      if (!status.ok()) break;
      Result<std::optional<StoredEntry>> stored_last = store_->LastEntry();
      if (!stored_last.ok()) {
        status = stored_last.error();
        break;
      }
      last = std::move(*stored_last);
      if (!last.has_value() || last->seq <= seq) break;
    }
    if (!batch.empty()) Hand(std::move(batch));
    Finish(std::move(status), std::move(last));
  }

  static Result<ledger::Ledger> DecodeSnapshotLedger(const StoredSnapshot& snapshot) {
    if (Sha256Of(snapshot.state) != snapshot.state_digest) {
      return MakeError(ErrorCode::kCorruption,
                       "snapshot " + std::to_string(snapshot.seq) + " does not match its digest");
    }
    ATRIUM_ASSIGN_OR_RETURN(const core::Core::SnapshotParts parts,
                            core::Core::SplitSnapshot(snapshot.state));
    return core::Core::DecodeLedger(parts.ledger);
  }

  // Queues a batch, waiting for room; false once the opening thread stopped listening.
  // Frees the batches given back meanwhile, outside the lock.
  bool Hand(std::vector<Entry> batch) {
    std::deque<std::vector<Entry>> spent;
    {
      MutexLock lock(&mutex_);
      while (batches_.size() >= kBatchesQueued && !stopped_) changed_.Wait(&mutex_);
      if (stopped_) return false;
      batches_.push_back(std::move(batch));
      spent.swap(spent_);
    }
    changed_.SignalAll();
    return true;
  }

  void Fail(const char* what) {
    {
      MutexLock lock(&mutex_);
      const Error error = MakeError(ErrorCode::kInternal, std::string("restart: ") + what);
      if (!ledger_.has_value()) ledger_ = error;
      status_ = error;
      finished_ = true;
    }
    changed_.SignalAll();
  }

  void Finish(Status status, std::optional<StoredEntry> last) {
    {
      MutexLock lock(&mutex_);
      status_ = std::move(status);
      last_ = std::move(last);
      finished_ = true;
    }
    changed_.SignalAll();
  }

  JournalStore* const store_;
  const StoredSnapshot* snapshot_;  // the reader thread's, until the ledger is decoded
  const uint64_t from_seq_;
  const Digest from_hash_;
  Mutex mutex_;
  CondVar changed_;
  std::optional<Result<ledger::Ledger>> ledger_ ABSL_GUARDED_BY(mutex_);
  std::deque<std::vector<Entry>> batches_ ABSL_GUARDED_BY(mutex_);
  std::deque<std::vector<Entry>> spent_ ABSL_GUARDED_BY(mutex_);
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
  bool stopped_ ABSL_GUARDED_BY(mutex_) = false;
  Status status_ ABSL_GUARDED_BY(mutex_) = OkStatus();
  std::optional<StoredEntry> last_ ABSL_GUARDED_BY(mutex_);
  std::thread thread_;  // last: started once everything above is set
};

}  // namespace

Digest ChainHash(const Digest& previous, uint64_t seq, std::string_view payload) {
  std::string seq_bytes;
  ByteWriter(&seq_bytes).Put<uint64_t>(seq);
  return Sha256()
      .Update(std::string_view(reinterpret_cast<const char*>(previous.data()), previous.size()))
      .Update(seq_bytes)
      .Update(payload)
      .Finish();
}

Result<std::unique_ptr<DurableCore>> DurableCore::Open(std::unique_ptr<JournalStore> store,
                                                       Options options) {
  std::unique_ptr<DurableCore> durable(new DurableCore(std::move(store), options));
  ATRIUM_TRY(durable->Recover());
  return durable;
}

Status DurableCore::Recover() {
  // Snapshots are a cache of the journal: a damaged one (its state does not match its
  // digest, does not decode, or breaks the core's invariants) is passed over for the one
  // before it, and then for the journal from its start, which yields the same state. The
  // journal itself must still reach the newest snapshot's entry: a snapshot proves its
  // entries were written, so a journal that ends before it has lost some.
  ATRIUM_ASSIGN_OR_RETURN(std::vector<StoredSnapshot> index, store_->SnapshotIndex());
  const uint64_t newest_seq = index.empty() ? 0 : index.back().seq;
  for (auto it = index.rbegin(); it != index.rend(); ++it) {
    Result<StoredSnapshot> read = store_->ReadSnapshot(it->seq);
    if (!read.ok() && read.code() != ErrorCode::kCorruption) return read.error();
    if (!read.ok()) {  // its chunks do not add up to its head
      skipped_snapshots_.push_back({.seq = it->seq, .reason = read.error().message});
      continue;
    }
    // Written by an earlier build: this one and every older one are passed over for the
    // journal from its start. (Bytes that are no snapshot at all are damaged, below.)
    const Result<uint32_t> version = core::Core::SnapshotVersion(read->state);
    if (version.ok() && *version < core::Core::kSnapshotVersion) break;
    bool damaged = false;
    Status recovered = RecoverFrom(std::move(*read), &damaged);
    if (recovered.ok() || !damaged) return recovered;
    skipped_snapshots_.push_back({.seq = it->seq, .reason = recovered.error().message});
    ResetForRecovery();
  }
  bool damaged = false;
  ATRIUM_TRY(RecoverFrom(std::nullopt, &damaged));
  if (last_seq_ < newest_seq) {
    return MakeError(ErrorCode::kCorruption, "the journal ends at entry " +
                                                 std::to_string(last_seq_) + ", before snapshot " +
                                                 std::to_string(newest_seq) +
                                                 " (which was passed over as damaged)");
  }
  return OkStatus();
}

void DurableCore::ResetForRecovery() {
  core_ = core::Core();
  last_seq_ = 0;
  last_hash_ = Digest{};
  recovered_from_seq_ = 0;
  bytes_since_snapshot_ = 0;
  entries_since_snapshot_ = 0;
  last_snapshot_bytes_ = 0;
}

Status DurableCore::RecoverFrom(std::optional<StoredSnapshot> snapshot, bool* snapshot_damaged) {
  // The reader thread checks the digest and decodes the ledger while this one decodes the
  // rest of the snapshot; then it reads the tail while this one applies it.
  RestartReader reader(store_.get(), snapshot.has_value() ? &*snapshot : nullptr);
  if (snapshot.has_value()) {
    Result<core::Core> decoded = [&]() -> Result<core::Core> {
      ATRIUM_ASSIGN_OR_RETURN(const core::Core::SnapshotParts parts,
                              core::Core::SplitSnapshot(snapshot->state));
      return core::Core::DecodeWithoutLedger(parts.app);
    }();
    Result<ledger::Ledger> ledger = reader.TakeLedger();
    // Whatever goes wrong before an entry is replayed is the snapshot's fault (a store
    // that cannot be read fails the same way on the next attempt).
    *snapshot_damaged = true;
    if (!ledger.ok()) return ledger.error();  // a digest that does not match comes first
    if (!decoded.ok()) return decoded.error();
    core_ = std::move(*decoded);
    core_.AttachLedger(std::move(*ledger));
    // Check the snapshot's state before anything is replayed on top of it.
    ATRIUM_TRY(core_.Verify());
    *snapshot_damaged = false;
    last_seq_ = snapshot->seq;
    last_hash_ = snapshot->chain_hash;
    recovered_from_seq_ = snapshot->seq;
    last_snapshot_bytes_ = snapshot->state.size();
    snapshot.reset();  // the reader is done with it: the tail replays without its bytes
  }
  for (;;) {
    std::vector<RestartReader::Entry> batch = reader.NextBatch();
    if (batch.empty()) break;
    for (const RestartReader::Entry& entry : batch) {
      (void)core_.Apply(entry.command);
      last_seq_ = entry.seq;
      last_hash_ = entry.hash;
      bytes_since_snapshot_ += entry.payload_bytes;
      ++entries_since_snapshot_;
    }
    reader.Recycle(std::move(batch));
  }
  ATRIUM_TRY(reader.status());
  // Only a journal that ends before what was replayed, or differs from it, is broken.
  const std::optional<StoredEntry> last = reader.last();
  if (last.has_value() && (last->seq != last_seq_ || last->hash != last_hash_)) {
    return Broken(last->seq, "the snapshot does not belong to this journal");
  }
  if (!last.has_value() && last_seq_ != 0) {
    return MakeError(ErrorCode::kCorruption, "snapshot without the journal it summarises");
  }
  durable_seq_ = last_seq_;
  // A snapshot's state was checked when it was loaded; check again only if entries were
  // replayed on top of it (or there was no snapshot).
  if (recovered_from_seq_ != 0 && last_seq_ == recovered_from_seq_) return OkStatus();
  return core_.Verify();
}

Result<PreparedGroup> DurableCore::Prepare(std::span<const core::Command> commands) {
  if (poisoned_) {
    return MakeError(ErrorCode::kJournalPoisoned,
                     "an earlier append failed; reopen the journal to continue");
  }
  if (store_->read_only()) {
    return MakeError(ErrorCode::kInvalidArgument, "the journal is open read-only");
  }
  PreparedGroup group;
  group.results.reserve(commands.size());
  for (const core::Command& command : commands) {
    group.results.push_back(core_.Apply(command));
    if (!group.results.back().changed) continue;
    StoredEntry& entry = group.entries.emplace_back();
    entry.seq = ++last_seq_;
    const core::CommandResult& result = group.results.back();
    if (result.app && !result.app->journal_json.empty()) {
      // The command with the results it computed (the solver's answers of a draft): a
      // replay applies them instead of computing again.
      core::EncodeCommand(
          core::AppCommand{.now_us = core::CommandTime(command), .json = result.app->journal_json},
          &entry.payload);
    } else {
      core::EncodeCommand(command, &entry.payload);
    }
    entry.hash = ChainHash(last_hash_, entry.seq, entry.payload);
    last_hash_ = entry.hash;
    bytes_since_snapshot_ += entry.payload.size();
    ++entries_since_snapshot_;
  }
  return group;
}

Status DurableCore::Commit(const PreparedGroup& group) {
  if (poisoned_) {
    return MakeError(ErrorCode::kJournalPoisoned,
                     "an earlier append failed; reopen the journal to continue");
  }
  if (Status appended = store_->Append(group.entries); !appended.ok()) {
    poisoned_ = true;
    return appended;
  }
  if (!group.entries.empty()) durable_seq_ = group.entries.back().seq;
  return OkStatus();
}

uint64_t DurableCore::snapshot_due_entries() const {
  if (options_.snapshot_entries == 0) return 0;
  const uint64_t scaled = options_.snapshot_state_bytes_per_entry == 0
                              ? 0
                              : last_snapshot_bytes_ / options_.snapshot_state_bytes_per_entry;
  return std::max(options_.snapshot_entries, scaled);
}

bool DurableCore::snapshot_due() const {
  if (!options_.auto_snapshot || entries_since_snapshot_ == 0) return false;
  const uint64_t due_entries = snapshot_due_entries();
  if (due_entries > 0 && entries_since_snapshot_ >= due_entries) return true;
  // Saturating: a growth factor times a large snapshot never wraps to a small bound.
  uint64_t grown = 0;
  if (__builtin_mul_overflow(options_.snapshot_growth_factor, last_snapshot_bytes_.load(),
                             &grown)) {
    grown = std::numeric_limits<uint64_t>::max();
  }
  return bytes_since_snapshot_ >= std::max(options_.snapshot_bytes_min, grown);
}

Result<std::vector<core::CommandResult>> DurableCore::Submit(
    std::span<const core::Command> commands) {
  ATRIUM_ASSIGN_OR_RETURN(PreparedGroup group, Prepare(commands));
  ATRIUM_TRY(Commit(group));
  if (snapshot_due()) {
    // A failed snapshot loses nothing (the journal is complete); it is retried when due
    // again rather than failing commands that are already durable.
    (void)Snapshot();
  }
  return std::move(group.results);
}

Result<core::CommandResult> DurableCore::Submit(const core::Command& command) {
  ATRIUM_ASSIGN_OR_RETURN(std::vector<core::CommandResult> results,
                          Submit(std::span<const core::Command>(&command, 1)));
  return std::move(results.front());
}

Status DurableCore::Snapshot() {
  ATRIUM_ASSIGN_OR_RETURN(StoredSnapshot snapshot, CaptureSnapshot());
  return WriteSnapshot(std::move(snapshot));
}

namespace {

// Asks the kernel to back a large buffer with transparent huge pages where it allows them
// ("madvise" mode): one fault per 2 MiB instead of per 4 KiB while the snapshot is
// encoded. Only a hint; nothing depends on it.
void AdviseHugePages(std::string& buffer) {
  constexpr size_t kHugeBytes = size_t{2} << 20;
  void* first = buffer.data();
  size_t space = buffer.capacity();
  if (std::align(kHugeBytes, kHugeBytes, first, space) == nullptr) return;
  (void)madvise(first, space & ~(kHugeBytes - 1), MADV_HUGEPAGE);
}

}  // namespace

Result<StoredSnapshot> DurableCore::CaptureSnapshot() {
  if (poisoned_) return MakeError(ErrorCode::kJournalPoisoned, "reopen the journal first");
  ATRIUM_ASSERT(durable_seq_ == last_seq_, "snapshot of a state ahead of the journal");
  StoredSnapshot snapshot;
  snapshot.seq = last_seq_;
  snapshot.chain_hash = last_hash_;
  // One buffer, sized from the last snapshot plus what the journal added since: growing a
  // string of hundreds of megabytes by doubling copies it again at every step and touches
  // twice its pages, all while the apply thread waits.
  snapshot.state.reserve(last_snapshot_bytes_ + last_snapshot_bytes_ / 8 + bytes_since_snapshot_);
  AdviseHugePages(snapshot.state);
  core_.Encode(&snapshot.state);
  // The policy counts from here: entries prepared while the bytes are written count
  // toward the next snapshot. A write that fails loses nothing (the journal is complete);
  // the next snapshot is then taken when due again.
  entries_since_snapshot_ = 0;
  bytes_since_snapshot_ = 0;
  last_snapshot_bytes_ = snapshot.state.size();
  return snapshot;
}

Result<DurableCore::ForkedSnapshot> DurableCore::ForkSnapshot(
    const std::function<void()>& in_child) {
  if (poisoned_) return MakeError(ErrorCode::kJournalPoisoned, "reopen the journal first");
  ATRIUM_ASSERT(durable_seq_ == last_seq_, "snapshot of a state ahead of the journal");
  if constexpr (!kCanForkSnapshot) {
    return MakeError(ErrorCode::kUnavailable,
                     "this build's allocator cannot allocate in a forked child");
  }
  ForkedSnapshot forked{.seq = last_seq_, .chain_hash = last_hash_};
  forked.fd = memfd_create("atrium-snapshot", MFD_CLOEXEC);
  if (forked.fd < 0) {
    return MakeError(ErrorCode::kIoError, std::string("memfd_create: ") + strerror(errno));
  }
  const size_t reserve_bytes =
      last_snapshot_bytes_ + last_snapshot_bytes_ / 8 + bytes_since_snapshot_;
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int fork_errno = errno;
    close(forked.fd);
    return MakeError(ErrorCode::kUnavailable, std::string("fork: ") + strerror(fork_errno));
  }
  if (pid == 0) {
    // The child: one thread (the caller's), a copy of the state frozen at the fork. It
    // only encodes and writes, then leaves with _exit (no destructors, no atexit, nothing
    // flushed twice); it dies with the thread that forked it (the Committer's applier
    // waits for it before it ends), so a killed service leaves no child behind.
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(3);
    // Below the service's threads: on a busy machine the encode takes longer instead of
    // taking a core from the threads that answer (a child is a process of its own, so
    // this leaves the parent's priority alone).
    (void)nice(kSnapshotChildNice);
    try {
      if (in_child) in_child();
      std::string state;
      state.reserve(reserve_bytes);
      AdviseHugePages(state);
      core_.Encode(&state);
      size_t written = 0;
      while (written < state.size()) {
        const ssize_t n = write(forked.fd, state.data() + written, state.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) _exit(2);
        written += static_cast<size_t>(n);
      }
    } catch (...) {
      _exit(4);
    }
    _exit(0);
  }
  forked.pid = pid;
  // As in CaptureSnapshot: the policy counts from the fork.
  entries_since_snapshot_ = 0;
  bytes_since_snapshot_ = 0;
  return forked;
}

Result<StoredSnapshot> DurableCore::CollectSnapshot(ForkedSnapshot forked) {
  const auto close_fd = absl::MakeCleanup([&] { close(forked.fd); });
  int status = 0;
  while (waitpid(forked.pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return MakeError(ErrorCode::kInternal, std::string("waitpid: ") + strerror(errno));
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return MakeError(ErrorCode::kInternal,
                     "the snapshot's child process failed (" +
                         (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                            : "signal " + std::to_string(WTERMSIG(status))) +
                         ")");
  }
  struct stat file {};
  if (fstat(forked.fd, &file) != 0) {
    return MakeError(ErrorCode::kIoError, std::string("fstat: ") + strerror(errno));
  }
  StoredSnapshot snapshot;
  snapshot.seq = forked.seq;
  snapshot.chain_hash = forked.chain_hash;
  snapshot.state.resize(static_cast<size_t>(file.st_size));
  size_t read_bytes = 0;
  while (read_bytes < snapshot.state.size()) {
    const ssize_t n = pread(forked.fd, snapshot.state.data() + read_bytes,
                            snapshot.state.size() - read_bytes, static_cast<off_t>(read_bytes));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return MakeError(ErrorCode::kIoError, "the snapshot's file ended early");
    }
    read_bytes += static_cast<size_t>(n);
  }
  last_snapshot_bytes_ = snapshot.state.size();
  return snapshot;
}

Status DurableCore::WriteSnapshot(StoredSnapshot snapshot) {
  if (poisoned_) return MakeError(ErrorCode::kJournalPoisoned, "reopen the journal first");
  snapshot.state_digest = Sha256Of(snapshot.state);
  return store_->PutSnapshot(snapshot);
}

Result<bool> DurableCore::WriteSnapshotPart(SnapshotWrite& write, uint64_t part_bytes) {
  if (poisoned_) return MakeError(ErrorCode::kJournalPoisoned, "reopen the journal first");
  const std::string_view state = write.snapshot.state;
  if (write.written_bytes < state.size()) {
    const std::string_view part = state.substr(
        write.written_bytes, std::clamp<uint64_t>(part_bytes, 1, kSnapshotChunkBytesMax));
    ATRIUM_TRY(store_->PutSnapshotChunk(write.snapshot.seq, write.chunks, part));
    write.digest.Update(part);
    write.written_bytes += part.size();
    ++write.chunks;
    return false;
  }
  write.snapshot.state_digest = write.digest.Finish();
  ATRIUM_TRY(store_->PutSnapshotHead(write.snapshot, state.size(), write.chunks));
  return true;
}

Result<uint64_t> DurableCore::PruneSnapshotChunks(uint64_t chunks_max) {
  if (poisoned_) return MakeError(ErrorCode::kJournalPoisoned, "reopen the journal first");
  return store_->PruneSnapshotChunks(chunks_max);
}

Result<VerifyReport> VerifyStore(JournalStore& store) {
  ATRIUM_ASSIGN_OR_RETURN(std::vector<StoredSnapshot> snapshots, store.SnapshotIndex());
  // Snapshots of an older format (an earlier build's) are checked against their digest
  // only: the current core does not encode that format.
  std::vector<StoredSnapshot> current;
  for (const StoredSnapshot& listed : snapshots) {
    ATRIUM_ASSIGN_OR_RETURN(StoredSnapshot stored, store.ReadSnapshot(listed.seq));
    if (Sha256Of(stored.state) != stored.state_digest) {
      return MakeError(ErrorCode::kCorruption,
                       "snapshot " + std::to_string(stored.seq) + " does not match its digest");
    }
    auto version = core::Core::SnapshotVersion(stored.state);
    if (!version.ok() || *version >= core::Core::kSnapshotVersion) current.push_back(listed);
  }
  snapshots = std::move(current);
  VerifyReport report;
  core::Core core;
  size_t next_snapshot = 0;
  auto check_snapshots = [&]() -> Status {
    while (next_snapshot < snapshots.size() && snapshots[next_snapshot].seq == report.entries) {
      const StoredSnapshot& snapshot = snapshots[next_snapshot++];
      std::string state;
      core.Encode(&state);
      if (Sha256Of(state) != snapshot.state_digest || snapshot.chain_hash != report.last_hash) {
        return MakeError(ErrorCode::kCorruption,
                         "snapshot " + std::to_string(snapshot.seq) +
                             " differs from the state the journal replays to");
      }
      ++report.snapshots_checked;
    }
    return OkStatus();
  };
  ATRIUM_TRY(check_snapshots());
  ATRIUM_TRY(store.Scan(0, [&](const StoredEntry& entry) -> Status {
    ATRIUM_ASSIGN_OR_RETURN(core::Command command,
                            Follow(entry, report.entries + 1, report.last_hash));
    (void)core.Apply(command);
    report.entries = entry.seq;
    report.last_hash = entry.hash;
    return check_snapshots();
  }));
  if (next_snapshot != snapshots.size()) {
    return MakeError(ErrorCode::kCorruption, "snapshot " +
                                                 std::to_string(snapshots[next_snapshot].seq) +
                                                 " is past the end of the journal");
  }
  ATRIUM_TRY(core.Verify());
  report.accounts = core.ledger().account_count();
  report.transfers = core.ledger().transfer_count();
  return report;
}

}  // namespace atrium::journal
