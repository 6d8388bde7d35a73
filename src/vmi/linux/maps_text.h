// /proc/<pid>/maps text from VMAs, byte for byte as fs/proc/task_mmu.c show_map_vma() prints
// it: "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu ", then, when there is a name, spaces up to
// column 73 and the name. Names: the file's d_path (with '\n' escaped as "\012", as
// seq_file_path does), a special mapping's name ([vdso], [vvar]), [heap] for a VMA touching
// start_brk..brk, [stack] for the VMA containing start_stack, or "[anon:<name>]".
#ifndef VMEMFS_VMI_LINUX_MAPS_TEXT_H_
#define VMEMFS_VMI_LINUX_MAPS_TEXT_H_

#include <string>
#include <vector>

#include "vmi/linux/process_info.h"  // MmInfo: start_brk, brk, start_stack
#include "vmi/linux/vmas.h"

namespace vmemfs::vmi::linux_os {

// One line, with its '\n'.
// pointer_size: the kernel's (8, or 4 on i386): names start at column 25 + 6 * pointer_size.
std::string MapsLine(const Vma& vma, const MmInfo& mm, uint64_t pointer_size = 8);
std::string MapsText(const std::vector<Vma>& vmas, const MmInfo& mm,
                     uint64_t pointer_size = 8);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_MAPS_TEXT_H_
