#include "vmi/paging.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "base/checked.h"
#include "vmi/translation_cache.h"

namespace vmemfs::vmi {
namespace {

constexpr uint64_t kP = 1 << 0;
constexpr uint64_t kW = 1 << 1;
constexpr uint64_t kU = 1 << 2;
constexpr uint64_t kPs = 1 << 7;
constexpr uint64_t kNx = 1ull << 63;
constexpr uint64_t kKiB4 = 4096;
constexpr uint64_t kMiB2 = 2ull << 20;
constexpr uint64_t kMiB4 = 4ull << 20;
constexpr uint64_t kGiB1 = 1ull << 30;

// Guest RAM as a byte vector starting at physical 0; anything beyond it faults.
class FakeRam : public PhysicalMemory {
 public:
  explicit FakeRam(size_t size) : bytes_(size) {}

  Status Read(uint64_t pa, std::span<std::byte> out) override {
    if (!RangeWithin(pa, out.size(), bytes_.size())) return FaultError(pa);
    std::memcpy(out.data(), bytes_.data() + pa, out.size());
    return Status();
  }
  void Put(uint64_t pa, uint64_t value, size_t width) {
    ASSERT_TRUE(RangeWithin(pa, width, bytes_.size()));
    std::memcpy(bytes_.data() + pa, &value, width);
  }
  uint64_t Get(uint64_t pa, size_t width) const {
    uint64_t v = 0;
    std::memcpy(&v, bytes_.data() + pa, width);
    return v;
  }

 private:
  std::vector<std::byte> bytes_;
};

// Counts the reads and bytes that pass through to another PhysicalMemory.
class CountingMemory : public PhysicalMemory {
 public:
  explicit CountingMemory(PhysicalMemory& inner) : inner_(inner) {}
  Status Read(uint64_t pa, std::span<std::byte> out) override {
    ++reads;
    bytes += out.size();
    return inner_.Read(pa, out);
  }
  uint64_t reads = 0;
  uint64_t bytes = 0;

 private:
  PhysicalMemory& inner_;
};

// Fails every read with a non-fault error, as a vanished backend does.
class BrokenMemory : public PhysicalMemory {
 public:
  Status Read(uint64_t, std::span<std::byte>) override { return UnavailableError("gone"); }
};

// Builds page tables in a FakeRam, independently of the code under test: the layout of each
// mode is spelled out here again from the SDM.
class Builder {
 public:
  Builder(PagingMode mode, size_t ram_size = 8 << 20) : mode_(mode), ram_(ram_size) {
    switch (mode) {
      case PagingMode::kLegacy32:
        shifts_ = {22, 12};
        width_ = 4;
        break;
      case PagingMode::kPae:
        shifts_ = {30, 21, 12};
        width_ = 8;
        break;
      case PagingMode::kIa32e4:
        shifts_ = {39, 30, 21, 12};
        width_ = 8;
        break;
      case PagingMode::kIa32e5:
        shifts_ = {48, 39, 30, 21, 12};
        width_ = 8;
        break;
    }
    // PAE's PDPT need only be 32-byte aligned: put it mid-page to check the CR3 masking.
    root_ = NewTable() + (mode == PagingMode::kPae ? 0x20 : 0);
  }

  FakeRam& ram() { return ram_; }
  uint64_t dtb() const { return root_; }
  PagingMode mode() const { return mode_; }

  uint64_t NewTable() {
    uint64_t t = next_table_;
    next_table_ += kKiB4;
    return t;
  }

  // Maps [va, va+size) to pa with `leaf_flags` (P is added), creating tables as needed with
  // P|W|U (PAE PDPTEs get P only: their other bits are reserved).
  void Map(uint64_t va, uint64_t pa, uint64_t size, uint64_t leaf_flags = kW | kU) {
    uint64_t table = root_;
    for (size_t level = 0; level < shifts_.size(); ++level) {
      uint64_t slot = EntryPa(table, va, level);
      if (size == (1ull << shifts_[level])) {
        uint64_t ps = size == kKiB4 ? 0 : kPs;
        ram_.Put(slot, pa | leaf_flags | ps | kP, width_);
        return;
      }
      uint64_t entry = ram_.Get(slot, width_);
      if (!(entry & kP)) {
        bool pae_root = mode_ == PagingMode::kPae && level == 0;
        entry = NewTable() | kP | (pae_root ? 0 : kW | kU);
        ram_.Put(slot, entry, width_);
      }
      table = entry & (width_ == 4 ? 0xfffff000ull : 0x000ffffffffff000ull);
    }
    FAIL() << "no level maps size " << size;
  }

  // Physical address of the entry for `va` at `level` in `table`.
  uint64_t EntryPa(uint64_t table, uint64_t va, size_t level) const {
    uint64_t bits = level == 0 && mode_ == PagingMode::kPae ? 2 : (width_ == 4 ? 10 : 9);
    return table + ((va >> shifts_[level]) & ((1ull << bits) - 1)) * width_;
  }
  // The entry's address for `va` at `level` (following present entries from the root).
  uint64_t SlotFor(uint64_t va, size_t level) const {
    uint64_t table = root_;
    for (size_t l = 0; l < level; ++l) {
      table = ram_.Get(EntryPa(table, va, l), width_) &
              (width_ == 4 ? 0xfffff000ull : 0x000ffffffffff000ull);
    }
    return EntryPa(table, va, level);
  }
  void SetEntry(uint64_t va, size_t level, uint64_t value) {
    ram_.Put(SlotFor(va, level), value, width_);
  }
  uint64_t GetEntry(uint64_t va, size_t level) const {
    return ram_.Get(SlotFor(va, level), width_);
  }

 private:
  PagingMode mode_;
  FakeRam ram_;
  std::vector<int> shifts_;
  size_t width_ = 8;
  uint64_t next_table_ = 0x1000;
  uint64_t root_ = 0;
};

void ExpectMapping(const Result<Mapping>& m, uint64_t va, uint64_t pa, uint64_t size) {
  ASSERT_TRUE(m.has_value()) << m.error().ToString();
  EXPECT_EQ(m->va, va);
  EXPECT_EQ(m->pa, pa);
  EXPECT_EQ(m->size, size);
}

void ExpectFault(const Result<Mapping>& m, uint64_t va) {
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().code(), ErrorCode::kFault) << m.error().ToString();
  EXPECT_EQ(m.error().address(), va);
}

// Every mapping in [0, limit), by repeated NextMapping; fails the test on error.
std::vector<Mapping> AllMappings(PhysicalMemory& mem, PagingMode mode, uint64_t dtb,
                                 uint64_t from = 0, uint64_t limit = UINT64_MAX) {
  std::vector<Mapping> out;
  limit = std::min(limit, AddressSpaceSize(mode));
  uint64_t offset = from;
  while (offset < limit) {
    auto next = NextMapping(mem, mode, dtb, offset, limit);
    EXPECT_TRUE(next.has_value()) << next.error().ToString();
    if (!next.has_value() || !*next) break;
    out.push_back(**next);
    offset = VirtualToOffset(mode, (*next)->va) + (*next)->size;
    if (offset == 0) break;  // the last page of the space
  }
  return out;
}

// --- Registers and address arithmetic ---

TEST(PagingModeTest, FromRegisters) {
  constexpr uint64_t kPg = 1ull << 31, kPae = 1 << 5, kLa57 = 1 << 12, kLma = 1 << 10;
  EXPECT_EQ(PagingModeFromRegisters(0x11, kPae, kLma), std::nullopt);
  EXPECT_EQ(PagingModeFromRegisters(kPg, 0, 0), PagingMode::kLegacy32);
  EXPECT_EQ(PagingModeFromRegisters(kPg, kPae, 0), PagingMode::kPae);
  EXPECT_EQ(PagingModeFromRegisters(kPg, kPae, kLma), PagingMode::kIa32e4);
  EXPECT_EQ(PagingModeFromRegisters(kPg, kPae | kLa57, kLma | 1), PagingMode::kIa32e5);
  EXPECT_EQ(PagingModeFromRegisters(kPg | 1, kPae | kLa57, 0), PagingMode::kPae);
}

TEST(PagingModeTest, NamesAndSizes) {
  EXPECT_EQ(PagingModeName(PagingMode::kLegacy32), "legacy32");
  EXPECT_EQ(PagingModeName(PagingMode::kPae), "pae");
  EXPECT_EQ(PagingModeName(PagingMode::kIa32e4), "ia32e-4level");
  EXPECT_EQ(PagingModeName(PagingMode::kIa32e5), "ia32e-5level");
  EXPECT_EQ(AddressSpaceSize(PagingMode::kLegacy32), 1ull << 32);
  EXPECT_EQ(AddressSpaceSize(PagingMode::kPae), 1ull << 32);
  EXPECT_EQ(AddressSpaceSize(PagingMode::kIa32e4), 1ull << 48);
  EXPECT_EQ(AddressSpaceSize(PagingMode::kIa32e5), 1ull << 57);
}

TEST(PagingModeTest, UserSpaceEndsAtTheLowerCanonicalHalf) {
  EXPECT_EQ(UserSpaceEnd(PagingMode::kIa32e4), 1ull << 47);
  EXPECT_EQ(UserSpaceEnd(PagingMode::kIa32e5), 1ull << 56);
  EXPECT_EQ(OffsetToVirtual(PagingMode::kIa32e4, UserSpaceEnd(PagingMode::kIa32e4)),
            0xffff800000000000ull);  // the first kernel address
  EXPECT_EQ(UserSpaceEnd(PagingMode::kLegacy32), 1ull << 32);
  EXPECT_EQ(UserSpaceEnd(PagingMode::kPae), 1ull << 32);
}

TEST(PagingModeTest, DtbFromCr3) {
  EXPECT_EQ(DtbFromCr3(PagingMode::kLegacy32, 0x1234'5678'9abc'defful), 0x9abcd000u);
  EXPECT_EQ(DtbFromCr3(PagingMode::kPae, 0x9abcdef8), 0x9abcdee0u);
  // PCID in bits 0..11 and the no-flush bit 63.
  EXPECT_EQ(DtbFromCr3(PagingMode::kIa32e4, 0x8000'0001'2345'6abcull), 0x1'2345'6000ull);
  EXPECT_EQ(DtbFromCr3(PagingMode::kIa32e5, 0xfff0'0001'2345'6fffull), 0x1'2345'6000ull);
}

TEST(PagingModeTest, OffsetVirtualRoundTrip) {
  EXPECT_EQ(OffsetToVirtual(PagingMode::kIa32e4, 0x7fff'ffff'f000), 0x7fff'ffff'f000u);
  EXPECT_EQ(OffsetToVirtual(PagingMode::kIa32e4, 0x8000'0000'0000), 0xffff'8000'0000'0000u);
  EXPECT_EQ(VirtualToOffset(PagingMode::kIa32e4, 0xffff'8880'0000'0000), 0x8880'0000'0000u);
  EXPECT_EQ(OffsetToVirtual(PagingMode::kIa32e5, 1ull << 56), 0xff00'0000'0000'0000u);
  EXPECT_EQ(OffsetToVirtual(PagingMode::kIa32e5, 1ull << 47), 1ull << 47);
  EXPECT_EQ(VirtualToOffset(PagingMode::kIa32e5, 0xff11'0000'0000'0000), 0x111'0000'0000'0000u);
  EXPECT_EQ(OffsetToVirtual(PagingMode::kLegacy32, 0xffff'f000), 0xffff'f000u);
  EXPECT_EQ(OffsetToVirtual(PagingMode::kPae, 0xc000'0000), 0xc000'0000u);
  for (PagingMode mode :
       {PagingMode::kLegacy32, PagingMode::kPae, PagingMode::kIa32e4, PagingMode::kIa32e5}) {
    for (uint64_t off : {uint64_t{0}, uint64_t{0x1000}, AddressSpaceSize(mode) / 2 - 1,
                         AddressSpaceSize(mode) / 2, AddressSpaceSize(mode) - 1}) {
      EXPECT_EQ(VirtualToOffset(mode, OffsetToVirtual(mode, off)), off);
    }
  }
}

// --- IA-32e 4-level ---

TEST(PagingIa32e4Test, AllPageSizes) {
  Builder b(PagingMode::kIa32e4);
  b.Map(0x7f00'0012'3000, 0x5000, kKiB4);
  b.Map(0xffff'ffff'8100'0000, 0x4000'0000, kMiB2);
  b.Map(0xffff'8880'4000'0000, 0x1'c000'0000, kGiB1);
  const uint64_t dtb = b.dtb();
  auto& ram = b.ram();
  ExpectMapping(Translate(ram, PagingMode::kIa32e4, dtb, 0x7f00'0012'3abc), 0x7f00'0012'3000,
                0x5000, kKiB4);
  ExpectMapping(Translate(ram, PagingMode::kIa32e4, dtb, 0xffff'ffff'811f'ffff),
                0xffff'ffff'8100'0000, 0x4000'0000, kMiB2);
  ExpectMapping(Translate(ram, PagingMode::kIa32e4, dtb, 0xffff'8880'7fff'0000),
                0xffff'8880'4000'0000, 0x1'c000'0000, kGiB1);
  ExpectFault(Translate(ram, PagingMode::kIa32e4, dtb, 0x7f00'0012'4000), 0x7f00'0012'4000);
}

TEST(PagingIa32e4Test, AddressIgnoresFlagBits) {
  Builder b(PagingMode::kIa32e4);
  b.Map(0x40'0000, 0x20'0000, kMiB2);
  b.Map(0x1000, 0x7000, kKiB4);
  // PAT (bit 12) in a large-page entry, protection key (59..62), NX, software bits 9..11, 52..58.
  b.SetEntry(0x40'0000, 2, b.GetEntry(0x40'0000, 2) | (1 << 12) | (0xfull << 59) | kNx | 0xe00);
  b.SetEntry(0x1000, 3, b.GetEntry(0x1000, 3) | (0x7full << 52) | kNx | (0xfull << 59));
  ExpectMapping(Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), 0x40'1234), 0x40'0000, 0x20'0000,
                kMiB2);
  ExpectMapping(Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), 0x1234), 0x1000, 0x7000, kKiB4);
}

TEST(PagingIa32e4Test, AccessCombinesOverLevels) {
  Builder b(PagingMode::kIa32e4);
  b.Map(0x1000, 0x7000, kKiB4, kW | kU);
  b.Map(0x2000, 0x8000, kKiB4, kU);  // read-only leaf
  b.Map(0x3000, 0x9000, kKiB4, kW);  // supervisor leaf
  b.Map(0x4000, 0xa000, kKiB4, kW | kU | kNx);
  auto m = Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), 0x1000);
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->writable && m->user && m->executable);
  m = Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), 0x2000);
  EXPECT_TRUE(!m->writable && m->user && m->executable);
  m = Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), 0x3000);
  EXPECT_TRUE(m->writable && !m->user && m->executable);
  m = Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), 0x4000);
  EXPECT_TRUE(m->writable && m->user && !m->executable);
  // A read-only, supervisor, NX PML4 entry restricts the whole subtree.
  b.SetEntry(0x1000, 0, (b.GetEntry(0x1000, 0) & ~(kW | kU)) | kNx);
  m = Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), 0x1000);
  EXPECT_TRUE(!m->writable && !m->user && !m->executable);
}

TEST(PagingIa32e4Test, NotPresentAtEachLevelFaults) {
  for (size_t level = 0; level < 4; ++level) {
    Builder b(PagingMode::kIa32e4);
    const uint64_t va = 0xffff'c900'0000'5000;
    b.Map(va, 0x9000, kKiB4);
    b.SetEntry(va, level, b.GetEntry(va, level) & ~kP);
    ExpectFault(Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), va + 0x10), va + 0x10);
    auto next = NextMapping(b.ram(), PagingMode::kIa32e4, b.dtb(), 0, 1ull << 48);
    ASSERT_TRUE(next.has_value());
    EXPECT_FALSE(next->has_value()) << "level " << level;
  }
}

TEST(PagingIa32e4Test, TableOutsideRamFaults) {
  for (size_t level = 0; level < 3; ++level) {
    Builder b(PagingMode::kIa32e4);
    const uint64_t va = 0x5000;
    b.Map(va, 0x9000, kKiB4);
    b.SetEntry(va, level, 0x000f'ffff'ffff'f000 | kP | kW);  // the highest table there is
    ExpectFault(Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), va), va);
    auto next = NextMapping(b.ram(), PagingMode::kIa32e4, b.dtb(), 0, 1ull << 48);
    ASSERT_TRUE(next.has_value()) << next.error().ToString();
    EXPECT_FALSE(next->has_value());
  }
  Builder b(PagingMode::kIa32e4);
  ExpectFault(Translate(b.ram(), PagingMode::kIa32e4, 0xffff'ffff'ffff'f000, 0x1000), 0x1000);
  auto next = NextMapping(b.ram(), PagingMode::kIa32e4, 0xffff'ffff'ffff'f000, 0, 1ull << 48);
  ASSERT_TRUE(next.has_value());
  EXPECT_FALSE(next->has_value());
}

TEST(PagingIa32e4Test, NonFaultErrorsPropagate) {
  BrokenMemory broken;
  auto m = Translate(broken, PagingMode::kIa32e4, 0x1000, 0x1000);
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().code(), ErrorCode::kUnavailable);
  auto next = NextMapping(broken, PagingMode::kIa32e4, 0x1000, 0, 1ull << 48);
  ASSERT_FALSE(next.has_value());
  EXPECT_EQ(next.error().code(), ErrorCode::kUnavailable);
}

TEST(PagingIa32e4Test, NonCanonicalFaults) {
  Builder b(PagingMode::kIa32e4);
  b.Map(0x0000'8000'0000'0000 - kKiB4, 0x9000, kKiB4);
  for (uint64_t va : {0x0000'8000'0000'0000ull, 0xffff'7fff'ffff'f000ull, 0x0001'0000'0000'0000ull,
                      0x8000'0000'0000'0000ull}) {
    ExpectFault(Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), va), va);
  }
  ExpectMapping(Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), 0x7fff'ffff'ffff),
                0x7fff'ffff'f000, 0x9000, kKiB4);
}

TEST(PagingIa32e4Test, TranslateReadsOneEntryPerLevel) {
  Builder b(PagingMode::kIa32e4);
  b.Map(0xffff'8880'0000'1000, 0x9000, kKiB4);
  b.Map(0xffff'ffff'8100'0000, 0x4000'0000, kMiB2);
  CountingMemory counting(b.ram());
  ASSERT_TRUE(Translate(counting, PagingMode::kIa32e4, b.dtb(), 0xffff'8880'0000'1000));
  EXPECT_EQ(counting.reads, 4u);
  EXPECT_EQ(counting.bytes, 32u);
  ASSERT_TRUE(Translate(counting, PagingMode::kIa32e4, b.dtb(), 0xffff'ffff'8100'0000));
  EXPECT_EQ(counting.reads, 7u);
}

TEST(PagingIa32e4Test, SelfReferencingTable) {
  // PML4[0] points at the PML4 itself (as Windows does at another slot): every walk through it
  // still ends after four levels, and an address whose indices are all 0 maps the PML4 page.
  Builder b(PagingMode::kIa32e4);
  b.ram().Put(b.dtb(), b.dtb() | kP | kW, 8);
  b.Map(0xffff'8000'0000'0000, 0x9000, kKiB4);  // PML4[256]
  ExpectMapping(Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), 0x10), 0, b.dtb(), kKiB4);
  // Index 256 at the PT level selects PML4[256] as a leaf: the PDPT page behind it.
  const uint64_t pdpt = b.GetEntry(0xffff'8000'0000'0000, 0) & 0x000f'ffff'ffff'f000;
  ExpectMapping(Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), 256 << 12), 256 << 12, pdpt,
                kKiB4);
  // The loop makes the PML4 serve as PDPT, PD and PT too. Present paths (indices per level):
  // (0,0,0,0) -> PML4 page, (0,0,0,256) -> PDPT page, (0,0,256,0) -> PD page,
  // (0,256,0,0) -> PT page, and the real mapping (256,0,0,0).
  auto all = AllMappings(b.ram(), PagingMode::kIa32e4, b.dtb());
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[1].va, 0x10'0000u);
  EXPECT_EQ(all[2].va, 0x2000'0000u);
  EXPECT_EQ(all[3].va, 0x40'0000'0000u);
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front().va, 0u);
  EXPECT_EQ(all.back().va, 0xffff'8000'0000'0000u);
  for (const Mapping& m : all) {
    ExpectMapping(Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), m.va), m.va, m.pa, m.size);
  }
}

TEST(PagingIa32e4Test, NextMappingOrderAcrossCanonicalHole) {
  Builder b(PagingMode::kIa32e4);
  b.Map(0xffff'ffff'8100'0000, 0x4000'0000, kMiB2);
  b.Map(0xffff'8880'0000'0000, 0x1'0000'0000, kGiB1);
  b.Map(0x7fff'ffff'f000, 0x6000, kKiB4);
  b.Map(0x1000, 0x5000, kKiB4);
  auto all = AllMappings(b.ram(), PagingMode::kIa32e4, b.dtb());
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].va, 0x1000u);
  EXPECT_EQ(all[1].va, 0x7fff'ffff'f000u);
  EXPECT_EQ(all[2].va, 0xffff'8880'0000'0000u);
  EXPECT_EQ(all[2].size, kGiB1);
  EXPECT_EQ(all[3].va, 0xffff'ffff'8100'0000u);
  EXPECT_EQ(all[3].pa, 0x4000'0000u);
  for (const Mapping& m : all) {
    ExpectMapping(Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), m.va + m.size - 1), m.va, m.pa,
                  m.size);
  }
}

TEST(PagingIa32e4Test, NextMappingRespectsOffsetAndLimit) {
  Builder b(PagingMode::kIa32e4);
  b.Map(0x40'0000, 0x20'0000, kMiB2);
  b.Map(0x80'0000, 0x9000, kKiB4);
  auto& ram = b.ram();
  const uint64_t dtb = b.dtb();
  // Limit is exclusive.
  auto next = NextMapping(ram, PagingMode::kIa32e4, dtb, 0, 0x40'0000);
  ASSERT_TRUE(next.has_value());
  EXPECT_FALSE(next->has_value());
  next = NextMapping(ram, PagingMode::kIa32e4, dtb, 0, 0x40'0001);
  ASSERT_TRUE(next.has_value() && next->has_value());
  EXPECT_EQ((*next)->va, 0x40'0000u);
  // An offset inside a large page returns the whole page.
  next = NextMapping(ram, PagingMode::kIa32e4, dtb, 0x5f'f000, 1ull << 48);
  ASSERT_TRUE(next.has_value() && next->has_value());
  EXPECT_EQ((*next)->va, 0x40'0000u);
  EXPECT_EQ((*next)->size, kMiB2);
  next = NextMapping(ram, PagingMode::kIa32e4, dtb, 0x60'0000, 1ull << 48);
  ASSERT_TRUE(next.has_value() && next->has_value());
  EXPECT_EQ((*next)->va, 0x80'0000u);
  next = NextMapping(ram, PagingMode::kIa32e4, dtb, 0x80'1000, 1ull << 48);
  ASSERT_TRUE(next.has_value());
  EXPECT_FALSE(next->has_value());
  // Empty range and a limit past the end of the space.
  next = NextMapping(ram, PagingMode::kIa32e4, dtb, 0x80'0000, 0x80'0000);
  ASSERT_TRUE(next.has_value());
  EXPECT_FALSE(next->has_value());
  next = NextMapping(ram, PagingMode::kIa32e4, dtb, 0x80'0000, UINT64_MAX);
  ASSERT_TRUE(next.has_value() && next->has_value());
}

TEST(PagingIa32e4Test, NextMappingSkipsUnreadableTable) {
  Builder b(PagingMode::kIa32e4);
  b.Map(0x1000, 0x5000, kKiB4);
  b.Map(0x80'0000'0000, 0x6000, kKiB4);  // PML4[1]
  b.SetEntry(0x1000, 0, 0x000f'0000'0000'0000 | kP | kW);
  auto next = NextMapping(b.ram(), PagingMode::kIa32e4, b.dtb(), 0, 1ull << 48);
  ASSERT_TRUE(next.has_value() && next->has_value());
  EXPECT_EQ((*next)->va, 0x80'0000'0000u);
}

TEST(PagingIa32e4Test, TableStraddlingEndOfRam) {
  // RAM ends halfway through the PD at 0x3000: its first 256 entries are readable.
  Builder b(PagingMode::kIa32e4, 0x3800);
  b.Map(0, 0x20'0000, kMiB2);
  b.Map(255 * kMiB2, 0x40'0000, kMiB2);
  ASSERT_EQ(b.SlotFor(0, 2), 0x3000u);
  auto next = NextMapping(b.ram(), PagingMode::kIa32e4, b.dtb(), kMiB2, 1ull << 48);
  ASSERT_TRUE(next.has_value() && next->has_value()) << next.status().ToString();
  EXPECT_EQ((*next)->va, 255 * kMiB2);
  ExpectFault(Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), 300 * kMiB2), 300 * kMiB2);
  next = NextMapping(b.ram(), PagingMode::kIa32e4, b.dtb(), 256 * kMiB2, 1ull << 48);
  ASSERT_TRUE(next.has_value());
  EXPECT_FALSE(next->has_value());
}

TEST(PagingIa32e4Test, NextMappingReadsEachTableOnce) {
  // Only the last PTE present: one read per level, not one per entry.
  Builder b(PagingMode::kIa32e4);
  b.Map(0x1ff000, 0x5000, kKiB4);
  CountingMemory counting(b.ram());
  auto next = NextMapping(counting, PagingMode::kIa32e4, b.dtb(), 0, 1ull << 48);
  ASSERT_TRUE(next.has_value() && next->has_value());
  EXPECT_EQ((*next)->va, 0x1ff000u);
  EXPECT_EQ(counting.reads, 4u);
}

TEST(PagingIa32e4Test, ScanLimitStopsHostileTables) {
  // Every PML4, PDPT and PD entry present and pointing at the next (shared) table; the PT is
  // empty. A full scan would visit 2^36 entries; the call must give up instead.
  Builder b(PagingMode::kIa32e4);
  const uint64_t pdpt = b.NewTable(), pd = b.NewTable(), pt = b.NewTable();
  for (int i = 0; i < 512; ++i) {
    b.ram().Put(b.dtb() + i * 8, pdpt | kP, 8);
    b.ram().Put(pdpt + i * 8, pd | kP, 8);
    b.ram().Put(pd + i * 8, pt | kP, 8);
  }
  CountingMemory counting(b.ram());
  auto start = std::chrono::steady_clock::now();
  auto next = NextMapping(counting, PagingMode::kIa32e4, b.dtb(), 0, 1ull << 48);
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  ASSERT_FALSE(next.has_value());
  EXPECT_EQ(next.error().code(), ErrorCode::kBadData);
  EXPECT_NE(next.error().message().find("page-table scan limit"), std::string::npos);
  EXPECT_LT(counting.reads, 10000u);
  std::printf("[ info ] hostile scan: %llu reads, %.1f ms before the limit\n",
              static_cast<unsigned long long>(counting.reads), ms.count());
  // Translate is unaffected: it walks one path.
  ExpectFault(Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), 0x1000), 0x1000);
}

TEST(PagingIa32e4Test, LinuxLikeUpperHalfScansInOneCall) {
  // A kernel-shaped upper half: 64 GiB direct map in 1 GiB pages, the kernel image in 2 MiB
  // pages, vmalloc/modules with 8 fully populated page tables, sparse PML4 otherwise.
  Builder b(PagingMode::kIa32e4, 32 << 20);
  const uint64_t kDirect = 0xffff'8880'0000'0000, kImage = 0xffff'ffff'8100'0000,
                 kVmalloc = 0xffff'c900'0000'0000;
  for (uint64_t i = 0; i < 64; ++i) b.Map(kDirect + i * kGiB1, i * kGiB1, kGiB1);
  for (uint64_t i = 0; i < 32; ++i) b.Map(kImage + i * kMiB2, 0x100'0000 + i * kMiB2, kMiB2);
  for (uint64_t i = 0; i < 8 * 512; ++i) b.Map(kVmalloc + i * kKiB4, 0x20'0000 + i * kKiB4, kKiB4);
  CountingMemory counting(b.ram());
  auto start = std::chrono::steady_clock::now();
  auto all = AllMappings(counting, PagingMode::kIa32e4, b.dtb(), 1ull << 47);
  auto us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start);
  EXPECT_EQ(all.size(), 64u + 32u + 8 * 512u);
  std::printf("[ info ] upper-half scan: %zu mappings, %llu reads, %.0f us\n", all.size(),
              static_cast<unsigned long long>(counting.reads), us.count());
  // One call from the start of the upper half finds the first mapping without hitting the
  // limit, and one call over an empty stretch is cheap.
  auto next = NextMapping(b.ram(), PagingMode::kIa32e4, b.dtb(), 1ull << 47, 1ull << 48);
  ASSERT_TRUE(next.has_value() && next->has_value());
  EXPECT_EQ((*next)->va, kDirect);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].va, all[i].va);
}

// Records what a walk tells.
class Recorder : public MappingVisitor {
 public:
  explicit Recorder(bool go_on_when_spent = false) : go_on_(go_on_when_spent) {}
  bool Leaf(const Mapping& m) override {
    leaves.push_back(m);
    return true;
  }
  bool OnBudgetSpent() override {
    spent = true;
    return go_on_;
  }
  void Unvisited(int level, uint64_t, uint64_t) override { ++unvisited[level]; }
  void EnterTable(int) override { ++depth; }
  void LeaveTable(int, bool complete) override {
    --depth;
    incomplete += !complete;
  }
  std::vector<Mapping> leaves;
  bool spent = false;
  int unvisited[5] = {};
  int depth = 0;
  int incomplete = 0;

 private:
  bool go_on_;
};

TEST(PagingIa32e4Test, WalkVisitsEveryLeafOnceReadingEachTableOnce) {
  Builder b(PagingMode::kIa32e4, 32 << 20);
  const uint64_t kDirect = 0xffff'8880'0000'0000, kVmalloc = 0xffff'c900'0000'0000;
  for (uint64_t i = 0; i < 4; ++i) b.Map(kDirect + i * kGiB1, i * kGiB1, kGiB1);
  for (uint64_t i = 0; i < 3 * 512; ++i) b.Map(kVmalloc + i * kKiB4, 0x20'0000 + i * kKiB4, kKiB4);
  b.Map(0x400000, 0x5000, kKiB4);
  const auto expected = AllMappings(b.ram(), PagingMode::kIa32e4, b.dtb());
  CountingMemory counting(b.ram());
  Recorder r;
  ASSERT_TRUE(WalkMappings(counting, PagingMode::kIa32e4, b.dtb(), 0, 1ull << 48, 1 << 20, r).ok());
  ASSERT_EQ(r.leaves.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(r.leaves[i].va, expected[i].va);
  // The root; the direct map's PDPT (1 GiB pages); vmalloc's PDPT, PD and 3 PTs; the low
  // page's PDPT, PD and PT.
  EXPECT_EQ(counting.reads, 1u + 1 + 5 + 3);
  EXPECT_EQ(r.depth, 0);
  EXPECT_EQ(r.incomplete, 0);
  // A window starts inside the first leaf that covers it and ends before `limit`.
  Recorder w;
  ASSERT_TRUE(WalkMappings(b.ram(), PagingMode::kIa32e4, b.dtb(),
                           VirtualToOffset(PagingMode::kIa32e4, kVmalloc + 0x1800),
                           VirtualToOffset(PagingMode::kIa32e4, kVmalloc + 0x3000), 1 << 20, w)
                  .ok());
  ASSERT_EQ(w.leaves.size(), 2u);
  EXPECT_EQ(w.leaves[0].va, kVmalloc + 0x1000);
}

TEST(PagingIa32e4Test, ASpentBudgetFailsOrGoesOnWithoutReading) {
  // Shared tables at every level, as in ScanLimitStopsHostileTables, with a full PT.
  Builder b(PagingMode::kIa32e4);
  const uint64_t pdpt = b.NewTable(), pd = b.NewTable(), pt = b.NewTable();
  for (int i = 0; i < 512; ++i) {
    b.ram().Put(b.dtb() + i * 8, pdpt | kP, 8);
    b.ram().Put(pdpt + i * 8, pd | kP, 8);
    b.ram().Put(pd + i * 8, pt | kP, 8);
    b.ram().Put(pt + i * 8, (i * kKiB4) | kP, 8);
  }
  Recorder fails;
  Status s = WalkMappings(b.ram(), PagingMode::kIa32e4, b.dtb(), 0, 1ull << 48, 5000, fails);
  EXPECT_EQ(s.code(), ErrorCode::kBadData);
  EXPECT_TRUE(fails.spent);

  CountingMemory counting(b.ram());
  Recorder goes_on(/*go_on_when_spent=*/true);
  ASSERT_TRUE(
      WalkMappings(counting, PagingMode::kIa32e4, b.dtb(), 0, 1ull << 48, 5000, goes_on).ok());
  EXPECT_TRUE(goes_on.spent);
  // 5000 entries: the root, a PDPT, a PD and 9 PTs (the tenth already read goes on to its end).
  EXPECT_EQ(counting.reads, 3u + 10);
  EXPECT_EQ(goes_on.leaves.size(), 10u * 512);
  EXPECT_EQ(goes_on.unvisited[3], 512 - 10);  // the rest of the PD's entries
  EXPECT_EQ(goes_on.unvisited[2], 511);       // the PDPT's
  EXPECT_EQ(goes_on.unvisited[1], 511);       // the root's
  EXPECT_EQ(goes_on.depth, 0);
  EXPECT_EQ(goes_on.incomplete, 3);  // the PD, the PDPT and the root
}

// --- IA-32e 5-level ---

TEST(PagingIa32e5Test, AddressesAbove47Bits) {
  Builder b(PagingMode::kIa32e5);
  const uint64_t kLowHigh = 0x00ab'cdef'1234'5000;  // lower half, above 2^47
  const uint64_t kUpper = 0xff11'0000'0000'0000;    // upper half of the 57-bit space
  b.Map(kLowHigh, 0x9000, kKiB4);
  b.Map(kUpper, 0x4000'0000, kGiB1);
  b.Map(0x1000, 0xa000, kKiB4);
  ExpectMapping(Translate(b.ram(), PagingMode::kIa32e5, b.dtb(), kLowHigh + 0x123), kLowHigh,
                0x9000, kKiB4);
  ExpectMapping(Translate(b.ram(), PagingMode::kIa32e5, b.dtb(), kUpper + 0x1234'5678), kUpper,
                0x4000'0000, kGiB1);
  ExpectFault(Translate(b.ram(), PagingMode::kIa32e5, b.dtb(), 0x0100'0000'0000'0000),
              0x0100'0000'0000'0000);
  ExpectFault(Translate(b.ram(), PagingMode::kIa32e5, b.dtb(), 0xfeff'ffff'ffff'f000),
              0xfeff'ffff'ffff'f000);
  // The same lower-half address is non-canonical for 4-level paging.
  ExpectFault(Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), kLowHigh), kLowHigh);
  auto all = AllMappings(b.ram(), PagingMode::kIa32e5, b.dtb());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].va, 0x1000u);
  EXPECT_EQ(all[1].va, kLowHigh);
  EXPECT_EQ(all[2].va, kUpper);
}

// --- PAE ---

TEST(PagingPaeTest, PdptAndPageSizes) {
  Builder b(PagingMode::kPae);
  ASSERT_EQ(b.dtb() & 0xfff, 0x20u);  // a PDPT that is not page-aligned
  ASSERT_EQ(DtbFromCr3(PagingMode::kPae, b.dtb() | 0x18), b.dtb());
  b.Map(0xc000'0000, 0x1'0020'0000, kMiB2, kW);  // above 4 GiB: PAE reaches 52 bits
  b.Map(0x0804'8000, 0x9000, kKiB4, kU | kNx);
  b.Map(0x4000'1000, 0xa000, kKiB4, kW | kU);
  ExpectMapping(Translate(b.ram(), PagingMode::kPae, b.dtb(), 0xc01f'ffff), 0xc000'0000,
                0x1'0020'0000, kMiB2);
  auto m = Translate(b.ram(), PagingMode::kPae, b.dtb(), 0x0804'8010);
  ExpectMapping(m, 0x0804'8000, 0x9000, kKiB4);
  EXPECT_TRUE(!m->writable && m->user && !m->executable);
  // PDPTEs carry no R/W or U/S: the builder left them 0 and the leaf's rights stand.
  m = Translate(b.ram(), PagingMode::kPae, b.dtb(), 0x4000'1000);
  EXPECT_TRUE(m->writable && m->user && m->executable);
  ExpectFault(Translate(b.ram(), PagingMode::kPae, b.dtb(), 0x8000'0000), 0x8000'0000);
  ExpectFault(Translate(b.ram(), PagingMode::kPae, b.dtb(), 0x1'0000'0000), 0x1'0000'0000);
  b.SetEntry(0x0804'8000, 0, 0);  // PDPT[0] not present
  ExpectFault(Translate(b.ram(), PagingMode::kPae, b.dtb(), 0x0804'8000), 0x0804'8000);
  auto all = AllMappings(b.ram(), PagingMode::kPae, b.dtb());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].va, 0x4000'1000u);
  EXPECT_EQ(all[1].va, 0xc000'0000u);
  EXPECT_EQ(all[1].pa, 0x1'0020'0000u);
}

// --- Legacy 32-bit ---

TEST(PagingLegacyTest, PagesAndPse36) {
  Builder b(PagingMode::kLegacy32);
  b.Map(0x0804'8000, 0x9000, kKiB4, kU);
  b.Map(0xc000'0000, 0x40'0000, kMiB4, kW);
  // A 4 MiB page at PA 0xab_0080_0000: bits 39..32 live in PDE bits 20..13; PAT is bit 12.
  b.ram().Put(b.dtb() + (0xd000'0000 >> 22) * 4,
              0x0080'0000 | (0xabull << 13) | (1 << 12) | kPs | kP | kW | kU, 4);
  auto m = Translate(b.ram(), PagingMode::kLegacy32, b.dtb(), 0x0804'8fff);
  ExpectMapping(m, 0x0804'8000, 0x9000, kKiB4);
  EXPECT_TRUE(!m->writable && m->user && m->executable);
  m = Translate(b.ram(), PagingMode::kLegacy32, b.dtb(), 0xc03f'ffff);
  ExpectMapping(m, 0xc000'0000, 0x40'0000, kMiB4);
  EXPECT_TRUE(m->writable && !m->user && m->executable);
  ExpectMapping(Translate(b.ram(), PagingMode::kLegacy32, b.dtb(), 0xd012'3456), 0xd000'0000,
                0xab'0080'0000, kMiB4);
  ExpectFault(Translate(b.ram(), PagingMode::kLegacy32, b.dtb(), 0x0804'9000), 0x0804'9000);
  ExpectFault(Translate(b.ram(), PagingMode::kLegacy32, b.dtb(), 0x1'0804'8000), 0x1'0804'8000);
  b.SetEntry(0x0804'8000, 0, b.GetEntry(0x0804'8000, 0) & ~kP);
  ExpectFault(Translate(b.ram(), PagingMode::kLegacy32, b.dtb(), 0x0804'8000), 0x0804'8000);
  b.SetEntry(0x0804'8000, 0, 0xfff0'0000 | kP);  // a PT beyond RAM
  ExpectFault(Translate(b.ram(), PagingMode::kLegacy32, b.dtb(), 0x0804'8000), 0x0804'8000);
  auto all = AllMappings(b.ram(), PagingMode::kLegacy32, b.dtb());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].va, 0xc000'0000u);
  EXPECT_EQ(all[1].pa, 0xab'0080'0000u);
}

TEST(PagingLegacyTest, TranslateReadsFourBytesPerLevel) {
  Builder b(PagingMode::kLegacy32);
  b.Map(0xffff'f000, 0x9000, kKiB4);
  CountingMemory counting(b.ram());
  ExpectMapping(Translate(counting, PagingMode::kLegacy32, b.dtb(), 0xffff'ffff), 0xffff'f000,
                0x9000, kKiB4);
  EXPECT_EQ(counting.reads, 2u);
  EXPECT_EQ(counting.bytes, 8u);
  auto all = AllMappings(b.ram(), PagingMode::kLegacy32, b.dtb());
  ASSERT_EQ(all.size(), 1u);  // the last page of the space ends the iteration cleanly
}

// --- Speed (printed, not asserted) ---

TEST(PagingSpeed, WarmTranslateAndCacheLookup) {
  Builder b(PagingMode::kIa32e4);
  constexpr int kPages = 4096;
  const uint64_t base = 0xffff'c900'0000'0000;
  for (int i = 0; i < kPages; ++i) b.Map(base + i * kKiB4, 0x10'0000 + i * kKiB4, kKiB4);
  TranslationCache cache;
  constexpr int kOps = 1 << 20;
  uint64_t sink = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kOps; ++i) {
    auto m = Translate(b.ram(), PagingMode::kIa32e4, b.dtb(), base + (i % kPages) * kKiB4);
    sink += m->pa;
    if (i < kPages) cache.Insert(b.dtb(), *m);
  }
  auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < kOps; ++i) {
    auto m = cache.Lookup(b.dtb(), base + (i % kPages) * kKiB4);
    sink += m ? m->pa : 1;  // a few pages may have been evicted from a full set
  }
  auto t2 = std::chrono::steady_clock::now();
  auto ns = [](auto d) { return std::chrono::duration<double, std::nano>(d).count() / kOps; };
  std::printf(
      "[ info ] warm Translate (4-level, 4 KiB): %.1f ns/op; cache Lookup hit: %.1f ns/op"
      " (sink %llu)\n",
      ns(t1 - t0), ns(t2 - t1), static_cast<unsigned long long>(sink & 1));
}

}  // namespace
}  // namespace vmemfs::vmi
