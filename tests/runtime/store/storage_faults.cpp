// NAME
//   storage_faults -- a SQLite VFS that fails syncs and writes on demand
//   (see storage_faults.hpp).
#include "tests/runtime/store/storage_faults.hpp"

#include <atomic>
#include <mutex>

#include <sqlite3.h>

namespace postconn {

namespace {

std::atomic<int> syncs_to_fail{0};
std::atomic<int> writes_to_fail{0};

/// Takes one from `counter` if it is positive: this call fails.
bool take_one(std::atomic<int>& counter) {
  int left = counter.load();
  while (left > 0)
    if (counter.compare_exchange_weak(left, left - 1))
      return true;
  return false;
}

/// The wrapped file: our methods first, the real file right behind.
struct faulty_file {
  sqlite3_file base;
  sqlite3_file* real;
};

sqlite3_vfs* real_vfs = nullptr;
sqlite3_io_methods faulty_methods;

sqlite3_file* real_of(sqlite3_file* file) {
  return reinterpret_cast<faulty_file*>(file)->real;
}

int faulty_write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  if (take_one(writes_to_fail))
    return SQLITE_FULL;
  return real_of(file)->pMethods->xWrite(real_of(file), data, amount, offset);
}

int faulty_sync(sqlite3_file* file, int flags) {
  if (take_one(syncs_to_fail))
    return SQLITE_IOERR_FSYNC;
  return real_of(file)->pMethods->xSync(real_of(file), flags);
}

int faulty_close(sqlite3_file* file) {
  auto* real = real_of(file);
  auto rc = real->pMethods ? real->pMethods->xClose(real) : SQLITE_OK;
  sqlite3_free(real);
  return rc;
}

// Every other method passes straight through to the real file.
int pass_read(sqlite3_file* f, void* data, int n, sqlite3_int64 offset) {
  return real_of(f)->pMethods->xRead(real_of(f), data, n, offset);
}
int pass_truncate(sqlite3_file* f, sqlite3_int64 size) {
  return real_of(f)->pMethods->xTruncate(real_of(f), size);
}
int pass_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return real_of(f)->pMethods->xFileSize(real_of(f), size);
}
int pass_lock(sqlite3_file* f, int level) {
  return real_of(f)->pMethods->xLock(real_of(f), level);
}
int pass_unlock(sqlite3_file* f, int level) {
  return real_of(f)->pMethods->xUnlock(real_of(f), level);
}
int pass_check_reserved_lock(sqlite3_file* f, int* out) {
  return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
int pass_file_control(sqlite3_file* f, int op, void* arg) {
  return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
int pass_sector_size(sqlite3_file* f) {
  return real_of(f)->pMethods->xSectorSize(real_of(f));
}
int pass_device_characteristics(sqlite3_file* f) {
  return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
int pass_shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
  return real_of(f)->pMethods->xShmMap(real_of(f), page, size, extend, out);
}
int pass_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
void pass_shm_barrier(sqlite3_file* f) {
  real_of(f)->pMethods->xShmBarrier(real_of(f));
}
int pass_shm_unmap(sqlite3_file* f, int remove) {
  return real_of(f)->pMethods->xShmUnmap(real_of(f), remove);
}

int faulty_open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  auto* wrapper = reinterpret_cast<faulty_file*>(file);
  wrapper->base.pMethods = nullptr;
  wrapper->real = static_cast<sqlite3_file*>(sqlite3_malloc(real_vfs->szOsFile));
  if (!wrapper->real)
    return SQLITE_NOMEM;
  wrapper->real->pMethods = nullptr;
  auto rc = real_vfs->xOpen(real_vfs, name, wrapper->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    sqlite3_free(wrapper->real);
    return rc;
  }
  wrapper->base.pMethods = &faulty_methods;
  return SQLITE_OK;
}

sqlite3_vfs faulty_vfs;

void register_vfs() {
  real_vfs = sqlite3_vfs_find(nullptr);
  faulty_methods = {2,
                    faulty_close,
                    pass_read,
                    faulty_write,
                    pass_truncate,
                    faulty_sync,
                    pass_file_size,
                    pass_lock,
                    pass_unlock,
                    pass_check_reserved_lock,
                    pass_file_control,
                    pass_sector_size,
                    pass_device_characteristics,
                    pass_shm_map,
                    pass_shm_lock,
                    pass_shm_barrier,
                    pass_shm_unmap,
                    nullptr,
                    nullptr};
  faulty_vfs = *real_vfs;
  faulty_vfs.zName = "postconn-faults";
  faulty_vfs.szOsFile = sizeof(faulty_file);
  faulty_vfs.xOpen = faulty_open;
  faulty_vfs.pNext = nullptr;
  sqlite3_vfs_register(&faulty_vfs, 0);
}

} // namespace

const char* storage_faults_vfs() {
  static std::once_flag registered;
  std::call_once(registered, register_vfs);
  return "postconn-faults";
}

void fail_syncs(int count) {
  syncs_to_fail = count;
}

void fail_writes(int count) {
  writes_to_fail = count;
}

} // namespace postconn
