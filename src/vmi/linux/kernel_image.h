// The x86_64 kernel image as its own page tables map it: the region
// [__START_KERNEL_map, MODULES_VADDR) holds only the image (_text .. _end; cleanup_highmap()
// clears the rest), so walking it costs the image, whatever the RAM size. Sections are told
// apart by the mappings' permissions: text is executable, .rodata (with .BTF) read-only and
// not executable, .data/.bss writable.
#ifndef VMEMFS_VMI_LINUX_KERNEL_IMAGE_H_
#define VMEMFS_VMI_LINUX_KERNEL_IMAGE_H_

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "vmi/paging.h"
#include "vmi/physical_memory.h"

namespace vmemfs::vmi::linux_os {

inline constexpr uint64_t kKernelImageRegionStart = 0xffffffff80000000ull;
inline constexpr uint64_t kKernelImageRegionEnd = 0xffffffffc0000000ull;
// A real image has a few thousand mappings at most (4 KiB pages around section edges).
inline constexpr uint32_t kMaxImageMappings = 1u << 15;

// Virtually contiguous mappings of one kind.
struct ImageRun {
  uint64_t va;
  uint64_t size;
  bool writable;
  bool executable;
};

// The image's mappings through `space`, coalesced where contiguous and alike, in address
// order, clipped to the region. Errors: kBadData past kMaxImageMappings (hostile tables), the
// walker's errors.
Result<std::vector<ImageRun>> KernelImageRuns(PhysicalMemory& memory, const AddressSpace& space);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_KERNEL_IMAGE_H_
