// A process's VMAs known by their address ranges alone, for kernels whose vm_area_struct is
// not described (32-bit kernels without BTF): enough for proc/<pid>/vmem/, not for maps.
//
// Relies only on what every 6.1+ kernel has: mm_struct.mm_mt, a maple tree indexed by address
// whose entries are VMAs, and vm_area_struct beginning {vm_start, vm_end, vm_mm}. Each entry is
// checked: its VMA must start and end where the tree says and point back at the mm_struct.
#ifndef VMEMFS_VMI_LINUX_VMA_RANGES_H_
#define VMEMFS_VMI_LINUX_VMA_RANGES_H_

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/maple_tree.h"

namespace vmemfs::vmi::linux_os {

struct VmaRangeLayout {
  uint64_t mm_mt_root = 0;  // mm_struct.mm_mt.ma_root
  MapleLayout maple;
};

struct VmaRange {
  uint64_t start = 0;
  uint64_t end = 0;  // exclusive
  uint64_t vma = 0;  // the vm_area_struct's address
};

// In address order. kBadData when an entry's VMA disagrees with the tree (or the tree is
// corrupt); the memory's error when unreadable.
Result<std::vector<VmaRange>> ListVmaRanges(KernelMemory& mem, const VmaRangeLayout& layout,
                                            uint64_t mm_va);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_VMA_RANGES_H_
