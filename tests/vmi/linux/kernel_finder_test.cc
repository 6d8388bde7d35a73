#include "vmi/linux/kernel_finder.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "base/checked.h"
#include "drivers/snapshot_driver.h"
#include "vmi/guest.h"
#include "vmi/linux/guest_root.h"
#include "vmi/linux/kernel_layout.h"
#include "vmi/linux/vmcoreinfo_scan.h"

namespace vmemfs::vmi::linux_os {
namespace {

constexpr uint64_t kP = 1 << 0;
constexpr uint64_t kW = 1 << 1;
constexpr uint64_t kPs = 1 << 7;
constexpr uint64_t kKiB4 = 4096;
constexpr uint64_t kMiB2 = 2ull << 20;
constexpr uint64_t kGiB1 = 1ull << 30;
constexpr uint64_t kTrampoline = 0x9c000;
constexpr uint64_t kText = 0xffffffff81000000ull;  // the synthetic image's _text
constexpr uint64_t kNotePa = 0x800000;

// Guest RAM at physical 0 in a byte vector; reads outside it fault. Counts what is read, as a
// check on the finder's own accounting.
class Ram : public PhysicalMemory {
 public:
  explicit Ram(size_t size) : bytes_(size), ranges_{{0, size}} {}

  Status Read(uint64_t pa, std::span<std::byte> out) override {
    ++reads;
    bytes_read += out.size();
    if (!RangeWithin(pa, out.size(), bytes_.size())) return FaultError(pa);
    std::memcpy(out.data(), bytes_.data() + pa, out.size());
    return Status();
  }
  void Put64(uint64_t pa, uint64_t v) { PutBytes(pa, &v, 8); }
  void PutBytes(uint64_t pa, const void* p, size_t n) {
    ASSERT_TRUE(RangeWithin(pa, n, bytes_.size()));
    std::memcpy(bytes_.data() + pa, p, n);
  }
  uint64_t Get64(uint64_t pa) const {
    uint64_t v;
    std::memcpy(&v, bytes_.data() + pa, 8);
    return v;
  }
  std::span<const drivers::PhysRange> ranges() const { return ranges_; }

  uint64_t reads = 0;
  uint64_t bytes_read = 0;

 private:
  std::vector<std::byte> bytes_;
  std::vector<drivers::PhysRange> ranges_;
};

// Page tables built from the SDM's layout, independently of the walker under test.
class Tables {
 public:
  // Tables go from `pool` up, one zeroed page each.
  Tables(Ram& ram, PagingMode mode, uint64_t root, uint64_t pool)
      : ram_(ram), root_(root), next_(pool) {
    shifts_ = mode == PagingMode::kIa32e5 ? std::vector<int>{48, 39, 30, 21, 12}
                                          : std::vector<int>{39, 30, 21, 12};
  }
  uint64_t root() const { return root_; }

  void Map(uint64_t va, uint64_t pa, uint64_t size, uint64_t flags) {
    const int leaf_shift = size == kGiB1 ? 30 : size == kMiB2 ? 21 : 12;
    uint64_t table = root_;
    for (int shift : shifts_) {
      const uint64_t slot = table + 8 * ((va >> shift) & 511);
      if (shift == leaf_shift) {
        ram_.Put64(slot, pa | flags | kP | (size > kKiB4 ? kPs : 0));
        return;
      }
      uint64_t e = ram_.Get64(slot);
      if (!(e & kP)) {
        e = next_ | 0x63;  // present, writable, accessed, dirty, as the kernel's
        next_ += kKiB4;
        ram_.Put64(slot, e);
      }
      table = e & 0x000ffffffffff000ull;
    }
  }
  // Copies the upper half of this root's top-level table into the page at `to`.
  void CopyKernelHalf(uint64_t to) {
    for (uint64_t i = 256; i < 512; ++i) ram_.Put64(to + 8 * i, ram_.Get64(root_ + 8 * i));
  }

 private:
  Ram& ram_;
  uint64_t root_;
  uint64_t next_;
  std::vector<int> shifts_;
};

std::string NoteText(uint64_t stext = kText) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "OSRELEASE=6.1.0-test\nSYMBOL(_stext)=%llx\nKERNELOFFSET=0\n",
                static_cast<unsigned long long>(stext));
  return buf;
}

void PutNote(Ram& ram, uint64_t pa, const std::string& text, uint32_t descsz = 0) {
  uint32_t header[3] = {11, descsz ? descsz : static_cast<uint32_t>(text.size()), 0};
  ram.PutBytes(pa, header, 12);
  ram.PutBytes(pa + 12, "VMCOREINFO\0\0", 12);
  ram.PutBytes(pa + 24, text.data(), text.size());
}

// A miniature kernel: the direct map at page_offset_base (1 GiB pages), the image at kText as
// 4 KiB pages (text read-only at 16 MiB, then .data and .bss writable), the note at kNotePa and
// `vmcoreinfo_note` (the pointer) at .bss + 0x30. The kernel's tables live at 1 MiB, its
// trampoline copy at 0x9c000.
struct MiniKernel {
  static constexpr uint64_t kRoot = 0x100000;
  static constexpr uint64_t kImagePa = 0x1000000;
  static constexpr uint64_t kTextPages = 4;
  static constexpr uint64_t kBssPa = kImagePa + (kTextPages + 1) * kKiB4;
  static constexpr uint64_t kPointerPa = kBssPa + 0x30;

  explicit MiniKernel(PagingMode mode = PagingMode::kIa32e4, size_t ram_size = 32 << 20)
      : mode(mode),
        ram(ram_size),
        tables(ram, mode, kRoot, kRoot + kKiB4 * 2),
        page_offset(mode == PagingMode::kIa32e5 ? 0xff11000000000000ull : 0xffff888000000000ull) {
    tables.Map(page_offset, 0, kGiB1, kW);
    for (uint64_t i = 0; i < kTextPages; ++i) {
      tables.Map(kText + i * kKiB4, kImagePa + i * kKiB4, kKiB4, 0);
    }
    tables.Map(kText + kTextPages * kKiB4, kImagePa + kTextPages * kKiB4, kKiB4, kW);  // .data
    tables.Map(kText + (kTextPages + 1) * kKiB4, kBssPa, kKiB4, kW);                   // .bss
    PutNote(ram, kNotePa, NoteText());
    ram.Put64(kPointerPa, page_offset + kNotePa);
    tables.CopyKernelHalf(kTrampoline);
  }

  uint64_t PointerVa() const { return kText + (kTextPages + 1) * kKiB4 + 0x30; }

  Result<KernelFinding> Find(std::span<const RegisterRoot> regs = {},
                             KernelFinderLimits limits = {}) {
    ram.bytes_read = 0;
    return FindKernelVmcoreInfo({ram, ram.ranges(), regs, verify, limits});
  }

  PagingMode mode;
  Ram ram;
  Tables tables;
  uint64_t page_offset;
  std::function<bool(const VmcoreInfo&)> verify;
};

class KernelFinderModeTest : public ::testing::TestWithParam<PagingMode> {};

TEST_P(KernelFinderModeTest, FindsTheNoteThroughTheTrampolineWithoutRegisters) {
  MiniKernel k(GetParam());
  auto f = k.Find();
  ASSERT_TRUE(f.has_value()) << f.error().ToString();
  EXPECT_EQ(f->text, NoteText());
  EXPECT_EQ(f->note_pa, kNotePa);
  EXPECT_EQ(f->pointer_va, k.PointerVa());
  EXPECT_EQ(f->mode, GetParam());
  EXPECT_EQ(f->root, kTrampoline);
  EXPECT_EQ(f->image_start, kText);
  EXPECT_EQ(f->image_end, kText + (MiniKernel::kTextPages + 2) * kKiB4);
  EXPECT_NE(f->how.find("trampoline page table at 0x9c000"), std::string::npos) << f->how;
  EXPECT_NE(f->how.find("0xffffffff81005030"), std::string::npos) << f->how;
  // What it read: low memory's candidate entries, a few tables, two data pages, one note.
  EXPECT_EQ(f->cost.bytes_read, k.ram.bytes_read);
  EXPECT_LT(f->cost.bytes_read, 128u << 10);
  EXPECT_EQ(f->cost.pointers_checked, 1u);
  EXPECT_EQ(f->cost.mappings_seen, 6u);
}

TEST_P(KernelFinderModeTest, FindsTheNoteThroughARegisterRoot) {
  MiniKernel k(GetParam());
  std::vector<RegisterRoot> regs = {{GetParam(), MiniKernel::kRoot | 0x18, "vCPU 0 CR3"}};
  auto f = k.Find(regs);
  ASSERT_TRUE(f.has_value()) << f.error().ToString();
  EXPECT_EQ(f->root, MiniKernel::kRoot);  // PCID/flag bits masked
  EXPECT_EQ(f->note_pa, kNotePa);
  EXPECT_EQ(f->cost.roots_walked, 1u);
  EXPECT_NE(f->how.find("vCPU 0 CR3 (root 0x100000)"), std::string::npos) << f->how;
}

INSTANTIATE_TEST_SUITE_P(Modes, KernelFinderModeTest,
                         ::testing::Values(PagingMode::kIa32e4, PagingMode::kIa32e5));

TEST(KernelFinderTest, AUserModeCr3FallsBackToTheKernelHalfOfThePgdPair) {
  MiniKernel k;
  // The user PGD (kernel PGD + 4 KiB) maps only an entry-text page, read-only, in the image
  // region, as PTI does.
  Tables user(k.ram, PagingMode::kIa32e4, MiniKernel::kRoot + kKiB4, 0x1800000);
  user.Map(kText, MiniKernel::kImagePa, kKiB4, 0);
  std::vector<RegisterRoot> regs = {
      {PagingMode::kIa32e4, MiniKernel::kRoot | 0x1000, "vCPU 1 CR3"}};
  auto f = k.Find(regs);
  ASSERT_TRUE(f.has_value()) << f.error().ToString();
  EXPECT_EQ(f->root, MiniKernel::kRoot);
  EXPECT_NE(f->how.find("vCPU 1 CR3 with the PTI user bit cleared"), std::string::npos) << f->how;
  EXPECT_EQ(f->cost.roots_walked, 2u);
}

TEST(KernelFinderTest, RegistersGiveTheModeAndSharedKernelHalvesAreWalkedOnce) {
  MiniKernel k(PagingMode::kIa32e5);
  // Eight vCPUs in two "processes" whose kernel halves are the kernel's: one walk.
  for (uint64_t pgd : {0x200000ull, 0x202000ull}) k.tables.CopyKernelHalf(pgd);
  std::vector<RegisterRoot> regs;
  for (int i = 0; i < 8; ++i) {
    regs.push_back({PagingMode::kIa32e5, i % 2 ? 0x200000ull : 0x202000ull,
                    "vCPU " + std::to_string(i) + " CR3"});
  }
  auto f = k.Find(regs);
  ASSERT_TRUE(f.has_value()) << f.error().ToString();
  EXPECT_EQ(f->root, 0x202000u);
  EXPECT_EQ(f->cost.roots_walked, 1u);
  // With registers the trampoline table is tried only in their mode: a 4-level register root
  // over 5-level tables finds nothing, through any root.
  std::vector<RegisterRoot> wrong = {{PagingMode::kIa32e4, 0x200000, "vCPU 0 CR3"}};
  auto g = k.Find(wrong);
  ASSERT_FALSE(g.has_value());
  EXPECT_EQ(g.error().code(), ErrorCode::kNotFound);
}

TEST(KernelFinderTest, NonIa32eRegistersAreSkipped) {
  MiniKernel k;
  std::vector<RegisterRoot> regs = {{PagingMode::kPae, MiniKernel::kRoot, "vCPU 0 CR3"}};
  auto f = k.Find(regs);
  ASSERT_TRUE(f.has_value()) << f.error().ToString();
  EXPECT_EQ(f->root, kTrampoline);  // found the other way
}

TEST(KernelFinderTest, TheCallersCheckDecides) {
  MiniKernel k;
  int asked = 0;
  k.verify = [&](const VmcoreInfo& info) {
    ++asked;
    EXPECT_EQ(info.os_release(), "6.1.0-test");
    return false;
  };
  auto f = k.Find();
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(f.error().message().find("rejected by the caller"), std::string::npos)
      << f.error().message();
  EXPECT_EQ(asked, 1);  // 5-level view of 4-level tables maps no image
}

TEST(KernelFinderTest, StextOutsideTheWalkedImageIsRejected) {
  MiniKernel k;
  PutNote(k.ram, kNotePa, NoteText(0xffffffff82000000ull));
  auto f = k.Find();
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(f.error().message().find("SYMBOL(_stext) is not in the image"), std::string::npos)
      << f.error().message();
}

TEST(KernelFinderTest, BadNotesAreRejected) {
  struct Case {
    const char* what;
    uint32_t namesz, descsz, type;
    const char* name;
  };
  for (const Case& c :
       {Case{"huge descsz", 11, 0xfffffff0, 0, "VMCOREINFO"},
        Case{"descsz past the limit", 11, 64 * 1024 + 1, 0, "VMCOREINFO"},
        Case{"zero descsz", 11, 0, 0, "VMCOREINFO"}, Case{"type", 11, 40, 1, "VMCOREINFO"},
        Case{"namesz", 12, 40, 0, "VMCOREINFO"}, Case{"name", 11, 40, 0, "VMCOREINFX"}}) {
    MiniKernel k;
    uint32_t header[3] = {c.namesz, c.descsz, c.type};
    k.ram.PutBytes(kNotePa, header, 12);
    k.ram.PutBytes(kNotePa + 12, c.name, 11);
    auto f = k.Find();
    EXPECT_FALSE(f.has_value()) << c.what;
    EXPECT_EQ(f.status().code(), ErrorCode::kNotFound) << c.what;
  }
  MiniKernel k;
  PutNote(k.ram, kNotePa, "OSRELEASE=6.1\nKERNELOFFSET=zz\n");  // does not parse
  EXPECT_EQ(k.Find().status().code(), ErrorCode::kNotFound);
}

TEST(KernelFinderTest, GarbagePointersAreSkippedAndTheRealOneStillFound) {
  MiniKernel k;
  // .data is full of page-aligned kernel-half values: itself (a cycle), its page tables,
  // unmapped and huge ones, all checked before the pointer in .bss; none is a note.
  const uint64_t data = MiniKernel::kImagePa + MiniKernel::kTextPages * kKiB4;
  const uint64_t values[] = {k.page_offset + data,
                             k.page_offset + MiniKernel::kRoot,
                             kText + 4 * kKiB4,
                             0xfffffffffffff000ull,
                             0xffff800000000000ull,
                             k.page_offset + (64ull << 30),
                             k.page_offset + (31ull << 20)};
  for (uint64_t i = 0; i < 512; ++i) k.ram.Put64(data + 8 * i, values[i % std::size(values)]);
  auto f = k.Find();
  ASSERT_TRUE(f.has_value()) << f.error().ToString();
  EXPECT_EQ(f->note_pa, kNotePa);
  EXPECT_EQ(f->cost.pointers_checked, 1u);  // .bss, at the image's end, is scanned first
  // Without the real pointer, every distinct garbage value is checked once, then nothing.
  k.ram.Put64(MiniKernel::kPointerPa, 0);
  auto g = k.Find();
  ASSERT_FALSE(g.has_value());
  EXPECT_EQ(g.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(g.error().message().find(std::to_string(std::size(values)) + " pointers"),
            std::string::npos)
      << g.error().message();
}

TEST(KernelFinderTest, PointerAndNoteLimitsEndTheSearch) {
  MiniKernel k;
  // .data points at 64 distinct valid notes whose _stext is outside the image.
  const uint64_t data = MiniKernel::kImagePa + MiniKernel::kTextPages * kKiB4;
  for (uint64_t i = 0; i < 64; ++i) {
    const uint64_t note = 0x400000 + i * kKiB4;
    PutNote(k.ram, note, NoteText(0xffffffff90000000ull));
    k.ram.Put64(data + 8 * i, k.page_offset + note);
  }
  k.ram.Put64(MiniKernel::kPointerPa, 0);
  KernelFinderLimits limits;
  limits.max_notes = 10;
  auto f = k.Find({}, limits);
  ASSERT_FALSE(f.has_value());
  EXPECT_NE(f.error().message().find("stopped: parsed 10 notes, the limit"), std::string::npos)
      << f.error().message();
  limits = {};
  limits.max_pointers = 5;
  f = k.Find({}, limits);
  ASSERT_FALSE(f.has_value());
  EXPECT_NE(f.error().message().find("stopped: checked 5 pointers, the limit"), std::string::npos)
      << f.error().message();
}

TEST(KernelFinderTest, ANoteOutsideTheDirectMapIsIgnored) {
  MiniKernel k;
  // A vmalloc-style alias of the note page: page_offset_base is 1 GiB-aligned, this is not.
  const uint64_t alias = 0xffffc90000005000ull;
  k.tables.Map(alias, kNotePa, kKiB4, kW);
  k.ram.Put64(MiniKernel::kPointerPa, alias);
  auto f = k.Find();
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code(), ErrorCode::kNotFound);
  k.ram.Put64(MiniKernel::kPointerPa, k.page_offset + kNotePa);
  EXPECT_TRUE(k.Find().has_value());
}

TEST(KernelFinderTest, TablesOutsideRamFindNothing) {
  MiniKernel k;
  // The image's top-level entry points past RAM, in the kernel's root and in the trampoline.
  for (uint64_t root : {MiniKernel::kRoot, kTrampoline}) {
    k.ram.Put64(root + 8 * 511, (64ull << 30) | 0x63);
  }
  std::vector<RegisterRoot> regs = {{PagingMode::kIa32e4, MiniKernel::kRoot, "vCPU 0 CR3"},
                                     {PagingMode::kIa32e4, 1ull << 40, "vCPU 1 CR3"}};
  auto f = k.Find(regs);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(f.error().message().find("nothing mapped"), std::string::npos) << f.error().message();
  EXPECT_NE(f.error().message().find("root 0x10000000000 is not in RAM"), std::string::npos)
      << f.error().message();
  // The tables' few pages, and the first MiB once, where an i386 trampoline header would be.
  EXPECT_LT(k.ram.bytes_read, (1u << 20) + (32u << 10));
}

TEST(KernelFinderTest, PageTableCyclesEndCleanly) {
  MiniKernel k;
  // Every level of the image region points back at the top-level table: a cycle the walker
  // must bound by its level count.
  for (uint64_t i = 0; i < 512; ++i) {
    k.ram.Put64(MiniKernel::kRoot + 8 * i, MiniKernel::kRoot | 0x63);
    k.ram.Put64(kTrampoline + 8 * i, MiniKernel::kRoot | 0x63);
  }
  std::vector<RegisterRoot> regs = {{PagingMode::kIa32e4, MiniKernel::kRoot, "vCPU 0 CR3"}};
  auto f = k.Find(regs);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code(), ErrorCode::kNotFound);
  EXPECT_LE(k.ram.bytes_read, 64u << 20);
}

TEST(KernelFinderTest, TooManyMappingsEndsTheRoot) {
  MiniKernel k;
  // The whole 1 GiB region in 4 KiB pages: one PD whose 512 entries share one PT of 512 RW
  // pages, all on the same frame.
  const uint64_t pd = 0x1a00000, pt = 0x1a01000;
  for (uint64_t i = 0; i < 512; ++i) {
    k.ram.Put64(pd + 8 * i, pt | 0x63);
    k.ram.Put64(pt + 8 * i, 0x1b00000 | 0x63);
  }
  const uint64_t pdpt = k.ram.Get64(MiniKernel::kRoot + 8 * 511) & ~0xfffull;
  k.ram.Put64(pdpt + 8 * 510, pd | 0x63);
  std::vector<RegisterRoot> regs = {{PagingMode::kIa32e4, MiniKernel::kRoot, "vCPU 0 CR3"}};
  KernelFinderLimits limits;
  limits.max_image_mappings = 4096;
  auto start = std::chrono::steady_clock::now();
  auto f = k.Find(regs, limits);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(f.has_value());
  EXPECT_NE(f.error().message().find("more than 4096 mappings"), std::string::npos)
      << f.error().message();
  EXPECT_LT(ms, 2000);
  // With the default limit: the frame repeats, so after dedup the scan is short, but it reads
  // at most the per-root data cap.
  auto g = k.Find(regs);
  ASSERT_FALSE(g.has_value());
  EXPECT_LE(k.ram.bytes_read, 64u << 20);
}

TEST(KernelFinderTest, TheByteBudgetHolds) {
  MiniKernel k(PagingMode::kIa32e4, 64 << 20);
  // The image region as 512 writable 2 MiB pages over the first GiB of RAM (a hostile or
  // garbage root): the data scan, not the walk, would read a gigabyte.
  const uint64_t pd = 0x1a00000;
  for (uint64_t i = 0; i < 512; ++i) k.ram.Put64(pd + 8 * i, ((i % 30) * kMiB2) | 0xe3);
  const uint64_t pdpt = k.ram.Get64(MiniKernel::kRoot + 8 * 511) & ~0xfffull;
  k.ram.Put64(pdpt + 8 * 510, pd | 0x63);
  k.ram.Put64(MiniKernel::kPointerPa, 0);
  for (uint64_t budget : {uint64_t{1} << 20, uint64_t{5} << 20}) {
    KernelFinderLimits limits;
    limits.max_bytes = budget;
    auto f = k.Find({}, limits);
    ASSERT_FALSE(f.has_value());
    EXPECT_EQ(f.error().code(), ErrorCode::kNotFound);
    EXPECT_NE(f.error().message().find("the budget"), std::string::npos) << f.error().message();
    EXPECT_LE(k.ram.bytes_read, budget);
    EXPECT_GT(k.ram.bytes_read, budget - (64 << 10));
  }
  // The per-root cap: each of the two trampoline modes scans at most 32 MiB of data.
  KernelFinderLimits limits;
  limits.max_bytes_per_root = 3 << 20;
  auto f = k.Find({}, limits);
  ASSERT_FALSE(f.has_value());
  EXPECT_NE(f.error().message().find("scanned 3145728 bytes of image data"), std::string::npos)
      << f.error().message();
  // And the first MiB, searched for an i386 trampoline header.
  EXPECT_LT(k.ram.bytes_read, 5u << 20);
}

class FailingMemory : public PhysicalMemory {
 public:
  Status Read(uint64_t, std::span<std::byte>) override { return UnavailableError("VM gone"); }
};

TEST(KernelFinderTest, ASourceFailureIsReturned) {
  FailingMemory mem;
  drivers::PhysRange ranges[] = {{0, 1 << 20}};
  auto f = FindKernelVmcoreInfo({mem, ranges, {}, nullptr, {}});
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code(), ErrorCode::kUnavailable);
}

TEST(KernelFinderTest, NoRamNoRegisters) {
  Ram ram(0);
  auto f = FindKernelVmcoreInfo({ram, {}, {}, nullptr, {}});
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code(), ErrorCode::kNotFound);
}

// --- Real guests: snapshots of Debian 6.1 cloud kernels with KASLR ---

// $VMEMFS_SNAPS, else the guests the test fixture prepares, else the shared snapshots.
std::filesystem::path SnapshotRoot() {
  if (const char* env = std::getenv("VMEMFS_SNAPS"); env && *env) return env;
  std::filesystem::path guests = ::vmemfs::testing::GuestRoot();
  if (std::filesystem::exists(guests / "l4/raw.mem")) return guests;
  return "/work/snaps";
}

// A miniature i386 kernel, no page tables at all: the trampoline header at 0x9d100, the image
// at physical 16 MiB (PAGE_OFFSET 0xc0000000), boot_gdt in its .data and the pointer to the
// note, whose _stext is _text, 64 KiB further on.
struct MiniI386Kernel {
  static constexpr uint64_t kHeaderPa = 0x9d100;
  static constexpr uint64_t kPageOffset = 0xc0000000;
  static constexpr uint64_t kImagePa = 0x1000000;
  static constexpr uint64_t kGdtPa = kImagePa + 0x200e80;
  static constexpr uint64_t kPointerPa = kImagePa + 0x210e50;

  MiniI386Kernel() : ram(32 << 20) {
    PutHeader(kHeaderPa, kImagePa + 0x80, kGdtPa);
    PutNote(ram, kNotePa, I386NoteText(kPageOffset + kImagePa));
    Put32(kPointerPa, kPageOffset + kNotePa);
  }
  void PutHeader(uint64_t at, uint32_t start, uint32_t gdt) {
    const uint32_t header[3] = {start, 0x001f0000, gdt};
    ram.PutBytes(at, header, sizeof header);
  }
  void Put32(uint64_t pa, uint32_t v) { ram.PutBytes(pa, &v, 4); }
  static std::string I386NoteText(uint64_t stext) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "OSRELEASE=6.1.0-test-686-pae\nSYMBOL(_stext)=%llx\n"
                  "SYMBOL(swapper_pg_dir)=c1400000\nCONFIG_X86_PAE=y\n",
                  static_cast<unsigned long long>(stext));
    return buf;
  }
  Result<KernelFinding> Find() { return FindKernelVmcoreInfo({ram, ram.ranges(), {}, {}, {}}); }

  Ram ram;
};

TEST(KernelFinderI386Test, FindsTheNoteThroughTheTrampolineHeader) {
  MiniI386Kernel k;
  auto f = k.Find();
  ASSERT_TRUE(f.has_value()) << f.error().ToString();
  EXPECT_EQ(f->note_pa, kNotePa);
  EXPECT_EQ(f->pointer_va, MiniI386Kernel::kPageOffset + MiniI386Kernel::kPointerPa);
  EXPECT_EQ(f->image_start, MiniI386Kernel::kPageOffset + MiniI386Kernel::kImagePa);
  EXPECT_EQ(f->mode, PagingMode::kPae);
  EXPECT_EQ(f->root, 0x1400000u);
  EXPECT_NE(f->how.find("trampoline header at 0x9d100"), std::string::npos) << f->how;
  EXPECT_NE(f->how.find("PAGE_OFFSET 0xc0000000"), std::string::npos) << f->how;
  // boot_gdt's page to the pointer: 64 KiB, one chunk; the header search below 1 MiB.
  EXPECT_LT(f->cost.bytes_read, 2u << 20);
}

TEST(KernelFinderI386Test, AnotherSplitIsFoundByItsPointer) {
  MiniI386Kernel k;
  constexpr uint64_t kSplit = 0x80000000;
  PutNote(k.ram, kNotePa, MiniI386Kernel::I386NoteText(kSplit + MiniI386Kernel::kImagePa));
  k.Put32(MiniI386Kernel::kPointerPa, kSplit + kNotePa);
  auto f = k.Find();
  ASSERT_TRUE(f.has_value()) << f.error().ToString();
  EXPECT_NE(f->how.find("PAGE_OFFSET 0x80000000"), std::string::npos) << f->how;
}

TEST(KernelFinderI386Test, RefusesANoteWhoseTextIsNotAtTheHeadersImage) {
  MiniI386Kernel k;
  PutNote(k.ram, kNotePa, MiniI386Kernel::I386NoteText(0xc0000000 + (8 << 20)));
  auto f = k.Find();
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(f.error().message().find("not just below startup_32_smp"), std::string::npos)
      << f.error().message();
}

// Look-alike headers: addresses out of order, below 1 MiB, beyond RAM, too far apart. None is
// followed; the real one after them still is.
TEST(KernelFinderI386Test, SkipsImplausibleHeaders) {
  MiniI386Kernel k;
  k.PutHeader(0x9c000, 0x1100000, 0x1000000);
  k.PutHeader(0x9c010, 0x80000, 0x1000000);
  k.PutHeader(0x9c020, 0x1000000, 0x7000000);
  k.PutHeader(0x9c030, 0x1000000, 0x1000000 + (65u << 20));
  auto f = k.Find();
  ASSERT_TRUE(f.has_value()) << f.error().ToString();
  EXPECT_NE(f->how.find("header at 0x9d100"), std::string::npos) << f->how;
}

TEST(KernelFinderI386Test, AHeaderAtTheEndOfRamIsBounded) {
  MiniI386Kernel k;
  // boot_gdt on RAM's last page: the scan stops at the end of RAM, nothing is found there.
  k.PutHeader(MiniI386Kernel::kHeaderPa, (32u << 20) - 0x100000, (32u << 20) - 8);
  auto f = k.Find();
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code(), ErrorCode::kNotFound);
  EXPECT_LT(k.ram.bytes_read, 2u << 20);
}

// Guest-physical reads through a driver.
class DriverMemory : public PhysicalMemory {
 public:
  explicit DriverMemory(drivers::Driver& d) : driver_(d) {}
  Status Read(uint64_t pa, std::span<std::byte> out) override { return driver_.ReadPhys(pa, out); }

 private:
  drivers::Driver& driver_;
};

// truth/registers.txt: "<vcpu> <name> <hex>" lines.
std::vector<RegisterRoot> TruthRegisters(const std::filesystem::path& file) {
  std::map<int, std::map<std::string, uint64_t>> regs;
  std::ifstream in(file);
  int vcpu;
  std::string name, hex;
  while (in >> vcpu >> name >> hex) regs[vcpu][name] = std::stoull(hex, nullptr, 16);
  std::vector<RegisterRoot> out;
  for (auto& [cpu, r] : regs) {
    auto mode = PagingModeFromRegisters(r["cr0"], r["cr4"], r["efer"]);
    if (mode) out.push_back({*mode, r["cr3"], "vCPU " + std::to_string(cpu) + " CR3"});
  }
  return out;
}

std::optional<uint64_t> KallsymsAddress(const std::filesystem::path& file, const char* symbol) {
  std::ifstream in(file);
  std::string addr, type, name;
  while (in >> addr >> type >> name) {
    if (name == symbol) return std::stoull(addr, nullptr, 16);
  }
  return std::nullopt;
}

double MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// All four guests: x86-64 kernels through page tables, i386 ones through the trampoline header.
class RealGuestFinderTest
    : public ::testing::TestWithParam<std::tuple<const char*, const char*, bool>> {};

TEST_P(RealGuestFinderTest, FindsTheRunningKernelsNoteCheaply) {
  auto [name, file, with_registers] = GetParam();
  const std::filesystem::path dir = SnapshotRoot() / name;
  if (!std::filesystem::exists(dir / file)) GTEST_SKIP() << "no snapshot at " << dir / file;
  auto driver = drivers::OpenSnapshot((dir / file).string(), {});
  ASSERT_TRUE(driver.has_value()) << driver.error().ToString();
  drivers::Driver& d = **driver;
  DriverMemory mem(d);
  const std::vector<RegisterRoot> regs =
      with_registers ? TruthRegisters(dir / "truth/registers.txt") : std::vector<RegisterRoot>{};
  if (with_registers) {
    ASSERT_FALSE(regs.empty());
  }
  std::vector<drivers::PhysRange> ranges(d.ranges().begin(), d.ranges().end());
  uint64_t ram = 0;
  for (const drivers::PhysRange& r : ranges) ram += r.size();

  auto guest = Guest::Open(std::move(*driver));
  ASSERT_TRUE(guest.has_value()) << guest.error().ToString();
  int verified = 0;
  auto verify = [&](const VmcoreInfo& info) {
    ++verified;
    return FindKernelLayout(**guest, info).has_value();
  };
  auto start = std::chrono::steady_clock::now();
  auto found = FindKernelVmcoreInfo({mem, ranges, regs, verify, {}});
  const double ms = MsSince(start);
  ASSERT_TRUE(found.has_value()) << found.error().ToString();
  EXPECT_EQ(verified, 1);

  start = std::chrono::steady_clock::now();
  auto scanned = LocateVmcoreInfo(**guest);
  const double scan_ms = MsSince(start);
  ASSERT_TRUE(scanned.has_value()) << scanned.error().ToString();
  std::printf("[ %s/%s%s ] %s\n", name, file, with_registers ? " +registers" : "",
              found->how.c_str());
  std::printf(
      "[ %s/%s%s ] finder: %.1f KiB read, %u roots, %u mappings, %u pointers, %.2f ms; "
      "whole-RAM scan: %.0f MiB of RAM, %.2f ms\n",
      name, file, with_registers ? " +registers" : "", found->cost.bytes_read / 1024.0,
      found->cost.roots_walked, found->cost.mappings_seen, found->cost.pointers_checked, ms,
      static_cast<double>(ram) / (1 << 20), scan_ms);

  EXPECT_EQ(found->text, scanned->text);
  EXPECT_EQ(found->note_pa, scanned->note_pa);
  auto text = KallsymsAddress(dir / "truth/kallsyms.txt", "_text");
  ASSERT_TRUE(text.has_value());
  EXPECT_LT(found->cost.bytes_read, 64u << 20);
  EXPECT_LT(found->cost.bytes_read, ram / 8);
  const std::string guest_name = name;
  if (guest_name == "pae" || guest_name == "legacy32") {
    // i386, registers or not: through the trampoline header, the pointer past the text.
    EXPECT_EQ(found->image_start, *text);
    EXPECT_EQ(found->mode, guest_name == "pae" ? PagingMode::kPae : PagingMode::kLegacy32);
    EXPECT_NE(found->how.find("i386 real-mode trampoline header"), std::string::npos);
    auto etext = KallsymsAddress(dir / "truth/kallsyms.txt", "_etext");
    ASSERT_TRUE(etext.has_value());
    EXPECT_GT(found->pointer_va, *etext);
    EXPECT_LT(found->pointer_va - *text, 64u << 20);
    EXPECT_LT(found->cost.bytes_read, 16u << 20);
    return;
  }
  auto info = VmcoreInfo::Parse(found->text);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->kernel_offset(), *text - 0xffffffff81000000ull);
  EXPECT_EQ(found->image_start, *text);
  auto note_ptr = KallsymsAddress(dir / "truth/kallsyms.txt", "vmcoreinfo_note");
  ASSERT_TRUE(note_ptr.has_value());
  EXPECT_EQ(found->pointer_va, *note_ptr);
  EXPECT_EQ(found->mode, guest_name == "l5" ? PagingMode::kIa32e5 : PagingMode::kIa32e4);
  if (with_registers) {
    EXPECT_EQ(found->root, DtbFromCr3(regs[0].mode, regs[0].cr3));
    EXPECT_NE(found->how.find("vCPU 0 CR3"), std::string::npos);
  } else {
    EXPECT_NE(found->how.find("trampoline page table"), std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(Guests, RealGuestFinderTest,
                         ::testing::Values(std::make_tuple("l4", "raw.mem", false),
                                           std::make_tuple("l5", "raw.mem", false),
                                           std::make_tuple("l4", "core.elf", true),
                                           std::make_tuple("l5", "core.elf", true),
                                           std::make_tuple("l4", "core.elf", false),
                                           std::make_tuple("pae", "raw.mem", false),
                                           std::make_tuple("legacy32", "raw.mem", false),
                                           std::make_tuple("pae", "core.elf", true),
                                           std::make_tuple("legacy32", "core.elf", true)));

class RealGuestUserCr3Test : public ::testing::TestWithParam<const char*> {};

// As a vCPU caught in user mode under PTI holds it: the user half of the PGD pair.
TEST_P(RealGuestUserCr3Test, FindsItThroughTheKernelHalfOfThePair) {
  const std::filesystem::path dir = SnapshotRoot() / GetParam();
  if (!std::filesystem::exists(dir / "core.elf")) GTEST_SKIP() << "no snapshot at " << dir;
  auto driver = drivers::OpenSnapshot((dir / "core.elf").string(), {});
  ASSERT_TRUE(driver.has_value()) << driver.error().ToString();
  DriverMemory mem(**driver);
  std::vector<RegisterRoot> regs = TruthRegisters(dir / "truth/registers.txt");
  ASSERT_FALSE(regs.empty());
  regs.resize(1);
  const uint64_t dtb = DtbFromCr3(regs[0].mode, regs[0].cr3);
  ASSERT_EQ(dtb & 0x1000, 0u);
  regs[0].cr3 = dtb | 0x1000;
  auto found = FindKernelVmcoreInfo({mem, (*driver)->ranges(), regs, nullptr, {}});
  ASSERT_TRUE(found.has_value()) << found.error().ToString();
  EXPECT_EQ(found->root, dtb) << found->how;
  EXPECT_NE(found->how.find("vCPU 0 CR3 with the PTI user bit cleared"), std::string::npos);
  EXPECT_EQ(found->cost.roots_walked, 2u);
  std::printf("[ %s user CR3 ] %s; %.1f KiB read\n", GetParam(), found->how.c_str(),
              found->cost.bytes_read / 1024.0);
}

INSTANTIATE_TEST_SUITE_P(Guests, RealGuestUserCr3Test, ::testing::Values("l4", "l5"));

}  // namespace
}  // namespace vmemfs::vmi::linux_os
