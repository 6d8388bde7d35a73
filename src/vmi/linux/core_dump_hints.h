// Linux's part of a core dump (os.h CoreDumpHints; core_dump.h lays out the file): what crash,
// drgn and gdb look for in a kdump vmcore.
//
// * The VMCOREINFO note, the text the kernel keeps for kdump, byte for byte as found: the tools
//   take the release, KASLR offset, phys_base and paging mode from it.
// * The direct map's base (page_offset_base: randomised with KASLR, read from the kernel's own
//   variable; the fixed default of the paging mode without CONFIG_RANDOMIZE_MEMORY), which
//   gives the RAM segments' virtual addresses.
// * The kernel image, _text to _end, at its virtual address; its physical address is
//   va - __START_KERNEL_map + phys_base, the kernel's own __pa_symbol.
//
// Nothing is used unchecked: both addresses must translate, through the kernel's page tables,
// to the physical addresses they claim (for the direct map: _stext's physical address).
#ifndef VMEMFS_VMI_LINUX_CORE_DUMP_HINTS_H_
#define VMEMFS_VMI_LINUX_CORE_DUMP_HINTS_H_

#include "base/status.h"
#include "vmi/linux/kernel_layout.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/vmcoreinfo.h"
#include "vmi/os.h"
#include "vmi/symbol_table.h"

namespace vmemfs::vmi::linux_os {

// Errors: kNotFound without _text/_end symbols, kBadData when an address does not check out.
Result<CoreDumpHints> FindCoreDumpHints(KernelMemory& memory, const VmcoreInfo& info,
                                        const KernelLayout& layout, const SymbolTable& symbols);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_CORE_DUMP_HINTS_H_
