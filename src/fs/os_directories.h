// The parts of a VM directory that come from its operating system, through the OS-neutral
// vmi::OperatingSystem interface: proc/<pid>/..., symbols/....
#ifndef VMEMFS_FS_OS_DIRECTORIES_H_
#define VMEMFS_FS_OS_DIRECTORIES_H_

#include "base/status.h"
#include "fs/tree.h"
#include "vmi/guest.h"
#include "vmi/os.h"

namespace vmemfs::fs {

// Adds proc/ and symbols/ under `vm`. `guest` and `os` must outlive the tree.
Status AddOsDirectories(Tree& tree, Ino vm, vmi::Guest& guest, vmi::OperatingSystem& os,
                        bool writable);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_OS_DIRECTORIES_H_
