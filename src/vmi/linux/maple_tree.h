// In-order walk of a Linux maple tree (lib/maple_tree.c, 6.1+), e.g. mm_struct.mm_mt: every
// non-NULL entry with the index range [min, max] it covers.
//
// Contract: the tree is guest memory and may be garbage. Each node is read in one read of
// layout.node_size bytes. The walk is bounded by the kernel's own MAPLE_HEIGHT_MAX (31), by the
// slot count of each node type, by max_nodes and max_entries; a node reached twice (a cycle or a
// shared child) and any pivot outside its parent's range are kBadData. Nothing is allocated from
// a guest-supplied count. A tree that fails yields an error for that tree only.
#ifndef VMEMFS_VMI_LINUX_MAPLE_TREE_H_
#define VMEMFS_VMI_LINUX_MAPLE_TREE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "base/status.h"
#include "vmi/linux/kernel_types.h"

namespace vmemfs::vmi::linux_os {

// Node geometry: byte offsets inside a struct maple_node and slot counts per node type. The
// defaults are x86_64 Linux 6.1's; ResolveMapleLayout reads them from the kernel's BTF.
struct MapleLayout {
  uint32_t node_size = 256;
  // Width of a pivot and a slot (unsigned long, void *): 8, or 4 on a 32-bit kernel. The
  // tree's top index (ULONG_MAX) follows from it.
  uint32_t word_size = 8;
  // enum maple_type values.
  uint8_t type_dense = 0;
  uint8_t type_leaf_64 = 1;
  uint8_t type_range_64 = 2;
  uint8_t type_arange_64 = 3;
  // maple_range_64 (also used by leaf_64): pivots = slots - 1; meta overlays the last slot.
  uint32_t range64_pivot = 8;
  uint32_t range64_slot = 128;
  uint32_t range64_meta = 248;
  uint32_t range64_slots = 16;
  // maple_arange_64: pivots = slots - 1, then slots, gaps, meta.
  uint32_t arange64_pivot = 8;
  uint32_t arange64_slot = 80;
  uint32_t arange64_meta = 240;
  uint32_t arange64_slots = 10;
  // maple_dense: one index per slot, no pivots.
  uint32_t dense_slot = 8;
  uint32_t dense_slots = 31;
};

// The geometry of a 32-bit kernel's maple tree (include/linux/maple_tree.h, the "32bit sizes"
// branch: MAPLE_NODE_SLOTS 63, MAPLE_RANGE64_SLOTS 32, MAPLE_ARANGE64_SLOTS 21; 4-byte parent,
// pivots and slots in a 256-byte node), for kernels without BTF. Fixed by the source, not by
// configuration; walking a real tree checks it (pivots in range, VMAs matching their ranges).
MapleLayout Maple32Layout();

// Reads the layout from BTF (struct maple_node, maple_range_64, maple_arange_64, enum
// maple_type). kNotFound when the kernel has no maple tree; kBadData when the geometry does not
// fit in a node.
Result<MapleLayout> ResolveMapleLayout(const KernelTypes& types);
// kBadData unless every array lies inside node_size (<= kMaxMapleNodeSize) and counts are sane.
Status ValidateMapleLayout(const MapleLayout& layout);

inline constexpr uint32_t kMaxMapleNodeSize = 512;
// MAPLE_HEIGHT_MAX in include/linux/maple_tree.h.
inline constexpr int kMapleHeightMax = 31;

struct MapleEntry {
  uint64_t min;
  uint64_t max;
  uint64_t value;  // the stored pointer (for mm_mt: a struct vm_area_struct *)
  bool operator==(const MapleEntry&) const = default;
};

struct MapleWalkLimits {
  size_t max_nodes = size_t{1} << 18;
  size_t max_entries = size_t{1} << 20;  // vm.max_map_count defaults to 65530
};

// Reads exactly out.size() bytes of guest memory at va.
using MemoryReader = std::function<Status(uint64_t va, std::span<std::byte> out)>;

// All non-NULL entries of the tree whose struct maple_tree.ma_root holds `root`, in index
// order. A root that is not a node pointer is a single entry for index 0 (as the kernel stores
// it). Errors: kBadData for a corrupt tree, or the reader's error.
Result<std::vector<MapleEntry>> MapleTreeEntries(const MapleLayout& layout,
                                                 const MemoryReader& read, uint64_t root,
                                                 const MapleWalkLimits& limits = {});

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_MAPLE_TREE_H_
