// The directory of one VM: pmem, info, vcpu/<n>/{regs,<register>}, ctl (live VMs), and, while
// the guest's kernel is known, kmem, the OS parts (os_directories.h) and vmcore
// (core_dump_file.h). The directory follows the guest: kmem, proc/, symbols/ and vmcore appear
// when a kernel is found and are replaced when the guest boots another one.
#ifndef VMEMFS_FS_VM_DIRECTORY_H_
#define VMEMFS_FS_VM_DIRECTORY_H_

#include <memory>
#include <string>

#include "base/status.h"
#include "fs/tree.h"
#include "vmi/guest.h"

namespace vmemfs::fs {

struct VmDirectoryOptions {
  std::string name;    // directory name
  std::string source;  // the SOURCE argument, for info
};

// The provider of the VM's directory. `guest` must outlive it.
std::unique_ptr<DirectoryProvider> MakeVmDirectory(vmi::Guest& guest, VmDirectoryOptions options);
// Adds MOUNT/<name>/ for `guest`.
Status AddVmDirectory(Tree& tree, vmi::Guest& guest, VmDirectoryOptions options);

// The `info` file's text: `key: value` lines, ` # how it was found` after the value when there
// is something to say (so a script takes the value up to " # ").
std::string VmInfoText(vmi::Guest& guest, const VmDirectoryOptions& options);
// A `regs` file's text: `name 0x<16 hex digits>` lines, in Register order.
std::string RegistersText(const drivers::RegisterSet& regs);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_VM_DIRECTORY_H_
