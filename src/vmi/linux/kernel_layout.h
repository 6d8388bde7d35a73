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
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/fact.h"
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
  std::string root_source;   // how the root was found and verified
  // 8 on x86_64; 4 on an i386 kernel (kernel_layout_i386.h): the width of every pointer,
  // long and list_head half the walkers read.
  uint64_t pointer_size = 8;
  // Where the direct map starts (i386: found by verification; x86_64: not needed, 0).
  uint64_t page_offset = 0;
  // What was found and how, for the `info` file.
  std::vector<Fact> provenance;
};

// `register_roots`: roots from the vCPUs' registers (Guest::RegisterRoots), tried when
// VMCOREINFO's own root does not verify. Errors: kNotFound when VMCOREINFO lacks _stext or a
// page-table symbol; kBadData when no candidate root translates _stext as expected.
Result<KernelLayout> FindKernelLayout(Guest& guest, const VmcoreInfo& info,
                                      std::span<const RootCandidate> register_roots = {});

// A kernel-image virtual address -> its physical address by the image's own linear map
// (__pa_symbol: va - __START_KERNEL_map + phys_base); nullopt below __START_KERNEL_map.
std::optional<uint64_t> ImageVirtualToPhysical(uint64_t va, int64_t phys_base);

// The check above for one candidate: translates `va` through (mode, root) with physical reads
// only (works before the guest knows any paging mode). kFault when unmapped.
Result<uint64_t> TranslateWith(Guest& guest, PagingMode mode, uint64_t root, uint64_t va);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_KERNEL_LAYOUT_H_
