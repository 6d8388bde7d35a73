#include "vmi/linux/maple_tree.h"

#include <array>
#include <cstring>
#include <string>
#include <unordered_set>

namespace vmemfs::vmi::linux_os {
namespace {

// lib/maple_tree.c: an encoded node pointer keeps the node type in bits 3..6 (bit 2 is a hint,
// MAPLE_ENODE_NULL); nodes are 256-byte aligned. Only ma_root also sets bit 1
// (MAPLE_ROOT_NODE), which makes it an XArray "internal" entry.
constexpr uint64_t kNodeMask = 0xff;
constexpr int kTypeShift = 3;
constexpr uint64_t kTypeMask = 0x0f;

// xa_is_node() for ma_root: internal and above the range of small internal values.
bool IsRootNode(uint64_t entry) { return (entry & 3) == 2 && entry > 4096; }
// A child pointer in an internal node: mt_mk_node() never sets bits 0..1.
bool IsChildNode(uint64_t slot) { return (slot & 3) == 0 && (slot & ~kNodeMask) != 0; }

Result<uint32_t> OffsetOf(const KernelTypes& types, std::string_view type, std::string_view path) {
  VMEMFS_ASSIGN_OR_RETURN(MemberInfo m, types.Member(type, path));
  if (m.offset > kMaxMapleNodeSize) return BadDataError("BTF: " + std::string(path) + " offset");
  return static_cast<uint32_t>(m.offset);
}

// Number of 8-byte elements of an array member.
Result<uint32_t> CountOf(const KernelTypes& types, std::string_view type, std::string_view path) {
  VMEMFS_ASSIGN_OR_RETURN(MemberInfo m, types.Member(type, path));
  if (m.size % 8 != 0 || m.size > kMaxMapleNodeSize) {
    return BadDataError("BTF: " + std::string(type) + "." + std::string(path) + " size");
  }
  return static_cast<uint32_t>(m.size / 8);
}

Result<uint8_t> TypeValue(const KernelTypes& types, std::string_view name) {
  VMEMFS_ASSIGN_OR_RETURN(int64_t v, types.Enumerator("maple_type", name));
  if (v < 0 || v > static_cast<int64_t>(kTypeMask)) return BadDataError("BTF: maple_type value");
  return static_cast<uint8_t>(v);
}

bool ArrayFits(uint32_t offset, uint32_t count, uint32_t node_size, uint32_t word = 8) {
  return count <= kMaxMapleNodeSize / word &&
         uint64_t{offset} + uint64_t{count} * word <= node_size;
}

class Walker {
 public:
  Walker(const MapleLayout& layout, const MemoryReader& read, const MapleWalkLimits& limits)
      : layout_(layout), read_(read), limits_(limits) {}

  Status Node(uint64_t encoded, uint64_t min, uint64_t max, int depth);
  std::vector<MapleEntry>& entries() { return entries_; }

 private:
  using Buffer = std::array<std::byte, kMaxMapleNodeSize>;

  uint64_t Word(const Buffer& node, uint32_t offset, uint32_t index) const {
    uint64_t v = 0;  // little endian: a 4-byte word is the low half
    std::memcpy(&v, node.data() + offset + size_t{index} * layout_.word_size, layout_.word_size);
    return v;
  }
  Status ReadNode(uint64_t addr, Buffer& node);
  Status Dense(const Buffer& node, uint64_t min, uint64_t max);
  Status Ranged(const Buffer& node, uint8_t type, uint64_t min, uint64_t max, int depth);
  // ma_data_end(): the last used slot of a pivoted node.
  Result<uint32_t> DataEnd(const Buffer& node, uint8_t type, uint64_t max) const;
  Status Emit(uint64_t min, uint64_t max, uint64_t value);

  const MapleLayout& layout_;
  const MemoryReader& read_;
  const MapleWalkLimits& limits_;
  std::unordered_set<uint64_t> visited_;
  std::vector<MapleEntry> entries_;
};

Status Walker::ReadNode(uint64_t addr, Buffer& node) {
  if (visited_.size() >= limits_.max_nodes) return BadDataError("maple tree: too many nodes");
  if (!visited_.insert(addr).second) return BadDataError("maple tree: node reached twice");
  VMEMFS_TRY(read_(addr, std::span(node.data(), layout_.node_size)));
  // ma_dead_node(): a node being freed has its parent pointer aimed at itself.
  if ((Word(node, 0, 0) & ~kNodeMask) == addr) return BadDataError("maple tree: dead node");
  return Status();
}

Status Walker::Emit(uint64_t min, uint64_t max, uint64_t value) {
  if (value == 0) return Status();  // a gap
  if (entries_.size() >= limits_.max_entries) return BadDataError("maple tree: too many entries");
  entries_.push_back({min, max, value});
  return Status();
}

Status Walker::Node(uint64_t encoded, uint64_t min, uint64_t max, int depth) {
  if (depth >= kMapleHeightMax) return BadDataError("maple tree: deeper than MAPLE_HEIGHT_MAX");
  uint64_t addr = encoded & ~kNodeMask;
  auto type = static_cast<uint8_t>((encoded >> kTypeShift) & kTypeMask);
  if (addr == 0) return BadDataError("maple tree: NULL node");
  bool known = type == layout_.type_dense || type == layout_.type_leaf_64 ||
               type == layout_.type_range_64 || type == layout_.type_arange_64;
  if (!known) return BadDataError("maple tree: unknown node type " + std::to_string(type));
  Buffer node;
  Status s = ReadNode(addr, node);
  if (!s.ok()) return s.WithContext("maple node " + std::to_string(addr));
  if (type == layout_.type_dense) return Dense(node, min, max);
  return Ranged(node, type, min, max, depth);
}

Status Walker::Dense(const Buffer& node, uint64_t min, uint64_t max) {
  for (uint32_t i = 0; i < layout_.dense_slots && i <= max - min; ++i) {
    VMEMFS_TRY(Emit(min + i, min + i, Word(node, layout_.dense_slot, i)));
  }
  return Status();
}

Result<uint32_t> Walker::DataEnd(const Buffer& node, uint8_t type, uint64_t max) const {
  bool arange = type == layout_.type_arange_64;
  uint32_t slots = arange ? layout_.arange64_slots : layout_.range64_slots;
  uint32_t meta = arange ? layout_.arange64_meta : layout_.range64_meta;
  uint32_t pivots = slots - 1;
  uint32_t end;
  uint64_t last_pivot =
      Word(node, arange ? layout_.arange64_pivot : layout_.range64_pivot, pivots - 1);
  if (arange || last_pivot == 0) {
    end = std::to_integer<uint8_t>(node[meta]);  // maple_metadata.end is its first byte
  } else {
    end = last_pivot == max ? pivots - 1 : pivots;
  }
  if (end >= slots) return BadDataError("maple tree: data end " + std::to_string(end));
  return end;
}

Status Walker::Ranged(const Buffer& node, uint8_t type, uint64_t min, uint64_t max, int depth) {
  bool arange = type == layout_.type_arange_64;
  uint32_t pivot_off = arange ? layout_.arange64_pivot : layout_.range64_pivot;
  uint32_t slot_off = arange ? layout_.arange64_slot : layout_.range64_slot;
  uint32_t pivots = (arange ? layout_.arange64_slots : layout_.range64_slots) - 1;
  VMEMFS_ASSIGN_OR_RETURN(uint32_t end, DataEnd(node, type, max));
  bool leaf = type == layout_.type_leaf_64;
  uint64_t slot_min = min;
  for (uint32_t i = 0; i <= end; ++i) {
    // mas_logical_pivot(): the slot past the last pivot, and a later slot whose pivot is 0,
    // end at the node's max.
    uint64_t slot_max = i < pivots ? Word(node, pivot_off, i) : max;
    if (slot_max == 0 && i > 0) slot_max = max;
    if (slot_max < slot_min || slot_max > max) {
      return BadDataError("maple tree: pivot " + std::to_string(i) + " out of range");
    }
    uint64_t slot = Word(node, slot_off, i);
    if (leaf) {
      VMEMFS_TRY(Emit(slot_min, slot_max, slot));
    } else {
      if (!IsChildNode(slot)) return BadDataError("maple tree: internal slot is not a node");
      VMEMFS_TRY(Node(slot, slot_min, slot_max, depth + 1));
    }
    if (slot_max == max) break;  // the range is covered; later slots are stale
    slot_min = slot_max + 1;
  }
  return Status();
}

}  // namespace

Status ValidateMapleLayout(const MapleLayout& l) {
  const uint32_t w = l.word_size;
  bool ok = (w == 4 || w == 8) && l.node_size >= 16 && l.node_size <= kMaxMapleNodeSize &&
            l.range64_slots >= 2 && l.arange64_slots >= 2 &&
            ArrayFits(l.range64_pivot, l.range64_slots - 1, l.node_size, w) &&
            ArrayFits(l.range64_slot, l.range64_slots, l.node_size, w) &&
            ArrayFits(l.arange64_pivot, l.arange64_slots - 1, l.node_size, w) &&
            ArrayFits(l.arange64_slot, l.arange64_slots, l.node_size, w) &&
            ArrayFits(l.dense_slot, l.dense_slots, l.node_size, w) && l.range64_meta < l.node_size &&
            l.arange64_meta < l.node_size;
  return ok ? Status() : BadDataError("maple tree layout does not fit in a node");
}

MapleLayout Maple32Layout() {
  MapleLayout l;
  l.node_size = 256;
  l.word_size = 4;
  // maple_range_64: parent, pivot[31], slot[32] (meta in the last slot's bytes).
  l.range64_pivot = 4;
  l.range64_slot = 4 + 31 * 4;
  l.range64_meta = l.range64_slot + 31 * 4;
  l.range64_slots = 32;
  // maple_arange_64: parent, pivot[20], slot[21], gap[21], meta.
  l.arange64_pivot = 4;
  l.arange64_slot = 4 + 20 * 4;
  l.arange64_meta = l.arange64_slot + 2 * 21 * 4;
  l.arange64_slots = 21;
  // maple_node: parent, slot[63].
  l.dense_slot = 4;
  l.dense_slots = 63;
  return l;
}

Result<MapleLayout> ResolveMapleLayout(const KernelTypes& types) {
  MapleLayout l;
  VMEMFS_ASSIGN_OR_RETURN(uint64_t size, types.Size("maple_node"));
  if (size > kMaxMapleNodeSize) return BadDataError("BTF: maple_node too large");
  l.node_size = static_cast<uint32_t>(size);
  VMEMFS_ASSIGN_OR_RETURN(l.type_dense, TypeValue(types, "maple_dense"));
  VMEMFS_ASSIGN_OR_RETURN(l.type_leaf_64, TypeValue(types, "maple_leaf_64"));
  VMEMFS_ASSIGN_OR_RETURN(l.type_range_64, TypeValue(types, "maple_range_64"));
  VMEMFS_ASSIGN_OR_RETURN(l.type_arange_64, TypeValue(types, "maple_arange_64"));
  // The node variants sit at offset 0 of struct maple_node's union.
  VMEMFS_ASSIGN_OR_RETURN(l.range64_pivot, OffsetOf(types, "maple_range_64", "pivot"));
  VMEMFS_ASSIGN_OR_RETURN(l.range64_slot, OffsetOf(types, "maple_range_64", "slot"));
  VMEMFS_ASSIGN_OR_RETURN(l.range64_meta, OffsetOf(types, "maple_range_64", "meta"));
  VMEMFS_ASSIGN_OR_RETURN(l.range64_slots, CountOf(types, "maple_range_64", "slot"));
  VMEMFS_ASSIGN_OR_RETURN(l.arange64_pivot, OffsetOf(types, "maple_arange_64", "pivot"));
  VMEMFS_ASSIGN_OR_RETURN(l.arange64_slot, OffsetOf(types, "maple_arange_64", "slot"));
  VMEMFS_ASSIGN_OR_RETURN(l.arange64_meta, OffsetOf(types, "maple_arange_64", "meta"));
  VMEMFS_ASSIGN_OR_RETURN(l.arange64_slots, CountOf(types, "maple_arange_64", "slot"));
  VMEMFS_ASSIGN_OR_RETURN(l.dense_slot, OffsetOf(types, "maple_node", "slot"));
  VMEMFS_ASSIGN_OR_RETURN(l.dense_slots, CountOf(types, "maple_node", "slot"));
  VMEMFS_TRY(ValidateMapleLayout(l));
  return l;
}

Result<std::vector<MapleEntry>> MapleTreeEntries(const MapleLayout& layout,
                                                 const MemoryReader& read, uint64_t root,
                                                 const MapleWalkLimits& limits) {
  VMEMFS_TRY(ValidateMapleLayout(layout));
  if (root == 0) return std::vector<MapleEntry>{};
  if (!IsRootNode(root)) return std::vector<MapleEntry>{{0, 0, root}};
  Walker walker(layout, read, limits);
  const uint64_t top = layout.word_size == 8 ? UINT64_MAX : (uint64_t{1} << 32) - 1;  // ULONG_MAX
  VMEMFS_TRY(walker.Node(root, 0, top, 0));
  return std::move(walker.entries());
}

}  // namespace vmemfs::vmi::linux_os
