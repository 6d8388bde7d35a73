// The directory of one VM: pmem, kmem, info, vcpu/<n>/{regs,<register>}, and the OS parts
// (os_directories.h).
#ifndef VMEMFS_FS_VM_DIRECTORY_H_
#define VMEMFS_FS_VM_DIRECTORY_H_

#include <string>

#include "base/status.h"
#include "fs/tree.h"
#include "vmi/guest.h"
#include "vmi/os.h"

namespace vmemfs::fs {

struct VmDirectoryOptions {
  std::string name;    // directory name
  std::string source;  // the SOURCE argument, for info
  bool writable = false;
};

// Adds MOUNT/<name>/ for `guest` and, when recognised, its operating system `os` (may be null;
// both must outlive the tree).
Status AddVmDirectory(Tree& tree, vmi::Guest& guest, vmi::OperatingSystem* os,
                      const VmDirectoryOptions& options);
// Fills the existing directory `dir` the same way.
Status PopulateVmDirectory(Tree& tree, Ino dir, vmi::Guest& guest, vmi::OperatingSystem* os,
                           const VmDirectoryOptions& options);

// The `info` file's text: `key: value` lines.
std::string VmInfoText(vmi::Guest& guest, vmi::OperatingSystem* os,
                       const VmDirectoryOptions& options);
// A `regs` file's text: `name 0x<16 hex digits>` lines, in Register order.
std::string RegistersText(const drivers::RegisterSet& regs);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_VM_DIRECTORY_H_
