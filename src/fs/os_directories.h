// The parts of a VM directory that come from its operating system, through the OS-neutral
// vmi::OperatingSystem interface: proc/<pid>/..., proc/modules, symbols/....
#ifndef VMEMFS_FS_OS_DIRECTORIES_H_
#define VMEMFS_FS_OS_DIRECTORIES_H_

#include <memory>
#include <optional>
#include <string_view>

#include "base/status.h"
#include "fs/tree.h"
#include "vmi/guest.h"

namespace vmemfs::fs {

// The entry `name` ("proc" or "symbols") for the kernel `view` found in `guest`; its identity
// is the view's, so a new kernel gets new directories. REQUIRES: view->os and view->space.
Result<std::optional<Entry>> MakeOsDirectory(vmi::Guest& guest,
                                             std::shared_ptr<const vmi::KernelView> view,
                                             std::string_view name);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_OS_DIRECTORIES_H_
