// One VM as the filesystem serves it: its source opened, its guest and (if recognised) its OS.
#ifndef VMEMFS_FS_VM_H_
#define VMEMFS_FS_VM_H_

#include <memory>
#include <string>

#include "base/status.h"
#include "vmi/guest.h"
#include "vmi/os.h"

namespace vmemfs::fs {

struct Vm {
  std::string name;  // directory name
  std::string spec;  // the SOURCE
  std::unique_ptr<vmi::Guest> guest;
  std::unique_ptr<vmi::OperatingSystem> os;  // null if not recognised
};

// Opens `spec` (drivers::OpenSource), makes its Guest and recognises its OS. An OS that is not
// recognised is not an error (pmem stays, and kmem with registers); one that is recognised but
// broken is reported on stderr once. `os_options` carry the override files (--symbols, --isf,
// --offsets), best loaded once beforehand.
Result<std::unique_ptr<Vm>> OpenVm(std::string name, std::string spec, bool writable,
                                   const vmi::DetectOptions& os_options = {});

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_VM_H_
