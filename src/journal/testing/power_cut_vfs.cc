#include "journal/testing/power_cut_vfs.h"

#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "base/assert.h"

namespace atrium::journal::testing {
namespace {

constexpr size_t kSectorBytes = 512;

// One open file: SQLite's base struct first, then the real file of the wrapped VFS.
struct CutFile {
  sqlite3_file base;
  PowerCutVfs* vfs;
  std::string* path;  // null for files without a name (temporary files)
  sqlite3_file* real;
};

sqlite3_vfs* Real() { return static_cast<sqlite3_vfs*>(sqlite3_vfs_find(nullptr)); }
PowerCutVfs* Owner(sqlite3_vfs* vfs) { return static_cast<PowerCutVfs*>(vfs->pAppData); }
CutFile* Cut(sqlite3_file* file) { return reinterpret_cast<CutFile*>(file); }

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

int Close(sqlite3_file* file) {
  CutFile* cut = Cut(file);
  const int rc = cut->real->pMethods != nullptr ? cut->real->pMethods->xClose(cut->real) : 0;
  delete cut->path;
  cut->path = nullptr;
  return rc;
}

int Read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  CutFile* cut = Cut(file);
  if (cut->vfs->dead()) return SQLITE_IOERR_READ;
  return cut->real->pMethods->xRead(cut->real, out, amount, offset);
}

int Write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  CutFile* cut = Cut(file);
  if (!cut->vfs->Operate()) return SQLITE_IOERR_WRITE;
  if (cut->path != nullptr) cut->vfs->RecordWrite(*cut->path, offset, data, amount);
  return cut->real->pMethods->xWrite(cut->real, data, amount, offset);
}

int Truncate(sqlite3_file* file, sqlite3_int64 size) {
  CutFile* cut = Cut(file);
  if (!cut->vfs->Operate()) return SQLITE_IOERR_TRUNCATE;
  if (cut->path != nullptr) cut->vfs->RecordTruncate(*cut->path, size);
  return cut->real->pMethods->xTruncate(cut->real, size);
}

int Sync(sqlite3_file* file, int /*flags*/) {
  CutFile* cut = Cut(file);
  if (!cut->vfs->Operate()) return SQLITE_IOERR_FSYNC;
  // No fsync: durability is the VFS's model, not the disk's.
  if (cut->path != nullptr) cut->vfs->RecordSync(*cut->path);
  return SQLITE_OK;
}

int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  CutFile* cut = Cut(file);
  if (cut->vfs->dead()) return SQLITE_IOERR_FSTAT;
  return cut->real->pMethods->xFileSize(cut->real, size);
}

int Lock(sqlite3_file* file, int level) {
  CutFile* cut = Cut(file);
  return cut->real->pMethods->xLock(cut->real, level);
}
int Unlock(sqlite3_file* file, int level) {
  CutFile* cut = Cut(file);
  return cut->real->pMethods->xUnlock(cut->real, level);
}
int CheckReservedLock(sqlite3_file* file, int* out) {
  CutFile* cut = Cut(file);
  return cut->real->pMethods->xCheckReservedLock(cut->real, out);
}
int FileControl(sqlite3_file* file, int op, void* arg) {
  CutFile* cut = Cut(file);
  return cut->real->pMethods->xFileControl(cut->real, op, arg);
}
int SectorSize(sqlite3_file* file) {
  CutFile* cut = Cut(file);
  return cut->real->pMethods->xSectorSize(cut->real);
}
int DeviceCharacteristics(sqlite3_file* file) {
  CutFile* cut = Cut(file);
  return cut->real->pMethods->xDeviceCharacteristics(cut->real);
}
// The WAL index lives in shared memory, which a power cut clears anyway (SQLite rebuilds
// it from the WAL when the first connection opens), so it passes straight through.
int ShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  CutFile* cut = Cut(file);
  if (cut->vfs->dead()) return SQLITE_IOERR_SHMMAP;
  return cut->real->pMethods->xShmMap(cut->real, region, size, extend, out);
}
int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
  CutFile* cut = Cut(file);
  return cut->real->pMethods->xShmLock(cut->real, offset, n, flags);
}
void ShmBarrier(sqlite3_file* file) {
  CutFile* cut = Cut(file);
  cut->real->pMethods->xShmBarrier(cut->real);
}
int ShmUnmap(sqlite3_file* file, int delete_flag) {
  CutFile* cut = Cut(file);
  return cut->real->pMethods->xShmUnmap(cut->real, delete_flag);
}

const sqlite3_io_methods kMethods = {
    2,  // version 2: shared memory, no memory-mapped reads (every read goes through xRead)
    Close,       Read,       Write,
    Truncate,    Sync,       FileSize,
    Lock,        Unlock,     CheckReservedLock,
    FileControl, SectorSize, DeviceCharacteristics,
    ShmMap,      ShmLock,    ShmBarrier,
    ShmUnmap,    nullptr,    nullptr};

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  CutFile* cut = Cut(file);
  cut->base.pMethods = nullptr;
  cut->vfs = Owner(vfs);
  cut->path = nullptr;
  cut->real = reinterpret_cast<sqlite3_file*>(cut + 1);
  if (cut->vfs->dead()) return SQLITE_IOERR;
  // Whatever is on disk when a file is first opened counts as durable.
  std::string existing = name != nullptr ? ReadWhole(name) : std::string();
  const int rc = Real()->xOpen(Real(), name, cut->real, flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  if (name != nullptr) {
    cut->path = new std::string(name);
    cut->vfs->RecordOpen(*cut->path, existing);
  }
  cut->base.pMethods = &kMethods;
  return SQLITE_OK;
}

int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  if (!Owner(vfs)->Operate()) return SQLITE_IOERR_DELETE;
  Owner(vfs)->RecordDelete(name);
  return Real()->xDelete(Real(), name, sync_dir);
}
int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  if (Owner(vfs)->dead()) return SQLITE_IOERR_ACCESS;
  return Real()->xAccess(Real(), name, flags, out);
}
int FullPathname(sqlite3_vfs*, const char* name, int size, char* out) {
  return Real()->xFullPathname(Real(), name, size, out);
}
void* DlOpen(sqlite3_vfs*, const char* name) { return Real()->xDlOpen(Real(), name); }
void DlError(sqlite3_vfs*, int size, char* out) { Real()->xDlError(Real(), size, out); }
void (*DlSym(sqlite3_vfs*, void* handle, const char* symbol))(void) {
  return Real()->xDlSym(Real(), handle, symbol);
}
void DlClose(sqlite3_vfs*, void* handle) { Real()->xDlClose(Real(), handle); }
int Randomness(sqlite3_vfs*, int size, char* out) { return Real()->xRandomness(Real(), size, out); }
int Sleep(sqlite3_vfs*, int micros) { return Real()->xSleep(Real(), micros); }
int CurrentTime(sqlite3_vfs*, double* out) { return Real()->xCurrentTime(Real(), out); }
int GetLastError(sqlite3_vfs*, int size, char* out) {
  return Real()->xGetLastError(Real(), size, out);
}
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
  return Real()->xCurrentTimeInt64(Real(), out);
}

}  // namespace

PowerCutVfs& PowerCutVfs::Install() {
  static PowerCutVfs* const instance = [] {
    auto* owner = new PowerCutVfs();
    auto* vfs = new sqlite3_vfs{};
    sqlite3_vfs* real = Real();
    vfs->iVersion = 2;
    vfs->szOsFile = static_cast<int>(sizeof(CutFile)) + real->szOsFile;
    vfs->mxPathname = real->mxPathname;
    vfs->zName = kName;
    vfs->pAppData = owner;
    vfs->xOpen = Open;
    vfs->xDelete = Delete;
    vfs->xAccess = Access;
    vfs->xFullPathname = FullPathname;
    vfs->xDlOpen = DlOpen;
    vfs->xDlError = DlError;
    vfs->xDlSym = DlSym;
    vfs->xDlClose = DlClose;
    vfs->xRandomness = Randomness;
    vfs->xSleep = Sleep;
    vfs->xCurrentTime = CurrentTime;
    vfs->xGetLastError = GetLastError;
    vfs->xCurrentTimeInt64 = CurrentTimeInt64;
    ATRIUM_CHECK(sqlite3_vfs_register(vfs, /*makeDflt=*/0) == SQLITE_OK,
                 "cannot register the power-cut VFS");
    // ATRIUM_POWERCUT_MUTATION plants a sync fault for scripts/mutation-powercut.sh.
    if (const char* name = std::getenv("ATRIUM_POWERCUT_MUTATION"); name != nullptr) {
      const std::optional<Mutation> mutation = ParseMutation(name);
      ATRIUM_CHECK(mutation.has_value(), "unknown ATRIUM_POWERCUT_MUTATION");
      owner->mutation_ = *mutation;
      if (*mutation != Mutation::kNone) {
        std::fprintf(stderr, "power-cut VFS: mutation %s planted; the test must fail\n", name);
      }
    }
    return owner;
  }();
  return *instance;
}

void PowerCutVfs::Arm(uint64_t cut_at_op, uint64_t seed) {
  std::lock_guard lock(mutex_);
  files_.clear();
  operations_ = 0;
  cut_at_op_ = cut_at_op;
  seed_ = seed;
  dead_ = false;
}

bool PowerCutVfs::dead() const {
  std::lock_guard lock(mutex_);
  return dead_;
}

uint64_t PowerCutVfs::operations() const {
  std::lock_guard lock(mutex_);
  return operations_;
}

bool PowerCutVfs::Operate() {
  std::lock_guard lock(mutex_);
  if (dead_) return false;
  if (++operations_ >= cut_at_op_) dead_ = true;
  return !dead_;
}

void PowerCutVfs::RecordWrite(const std::string& path, int64_t offset, const void* data, int size) {
  std::lock_guard lock(mutex_);
  files_[path].pending.push_back(
      Pending{.offset = offset,
              .bytes = std::string(static_cast<const char*>(data), static_cast<size_t>(size))});
}

void PowerCutVfs::RecordTruncate(const std::string& path, int64_t size) {
  std::lock_guard lock(mutex_);
  files_[path].pending.push_back(Pending{.truncate = true, .offset = size});
}

void PowerCutVfs::RecordSync(const std::string& path) {
  std::lock_guard lock(mutex_);
  FileState& state = files_[path];
  size_t durable_count = state.pending.size();
  switch (mutation_) {
    case Mutation::kNone:
      break;
    case Mutation::kSkipSync:
      return;
    case Mutation::kSkipWalSync:
      if (path.ends_with("-wal")) return;
      break;
    case Mutation::kLateSync:
      durable_count = state.late;
      break;
  }
  for (size_t index = 0; index < durable_count; ++index) {
    Apply(state.durable, state.pending[index], state.pending[index].bytes.size());
  }
  state.pending.erase(state.pending.begin(),
                      state.pending.begin() + static_cast<std::ptrdiff_t>(durable_count));
  state.late = state.pending.size();
}

std::optional<PowerCutVfs::Mutation> PowerCutVfs::ParseMutation(std::string_view name) {
  if (name == "none") return Mutation::kNone;
  if (name == "skip_sync") return Mutation::kSkipSync;
  if (name == "skip_wal_sync") return Mutation::kSkipWalSync;
  if (name == "late_sync") return Mutation::kLateSync;
  return std::nullopt;
}

void PowerCutVfs::set_mutation(Mutation mutation) {
  std::lock_guard lock(mutex_);
  mutation_ = mutation;
}

void PowerCutVfs::RecordOpen(const std::string& path, const std::string& existing) {
  std::lock_guard lock(mutex_);
  // A second handle on a file already followed must not reset what is pending.
  if (files_.count(path) == 0) files_[path].durable = existing;
}

void PowerCutVfs::RecordDelete(const std::string& path) {
  std::lock_guard lock(mutex_);
  files_.erase(path);
}

void PowerCutVfs::Apply(std::string& image, const Pending& pending, size_t keep_bytes) {
  if (pending.truncate) {
    image.resize(static_cast<size_t>(pending.offset));
    return;
  }
  const auto offset = static_cast<size_t>(pending.offset);
  if (image.size() < offset + keep_bytes) image.resize(offset + keep_bytes, '\0');
  std::memcpy(image.data() + offset, pending.bytes.data(), keep_bytes);
}

void PowerCutVfs::ApplyCut() {
  std::lock_guard lock(mutex_);
  dead_ = true;
  std::mt19937_64 random(seed_);
  for (auto& [path, state] : files_) {
    std::string image = state.durable;
    for (const Pending& pending : state.pending) {
      const uint64_t fate = random() % 4;  // 0, 1: lost; 2: kept; 3: torn
      if (fate < 2) continue;
      size_t keep = pending.bytes.size();
      if (fate == 3 && !pending.truncate) {
        keep = keep / kSectorBytes == 0
                   ? 0
                   : static_cast<size_t>(random() % (keep / kSectorBytes + 1)) * kSectorBytes;
        keep = std::min(keep, pending.bytes.size());
      }
      Apply(image, pending, keep);
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(image.data(), static_cast<std::streamsize>(image.size()));
    ATRIUM_CHECK(out.good(), "cannot rewrite a file after the power cut");
  }
  files_.clear();
}

}  // namespace atrium::journal::testing
