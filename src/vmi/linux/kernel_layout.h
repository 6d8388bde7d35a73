// Where the running x86_64 Linux kernel is, from its VMCOREINFO alone: paging mode, the
// physical root of the kernel's page tables (init_top_pgt), the KASLR slide and phys_base.
//
// Nothing is trusted unverified: the root is accepted only if it translates SYMBOL(_stext) to
// the physical address the kernel's own linear map of its image predicts
// (_stext - __START_KERNEL_map + phys_base). When the source has vCPU registers too, their
// root is checked the same way and the result says which one was chosen and why.
#ifndef VMEMFS_VMI_LINUX_KERNEL_LAYOUT_H_
#define VMEMFS_VMI_LINUX_KERNEL_LAYOUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "vmi/guest.h"
#include "vmi/linux/vmcoreinfo.h"
#include "vmi/paging.h"

namespace vmemfs::vmi::linux_os {

// x86_64's __START_KERNEL_map: the kernel image's virtual base before the KASLR slide.
inline constexpr uint64_t kStartKernelMap = 0xffffffff80000000ull;

struct KernelLayout {
  PagingMode mode;
  uint64_t page_table_root;  // physical address of the kernel's top-level table
  uint64_t kaslr_offset;     // KERNELOFFSET (0 when absent: no KASLR)
  int64_t phys_base;         // NUMBER(phys_base): physical minus link-time placement
  uint64_t stext;            // SYMBOL(_stext), the virtual address used to verify
  uint64_t stext_pa;         // where it translates to
  std::string release;       // OSRELEASE
  std::string root_source;   // for Guest::SetKernelPageTables
  // Human-readable `key: value` facts with their provenance, for the `info` file.
  std::vector<std::pair<std::string, std::string>> provenance;
};

// Errors: kNotFound when VMCOREINFO lacks _stext or a page-table symbol; kBadData when no
// candidate root (VMCOREINFO's, the registers') translates _stext as expected.
// Does not change the guest: the caller applies the result with SetKernelPageTables.
Result<KernelLayout> FindKernelLayout(Guest& guest, const VmcoreInfo& info);

// The check above for one candidate: translates `va` through (mode, root) with physical reads
// only (works before the guest knows any paging mode). kFault when unmapped.
Result<uint64_t> TranslateWith(Guest& guest, PagingMode mode, uint64_t root, uint64_t va);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_KERNEL_LAYOUT_H_
