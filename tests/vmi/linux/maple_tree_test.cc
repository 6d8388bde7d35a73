// Maple tree walk over synthetic nodes: shapes the kernel builds, and hostile ones.
#include "vmi/linux/maple_tree.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <map>
#include <random>
#include <utility>
#include <vector>

namespace vmemfs::vmi::linux_os {
namespace {

constexpr uint64_t kMax = UINT64_MAX;
constexpr uint8_t kDense = 0, kLeaf = 1, kRange = 2, kArange = 3;

// Synthetic nodes at fake kernel addresses; reads of anything else fault.
class Nodes {
 public:
  using Slot = std::pair<uint64_t, uint64_t>;  // (pivot, slot)

  uint64_t New() {
    uint64_t addr = next_;
    next_ += 256;
    nodes_[addr].fill(std::byte{0});
    Set(addr, 0, 0xdead0001);  // a parent pointer that is not the node itself
    return addr;
  }
  void Set(uint64_t addr, uint32_t offset, uint64_t v) {
    std::memcpy(nodes_.at(addr).data() + offset, &v, 8);
  }
  void SetByte(uint64_t addr, uint32_t offset, uint8_t v) {
    nodes_.at(addr)[offset] = std::byte{v};
  }
  // A leaf_64/range_64/arange_64 node with the given (pivot, slot) pairs; the pivot of a slot
  // past the last pivot is ignored. meta_end is written to the metadata byte.
  uint64_t Pivoted(uint8_t type, const std::vector<Slot>& slots, int meta_end = -1) {
    MapleLayout l;
    bool arange = type == kArange;
    uint32_t pivot_off = arange ? l.arange64_pivot : l.range64_pivot;
    uint32_t slot_off = arange ? l.arange64_slot : l.range64_slot;
    uint32_t pivots = (arange ? l.arange64_slots : l.range64_slots) - 1;
    uint64_t addr = New();
    for (size_t i = 0; i < slots.size(); ++i) {
      if (i < pivots) Set(addr, pivot_off + 8 * i, slots[i].first);
      Set(addr, slot_off + 8 * i, slots[i].second);
    }
    if (meta_end < 0) meta_end = static_cast<int>(slots.size()) - 1;
    bool full = !arange && slots.size() >= pivots && slots[pivots - 1].first != 0;
    if (!full) SetByte(addr, arange ? l.arange64_meta : l.range64_meta, meta_end);
    return addr;
  }
  static uint64_t Enc(uint64_t addr, uint8_t type) { return addr | (uint64_t{type} << 3) | 4; }
  static uint64_t Root(uint64_t enc) { return enc | 2; }

  MemoryReader Reader() {
    return [this](uint64_t va, std::span<std::byte> out) -> Status {
      ++reads_;
      auto it = nodes_.find(va);
      if (it == nodes_.end() || out.size() != 256) return FaultError(va);
      std::memcpy(out.data(), it->second.data(), 256);
      return Status();
    };
  }
  Result<std::vector<MapleEntry>> Walk(uint64_t root, MapleWalkLimits limits = {}) {
    return MapleTreeEntries(MapleLayout{}, Reader(), root, limits);
  }
  int reads() const { return reads_; }

 private:
  std::map<uint64_t, std::array<std::byte, 256>> nodes_;
  uint64_t next_ = 0xffff888000100000ull;
  int reads_ = 0;
};

TEST(MapleTreeTest, EmptyAndDirectRoot) {
  Nodes n;
  ASSERT_TRUE(n.Walk(0).has_value());
  EXPECT_TRUE(n.Walk(0)->empty());
  auto direct = n.Walk(0xffff888012345600ull);
  ASSERT_TRUE(direct.has_value()) << direct.error().ToString();
  EXPECT_EQ(*direct, (std::vector<MapleEntry>{{0, 0, 0xffff888012345600ull}}));
  EXPECT_EQ(n.reads(), 0);
}

TEST(MapleTreeTest, LeafOnlyRootSkipsGaps) {
  Nodes n;
  uint64_t leaf =
      n.Pivoted(kLeaf, {{0xfff, 0}, {0x1fff, 0xa000}, {0x4fff, 0}, {0x5fff, 0xb000}, {kMax, 0}});
  auto r = n.Walk(Nodes::Root(Nodes::Enc(leaf, kLeaf)));
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(*r, (std::vector<MapleEntry>{{0x1000, 0x1fff, 0xa000}, {0x5000, 0x5fff, 0xb000}}));
  EXPECT_EQ(n.reads(), 1);  // one read per node
}

TEST(MapleTreeTest, FullLeafUsesLastSlotUpToMax) {
  Nodes n;
  std::vector<Nodes::Slot> slots;
  for (uint64_t i = 0; i < 15; ++i) slots.push_back({i * 0x10 + 0xf, 0x1000 + i});
  slots.push_back({0, 0x2000});  // slot 15: no pivot, ends at the node's max
  uint64_t leaf = n.Pivoted(kLeaf, slots);
  auto r = n.Walk(Nodes::Root(Nodes::Enc(leaf, kLeaf)));
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  ASSERT_EQ(r->size(), 16u);
  EXPECT_EQ(r->back(), (MapleEntry{0xf0, kMax, 0x2000}));
}

TEST(MapleTreeTest, ThreeLevels) {
  Nodes n;
  auto leaf = [&](uint64_t lo, uint64_t hi, uint64_t value) {
    // [lo, lo + 0xfff] holds value, the rest up to hi is a gap.
    return Nodes::Enc(n.Pivoted(kLeaf, {{lo + 0xfff, value}, {hi, 0}}), kLeaf);
  };
  uint64_t r1 =
      n.Pivoted(kRange, {{0x1fff, leaf(0, 0x1fff, 1)}, {0x3fff, leaf(0x2000, 0x3fff, 2)}});
  uint64_t r2 = n.Pivoted(kRange, {{0x5fff, leaf(0x4000, 0x5fff, 3)}, {0, leaf(0x6000, kMax, 4)}});
  uint64_t root =
      n.Pivoted(kArange, {{0x3fff, Nodes::Enc(r1, kRange)}, {kMax, Nodes::Enc(r2, kRange)}});
  auto r = n.Walk(Nodes::Root(Nodes::Enc(root, kArange)));
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(*r, (std::vector<MapleEntry>{
                    {0, 0xfff, 1}, {0x2000, 0x2fff, 2}, {0x4000, 0x4fff, 3}, {0x6000, 0x6fff, 4}}));
}

TEST(MapleTreeTest, DenseLeaf) {
  Nodes n;
  uint64_t dense = n.New();
  n.Set(dense, 8 + 8 * 2, 0x77);
  uint64_t root = n.Pivoted(kRange, {{99, Nodes::Enc(dense, kDense)}, {kMax, 0x0}}, 0);
  auto r = n.Walk(Nodes::Root(Nodes::Enc(root, kRange)));
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(*r, (std::vector<MapleEntry>{{2, 2, 0x77}}));
}

TEST(MapleTreeTest, NodePointingToItselfIsBadData) {
  Nodes n;
  uint64_t node = n.New();
  n.Set(node, MapleLayout{}.arange64_pivot, kMax);
  n.Set(node, MapleLayout{}.arange64_slot, Nodes::Enc(node, kArange));
  auto r = n.Walk(Nodes::Root(Nodes::Enc(node, kArange)));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kBadData);
}

TEST(MapleTreeTest, SharedChildIsBadData) {
  Nodes n;
  uint64_t leaf = Nodes::Enc(n.Pivoted(kLeaf, {{kMax, 5}}), kLeaf);
  uint64_t root = n.Pivoted(kRange, {{100, leaf}, {kMax, leaf}});
  auto r = n.Walk(Nodes::Root(Nodes::Enc(root, kRange)));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kBadData);
}

TEST(MapleTreeTest, DeadNodeIsBadData) {
  Nodes n;
  uint64_t leaf = n.Pivoted(kLeaf, {{kMax, 5}});
  n.Set(leaf, 0, leaf | 1);  // mte_set_node_dead()
  auto r = n.Walk(Nodes::Root(Nodes::Enc(leaf, kLeaf)));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kBadData);
}

TEST(MapleTreeTest, AbsurdHeightIsBadData) {
  Nodes n;
  uint64_t child = Nodes::Enc(n.Pivoted(kLeaf, {{kMax, 5}}), kLeaf);
  for (int i = 0; i < 40; ++i) child = Nodes::Enc(n.Pivoted(kRange, {{kMax, child}}), kRange);
  auto r = n.Walk(Nodes::Root(child));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kBadData);
  EXPECT_LE(n.reads(), kMapleHeightMax);
}

TEST(MapleTreeTest, AbsurdSlotCountsAndPivotsAreBadData) {
  Nodes n;
  uint64_t big_end = n.Pivoted(kLeaf, {{kMax, 5}}, 200);  // meta end past 16 slots
  EXPECT_EQ(n.Walk(Nodes::Root(Nodes::Enc(big_end, kLeaf))).error().code(), ErrorCode::kBadData);
  uint64_t arange_end = n.Pivoted(kArange, {{kMax, 5}}, 10);  // 10 slots: 0..9
  EXPECT_EQ(n.Walk(Nodes::Root(Nodes::Enc(arange_end, kArange))).error().code(),
            ErrorCode::kBadData);
  uint64_t backwards = n.Pivoted(kLeaf, {{0x2000, 5}, {0x1000, 6}, {kMax, 0}});
  EXPECT_EQ(n.Walk(Nodes::Root(Nodes::Enc(backwards, kLeaf))).error().code(), ErrorCode::kBadData);
}

TEST(MapleTreeTest, ChildOutsideParentRangeIsBadData) {
  Nodes n;
  // The child claims up to kMax but its parent gave it only [0, 0xfff].
  uint64_t leaf = Nodes::Enc(n.Pivoted(kLeaf, {{0x5fff, 5}, {kMax, 0}}), kLeaf);
  uint64_t root =
      n.Pivoted(kRange, {{0xfff, leaf}, {kMax, Nodes::Enc(n.Pivoted(kLeaf, {{kMax, 0}}), kLeaf)}});
  EXPECT_EQ(n.Walk(Nodes::Root(Nodes::Enc(root, kRange))).error().code(), ErrorCode::kBadData);
}

TEST(MapleTreeTest, BadTypesAndPointers) {
  Nodes n;
  uint64_t leaf = n.Pivoted(kLeaf, {{kMax, 5}});
  EXPECT_EQ(n.Walk(Nodes::Root(Nodes::Enc(leaf, 7))).error().code(), ErrorCode::kBadData);
  // An internal slot holding something that is not a node pointer.
  uint64_t root = n.Pivoted(kRange, {{kMax, 0x1234567}});
  EXPECT_EQ(n.Walk(Nodes::Root(Nodes::Enc(root, kRange))).error().code(), ErrorCode::kBadData);
  // A node that cannot be read.
  uint64_t missing = n.Pivoted(kRange, {{kMax, Nodes::Enc(0xffff888077700000ull, kLeaf)}});
  EXPECT_EQ(n.Walk(Nodes::Root(Nodes::Enc(missing, kRange))).error().code(), ErrorCode::kFault);
}

TEST(MapleTreeTest, LimitsBoundTheWalk) {
  Nodes n;
  std::vector<Nodes::Slot> slots;
  for (uint64_t i = 0; i < 10; ++i) slots.push_back({i, 100 + i});
  slots.back().first = kMax;
  uint64_t leaf = n.Pivoted(kLeaf, slots);
  auto r = n.Walk(Nodes::Root(Nodes::Enc(leaf, kLeaf)), {.max_nodes = 10, .max_entries = 5});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kBadData);
}

TEST(MapleTreeTest, RandomGarbageNeverCrashes) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 300; ++round) {
    Nodes n;
    std::vector<uint64_t> addrs;
    for (int i = 0; i < 8; ++i) addrs.push_back(n.New());
    for (uint64_t a : addrs) {
      for (uint32_t off = 0; off < 256; off += 8) {
        uint64_t v = rng();
        // Bias towards plausible values: other nodes, small pivots, max.
        switch (v % 4) {
          case 0:
            v = Nodes::Enc(addrs[v % addrs.size()], (v >> 8) % 4);
            break;
          case 1:
            v &= 0xffff;
            break;
          case 2:
            v = kMax;
            break;
          default:
            break;
        }
        n.Set(a, off, v);
      }
    }
    auto r = n.Walk(Nodes::Root(Nodes::Enc(addrs[0], rng() % 4)));
    if (r.has_value()) {
      for (size_t i = 1; i < r->size(); ++i) EXPECT_GT((*r)[i].min, (*r)[i - 1].max);
    }
    EXPECT_LE(n.reads(), 8);
  }
}

TEST(MapleTreeTest, LayoutValidation) {
  EXPECT_TRUE(ValidateMapleLayout(MapleLayout{}).ok());
  MapleLayout bad;
  bad.range64_slot = 250;  // 16 slots would run past the node
  EXPECT_FALSE(ValidateMapleLayout(bad).ok());
  Nodes n;
  EXPECT_FALSE(MapleTreeEntries(bad, n.Reader(), 0).has_value());
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os
