// Snapshot files (raw, ELF core, LiME) as a driver: the file is mapped read-only (or shared
// read-write with OpenOptions::writable), reads are memcpy from the mapping, and the fd is
// offered for splice.
#ifndef VMEMFS_DRIVERS_SNAPSHOT_DRIVER_H_
#define VMEMFS_DRIVERS_SNAPSHOT_DRIVER_H_

#include <memory>
#include <string>

#include "base/status.h"
#include "drivers/driver.h"

namespace vmemfs::drivers {

// Detects the format (ELF magic, LiME magic, else raw) and validates it. Errors:
// kOs (cannot open/stat/map), kBadData (empty, truncated, inconsistent), each naming `path`.
Result<std::unique_ptr<Driver>> OpenSnapshot(const std::string& path, const OpenOptions& options);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_SNAPSHOT_DRIVER_H_
