// NAME
//   storage_faults -- a SQLite VFS that fails syncs and writes on demand.
//
// DESCRIPTION
//   Fault injection for the queue's storage: the VFS "postconn-faults" wraps
//   the default one and passes every call through, except that the next
//   `n` syncs (fsync) fail with SQLITE_IOERR_FSYNC after fail_syncs(n), and
//   the next `n` writes fail with SQLITE_FULL after fail_writes(n), as a
//   dying disk or a full one would. A database opened with
//   queue_db::open(file, storage_faults_vfs()) is affected; others are not.
#pragma once

namespace postconn {

/// Registers the VFS (once) and returns its name.
const char* storage_faults_vfs();

/// The next `count` syncs through the VFS fail.
void fail_syncs(int count);

/// The next `count` writes through the VFS fail as on a full disk.
void fail_writes(int count);

} // namespace postconn
