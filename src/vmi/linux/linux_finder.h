// Recognises a running Linux kernel in a guest's memory (the OsFinder for Linux).
//
// In order: the VMCOREINFO note the source carries (an ELF core's PT_NOTE); the note found
// through page tables (kernel_finder.h: the registers' roots, or the real-mode trampoline's
// copy of the kernel's tables below 1 MiB), which costs what the kernel costs, not what the
// RAM costs; and only as the last resort, when the freshness rule allows it, a scan of all RAM
// (vmcoreinfo_scan.h). The note's own page-table root, or a register root, must translate
// its _stext as the kernel's image map predicts (kernel_layout.h) before anything is trusted.
#ifndef VMEMFS_VMI_LINUX_LINUX_FINDER_H_
#define VMEMFS_VMI_LINUX_LINUX_FINDER_H_

#include <memory>

#include "base/status.h"
#include "vmi/os.h"
#include "vmi/os_registry.h"

namespace vmemfs::vmi::linux_os {

// Loads the override files (--symbols, --isf, --offsets) once; errors name the file.
Result<std::unique_ptr<OsFinder>> MakeLinuxFinder(const OsOverrides& overrides);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_LINUX_FINDER_H_
