#include "vmi/mapped_memory.h"

#include <gtest/gtest.h>

#include <memory>

#include "testing/memory_driver.h"

namespace vmemfs::vmi {
namespace {

using testing::MemoryDriver;

constexpr uint64_t kPresent = 1, kWritable = 2, kLarge = 0x80;
constexpr uint64_t k4K = 4096, k2M = 2ull << 20;
constexpr uint64_t kUpper = 0xffff'8000'0000'0000;  // the first kernel-half address

// 4-level page tables in a MemoryDriver, written out here from the SDM (not with the code under
// test): tables are allocated from `next_table`, the root is the first.
class Tables {
 public:
  explicit Tables(MemoryDriver& ram, uint64_t first_table = 0x100000)
      : ram_(ram), next_(first_table), root_(Alloc()) {}
  uint64_t root() const { return root_; }

  // Maps [va, va + size) to pa; size is 4 KiB, 2 MiB or 1 GiB.
  void Map(uint64_t va, uint64_t pa, uint64_t size) {
    uint64_t table = root_;
    for (int shift = 39; shift >= 12; shift -= 9) {
      const uint64_t slot = table + ((va >> shift) & 511) * 8;
      if (size == (1ull << shift)) {
        ram_.Put64(slot, pa | kPresent | kWritable | (shift > 12 ? kLarge : 0));
        return;
      }
      uint64_t entry;
      std::memcpy(&entry, ram_.Bytes(slot, 8).data(), 8);
      if (!(entry & kPresent)) {
        entry = Alloc() | kPresent | kWritable;
        ram_.Put64(slot, entry);
      }
      table = entry & 0x000f'ffff'ffff'f000ull;
    }
  }

 private:
  uint64_t Alloc() {
    const uint64_t t = next_;
    next_ += k4K;
    return t;
  }
  MemoryDriver& ram_;
  uint64_t next_;
  uint64_t root_;
};

// RAM [0, 15 MiB) and [32 MiB, 48 MiB); page tables from 1 MiB.
class MappedMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto driver = std::make_unique<MemoryDriver>(
        MemoryDriver::Options{.ranges = {{0, 15 << 20}, {32 << 20, 48 << 20}}});
    ram_ = driver.get();
    tables_ = std::make_unique<Tables>(*ram_);
    guest_ = std::move(*Guest::Open(std::move(driver)));
  }
  AddressSpace space() const { return {PagingMode::kIa32e4, tables_->root()}; }
  static uint64_t Off(uint64_t va) { return VirtualToOffset(PagingMode::kIa32e4, va); }

  MemoryDriver* ram_;
  std::unique_ptr<Tables> tables_;
  std::unique_ptr<Guest> guest_;
};

TEST_F(MappedMemoryTest, CountsPresentPagesThatMapRam) {
  tables_->Map(0x400000, 0x200000, k4K);      // RAM
  tables_->Map(0x401000, 0x201000, k4K);      // RAM
  tables_->Map(0x402000, 20 << 20, k4K);      // the hole between the RAM ranges: MMIO
  tables_->Map(0x600000, 14 << 20, k2M);      // half RAM, half hole
  tables_->Map(kUpper + k2M, 32 << 20, k2M);  // RAM in the kernel half
  auto all = CountMappedRam(*guest_, space(), 0, 1ull << 48);
  ASSERT_TRUE(all) << all.error().ToString();
  EXPECT_EQ(all->bytes, 2 * k4K + k2M / 2 + k2M);
  EXPECT_TRUE(all->exact);
  // A window counts only what lies in it.
  auto window = CountMappedRam(*guest_, space(), 0x401800, 0x600000 + 0x1000 - 0x401800);
  ASSERT_TRUE(window);
  EXPECT_EQ(window->bytes, k4K / 2 + 0x1000);
  auto upper = CountMappedRam(*guest_, space(), Off(kUpper), 1ull << 47);
  ASSERT_TRUE(upper);
  EXPECT_EQ(upper->bytes, k2M);
}

TEST_F(MappedMemoryTest, EstimatesWhatItHasNoBudgetFor) {
  // 64 page tables, each mapping 512 pages of RAM: 128 MiB in 32768 entries (aliases of the
  // same 2 MiB of RAM, as a kernel's aliases are).
  for (uint64_t i = 0; i < 64 * 512; ++i) tables_->Map(kUpper + i * k4K, (i % 512) * k4K, k4K);
  auto exact = CountMappedRam(*guest_, space(), 0, 1ull << 48);
  ASSERT_TRUE(exact);
  EXPECT_TRUE(exact->exact);
  EXPECT_EQ(exact->bytes, 128ull << 20);
  // A budget for about a quarter of the tables: the rest counts as the mean of those walked.
  auto estimate = CountMappedRam(*guest_, space(), 0, 1ull << 48, 8000);
  ASSERT_TRUE(estimate) << estimate.error().ToString();
  EXPECT_FALSE(estimate->exact);
  EXPECT_EQ(estimate->bytes, 128ull << 20);
}

TEST_F(MappedMemoryTest, HostileSharedTablesEndInAnEstimateNotAnError) {
  // Every entry of every level present and pointing at one shared table per level, the last
  // one full of 4 KiB RAM pages: 2^48 bytes mapped through 2048 entries of tables.
  const uint64_t pdpt = 0x200000, pd = 0x201000, pt = 0x202000;
  for (uint64_t i = 0; i < 512; ++i) {
    ram_->Put64(tables_->root() + i * 8, pdpt | kPresent);
    ram_->Put64(pdpt + i * 8, pd | kPresent);
    ram_->Put64(pd + i * 8, pt | kPresent);
    ram_->Put64(pt + i * 8, (i * k4K) | kPresent);
  }
  auto counted = CountMappedRam(*guest_, space(), 0, 1ull << 48);
  ASSERT_TRUE(counted) << counted.error().ToString();
  EXPECT_FALSE(counted->exact);
  EXPECT_EQ(counted->bytes, 1ull << 48);
}

TEST_F(MappedMemoryTest, RunsFollowContiguousMappedRam) {
  tables_->Map(0x400000, 0x200000, k4K);
  tables_->Map(0x401000, 0x900000, k4K);  // physically elsewhere: still one run
  tables_->Map(0x402000, 20 << 20, k4K);  // MMIO ends the run
  tables_->Map(0x403000, 0x300000, k4K);  // a new run
  tables_->Map(0x600000, 14 << 20, k2M);  // 1 MiB RAM, then the hole
  tables_->Map(0x800000, 32 << 20, k2M);  // the next 2 MiB: RAM again
  auto found = FindMappedRuns(*guest_, space(), 0, 1ull << 47, {1ull << 30, 100, 1 << 20});
  ASSERT_TRUE(found) << found.error().ToString();
  EXPECT_TRUE(found->complete);
  EXPECT_EQ(found->runs,
            (std::vector<MappedRun>{
                {0x400000, 2 * k4K}, {0x403000, k4K}, {0x600000, 1 << 20}, {0x800000, k2M}}));
}

TEST_F(MappedMemoryTest, RunsAreCutAndBounded) {
  for (uint64_t i = 0; i < 8; ++i) tables_->Map(kUpper + i * k2M, (32 << 20) + i * k2M, k2M);
  auto cut = FindMappedRuns(*guest_, space(), Off(kUpper), 1ull << 47, {3 << 20, 100, 1 << 20});
  ASSERT_TRUE(cut);
  ASSERT_EQ(cut->runs.size(), 6u);  // 16 MiB in pieces of 3 MiB
  EXPECT_EQ(cut->runs[0], (MappedRun{Off(kUpper), 3 << 20}));
  EXPECT_EQ(cut->runs[5], (MappedRun{Off(kUpper) + (15 << 20), 1 << 20}));
  auto bounded = FindMappedRuns(*guest_, space(), Off(kUpper), 1ull << 47, {3 << 20, 2, 1 << 20});
  ASSERT_TRUE(bounded);
  EXPECT_FALSE(bounded->complete);
  EXPECT_EQ(bounded->runs.size(), 2u);
}

TEST(BytesInRangesTest, SumsTheOverlaps) {
  const std::vector<drivers::PhysRange> ranges = {{0x1000, 0x3000}, {0x5000, 0x6000}};
  EXPECT_EQ(BytesInRanges(ranges, 0, 0x10000), 0x3000u);
  EXPECT_EQ(BytesInRanges(ranges, 0x2800, 0x3000), 0x800u + 0x800u);
  EXPECT_EQ(BytesInRanges(ranges, 0x3000, 0x2000), 0u);
  EXPECT_EQ(BytesInRanges(ranges, UINT64_MAX - 10, 100), 0u);
}

}  // namespace
}  // namespace vmemfs::vmi
