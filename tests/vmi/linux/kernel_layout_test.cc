#include "vmi/linux/kernel_layout.h"
#include "vmi/linux/kernel_memory.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/checked.h"
#include "drivers/snapshot_driver.h"
#include "testing/memory_driver.h"
#include "vmi/guest.h"
#include "vmi/linux/guest_root.h"
#include "vmi/linux/vmcoreinfo.h"
#include "vmi/linux/vmcoreinfo_scan.h"

namespace vmemfs::vmi::linux_os {
namespace {

using ::vmemfs::testing::MemoryDriver;

constexpr uint64_t kPresentWritable = 0x3;
constexpr uint64_t kLarge = 0x80;

// Maps the 2 MiB page at `va` to `pa` with `levels` levels of tables, the root at `root` and
// the lower tables in the pages right after it.
void Map2M(MemoryDriver& d, int levels, uint64_t root, uint64_t va, uint64_t pa) {
  uint64_t table = root;
  for (int level = levels; level > 1; --level) {
    int shift = 12 + 9 * (level - 1);
    uint64_t index = (va >> shift) & 511;
    if (level == 2) {
      d.Put64(table + index * 8, pa | kPresentWritable | kLarge);
    } else {
      uint64_t next = table + 4096;
      d.Put64(table + index * 8, next | kPresentWritable);
      table = next;
    }
  }
}

constexpr uint64_t kStext = 0xffffffff81200000ull;  // KASLR slide 0x200000
constexpr uint64_t kPgt = 0xffffffff81400000ull;

std::string Note(int64_t phys_base, bool l5) {
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "OSRELEASE=6.1.0-test\nSYMBOL(_stext)=%llx\nSYMBOL(init_top_pgt)=%llx\n"
                "NUMBER(phys_base)=%lld\nNUMBER(pgtable_l5_enabled)=%d\nKERNELOFFSET=200000\n",
                static_cast<unsigned long long>(kStext), static_cast<unsigned long long>(kPgt),
                static_cast<long long>(phys_base), l5 ? 1 : 0);
  return buf;
}

struct FakeKernel {
  std::unique_ptr<Guest> guest;
  VmcoreInfo info;
};

FakeKernel Make(int table_levels, bool note_l5, int64_t phys_base, uint64_t map_to_delta = 0) {
  auto d = std::make_unique<MemoryDriver>(64 << 20);  // RAM from 0, page tables by hand
  uint64_t root = kPgt - kStartKernelMap + static_cast<uint64_t>(phys_base);
  uint64_t stext_pa = kStext - kStartKernelMap + static_cast<uint64_t>(phys_base);
  Map2M(*d, table_levels, root, kStext, stext_pa + map_to_delta);
  auto g = Guest::Open(std::move(d));
  EXPECT_TRUE(g.has_value());
  auto info = VmcoreInfo::Parse(Note(phys_base, note_l5));
  EXPECT_TRUE(info.has_value());
  return {std::move(*g), std::move(*info)};
}

TEST(KernelLayoutTest, FourLevelVerified) {
  FakeKernel s = Make(4, false, 0x1000000);
  auto layout = FindKernelLayout(*s.guest, s.info);
  ASSERT_TRUE(layout.has_value()) << layout.error().ToString();
  EXPECT_EQ(layout->mode, PagingMode::kIa32e4);
  EXPECT_EQ(layout->page_table_root, 0x2400000u);
  EXPECT_EQ(layout->stext_pa, 0x2200000u);
  EXPECT_EQ(layout->kaslr_offset, 0x200000u);
  EXPECT_EQ(layout->phys_base, 0x1000000);
  EXPECT_EQ(layout->release, "6.1.0-test");
  EXPECT_NE(layout->root_source.find("SYMBOL(init_top_pgt) + phys_base, verified"),
            std::string::npos);
  bool has_root_line = false;
  for (const Fact& f : layout->provenance) has_root_line |= f.key == "page-table-root";
  EXPECT_TRUE(has_root_line);
}

TEST(KernelLayoutTest, FiveLevelVerified) {
  FakeKernel s = Make(5, true, 0x1000000);
  auto layout = FindKernelLayout(*s.guest, s.info);
  ASSERT_TRUE(layout.has_value()) << layout.error().ToString();
  EXPECT_EQ(layout->mode, PagingMode::kIa32e5);
}

TEST(KernelLayoutTest, NegativePhysBase) {
  // The image below its link address, as on the test guests (phys_base = -64 MiB there).
  FakeKernel s = Make(4, false, -0x1000000);
  auto layout = FindKernelLayout(*s.guest, s.info);
  ASSERT_TRUE(layout.has_value()) << layout.error().ToString();
  EXPECT_EQ(layout->page_table_root, 0x400000u);
  EXPECT_EQ(layout->stext_pa, 0x200000u);
}

TEST(KernelLayoutTest, WrongModeFailsVerification) {
  FakeKernel s = Make(4, true, 0x1000000);
  auto layout = FindKernelLayout(*s.guest, s.info);
  ASSERT_FALSE(layout.has_value());
  EXPECT_EQ(layout.error().code(), ErrorCode::kBadData) << layout.error().ToString();
}

TEST(KernelLayoutTest, MappingElsewhereFailsVerification) {
  FakeKernel s = Make(4, false, 0x1000000, 0x200000);
  auto layout = FindKernelLayout(*s.guest, s.info);
  ASSERT_FALSE(layout.has_value());
  EXPECT_NE(layout.error().message().find("expected 0x2200000"), std::string::npos)
      << layout.error().ToString();
}

TEST(KernelLayoutTest, RootOutsideRamFails) {
  FakeKernel s = Make(4, false, 0x1000000);
  auto info = VmcoreInfo::Parse(Note(0x7fff0000000, false));
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(FindKernelLayout(*s.guest, *info).error().code(), ErrorCode::kBadData);
}

TEST(KernelLayoutTest, MissingSymbols) {
  FakeKernel s = Make(4, false, 0);
  auto no_stext = VmcoreInfo::Parse("OSRELEASE=6.1\nSYMBOL(init_top_pgt)=ffffffff81400000\n");
  EXPECT_EQ(FindKernelLayout(*s.guest, *no_stext).error().code(), ErrorCode::kNotFound);
  auto no_pgt = VmcoreInfo::Parse("OSRELEASE=6.1\nSYMBOL(_stext)=ffffffff81200000\n");
  EXPECT_EQ(FindKernelLayout(*s.guest, *no_pgt).error().code(), ErrorCode::kNotFound);
  auto low = VmcoreInfo::Parse(
      "OSRELEASE=6.1\nSYMBOL(_stext)=1000\nSYMBOL(init_top_pgt)=ffffffff81400000\n");
  EXPECT_EQ(FindKernelLayout(*s.guest, *low).error().code(), ErrorCode::kBadData);
}

TEST(KernelLayoutTest, SwapperPgDirWhenInitTopPgtIsAbsent) {
  FakeKernel s = Make(4, false, 0);
  auto info = VmcoreInfo::Parse(
      "OSRELEASE=6.1\nSYMBOL(_stext)=ffffffff81200000\nSYMBOL(swapper_pg_dir)=ffffffff81400000\n");
  auto layout = FindKernelLayout(*s.guest, *info);
  ASSERT_TRUE(layout.has_value()) << layout.error().ToString();
  EXPECT_NE(layout->root_source.find("swapper_pg_dir"), std::string::npos);
}

// --- Real guests: raw memory (no registers) and ELF cores (registers) ---

std::string Value(const std::filesystem::path& p, const std::string& key) {
  std::ifstream in(p);
  std::string k, v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return "";
}

class RealGuestLayoutTest : public ::testing::TestWithParam<std::tuple<const char*, const char*>> {
};

TEST_P(RealGuestLayoutTest, FindsAndVerifiesTheKernel) {
  auto [name, file] = GetParam();
  std::filesystem::path dir = std::filesystem::path(::vmemfs::testing::GuestRoot()) / name;
  if (!std::filesystem::exists(dir / file)) GTEST_SKIP() << "no test guest at " << dir;
  auto driver = drivers::OpenSnapshot((dir / file).string(), {});
  ASSERT_TRUE(driver.has_value()) << driver.error().ToString();
  auto guest = Guest::Open(std::move(*driver));
  ASSERT_TRUE(guest.has_value()) << guest.error().ToString();
  auto where = LocateVmcoreInfo(**guest);
  ASSERT_TRUE(where.has_value()) << where.error().ToString();
  auto info = VmcoreInfo::Parse(where->text);
  ASSERT_TRUE(info.has_value());
  auto layout = FindKernelLayout(**guest, *info, (*guest)->RegisterRoots());
  ASSERT_TRUE(layout.has_value()) << layout.error().ToString();

  bool la57 = Value(dir / "truth/snapshot.txt", "la57") == "1";
  EXPECT_EQ(layout->mode, la57 ? PagingMode::kIa32e5 : PagingMode::kIa32e4);
  EXPECT_EQ(layout->stext_pa, *info->Symbol("_stext") - kStartKernelMap +
                                  static_cast<uint64_t>(*info->Number("phys_base")));
  for (const Fact& f : layout->provenance) {
    std::printf("[ %s/%s ] %s: %s (%s)\n", name, file, f.key.c_str(), f.value.c_str(),
                f.how.c_str());
  }
  // Through its page tables, the kernel's own banner reads.
  KernelMemory mem(**guest, {layout->mode, layout->page_table_root});
  std::string release(info->os_release().size(), '\0');
  auto uts = info->Symbol("init_uts_ns");
  ASSERT_TRUE(uts.has_value());
  // struct new_utsname inside uts_namespace: sysname[65] then nodename[65], release[65].
  uint64_t name_off = info->Offset("uts_namespace.name").value_or(0);
  ASSERT_TRUE(mem.Read(*uts + name_off + 2 * 65, std::as_writable_bytes(std::span(release))).ok());
  EXPECT_EQ(release, info->os_release());
}

INSTANTIATE_TEST_SUITE_P(Guests, RealGuestLayoutTest,
                         ::testing::Combine(::testing::Values("l4", "l5"),
                                            ::testing::Values("raw.mem", "core.elf")));

}  // namespace
}  // namespace vmemfs::vmi::linux_os
