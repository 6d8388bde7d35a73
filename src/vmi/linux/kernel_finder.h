// Finds the running x86 Linux kernel's VMCOREINFO note, at a cost that follows the kernel
// image's size, not the guest's RAM: x86_64 kernels through page-table roots, i386 kernels
// through their real-mode trampoline header (last paragraph).
//
// The kernel keeps `u32 *vmcoreinfo_note` in its .bss, pointing at the page-aligned note in the
// direct map (kernel/crash_core.c). So, through a candidate top-level page table:
//   1. walk the kernel-text region [0xffffffff80000000, 0xffffffffc0000000), where only the
//      image (_text .. _end) is mapped;
//   2. read only its writable mappings (.data, .bss: a few MiB) for 8-byte aligned values that
//      are page-aligned kernel-half addresses;
//   3. translate each through the same root; keep those that land where the direct map puts
//      them (virtual minus physical a multiple of 1 GiB: page_offset_base is PUD-aligned even
//      with KASLR), and accept the first target that is a valid note {n_namesz = 11,
//      0 < n_descsz <= VmcoreInfo::kMaxTextBytes, n_type = 0} "VMCOREINFO\0" whose text parses,
//      whose SYMBOL(_stext) lies in the walked image and that `verify` accepts.
// The writable data is read from the image's end down (.bss, where the pointer is, comes
// last in the image): about 7 MiB on a Debian 6.1 kernel, whatever the RAM size.
// Candidate roots come from vCPU registers (CR3; with PTI a vCPU in user mode holds the user
// half of an 8 KiB PGD pair, so CR3 with bit 12 cleared is tried too) and then, for sources
// without registers or when theirs lead nowhere, from the real-mode trampoline_pgd: the kernel
// copies the upper half of init_top_pgt into it, and it lies below 1 MiB
// (arch/x86/realmode/init.c). Roots whose mode and kernel half equal an earlier one's are
// walked once (every vCPU shares the kernel's tables).
//
// An i386 kernel has no trampoline page table, and its direct map covers all lowmem with the
// same permissions as the image's data, so page tables do not single the image out. Its
// real-mode trampoline header, below 1 MiB, holds the physical addresses of startup_32_smp
// (just after _text) and boot_gdt (in .data), which .bss follows. The image is scanned
// physically from boot_gdt's page on for 4-byte page-aligned values that, minus one of the
// VMSPLIT PAGE_OFFSETs (i386_split.h), are a valid note whose SYMBOL(_stext) minus the same
// PAGE_OFFSET lies just below startup_32_smp, and that `verify` accepts. About 3 MiB on a
// Debian 6.1 686 kernel. This runs with or without registers, after the x86_64 search.
//
// Everything read is hostile: every root, table, mapping, pointer and note is bounded and
// checked, and one budget caps the bytes read in total. Depends only on PhysicalMemory and the
// page-table walker, so it runs before any guest object knows a paging mode.
#ifndef VMEMFS_VMI_LINUX_KERNEL_FINDER_H_
#define VMEMFS_VMI_LINUX_KERNEL_FINDER_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "base/status.h"
#include "drivers/driver.h"
#include "vmi/linux/vmcoreinfo.h"
#include "vmi/paging.h"
#include "vmi/physical_memory.h"

namespace vmemfs::vmi::linux_os {

// One page-table root a vCPU holds.
struct RegisterRoot {
  PagingMode mode;     // from CR0/CR4/EFER (PagingModeFromRegisters); only IA-32e modes are used
  uint64_t cr3;        // as the vCPU holds it: PCID and flag bits are masked here
  std::string source;  // for the result's sentence, e.g. "vCPU 0 CR3"
};

struct KernelFinderLimits {
  uint64_t max_bytes = 64ull << 20;           // read from guest memory in total
  uint64_t max_bytes_per_root = 32ull << 20;  // of image data scanned through one root
  uint32_t max_roots = 32;                    // distinct roots walked (after deduplication)
  uint32_t max_trampoline_tables = 16;        // plausible tables taken from below 1 MiB
  uint32_t max_image_mappings = 1u << 15;     // per root; a real image has a few thousand
  uint32_t max_pointers = 1u << 16;           // candidate pointers translated, in total
  uint32_t max_notes = 64;                    // valid-looking notes parsed, in total
};

struct KernelFinderInput {
  PhysicalMemory& memory;
  std::span<const drivers::PhysRange> ranges;  // guest RAM, sorted, as Driver::ranges()
  // Empty for raw and LiME snapshots. Each costs a read of its kernel half (2 KiB), so their
  // number is bounded by limits.max_bytes.
  std::span<const RegisterRoot> registers;
  // Accepts or rejects a parsed note (e.g. its own page-table root must translate its _stext
  // as expected: kernel_layout.h). Empty: every note that passes the checks above is accepted.
  std::function<bool(const VmcoreInfo&)> verify;
  KernelFinderLimits limits;
};

// What the search cost; on success and, in the error message, on failure.
struct KernelFinderCost {
  uint64_t bytes_read = 0;  // asked of the source, reads that faulted included
  uint32_t roots_walked = 0;
  uint32_t mappings_seen = 0;
  uint32_t pointers_checked = 0;
  uint32_t notes_parsed = 0;
};

struct KernelFinding {
  std::string text;      // the note's text (VmcoreInfo::text(), without trailing NULs)
  uint64_t note_pa;      // physical address of the note header
  uint64_t pointer_va;   // the .data/.bss slot that points at the note (kernel virtual)
  PagingMode mode;       // of the root used (i386: of the note's CONFIG_X86_PAE)
  uint64_t root;         // physical address of the top-level table used (i386: swapper_pg_dir)
  uint64_t image_start;  // first mapped address of the kernel-text region (_text; i386: _stext)
  uint64_t image_end;    // end of its last mapping (i386: of the pointer's slot)
  std::string how;       // one sentence for the `info` file
  KernelFinderCost cost;
};

// Errors: kNotFound (naming what was tried and what it cost) when no root leads to an
// acceptable note or a bound was reached: the caller then falls back to the whole-RAM scan
// (vmcoreinfo_scan.h). The source's own error when a read fails for a reason other than kFault
// (a vanished VM). Never reads more than limits.max_bytes.
Result<KernelFinding> FindKernelVmcoreInfo(const KernelFinderInput& input);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_KERNEL_FINDER_H_
