#include "vmi/linux/kernel_image.h"

#include <algorithm>

namespace vmemfs::vmi::linux_os {

Result<std::vector<ImageRun>> KernelImageRuns(PhysicalMemory& memory, const AddressSpace& space) {
  std::vector<ImageRun> runs;
  const uint64_t limit = VirtualToOffset(space.mode, kKernelImageRegionEnd);
  uint32_t mappings = 0;
  for (uint64_t at = VirtualToOffset(space.mode, kKernelImageRegionStart); at < limit;) {
    if (++mappings > kMaxImageMappings) {
      return BadDataError("more than " + std::to_string(kMaxImageMappings) +
                          " mappings in the kernel image region");
    }
    VMEMFS_ASSIGN_OR_RETURN(std::optional<Mapping> next,
                            NextMapping(memory, space.mode, space.root, at, limit));
    if (!next) break;
    const Mapping& m = *next;
    // Clipped to the region: a hostile 1 GiB page may start below it.
    const uint64_t va = std::max(m.va, kKernelImageRegionStart);
    const uint64_t end = std::min(m.va + m.size, kKernelImageRegionEnd);
    ImageRun run{va, end - va, m.writable, m.executable};
    if (!runs.empty() && runs.back().va + runs.back().size == va &&
        runs.back().writable == run.writable && runs.back().executable == run.executable) {
      runs.back().size += run.size;
    } else {
      runs.push_back(run);
    }
    at = VirtualToOffset(space.mode, m.va) + m.size;
  }
  return runs;
}

}  // namespace vmemfs::vmi::linux_os
