#include "vmi/linux/vma_ranges.h"

#include "base/hex.h"

namespace vmemfs::vmi::linux_os {
namespace {

constexpr size_t kMaxVmas = 1 << 20;  // vm.max_map_count defaults to 65530

}  // namespace

Result<std::vector<VmaRange>> ListVmaRanges(KernelMemory& mem, const VmaRangeLayout& layout,
                                            uint64_t mm_va) {
  if (mm_va == 0) return InvalidArgumentError("ListVmaRanges: NULL mm");
  const uint64_t ps = mem.pointer_size();
  VMEMFS_ASSIGN_OR_RETURN(uint64_t root, mem.Pointer(mm_va + layout.mm_mt_root));
  MemoryReader read = [&mem](uint64_t va, std::span<std::byte> out) { return mem.Read(va, out); };
  MapleWalkLimits limits{.max_entries = kMaxVmas};
  VMEMFS_ASSIGN_OR_RETURN(std::vector<MapleEntry> entries,
                          MapleTreeEntries(layout.maple, read, root, limits));
  std::vector<VmaRange> out;
  out.reserve(entries.size());
  for (const MapleEntry& e : entries) {
    if ((e.value & 3) == 2) continue;  // XArray internal values (XA_ZERO_ENTRY): not VMAs
    VMEMFS_ASSIGN_OR_RETURN(uint64_t start, mem.Pointer(e.value));
    VMEMFS_ASSIGN_OR_RETURN(uint64_t end, mem.Pointer(e.value + ps));
    VMEMFS_ASSIGN_OR_RETURN(uint64_t mm, mem.Pointer(e.value + 2 * ps));
    if (start != e.min || end == 0 || end - 1 != e.max || mm != mm_va) {
      return BadDataError("VMA " + Hex(e.value) + " [" + Hex(start) + ", " + Hex(end) +
                          ") of mm " + Hex(mm) + " differs from its maple tree range [" +
                          Hex(e.min) + ", " + Hex(e.max) + "]");
    }
    out.push_back({start, end, e.value});
  }
  return out;
}

}  // namespace vmemfs::vmi::linux_os
