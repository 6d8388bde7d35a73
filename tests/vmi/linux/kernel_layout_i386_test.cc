// The i386 kernel layout on hand-made PAE and 2-level page tables: the split found by
// verification, the mode from CONFIG_X86_PAE, pointer size 4, and refusals.
#include "vmi/linux/kernel_layout_i386.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "testing/memory_driver.h"
#include "vmi/guest.h"

namespace vmemfs::vmi::linux_os {
namespace {

using ::vmemfs::testing::MemoryDriver;

constexpr uint64_t kPresent = 0x1;
constexpr uint64_t kPresentWritableLarge = 0x83;

// A note as an i386 kernel writes it: no phys_base, KERNELOFFSET or init_top_pgt.
std::string Note(uint64_t stext, uint64_t pgd, bool pae) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), "OSRELEASE=6.1.0-test-686\nSYMBOL(_stext)=%llx\n"
                "SYMBOL(swapper_pg_dir)=%llx\n%s",
                static_cast<unsigned long long>(stext), static_cast<unsigned long long>(pgd),
                pae ? "CONFIG_X86_PAE=y\n" : "");
  return buf;
}

// Maps the large page holding `va` to `pa`: PAE (PDPT at root, PD in the next page, 2 MiB
// page) or 2-level (PD at root, 4 MiB page).
void MapLarge(MemoryDriver& d, bool pae, uint64_t root, uint64_t va, uint64_t pa) {
  if (pae) {
    uint64_t pd = root + 4096;
    d.Put64(root + ((va >> 30) & 3) * 8, pd | kPresent);
    d.Put64(pd + ((va >> 21) & 511) * 8, (pa & ~0x1fffffull) | kPresentWritableLarge);
  } else {
    d.Put32(root + ((va >> 22) & 1023) * 4,
            static_cast<uint32_t>((pa & ~0x3fffffull) | kPresentWritableLarge));
  }
}

struct Fake {
  std::unique_ptr<Guest> guest;
  VmcoreInfo info;
};

// A kernel at `page_offset` with _stext at physical 0x1000000 and swapper_pg_dir at 0x2000000;
// `skew` moves where the tables really map _stext.
Fake Make(bool pae, uint64_t page_offset, bool note_pae, uint64_t skew = 0) {
  auto d = std::make_unique<MemoryDriver>(64 << 20);
  const uint64_t stext = page_offset + 0x1000000, pgd = page_offset + 0x2000000;
  MapLarge(*d, pae, 0x2000000, stext, 0x1000000 + skew);
  auto g = Guest::Open(std::move(d));
  EXPECT_TRUE(g.has_value());
  auto info = VmcoreInfo::Parse(Note(stext, pgd, note_pae));
  EXPECT_TRUE(info.has_value());
  return {std::move(*g), std::move(*info)};
}

TEST(KernelLayoutI386Test, RecognisesA32BitNote) {
  auto i386 = VmcoreInfo::Parse(Note(0xc9000000, 0xca000000, true));
  ASSERT_TRUE(i386.has_value());
  EXPECT_TRUE(IsI386VmcoreInfo(*i386));
  auto x64 = VmcoreInfo::Parse(
      "OSRELEASE=6.1\nSYMBOL(_stext)=ffffffff81000000\nSYMBOL(init_top_pgt)=ffffffff82000000\n"
      "NUMBER(phys_base)=0\n");
  ASSERT_TRUE(x64.has_value());
  EXPECT_FALSE(IsI386VmcoreInfo(*x64));
}

TEST(KernelLayoutI386Test, PaeAtTheDefaultSplit) {
  Fake f = Make(true, 0xc0000000, true);
  auto layout = FindKernelLayout(*f.guest, f.info);  // dispatches on the note
  ASSERT_TRUE(layout.has_value()) << layout.error().ToString();
  EXPECT_EQ(layout->mode, PagingMode::kPae);
  EXPECT_EQ(layout->pointer_size, 4u);
  EXPECT_EQ(layout->page_offset, 0xc0000000u);
  EXPECT_EQ(layout->page_table_root, 0x2000000u);
  EXPECT_EQ(layout->stext_pa, 0x1000000u);
  bool said_pointer_size = false;
  for (const Fact& fact : layout->provenance) said_pointer_size |= fact.key == "pointer-size";
  EXPECT_TRUE(said_pointer_size);
}

TEST(KernelLayoutI386Test, TwoLevelAtAnotherSplit) {
  Fake f = Make(false, 0x80000000, false);  // VMSPLIT_2G
  auto layout = FindKernelLayout(*f.guest, f.info);
  ASSERT_TRUE(layout.has_value()) << layout.error().ToString();
  EXPECT_EQ(layout->mode, PagingMode::kLegacy32);
  EXPECT_EQ(layout->page_offset, 0x80000000u);
}

TEST(KernelLayoutI386Test, ModeFromTheNoteMustMatchTheTables) {
  // 2-level tables, but the note claims PAE: nothing verifies.
  Fake f = Make(false, 0xc0000000, true);
  auto layout = FindKernelLayout(*f.guest, f.info);
  ASSERT_FALSE(layout.has_value());
  EXPECT_EQ(layout.error().code(), ErrorCode::kBadData);
}

TEST(KernelLayoutI386Test, TablesMappingElsewhereAreRefused) {
  Fake f = Make(true, 0xc0000000, true, 0x400000);
  auto layout = FindKernelLayout(*f.guest, f.info);
  ASSERT_FALSE(layout.has_value());
  EXPECT_EQ(layout.error().code(), ErrorCode::kBadData);
}

TEST(KernelLayoutI386Test, RegisterRootWhenSwapperPgDirFails) {
  Fake f = Make(true, 0xc0000000, true);
  // The note's swapper_pg_dir points at an empty page; a vCPU's CR3 has the real tables.
  auto info = VmcoreInfo::Parse(Note(0xc1000000, 0xc3000000, true));
  ASSERT_TRUE(info.has_value());
  RootCandidate cr3{{PagingMode::kPae, 0x2000000}, "vCPU 0 registers"};
  auto layout = FindKernelLayout(*f.guest, *info, std::span(&cr3, 1));
  ASSERT_TRUE(layout.has_value()) << layout.error().ToString();
  EXPECT_EQ(layout->page_table_root, 0x2000000u);
  EXPECT_EQ(layout->page_offset, 0xc0000000u);
  EXPECT_NE(layout->root_source.find("vCPU 0"), std::string::npos);
}

TEST(KernelLayoutI386Test, MissingSwapperPgDir) {
  Fake f = Make(true, 0xc0000000, true);
  auto info = VmcoreInfo::Parse("OSRELEASE=6.1\nSYMBOL(_stext)=c1000000\n");
  ASSERT_TRUE(info.has_value());
  auto layout = FindI386KernelLayout(*f.guest, *info, {});
  ASSERT_FALSE(layout.has_value());
  EXPECT_EQ(layout.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os
