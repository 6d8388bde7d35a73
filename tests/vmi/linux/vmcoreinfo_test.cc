#include "vmi/linux/vmcoreinfo.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "base/checked.h"
#include "drivers/snapshot_driver.h"
#include "testing/memory_driver.h"
#include "vmi/guest.h"
#include "vmi/linux/guest_root.h"
#include "vmi/linux/vmcoreinfo_scan.h"

namespace vmemfs::vmi::linux_os {
namespace {

constexpr const char* kGood =
    "OSRELEASE=6.1.0-56-cloud-amd64\n"
    "BUILD-ID=3b43fad5034874490492495d552c0af6a5fab235\n"
    "PAGESIZE=4096\n"
    "SYMBOL(_stext)=ffffffff8b200000\n"
    "SYMBOL(init_top_pgt)=ffffffff8cc10000\n"
    "OFFSET(uts_namespace.name)=0\n"
    "SIZE(page)=64\n"
    "LENGTH(zone.free_area)=11\n"
    "NUMBER(phys_base)=-67108864\n"
    "NUMBER(pgtable_l5_enabled)=0\n"
    "KERNELOFFSET=a200000\n"
    "CRASHTIME=1700000000\n"
    "SOMETHING_NEW=any text\n";

TEST(VmcoreInfoTest, ParsesEveryKind) {
  auto info = VmcoreInfo::Parse(kGood);
  ASSERT_TRUE(info.has_value()) << info.error().ToString();
  EXPECT_EQ(info->os_release(), "6.1.0-56-cloud-amd64");
  EXPECT_EQ(info->build_id(), "3b43fad5034874490492495d552c0af6a5fab235");
  EXPECT_EQ(info->page_size(), 4096u);
  EXPECT_EQ(info->Symbol("_stext"), 0xffffffff8b200000u);
  EXPECT_EQ(info->Offset("uts_namespace.name"), 0u);
  EXPECT_EQ(info->Size("page"), 64u);
  EXPECT_EQ(info->Length("zone.free_area"), 11u);
  EXPECT_EQ(info->Number("phys_base"), -67108864);
  EXPECT_EQ(info->kernel_offset(), 0xa200000u);
  EXPECT_EQ(info->crash_time(), 1700000000);
  EXPECT_EQ(info->Get("SOMETHING_NEW"), "any text");
  EXPECT_EQ(info->Get("SYMBOL(_stext)"), "ffffffff8b200000");
  EXPECT_FALSE(info->Symbol("nope").has_value());
  EXPECT_FALSE(info->Number("_stext").has_value());  // kinds do not mix
}

TEST(VmcoreInfoTest, IgnoresTrailingNulsAndEmptyLines) {
  std::string text = std::string("OSRELEASE=6.1\n\nPAGESIZE=4096") + std::string(5, '\0');
  auto info = VmcoreInfo::Parse(text);
  ASSERT_TRUE(info.has_value()) << info.error().ToString();
  EXPECT_EQ(info->page_size(), 4096u);
  EXPECT_EQ(info->text(), "OSRELEASE=6.1\n\nPAGESIZE=4096");
}

TEST(VmcoreInfoTest, TheKernelsFormatStringsAreNotANote) {
  // What the kernel image holds next to the name: printf formats, or the bare keys.
  EXPECT_FALSE(VmcoreInfo::Parse("OSRELEASE=%s\nPAGESIZE=%ld\n").has_value());
  EXPECT_FALSE(VmcoreInfo::Parse("OSRELEASE=6.1\nKERNELOFFSET=\n").has_value());
  EXPECT_FALSE(VmcoreInfo::Parse("OSRELEASE=6.1\nKERNELOFFSET=%lx\n").has_value());
  EXPECT_FALSE(VmcoreInfo::Parse("OSRELEASE=6.1\nSYMBOL(%s)=%lx\n").has_value());
  EXPECT_FALSE(VmcoreInfo::Parse("OSRELEASE=\n").has_value());
}

TEST(VmcoreInfoTest, RejectsMalformedNumbers) {
  const char* bad[] = {
      "SYMBOL(x)=0xffff",               // the kernel prints no 0x
      "SYMBOL(x)=fffg",                 // not hex
      "SYMBOL(x)=1ffffffffffffffff",    // 65 bits
      "NUMBER(x)=9223372036854775808",  // ERANGE
      "NUMBER(x)=12 ",                  // trailing space
      "NUMBER(x)=+1",
      "NUMBER(x)=",
      "OFFSET(x)=-1",  // unsigned
      "SIZE(x)=1.5",
      "LENGTH(x)=1e3",
      "PAGESIZE=4095",  // not a power of two
      "PAGESIZE=0",
      "CRASHTIME=soon",
      "BUILD-ID=xyz",
      "KERNELOFFSET=-1",
  };
  for (const char* line : bad) {
    auto info = VmcoreInfo::Parse(std::string("OSRELEASE=6.1\n") + line + "\n");
    ASSERT_FALSE(info.has_value()) << line;
    EXPECT_EQ(info.error().code(), ErrorCode::kBadData) << line;
  }
  EXPECT_EQ(VmcoreInfo::Parse("OSRELEASE=6.1\nNUMBER(x)=-9223372036854775808\n")->Number("x"),
            INT64_MIN);
  EXPECT_EQ(VmcoreInfo::Parse("OSRELEASE=6.1\nSYMBOL(x)=ffffffffffffffff\n")->Symbol("x"),
            UINT64_MAX);
}

TEST(VmcoreInfoTest, RejectsGarbageAndStructuralErrors) {
  EXPECT_FALSE(VmcoreInfo::Parse("").has_value());
  EXPECT_FALSE(VmcoreInfo::Parse("PAGESIZE=4096\n").has_value());  // no OSRELEASE
  EXPECT_FALSE(VmcoreInfo::Parse("OSRELEASE=6.1\nno equals\n").has_value());
  EXPECT_FALSE(VmcoreInfo::Parse("OSRELEASE=6.1\n=value\n").has_value());
  EXPECT_FALSE(VmcoreInfo::Parse("OSRELEASE=6.1\nPAGESIZE=4096\nPAGESIZE=4096\n").has_value());
  EXPECT_FALSE(VmcoreInfo::Parse(std::string("OSRELEASE=6.1\nA=\x01\x02\n")).has_value());
  EXPECT_FALSE(VmcoreInfo::Parse(std::string("OSRELEASE=6\0.1\n", 15)).has_value());
  EXPECT_FALSE(VmcoreInfo::Parse("OSRELEASE=" + std::string(65, 'x') + "\n").has_value());
}

TEST(VmcoreInfoTest, EnforcesSizeAndLineLimits) {
  std::string lines = "OSRELEASE=6.1\n";
  for (size_t i = 0; lines.size() <= VmcoreInfo::kMaxTextBytes; ++i) {
    lines += "K" + std::to_string(i) + "=v\n";
  }
  EXPECT_FALSE(VmcoreInfo::Parse(lines).has_value());
  std::string many = "OSRELEASE=6.1\n" + std::string(VmcoreInfo::kMaxLines, '\n');
  ASSERT_LE(many.size(), VmcoreInfo::kMaxTextBytes);
  EXPECT_FALSE(VmcoreInfo::Parse(many).has_value());
  std::string fits = "OSRELEASE=6.1\n" + std::string(VmcoreInfo::kMaxLines - 2, '\n');
  EXPECT_TRUE(VmcoreInfo::Parse(fits).has_value());
}

// --- The RAM scan over a fake driver ---

using ::vmemfs::testing::MemoryDriver;

// RAM [0, size), zero copy in pieces of `piece` bytes when `mapped` (so names can straddle two
// pieces), carrying `carried` as the source's own VMCOREINFO note.
std::unique_ptr<MemoryDriver> MakeDriver(size_t size, bool mapped, size_t piece = 0,
                                         std::optional<std::string> carried = std::nullopt) {
  return std::make_unique<MemoryDriver>(MemoryDriver::Options{.ranges = {{0, size}},
                                                              .mapped = mapped,
                                                              .map_piece = piece,
                                                              .vmcoreinfo = std::move(carried)});
}

void PutNote(MemoryDriver& d, uint64_t pa, const std::string& text, uint32_t namesz = 11,
             uint32_t type = 0) {
  uint32_t header[3] = {namesz, static_cast<uint32_t>(text.size()), type};
  d.Put(pa, header, 12);
  d.Put(pa + 12, "VMCOREINFO\0\0", 12);
  d.Put(pa + 24, text.data(), text.size());
}

std::unique_ptr<Guest> MakeGuest(std::unique_ptr<MemoryDriver> d) {
  auto g = Guest::Open(std::move(d));
  EXPECT_TRUE(g.has_value());
  return std::move(*g);
}

const std::string kNoteText = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nKERNELOFFSET=0\n";

TEST(VmcoreInfoScanTest, FindsTheNoteAndSkipsLookAlikes) {
  for (bool mapped : {true, false}) {
    auto d = MakeDriver(4 << 20, mapped);
    // The kernel image's format strings right after the name.
    d->Put(0x1000, "VMCOREINFO\0OSRELEASE=%s\n\0PAGESIZE=%ld\n", 38);
    // A header with a wrong type, and one with an unparsable text.
    PutNote(*d, 0x2000, kNoteText, 11, 1);
    PutNote(*d, 0x3000, "OSRELEASE=6.1\nKERNELOFFSET=\n");
    PutNote(*d, 0x2ff000, kNoteText);
    auto g = MakeGuest(std::move(d));
    auto loc = LocateVmcoreInfo(*g);
    ASSERT_TRUE(loc.has_value()) << loc.error().ToString();
    EXPECT_EQ(loc->text, kNoteText);
    EXPECT_EQ(loc->note_pa, 0x2ff000u);
    EXPECT_EQ(loc->candidates, 1u);
  }
}

TEST(VmcoreInfoScanTest, FindsANameAcrossPieceAndChunkBoundaries) {
  // Unmapped reads go in 1 MiB chunks; mapped pieces here are 64 KiB.
  for (uint64_t boundary : {uint64_t{1} << 20, uint64_t{64} << 10}) {
    for (uint64_t shift : {1, 5, 10}) {
      for (bool mapped : {true, false}) {
        auto d = MakeDriver(2 << 20, mapped, 64 << 10);
        uint64_t name_pa = boundary - shift;
        uint64_t note = name_pa - 12;
        if (note % 4 != 0) continue;  // notes are 4-aligned
        PutNote(*d, note, kNoteText);
        auto g = MakeGuest(std::move(d));
        auto loc = LocateVmcoreInfo(*g);
        ASSERT_TRUE(loc.has_value()) << boundary << " " << shift << " " << mapped;
        EXPECT_EQ(loc->note_pa, note);
      }
    }
  }
}

TEST(VmcoreInfoScanTest, MisalignedHeaderIsNotANote) {
  auto d = MakeDriver(1 << 20, true);
  PutNote(*d, 0x1002, kNoteText);
  auto g = MakeGuest(std::move(d));
  EXPECT_EQ(LocateVmcoreInfo(*g).error().code(), ErrorCode::kNotFound);
}

TEST(VmcoreInfoScanTest, HugeDescSizeIsRejected) {
  auto d = MakeDriver(1 << 20, true);
  PutNote(*d, 0x1000, kNoteText);
  uint32_t huge = 0xfffffff0;
  d->Put(0x1004, &huge, 4);
  auto g = MakeGuest(std::move(d));
  EXPECT_FALSE(LocateVmcoreInfo(*g).has_value());
}

TEST(VmcoreInfoScanTest, PrefersTheSelfConsistentCopy) {
  auto d = MakeDriver(1 << 20, true);
  // A stale note first: _stext - KERNELOFFSET is not the default link address.
  PutNote(*d, 0x1000, "OSRELEASE=old\nSYMBOL(_stext)=ffffffff81000000\nKERNELOFFSET=200000\n");
  PutNote(*d, 0x8000, "OSRELEASE=new\nSYMBOL(_stext)=ffffffff81200000\nKERNELOFFSET=200000\n");
  auto g = MakeGuest(std::move(d));
  auto loc = LocateVmcoreInfo(*g);
  ASSERT_TRUE(loc.has_value());
  EXPECT_EQ(loc->candidates, 2u);
  EXPECT_NE(loc->text.find("OSRELEASE=new"), std::string::npos);
}

TEST(VmcoreInfoScanTest, NothingFound) {
  auto g = MakeGuest(MakeDriver(1 << 20, false));
  EXPECT_EQ(LocateVmcoreInfo(*g).error().code(), ErrorCode::kNotFound);
}

// --- Real guests ---

std::string FirstLine(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return line;
}

class RealGuestVmcoreInfoTest
    : public ::testing::TestWithParam<std::tuple<const char*, const char*>> {};

TEST_P(RealGuestVmcoreInfoTest, FindsTheRunningKernelsNote) {
  auto [name, file] = GetParam();
  std::filesystem::path dir = std::filesystem::path(::vmemfs::testing::GuestRoot()) / name;
  if (!std::filesystem::exists(dir / file)) GTEST_SKIP() << "no test guest at " << dir;
  auto driver = drivers::OpenSnapshot((dir / file).string(), {});
  ASSERT_TRUE(driver.has_value()) << driver.error().ToString();
  auto guest = Guest::Open(std::move(*driver));
  ASSERT_TRUE(guest.has_value()) << guest.error().ToString();
  // Twice: the first scan also pays for faulting the snapshot's pages in.
  double ms[2];
  Result<VmcoreInfoLocation> loc = NotFoundError("not run");
  for (double& t : ms) {
    auto start = std::chrono::steady_clock::now();
    loc = LocateVmcoreInfo(**guest);
    t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  ASSERT_TRUE(loc.has_value()) << loc.error().ToString();
  std::printf(
      "[ %s/%s ] VMCOREINFO: %s, %zu bytes, %zu distinct notes, %.1f ms (again: %.1f ms) "
      "over %.0f MiB\n",
      name, file, loc->source.c_str(), loc->text.size(), loc->candidates, ms[0], ms[1],
      static_cast<double>((*guest)->memory_size()) / (1 << 20));
  auto info = VmcoreInfo::Parse(loc->text);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->os_release(), FirstLine(dir / "truth/uname.txt"));
  EXPECT_TRUE(info->Symbol("kallsyms_names").has_value());
}

INSTANTIATE_TEST_SUITE_P(Guests, RealGuestVmcoreInfoTest,
                         ::testing::Combine(::testing::Values("l4", "l5"),
                                            ::testing::Values("raw.mem", "core.elf")));

}  // namespace
}  // namespace vmemfs::vmi::linux_os
