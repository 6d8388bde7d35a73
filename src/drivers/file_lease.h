// Leases: the kernel's promise to tell vmemfs before another process opens a mapped file for
// writing or truncates it (fcntl F_SETLEASE), so a snapshot can be spliced and viewed in place
// without checking its size at every read.
//
// When the promise is called in (SIGIO to this process; the other process's open or truncate
// waits), a watcher thread marks the file no longer stable(), waits until every reader that
// saw it stable is done (WatchedFile::BeginRead/EndRead: at most 10 s), marks it touched and
// gives the lease back. From then on the file is treated as one that may change at any time:
// checked, never spliced. The kernel takes a lease back by itself after
// /proc/sys/fs/lease-break-time (45 s) if that ever took longer.
//
// A lease is refused when the file is open for writing anywhere (also by vmemfs itself with
// --write-memory: then a write lease is asked for, which any other open breaks), when the caller neither
// owns the file nor has CAP_LEASE, and on file systems without leases (NFS, FUSE).
#ifndef VMEMFS_DRIVERS_FILE_LEASE_H_
#define VMEMFS_DRIVERS_FILE_LEASE_H_

#include "base/status.h"
#include "drivers/file_watch.h"

namespace vmemfs::drivers {

// Takes a lease on a registered file: a read lease, or a write lease when it is mapped
// writable. On success the file is stable() until the lease is broken. Errors: kOs (the
// kernel's refusal), kUnsupported when the watcher cannot start.
Status TakeLease(WatchedFile& file);
// Gives the lease back, if the file still holds it (at close).
void ReleaseLease(WatchedFile& file);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_FILE_LEASE_H_
