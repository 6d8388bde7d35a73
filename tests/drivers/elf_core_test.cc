#include "drivers/elf_core.h"

#include <gtest/gtest.h>

#include "drivers/snapshot_test_util.h"

namespace vmemfs::drivers {
namespace {

using testing::BuildElf;
using testing::Bytes;
using testing::ElfSpec;
using testing::EncodeQemuState;
using testing::Pattern;
using testing::Prstatus32;
using testing::Prstatus64;
using testing::PutAt;
using testing::QemuState;
using testing::SampleElf64;

Result<SnapshotLayout> Parse(const Bytes& b) { return ParseElfCore(b); }

TEST(ElfCoreTest, Elf64SegmentsSortedByPhysicalAddress) {
  ElfSpec spec;
  spec.loads.push_back({0x20000, Pattern(0x100, 1)});
  spec.loads.push_back({0x1000, Pattern(0x200, 2)});
  Bytes file = BuildElf(spec);
  auto layout = Parse(file);
  ASSERT_TRUE(layout) << layout.error().ToString();
  EXPECT_EQ(layout->format, "elf64");
  ASSERT_EQ(layout->segments.size(), 2u);
  EXPECT_EQ(layout->segments[0].phys_start, 0x1000u);
  EXPECT_EQ(layout->segments[0].size, 0x200u);
  EXPECT_EQ(layout->segments[1].phys_start, 0x20000u);
  EXPECT_EQ(layout->segments[0].file_offset, layout->segments[1].file_offset + 0x100);
  EXPECT_TRUE(layout->vcpus.empty());
  EXPECT_FALSE(layout->vmcoreinfo.has_value());
}

TEST(ElfCoreTest, Elf64RegistersFromPrstatusAndQemuNotes) {
  auto layout = Parse(BuildElf(SampleElf64()));
  ASSERT_TRUE(layout) << layout.error().ToString();
  ASSERT_EQ(layout->vcpus.size(), 2u);
  const RegisterSet& r = layout->vcpus[0];
  // From NT_PRSTATUS: user_regs_struct word i = 0x100 + i.
  EXPECT_EQ(r.Get(Register::kR15), 0x100u);
  EXPECT_EQ(r.Get(Register::kRbp), 0x104u);
  EXPECT_EQ(r.Get(Register::kRax), 0x10au);
  EXPECT_EQ(r.Get(Register::kRip), 0x110u);
  EXPECT_EQ(r.Get(Register::kCs), 0x111u);
  EXPECT_EQ(r.Get(Register::kRflags), 0x112u);
  EXPECT_EQ(r.Get(Register::kRsp), 0x113u);
  EXPECT_EQ(r.Get(Register::kFsBase), 0x115u);
  EXPECT_EQ(r.Get(Register::kGsBase), 0x116u);
  EXPECT_EQ(r.Get(Register::kGs), 0x11au);
  // From the QEMU note.
  QemuState q;
  EXPECT_EQ(r.Get(Register::kCr0), q.cr0);
  EXPECT_EQ(r.Get(Register::kCr2), q.cr2);
  EXPECT_EQ(r.Get(Register::kCr3), q.cr3);
  EXPECT_EQ(r.Get(Register::kCr4), q.cr4);
  EXPECT_EQ(r.Get(Register::kGdtrBase), q.gdt_base);
  EXPECT_EQ(r.Get(Register::kGdtrLimit), q.gdt_limit);
  EXPECT_EQ(r.Get(Register::kIdtrBase), q.idt_base);
  EXPECT_EQ(r.Get(Register::kIdtrLimit), q.idt_limit);
  EXPECT_EQ(r.Get(Register::kKernelGsBase), q.kernel_gs_base);
  // Long mode with paging and PAE in an EM_X86_64 core: EFER = LME | LMA.
  EXPECT_EQ(r.Get(Register::kEfer), 0x500u);
  EXPECT_EQ(layout->vcpus[1].Get(Register::kCr3), 0x5678000u);
  EXPECT_EQ(layout->vcpus[1].Get(Register::kRip), 0x210u);
  EXPECT_EQ(layout->vmcoreinfo, "OSRELEASE=6.1.0\nPAGESIZE=4096\n");
}

TEST(ElfCoreTest, QemuNoteAloneGivesGeneralRegisters) {
  ElfSpec spec;
  QemuState q;
  q.with_kernel_gs_base = false;
  spec.notes.push_back({"QEMU", 0, EncodeQemuState(q)});
  spec.loads.push_back({0, Pattern(64, 0)});
  auto layout = Parse(BuildElf(spec));
  ASSERT_TRUE(layout) << layout.error().ToString();
  ASSERT_EQ(layout->vcpus.size(), 1u);
  const RegisterSet& r = layout->vcpus[0];
  EXPECT_EQ(r.Get(Register::kRax), q.gpr_base);
  EXPECT_EQ(r.Get(Register::kRsp), q.gpr_base + 6);  // QEMU orders rsp before rbp
  EXPECT_EQ(r.Get(Register::kRbp), q.gpr_base + 7);
  EXPECT_EQ(r.Get(Register::kR15), q.gpr_base + 15);
  EXPECT_EQ(r.Get(Register::kRip), q.rip);
  EXPECT_EQ(r.Get(Register::kSs), q.ss);
  EXPECT_EQ(r.Get(Register::kFsBase), q.fs_base);
  EXPECT_FALSE(r.Has(Register::kKernelGsBase));
}

TEST(ElfCoreTest, NoEferWithoutPagingOrForI386) {
  ElfSpec spec;
  QemuState q;
  q.cr0 = 0x11;  // protected mode, no paging
  spec.notes.push_back({"QEMU", 0, EncodeQemuState(q)});
  spec.loads.push_back({0, Pattern(64, 0)});
  auto layout = Parse(BuildElf(spec));
  ASSERT_TRUE(layout);
  EXPECT_FALSE(layout->vcpus[0].Has(Register::kEfer));

  spec.machine = 3;
  spec.notes[0].desc = EncodeQemuState(QemuState());
  layout = Parse(BuildElf(spec));
  ASSERT_TRUE(layout);
  EXPECT_FALSE(layout->vcpus[0].Has(Register::kEfer));
}

TEST(ElfCoreTest, Elf32WithI386Prstatus) {
  ElfSpec spec;
  spec.is64 = false;
  spec.machine = 3;
  spec.notes.push_back({"CORE", 1, Prstatus32(0x50)});
  spec.notes.push_back({"QEMU", 0, EncodeQemuState(QemuState())});
  spec.loads.push_back({0x100000, Pattern(0x800, 5)});
  spec.loads.push_back({0x0, Pattern(0x800, 6)});
  auto layout = Parse(BuildElf(spec));
  ASSERT_TRUE(layout) << layout.error().ToString();
  EXPECT_EQ(layout->format, "elf32");
  ASSERT_EQ(layout->segments.size(), 2u);
  EXPECT_EQ(layout->segments[0].phys_start, 0u);
  ASSERT_EQ(layout->vcpus.size(), 1u);
  const RegisterSet& r = layout->vcpus[0];
  EXPECT_EQ(r.Get(Register::kRbx), 0x50u);
  EXPECT_EQ(r.Get(Register::kRax), 0x56u);
  EXPECT_EQ(r.Get(Register::kDs), 0x57u);
  EXPECT_EQ(r.Get(Register::kRip), 0x5cu);
  EXPECT_EQ(r.Get(Register::kCs), 0x5du);
  EXPECT_EQ(r.Get(Register::kRsp), 0x5fu);
  EXPECT_EQ(r.Get(Register::kSs), 0x60u);
  EXPECT_EQ(r.Get(Register::kCr3), QemuState().cr3);          // from the QEMU note
  EXPECT_EQ(r.Get(Register::kR8), QemuState().gpr_base + 8);  // not in i386 prstatus: QEMU's
  EXPECT_FALSE(r.Has(Register::kEfer));
}

TEST(ElfCoreTest, MemszBeyondFileszIsNotRam) {
  ElfSpec spec;
  spec.loads.push_back({0x1000, Pattern(0x100, 1), /*memsz=*/0x10000});
  auto layout = Parse(BuildElf(spec));
  ASSERT_TRUE(layout);
  ASSERT_EQ(layout->segments.size(), 1u);
  EXPECT_EQ(layout->segments[0].size, 0x100u);
}

TEST(ElfCoreTest, ZeroSizeSegmentsAreSkipped) {
  ElfSpec spec;
  spec.loads.push_back({0x1000, Bytes{}, 0x1000});
  spec.loads.push_back({0x2000, Pattern(0x10, 1)});
  auto layout = Parse(BuildElf(spec));
  ASSERT_TRUE(layout);
  ASSERT_EQ(layout->segments.size(), 1u);
  EXPECT_EQ(layout->segments[0].phys_start, 0x2000u);
}

TEST(ElfCoreTest, OverlappingSegmentsAreRejected) {
  ElfSpec spec;
  spec.loads.push_back({0x1000, Pattern(0x1000, 1)});
  spec.loads.push_back({0x1fff, Pattern(0x10, 2)});
  auto layout = Parse(BuildElf(spec));
  ASSERT_FALSE(layout);
  EXPECT_EQ(layout.error().code(), ErrorCode::kBadData);
  EXPECT_NE(layout.error().message().find("overlap"), std::string::npos);
}

TEST(ElfCoreTest, SegmentPastEndOfFileNamesHeaderAndOffsets) {
  ElfSpec spec;
  spec.loads.push_back({0x1000, Pattern(0x100, 1)});
  Bytes file = BuildElf(spec);
  PutAt<uint64_t>(file, 64 + 32, 0x10000);  // p_filesz of program header 0
  auto layout = Parse(file);
  ASSERT_FALSE(layout);
  EXPECT_NE(layout.error().message().find("ELF program header 0 extends past end of file"),
            std::string::npos)
      << layout.error().message();
}

TEST(ElfCoreTest, SegmentWrappingAddressSpaceIsRejected) {
  ElfSpec spec;
  spec.loads.push_back({0xfffffffffffff000, Pattern(0x2000, 1)});
  EXPECT_FALSE(Parse(BuildElf(spec)));
}

// p_memsz says how much RAM the segment describes, bytes in the file or not: it must be an
// address range x86 can have (52 bits).
TEST(ElfCoreTest, AbsurdMemszIsRejected) {
  for (uint64_t memsz : {~0ull, (1ull << 52)}) {
    ElfSpec spec;
    spec.loads.push_back({0x1000, Pattern(0x100, 1), memsz});
    auto layout = Parse(BuildElf(spec));
    ASSERT_FALSE(layout) << std::hex << memsz;
    EXPECT_EQ(layout.error().code(), ErrorCode::kBadData);
    EXPECT_NE(layout.error().message().find("2^52"), std::string::npos)
        << layout.error().message();
  }
}

TEST(ElfCoreTest, RamAbove52BitsIsRejected) {
  ElfSpec spec;
  spec.loads.push_back({1ull << 52, Pattern(0x100, 1)});
  auto layout = Parse(BuildElf(spec));
  ASSERT_FALSE(layout);
  EXPECT_NE(layout.error().message().find("2^52"), std::string::npos) << layout.error().message();
  // The highest page x86 can address is fine.
  ElfSpec top;
  top.loads.push_back({(1ull << 52) - 0x1000, Pattern(0x1000, 1)});
  EXPECT_TRUE(Parse(BuildElf(top)));
}

TEST(ElfCoreTest, ClassByteContradictingTheHeaderSaysSo) {
  Bytes file = BuildElf(SampleElf64());
  file[4] = std::byte{1};  // ELFCLASS32 on a 64-bit x86-64 core
  auto layout = Parse(file);
  ASSERT_FALSE(layout);
  EXPECT_EQ(layout.error().code(), ErrorCode::kBadData);
  EXPECT_NE(layout.error().message().find("ELFCLASS32"), std::string::npos)
      << layout.error().message();
  EXPECT_NE(layout.error().message().find("x86-64"), std::string::npos);
  // An i386 core with a 64-bit class byte: the program header size gives it away.
  ElfSpec spec32;
  spec32.is64 = false;
  spec32.machine = 3;
  spec32.loads.push_back({0x1000, Pattern(0x100, 1)});
  Bytes elf32 = BuildElf(spec32);
  elf32[4] = std::byte{2};
  auto wrong = Parse(elf32);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message().find("e_phentsize"), std::string::npos)
      << wrong.error().message();
}

TEST(ElfCoreTest, ExtendedPhnumFromSectionHeader) {
  ElfSpec spec;
  spec.loads.push_back({0x1000, Pattern(0x10, 1)});
  Bytes file = BuildElf(spec);
  const size_t shoff = file.size();
  file.resize(shoff + 64);
  PutAt<uint32_t>(file, shoff + 44, 1);  // sh_info = real phnum
  PutAt<uint64_t>(file, 40, shoff);      // e_shoff
  PutAt<uint16_t>(file, 56, 0xffff);     // e_phnum = PN_XNUM
  auto layout = Parse(file);
  ASSERT_TRUE(layout) << layout.error().ToString();
  EXPECT_EQ(layout->segments.size(), 1u);
}

TEST(ElfCoreTest, RejectsWhatIsNotALittleEndianX86Core) {
  Bytes file = BuildElf(SampleElf64());
  Bytes exec = file;
  PutAt<uint16_t>(exec, 16, 2);  // ET_EXEC
  EXPECT_EQ(Parse(exec).error().code(), ErrorCode::kUnsupported);
  Bytes arm = file;
  PutAt<uint16_t>(arm, 18, 183);  // EM_AARCH64
  EXPECT_EQ(Parse(arm).error().code(), ErrorCode::kUnsupported);
  Bytes big = file;
  big[5] = std::byte{2};
  EXPECT_EQ(Parse(big).error().code(), ErrorCode::kUnsupported);
  Bytes bad_class = file;
  bad_class[4] = std::byte{7};
  EXPECT_EQ(Parse(bad_class).error().code(), ErrorCode::kBadData);
}

TEST(ElfCoreTest, ShortPrstatusIsAnError) {
  ElfSpec spec;
  spec.notes.push_back({"CORE", 1, Bytes(200)});
  spec.loads.push_back({0, Pattern(16, 0)});
  auto layout = Parse(BuildElf(spec));
  ASSERT_FALSE(layout);
  EXPECT_NE(layout.error().message().find("NT_PRSTATUS"), std::string::npos);
}

TEST(ElfCoreTest, BadQemuNoteVersionIsAnError) {
  ElfSpec spec;
  QemuState q;
  q.version = 9;
  spec.notes.push_back({"QEMU", 0, EncodeQemuState(q)});
  spec.loads.push_back({0, Pattern(16, 0)});
  EXPECT_FALSE(Parse(BuildElf(spec)));
}

TEST(ElfCoreTest, HugeNoteSizesAreErrors) {
  ElfSpec spec = SampleElf64();
  Bytes file = BuildElf(spec);
  // The first note starts right after the four program headers.
  const size_t note = 64 + 4 * 56;
  for (size_t field : {0, 4}) {
    for (uint32_t v : {0xffffffffu, 0x80000000u, 0x10000u}) {
      Bytes bad = file;
      PutAt<uint32_t>(bad, note + field, v);
      auto layout = Parse(bad);
      ASSERT_FALSE(layout) << field << " " << v;
      EXPECT_NE(layout.error().message().find("ELF program header 0"), std::string::npos)
          << layout.error().message();
    }
  }
}

TEST(ElfCoreTest, UnknownNotesAreIgnored) {
  ElfSpec spec;
  spec.notes.push_back({"CORE", 2, Bytes(512)});  // NT_PRFPREG
  spec.notes.push_back({"LINUX", 0x202, Bytes(7)});
  spec.loads.push_back({0, Pattern(16, 0)});
  auto layout = Parse(BuildElf(spec));
  ASSERT_TRUE(layout) << layout.error().ToString();
  EXPECT_TRUE(layout->vcpus.empty());
}

TEST(ElfCoreTest, TooManyVcpuNotesAreRejected) {
  ElfSpec spec;
  for (size_t i = 0; i <= kMaxSnapshotVcpus; ++i) spec.notes.push_back({"CORE", 1, Prstatus64(i)});
  spec.loads.push_back({0, Pattern(16, 0)});
  EXPECT_FALSE(Parse(BuildElf(spec)));
}

TEST(ElfCoreTest, LooksLikeElf) {
  EXPECT_TRUE(LooksLikeElf(BuildElf(SampleElf64())));
  EXPECT_FALSE(LooksLikeElf(Bytes(3, std::byte{0x7f})));
  EXPECT_FALSE(LooksLikeElf(Bytes{}));
}

}  // namespace
}  // namespace vmemfs::drivers
