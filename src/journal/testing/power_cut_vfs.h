// PowerCutVfs: a SQLite VFS for tests that simulates losing power. It wraps the default
// VFS: reads and writes reach the real files at once (so SQLite sees its own writes), but
// the VFS remembers, per file, the bytes as of that file's last xSync (its durable image)
// and every write and truncate since. xSync makes those durable without calling fsync
// (the durable image is the model, so tests run at memory speed on any disk).
//
// A cut is armed at the Nth write, sync or truncate counted from Arm(): that operation
// and every one after it fails with SQLITE_IOERR, as if the machine had stopped. Then
// ApplyCut() rewrites every file to what a disk could hold after the power came back: the
// durable image plus a seeded random subset of the unsynced writes, some of them torn at
// a 512-byte sector boundary (a write after the last sync is lost, kept, or half kept;
// later writes may survive where earlier ones did not). Files created since are kept (the
// directory is taken as synced); deletions are immediate. Only tests include this.
//
// A mutation (set_mutation, or the environment variable ATRIUM_POWERCUT_MUTATION read by
// Install) makes the VFS lie about syncs, the way a journal that skipped or reordered its
// fsync would behave; scripts/mutation-powercut.sh runs powercut_test under each one and
// requires it to fail, which shows the test can catch lost durability.
//
//   PowerCutVfs& vfs = PowerCutVfs::Install();          // registers "atrium-powercut"
//   vfs.Arm(/*cut_at_op=*/37, /*seed=*/s);
//   ... run the journal on SqliteStore::Open(path, mode, PowerCutVfs::kName) ...
//   vfs.ApplyCut();                                      // after closing every handle
//   ... reopen with the default VFS and check what survived ...
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace atrium::journal::testing {

class PowerCutVfs {
 public:
  static constexpr const char* kName = "atrium-powercut";
  static constexpr uint64_t kNever = UINT64_MAX;

  // Faults planted to check that the power-cut test can fail (none in normal runs).
  enum class Mutation {
    kNone,
    kSkipSync,     // every sync answers OK but makes nothing durable (no fsync at all)
    kSkipWalSync,  // syncs of the write-ahead log do nothing (acknowledged before durable)
    kLateSync,     // a sync makes durable only what the previous sync of that file should
                   // have (each commit is acknowledged one fsync early)
  };
  // "none", "skip_sync", "skip_wal_sync", "late_sync"; nullopt for anything else.
  static std::optional<Mutation> ParseMutation(std::string_view name);
  void set_mutation(Mutation mutation);

  // Registers the VFS once (not as the default) and returns it.
  static PowerCutVfs& Install();

  // Forgets every file, counts operations from zero and cuts at operation cut_at_op
  // (1-based; kNever: no cut). The seed drives which unsynced writes survive.
  void Arm(uint64_t cut_at_op, uint64_t seed);
  // Whether the cut has happened (every operation fails from then on).
  bool dead() const;
  // Writes, syncs and truncates seen since Arm().
  uint64_t operations() const;
  // Rewrites every file seen since Arm() to its state after the power came back, and
  // leaves the VFS dead until the next Arm(). Every handle must be closed first.
  void ApplyCut();

  // Called by the VFS's methods (public for the C callbacks in the .cc).
  struct Pending {
    bool truncate = false;
    int64_t offset = 0;  // write: where; truncate: the new size
    std::string bytes;
  };
  struct FileState {
    std::string durable;           // the bytes as of the last sync
    std::vector<Pending> pending;  // since the last sync, in order
    size_t late = 0;               // kLateSync: pending entries the next sync makes durable
  };
  // Counts one operation; false if the power is (now) off.
  bool Operate();
  void RecordWrite(const std::string& path, int64_t offset, const void* data, int size);
  void RecordTruncate(const std::string& path, int64_t size);
  void RecordSync(const std::string& path);
  void RecordOpen(const std::string& path, const std::string& existing);
  void RecordDelete(const std::string& path);

 private:
  PowerCutVfs() = default;
  static void Apply(std::string& image, const Pending& pending, size_t keep_bytes);

  mutable std::mutex mutex_;
  std::map<std::string, FileState> files_;
  uint64_t operations_ = 0;
  uint64_t cut_at_op_ = kNever;
  uint64_t seed_ = 0;
  bool dead_ = false;
  Mutation mutation_ = Mutation::kNone;
};

}  // namespace atrium::journal::testing
