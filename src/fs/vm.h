// One VM as the filesystem serves it: its source opened as a Guest.
#ifndef VMEMFS_FS_VM_H_
#define VMEMFS_FS_VM_H_

#include <memory>
#include <string>

#include "base/status.h"
#include "vmi/guest.h"
#include "vmi/os_registry.h"

namespace vmemfs::fs {

struct Vm {
  std::string name;  // directory name
  std::string spec;  // the SOURCE
  std::unique_ptr<vmi::Guest> guest;
};

// Opens `spec` (vmi::OpenGuest) as a Guest that looks for its OS with `os_finders` (may be
// null: none). Errors name the source. Nothing of the guest's memory is read here: its kernel
// is found at first use.
Result<std::unique_ptr<Vm>> OpenVm(std::string name, std::string spec, bool writable,
                                   std::shared_ptr<const vmi::OsFinders> os_finders);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_VM_H_
