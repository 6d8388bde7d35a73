// The one place a Status becomes an errno: at the FUSE boundary.
#ifndef VMEMFS_FS_ERRNO_MAP_H_
#define VMEMFS_FS_ERRNO_MAP_H_

#include "base/status.h"

namespace vmemfs::fs {

// NotFound→ENOENT; Fault, BadData, Unavailable→EIO; InvalidArgument→EINVAL;
// Unsupported→EOPNOTSUPP; Os→its errno; NoMemory→ENOMEM. Logs the message (rate-limited)
// for the codes that mean something went wrong rather than a plain miss.
int ToErrno(const Status& status);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_ERRNO_MAP_H_
