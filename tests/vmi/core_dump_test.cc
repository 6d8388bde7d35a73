// The core file's layout (core_dump.h), read back with <elf.h> as a tool would. The real tools
// on real guests are in tests/integration/vmcore_test.cc.
#include "vmi/core_dump.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace vmemfs::vmi {
namespace {

using drivers::PhysRange;
using drivers::Register;
using drivers::RegisterSet;

constexpr uint64_t kDirect = 0xffff888000000000ull;

CoreDumpHints Hints() {
  CoreDumpHints h;
  h.note_name = "VMCOREINFO";
  h.note_text = "OSRELEASE=6.1.0\nPAGESIZE=4096\n";
  h.direct_map_base = kDirect;
  h.kernel_image = CoreDumpHints::Image{0xffffffff81000000ull, 0x1000000, 0x200000, std::nullopt};
  return h;
}

// The last range ends off a page, so padding follows it.
const std::vector<PhysRange> kRam = {
    {0, 0x9f000}, {0x100000, 0x8000000}, {0x100000000ull, 0x100001800ull}};

template <typename T>
T At(const std::vector<std::byte>& bytes, uint64_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof(T));
  return v;
}

struct Note {
  std::string name;
  uint32_t type;
  std::vector<std::byte> desc;
};

std::vector<Note> Notes(const std::vector<std::byte>& header, const Elf64_Phdr& note) {
  std::vector<Note> notes;
  for (uint64_t at = note.p_offset; at < note.p_offset + note.p_filesz;) {
    auto n = At<Elf64_Nhdr>(header, at);
    at += sizeof(n);
    std::string name(reinterpret_cast<const char*>(header.data() + at), n.n_namesz - 1);
    at += (n.n_namesz + 3) & ~3u;
    std::vector<std::byte> desc(header.begin() + at, header.begin() + at + n.n_descsz);
    at += (n.n_descsz + 3) & ~3u;
    notes.push_back({name, n.n_type, desc});
  }
  return notes;
}

TEST(CoreDumpTest, HeaderIsAnX8664CoreWithNotesAndLoads) {
  auto core = CoreDump::Layout(kRam, 2, Hints());
  ASSERT_TRUE(core.has_value()) << core.error().ToString();
  RegisterSet cpu0;
  cpu0.Set(Register::kRip, 0xffffffff81234567ull);
  cpu0.Set(Register::kRsp, 0xffffc90000123f00ull);
  cpu0.Set(Register::kR15, 15);
  cpu0.Set(Register::kGs, 0x18);
  std::vector<std::optional<RegisterSet>> regs = {cpu0, std::nullopt};
  std::vector<std::byte> header = core->Header(regs);
  ASSERT_EQ(header.size(), core->header_size());
  EXPECT_EQ(core->header_size() % 4096, 0u);

  auto ehdr = At<Elf64_Ehdr>(header, 0);
  EXPECT_EQ(std::memcmp(ehdr.e_ident, ELFMAG, SELFMAG), 0);
  EXPECT_EQ(ehdr.e_ident[EI_CLASS], ELFCLASS64);
  EXPECT_EQ(ehdr.e_type, ET_CORE);
  EXPECT_EQ(ehdr.e_machine, EM_X86_64);
  ASSERT_EQ(ehdr.e_phnum, 1 + 1 + kRam.size());
  std::vector<Elf64_Phdr> ph;
  for (int i = 0; i < ehdr.e_phnum; ++i) {
    ph.push_back(At<Elf64_Phdr>(header, ehdr.e_phoff + i * sizeof(Elf64_Phdr)));
  }

  ASSERT_EQ(ph[0].p_type, PT_NOTE);
  auto notes = Notes(header, ph[0]);
  ASSERT_EQ(notes.size(), 3u);
  EXPECT_EQ(notes[0].name, "CORE");
  EXPECT_EQ(notes[0].type, NT_PRSTATUS);
  ASSERT_EQ(notes[0].desc.size(), 336u);  // x86_64 struct elf_prstatus
  // pr_reg at 112: r15 first, rip 17th, rsp 20th, gs 27th (user_regs_struct).
  EXPECT_EQ(At<uint64_t>(notes[0].desc, 112), 15u);
  EXPECT_EQ(At<uint64_t>(notes[0].desc, 112 + 16 * 8), 0xffffffff81234567ull);
  EXPECT_EQ(At<uint64_t>(notes[0].desc, 112 + 19 * 8), 0xffffc90000123f00ull);
  EXPECT_EQ(At<uint64_t>(notes[0].desc, 112 + 26 * 8), 0x18u);
  EXPECT_EQ(notes[1].type, NT_PRSTATUS);
  EXPECT_EQ(At<uint64_t>(notes[1].desc, 112 + 16 * 8), 0u) << "no registers: zeros";
  EXPECT_EQ(notes[2].name, "VMCOREINFO");
  EXPECT_EQ(notes[2].type, 0u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(notes[2].desc.data()),
                        notes[2].desc.size()),
            Hints().note_text);

  // The kernel image first, sharing the bytes of the RAM range that holds it.
  EXPECT_EQ(ph[1].p_type, PT_LOAD);
  EXPECT_EQ(ph[1].p_vaddr, 0xffffffff81000000ull);
  EXPECT_EQ(ph[1].p_paddr, 0x1000000u);
  EXPECT_EQ(ph[1].p_filesz, 0x200000u);
  EXPECT_EQ(ph[1].p_offset, ph[3].p_offset + (0x1000000 - 0x100000));
  // Then RAM, one range after the other from the first page after the header.
  uint64_t offset = core->header_size();
  for (size_t i = 0; i < kRam.size(); ++i) {
    const Elf64_Phdr& p = ph[2 + i];
    EXPECT_EQ(p.p_type, PT_LOAD);
    EXPECT_EQ(p.p_offset, offset) << i;
    EXPECT_EQ(p.p_paddr, kRam[i].start);
    EXPECT_EQ(p.p_vaddr, kDirect + kRam[i].start);
    EXPECT_EQ(p.p_filesz, kRam[i].size());
    EXPECT_EQ(p.p_memsz, kRam[i].size());
    offset = (offset + kRam[i].size() + 4095) & ~uint64_t{4095};
  }
  EXPECT_EQ(core->size(), offset);
}

TEST(CoreDumpTest, PlanCoversTheRangeWithHeaderMemoryAndPadding) {
  auto core = CoreDump::Layout(kRam, 0, Hints());
  ASSERT_TRUE(core.has_value());
  const uint64_t h = core->header_size();
  using K = CorePiece::Kind;
  EXPECT_EQ(core->Plan(h - 16, 32),
            (std::vector<CorePiece>{{K::kHeader, 16, h - 16}, {K::kPhysical, 16, 0}}));
  // Across the end of the first range into the second: no gap in the file.
  uint64_t second = h + 0x9f000;
  EXPECT_EQ(core->Plan(second - 8, 16),
            (std::vector<CorePiece>{{K::kPhysical, 8, 0x9f000 - 8}, {K::kPhysical, 8, 0x100000}}));
  // The last range's tail, its padding, and nothing past the end.
  uint64_t last = core->loads().back().offset;
  EXPECT_EQ(core->Plan(last + 0x17f0, 1 << 20),
            (std::vector<CorePiece>{{K::kPhysical, 0x10, 0x1000017f0ull}, {K::kZeros, 0x800, 0}}));
  EXPECT_TRUE(core->Plan(core->size(), 10).empty());
}

TEST(CoreDumpTest, OnlyPaddingIsAHole) {
  auto core = CoreDump::Layout(kRam, 0, Hints());
  ASSERT_TRUE(core.has_value());
  uint64_t pad = core->loads().back().offset + 0x1800;
  EXPECT_EQ(core->NextData(0), 0u);
  EXPECT_EQ(core->NextHole(0), pad);
  EXPECT_EQ(core->NextHole(pad + 5), pad + 5);
  EXPECT_EQ(core->NextData(pad), std::nullopt);
  EXPECT_EQ(core->NextHole(core->size()), core->size());
}

TEST(CoreDumpTest, AnImageOutsideOneRangeGetsItsOwnBytes) {
  CoreDumpHints hints = Hints();
  hints.kernel_image->pa = 0x7f00000;  // crosses the end of the second range
  auto core = CoreDump::Layout(kRam, 0, hints);
  ASSERT_TRUE(core.has_value());
  const CoreLoad& image = core->loads().front();
  EXPECT_EQ(image.pa, 0x7f00000u);
  uint64_t ram_end = core->loads().back().offset + 0x2000;  // last range, padded
  EXPECT_EQ(image.offset, ram_end);
  EXPECT_EQ(core->size(), ram_end + 0x200000);
  EXPECT_EQ(core->Plan(image.offset, 8),
            (std::vector<CorePiece>{{CorePiece::Kind::kPhysical, 8, 0x7f00000}}));
}

TEST(CoreDumpTest, WithoutHintsOfAnImageOrDirectMap) {
  CoreDumpHints hints = Hints();
  hints.kernel_image.reset();
  hints.direct_map_base.reset();
  auto core = CoreDump::Layout(kRam, 1, hints);
  ASSERT_TRUE(core.has_value());
  ASSERT_EQ(core->loads().size(), kRam.size());
  EXPECT_EQ(core->loads()[1].va, 0u);
  EXPECT_EQ(core->loads()[1].pa, 0x100000u);
}

// KASLR: the image once more at its link-time address for gdb, after every other load (crash
// takes phys_base from the first kernel-text load), with the image's bytes and p_paddr.
TEST(CoreDumpTest, ASlidImageIsAlsoAtItsLinkTimeAddressWhenThatIsFree) {
  CoreDumpHints hints = Hints();
  hints.kernel_image->va = 0xffffffff9a000000ull;
  hints.kernel_image->link_va = 0xffffffff81000000ull;
  auto core = CoreDump::Layout(kRam, 1, hints);
  ASSERT_TRUE(core.has_value());
  ASSERT_EQ(core->loads().size(), 1 + kRam.size() + 1);
  const CoreLoad& image = core->loads().front();
  const CoreLoad& alias = core->loads().back();
  EXPECT_EQ(image.va, 0xffffffff9a000000ull);
  EXPECT_EQ(alias, (CoreLoad{image.offset, 0xffffffff81000000ull, image.pa, image.length}));
  EXPECT_NE(core->how().find("link-time address 0xffffffff81000000 for gdb"), std::string::npos)
      << core->how();
  // The header says so, and the file is no larger: the alias has no bytes of its own.
  auto header = core->Header({});
  EXPECT_EQ(At<Elf64_Ehdr>(header, 0).e_phnum, 1 + core->loads().size());
  auto last =
      At<Elf64_Phdr>(header, sizeof(Elf64_Ehdr) + core->loads().size() * sizeof(Elf64_Phdr));
  EXPECT_EQ(last.p_type, static_cast<uint32_t>(PT_LOAD));
  EXPECT_EQ(last.p_vaddr, 0xffffffff81000000ull);
  EXPECT_EQ(last.p_paddr, image.pa);
  EXPECT_EQ(last.p_offset, image.offset);
  hints.kernel_image->link_va.reset();
  EXPECT_EQ(CoreDump::Layout(kRam, 1, hints)->size(), core->size());
}

TEST(CoreDumpTest, NoLinkTimeCopyWhereItWouldOverlapALoad) {
  CoreDumpHints hints = Hints();
  // No slide: nothing to add.
  hints.kernel_image->link_va = hints.kernel_image->va;
  auto core = CoreDump::Layout(kRam, 0, hints);
  ASSERT_TRUE(core.has_value());
  EXPECT_EQ(core->loads().size(), 1 + kRam.size());
  EXPECT_EQ(core->how().find("link-time"), std::string::npos) << core->how();
  // A slide smaller than the image: the two would overlap.
  hints.kernel_image->link_va = hints.kernel_image->va - 0x100000;
  core = CoreDump::Layout(kRam, 0, hints);
  ASSERT_TRUE(core.has_value());
  EXPECT_EQ(core->loads().size(), 1 + kRam.size());
  EXPECT_NE(core->how().find("no copy of the image at its link-time address"), std::string::npos)
      << core->how();
  EXPECT_NE(core->how().find("overlaps the image itself"), std::string::npos) << core->how();
  // Onto RAM's direct-map load (a hostile direct map base): left out too.
  hints.kernel_image->link_va = kDirect + 0x200000;
  core = CoreDump::Layout(kRam, 0, hints);
  ASSERT_TRUE(core.has_value());
  EXPECT_EQ(core->loads().size(), 1 + kRam.size());
  EXPECT_NE(core->how().find("overlaps RAM's PT_LOAD at 0xffff888000100000"), std::string::npos)
      << core->how();
  // Wrapping the top of the address space.
  hints.kernel_image->link_va = ~uint64_t{0} - 0x1000;
  core = CoreDump::Layout(kRam, 0, hints);
  ASSERT_TRUE(core.has_value());
  EXPECT_EQ(core->loads().size(), 1 + kRam.size());
  EXPECT_NE(core->how().find("wraps"), std::string::npos) << core->how();
}

TEST(CoreDumpTest, BoundsAreErrorsNotHugeHeaders) {
  std::vector<PhysRange> many;
  for (uint64_t i = 0; i < CoreDump::kMaxLoads; ++i) many.push_back({i * 8192, i * 8192 + 4096});
  EXPECT_FALSE(CoreDump::Layout(many, 0, Hints()).has_value());
  EXPECT_FALSE(CoreDump::Layout(kRam, CoreDump::kMaxCpuNotes + 1, Hints()).has_value());
}

}  // namespace
}  // namespace vmemfs::vmi
