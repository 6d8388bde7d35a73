#include "drivers/elf_core.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/byte_reader.h"
#include "base/checked.h"
#include "drivers/elf_cpu_notes.h"
#include "base/hex.h"

namespace vmemfs::drivers {
namespace {

constexpr char kElfMagic[4] = {0x7f, 'E', 'L', 'F'};
constexpr uint8_t kElfClass32 = 1;
constexpr uint8_t kElfClass64 = 2;
constexpr uint8_t kElfDataLsb = 1;
constexpr uint16_t kElfTypeCore = 4;
constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kPtNote = 4;
constexpr uint32_t kNtPrstatus = 1;
constexpr uint32_t kQemuNoteCpuState = 0;
// e_phnum value meaning "the real count is in section header 0's sh_info" (QEMU uses it for
// guests with more than 65534 RAM blocks).
constexpr uint16_t kPnXnum = 0xffff;
constexpr uint16_t kElf32PhdrSize = 32;  // sizeof(Elf32_Phdr); Elf64_Phdr is 56
// The kernel's VMCOREINFO is one page; a megabyte is generous and keeps copies bounded.
constexpr size_t kMaxVmcoreInfo = 1 << 20;

// The fields of the ELF header we use, widened to the 64-bit layout.
struct ElfHeader {
  bool is64;
  uint16_t machine;
  uint64_t phoff;
  uint64_t phentsize;
  uint64_t phnum;
};

struct ProgramHeader {
  uint32_t type;
  uint64_t offset;
  uint64_t paddr;
  uint64_t filesz;
  uint64_t memsz;
};

// An address-sized field: u64 in ELF64, u32 in ELF32.
Result<uint64_t> ReadAddr(ByteReader& in, bool is64) {
  if (is64) return in.Read<uint64_t>();
  VMEMFS_ASSIGN_OR_RETURN(uint32_t v, in.Read<uint32_t>());
  return v;
}

// The real program header count when e_phnum is PN_XNUM: sh_info of section header 0.
Result<uint64_t> ReadExtendedPhnum(std::span<const std::byte> file, bool is64, uint64_t shoff) {
  ByteReader in(file, "ELF section header 0");
  if (shoff == 0) return BadDataError("ELF e_phnum is PN_XNUM but there is no section header");
  if (shoff > file.size()) {
    return BadDataError("ELF section header offset " + Hex(shoff) + " is past end of file");
  }
  VMEMFS_TRY(in.Seek(shoff));
  VMEMFS_TRY(in.Skip(is64 ? 44 : 28));  // sh_name .. sh_link
  VMEMFS_ASSIGN_OR_RETURN(uint32_t sh_info, in.Read<uint32_t>());
  return sh_info;
}

Status CheckIdent(ByteReader& in) {
  VMEMFS_ASSIGN_OR_RETURN(auto ident, in.ReadBytes(16));
  if (std::memcmp(ident.data(), kElfMagic, sizeof(kElfMagic)) != 0) {
    return BadDataError("not an ELF file");
  }
  const auto elf_class = static_cast<uint8_t>(ident[4]);
  if (elf_class != kElfClass32 && elf_class != kElfClass64) {
    return BadDataError("ELF class " + std::to_string(elf_class) + " is neither 32 nor 64 bit");
  }
  if (static_cast<uint8_t>(ident[5]) != kElfDataLsb) {
    return UnsupportedError("big-endian ELF core");
  }
  return Status();
}

Result<ElfHeader> ReadElfHeader(std::span<const std::byte> file) {
  ByteReader in(file, "ELF header");
  VMEMFS_TRY(CheckIdent(in));
  ElfHeader h;
  h.is64 = static_cast<uint8_t>(file[4]) == kElfClass64;
  VMEMFS_ASSIGN_OR_RETURN(uint16_t type, in.Read<uint16_t>());
  VMEMFS_ASSIGN_OR_RETURN(h.machine, in.Read<uint16_t>());
  if (type != kElfTypeCore) {
    return UnsupportedError("ELF type " + std::to_string(type) + " is not a core (ET_CORE)");
  }
  if (h.machine != kElfMachineX86_64 && h.machine != kElfMachineI386) {
    return UnsupportedError("ELF machine " + std::to_string(h.machine) + " is not x86");
  }
  if (!h.is64 && h.machine == kElfMachineX86_64) {
    return BadDataError(
        "ELF header says 32-bit (EI_CLASS, byte 4, is ELFCLASS32) but its machine is x86-64: "
        "x86-64 cores are ELFCLASS64, so the class byte is damaged");
  }
  VMEMFS_TRY(in.Skip(4));                     // e_version
  VMEMFS_TRY(ReadAddr(in, h.is64).status());  // e_entry
  VMEMFS_ASSIGN_OR_RETURN(h.phoff, ReadAddr(in, h.is64));
  VMEMFS_ASSIGN_OR_RETURN(uint64_t shoff, ReadAddr(in, h.is64));
  // e_flags, e_ehsize: the header size is no check, real producers write wrong ones (8).
  VMEMFS_TRY(in.Skip(6));
  VMEMFS_ASSIGN_OR_RETURN(uint16_t phentsize, in.Read<uint16_t>());
  VMEMFS_ASSIGN_OR_RETURN(uint16_t phnum, in.Read<uint16_t>());
  // The program header size tells the classes apart (56 or 32 bytes): a class byte that
  // contradicts it is damaged, and a message about the headers would mislead.
  if (phnum != 0 && h.is64 && phentsize == kElf32PhdrSize) {
    return BadDataError("ELF header says 64-bit (EI_CLASS, byte 4, is ELFCLASS64) but its "
                        "program headers (e_phentsize) have ELFCLASS32's 32 bytes: the class "
                        "byte is damaged");
  }
  h.phentsize = phentsize;
  h.phnum = phnum;
  if (phnum == kPnXnum) {
    VMEMFS_ASSIGN_OR_RETURN(h.phnum, ReadExtendedPhnum(file, h.is64, shoff));
  }
  return h;
}

// Checks that the program header table lies inside the file and has a sane entry size.
Status CheckProgramHeaderTable(const ElfHeader& h, uint64_t file_size) {
  const uint64_t min_entry = h.is64 ? 56 : 32;
  if (h.phentsize < min_entry) {
    return BadDataError("ELF program header size " + std::to_string(h.phentsize) + " is below " +
                        std::to_string(min_entry));
  }
  auto table = CheckedMul(h.phentsize, h.phnum);
  if (!table || !RangeWithin(h.phoff, *table, file_size)) {
    return BadDataError("ELF program header table extends past end of file (offset " +
                        Hex(h.phoff) + ", " + std::to_string(h.phnum) + " entries of " +
                        std::to_string(h.phentsize) + " bytes, file " + Hex(file_size) + ")");
  }
  return Status();
}

// REQUIRES: CheckProgramHeaderTable(h) passed, index < h.phnum.
Result<ProgramHeader> ReadProgramHeader(std::span<const std::byte> file, const ElfHeader& h,
                                        uint64_t index) {
  ByteReader in(file, "ELF program header");
  VMEMFS_TRY(in.Seek(h.phoff + index * h.phentsize));
  ProgramHeader p;
  VMEMFS_ASSIGN_OR_RETURN(p.type, in.Read<uint32_t>());
  if (h.is64) VMEMFS_TRY(in.Skip(4));  // p_flags comes second in ELF64
  VMEMFS_ASSIGN_OR_RETURN(p.offset, ReadAddr(in, h.is64));
  VMEMFS_TRY(ReadAddr(in, h.is64).status());  // p_vaddr
  VMEMFS_ASSIGN_OR_RETURN(p.paddr, ReadAddr(in, h.is64));
  VMEMFS_ASSIGN_OR_RETURN(p.filesz, ReadAddr(in, h.is64));
  VMEMFS_ASSIGN_OR_RETURN(p.memsz, ReadAddr(in, h.is64));
  return p;
}

std::string PhdrName(uint64_t index) { return "ELF program header " + std::to_string(index); }

// The file bytes of program header `index`, checked to lie inside the file.
Result<std::span<const std::byte>> SegmentData(std::span<const std::byte> file,
                                               const ProgramHeader& p, uint64_t index) {
  if (!RangeWithin(p.offset, p.filesz, file.size())) {
    return BadDataError(PhdrName(index) + " extends past end of file (offset " + Hex(p.offset) +
                        ", size " + Hex(p.filesz) + ", file " + Hex(file.size()) + ")");
  }
  return file.subspan(p.offset, p.filesz);
}

Result<SnapshotSegment> LoadSegment(std::span<const std::byte> file, const ProgramHeader& p,
                                    uint64_t index) {
  VMEMFS_TRY(SegmentData(file, p, index).status());
  // The segment describes [paddr, paddr + p_memsz) of guest RAM, even where its bytes are not
  // in the file: that must be an address range x86 can have.
  auto end = CheckedAdd(p.paddr, p.memsz);
  if (!end || *end > kMaxPhysicalAddress) {
    return BadDataError(PhdrName(index) + " (PT_LOAD at paddr " + Hex(p.paddr) + ", p_memsz " +
                        Hex(p.memsz) + ") reaches beyond 2^52, the largest physical address x86 "
                        "has");
  }
  // Bytes beyond p_filesz are not in the file; p_memsz below p_filesz means only that much RAM.
  const uint64_t size = std::min(p.filesz, p.memsz);
  return SnapshotSegment{.phys_start = p.paddr, .file_offset = p.offset, .size = size};
}

// What the notes say, before CORE and QEMU notes are paired up into vCPUs.
struct NoteContents {
  std::vector<RegisterSet> prstatus;
  std::vector<RegisterSet> qemu;
  std::optional<std::string> vmcoreinfo;
};

struct Note {
  std::string_view name;  // without trailing NULs
  uint32_t type;
  std::span<const std::byte> desc;
};

// Skips the padding that aligns the next field to 4 bytes; a segment may end unpadded.
Status SkipNotePadding(ByteReader& in) {
  const size_t pad = (4 - in.pos() % 4) % 4;
  return in.Skip(std::min(pad, in.remaining()));
}

Result<Note> ReadNote(ByteReader& in) {
  const size_t start = in.pos();
  VMEMFS_ASSIGN_OR_RETURN(uint32_t namesz, in.Read<uint32_t>());
  VMEMFS_ASSIGN_OR_RETURN(uint32_t descsz, in.Read<uint32_t>());
  Note note;
  VMEMFS_ASSIGN_OR_RETURN(note.type, in.Read<uint32_t>());
  if (namesz > in.remaining() || descsz > in.remaining()) {
    return BadDataError("ELF note at offset " + Hex(start) + " overruns its segment (namesz " +
                        Hex(namesz) + ", descsz " + Hex(descsz) + ", " + Hex(in.remaining()) +
                        " bytes left)");
  }
  VMEMFS_ASSIGN_OR_RETURN(note.name, in.ReadString(namesz));
  while (!note.name.empty() && note.name.back() == '\0') note.name.remove_suffix(1);
  VMEMFS_TRY(SkipNotePadding(in));
  VMEMFS_ASSIGN_OR_RETURN(note.desc, in.ReadBytes(descsz));
  VMEMFS_TRY(SkipNotePadding(in));
  return note;
}

Status AddVcpuNote(std::vector<RegisterSet>& list, Result<RegisterSet> regs) {
  if (!regs) return regs.error();
  if (list.size() >= kMaxSnapshotVcpus) {
    return BadDataError("more than " + std::to_string(kMaxSnapshotVcpus) + " vCPU notes");
  }
  list.push_back(*std::move(regs));
  return Status();
}

Status HandleNote(const Note& note, uint16_t machine, NoteContents& out) {
  if (note.name == "CORE" && note.type == kNtPrstatus) {
    return AddVcpuNote(out.prstatus, ParsePrstatus(note.desc, machine));
  }
  if (note.name == "QEMU" && note.type == kQemuNoteCpuState) {
    return AddVcpuNote(out.qemu, ParseQemuCpuState(note.desc));
  }
  if (note.name == "VMCOREINFO" && !out.vmcoreinfo) {
    if (note.desc.size() > kMaxVmcoreInfo) {
      return BadDataError("VMCOREINFO note of " + std::to_string(note.desc.size()) +
                          " bytes is implausibly large");
    }
    std::string text(reinterpret_cast<const char*>(note.desc.data()), note.desc.size());
    while (!text.empty() && text.back() == '\0') text.pop_back();
    out.vmcoreinfo = std::move(text);
  }
  return Status();  // other notes (NT_PRFPREG, ...) are not ours
}

Status ParseNoteSegment(std::span<const std::byte> data, uint16_t machine, NoteContents& out) {
  ByteReader in(data, "ELF note");
  // Every note consumes at least its 12-byte header, so this loop ends.
  while (in.remaining() > 0) {
    VMEMFS_ASSIGN_OR_RETURN(Note note, ReadNote(in));
    VMEMFS_TRY(HandleNote(note, machine, out));
  }
  return Status();
}

// Real x86 long mode requires EFER.LME and EFER.LMA. QEMU writes EM_X86_64 only when the guest
// was in long mode (LMA set), and paging with PAE confirms it, so for such a 64-bit core we can
// infer EFER = LME|LMA. Other EFER bits (NXE, SCE) are unknown, so the value is marked inferred
// and never shown as the register.
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kEferLmeLma = 0x500;

void InferEfer(const ElfHeader& h, RegisterSet& regs) {
  if (!h.is64 || h.machine != kElfMachineX86_64 || regs.Has(Register::kEfer)) return;
  auto cr0 = regs.Get(Register::kCr0);
  auto cr4 = regs.Get(Register::kCr4);
  if (cr0 && cr4 && (*cr0 & kCr0Pg) && (*cr4 & kCr4Pae)) {
    regs.SetInferred(Register::kEfer, kEferLmeLma);
  }
}

// vCPU i is the i-th NT_PRSTATUS completed by the i-th QEMU note (QEMU writes all CORE notes,
// then all QEMU notes, each in CPU order).
std::vector<RegisterSet> PairVcpus(const ElfHeader& h, NoteContents& notes) {
  std::vector<RegisterSet> vcpus = std::move(notes.prstatus);
  if (vcpus.size() < notes.qemu.size()) vcpus.resize(notes.qemu.size());
  for (size_t i = 0; i < notes.qemu.size(); ++i) MergeMissingRegisters(vcpus[i], notes.qemu[i]);
  for (RegisterSet& regs : vcpus) InferEfer(h, regs);
  return vcpus;
}

Status HandleProgramHeader(std::span<const std::byte> file, const ElfHeader& h, uint64_t index,
                           SnapshotLayout& layout, NoteContents& notes) {
  VMEMFS_ASSIGN_OR_RETURN(ProgramHeader p, ReadProgramHeader(file, h, index));
  if (p.type == kPtLoad) {
    VMEMFS_ASSIGN_OR_RETURN(SnapshotSegment seg, LoadSegment(file, p, index));
    if (seg.size == 0) return Status();
    if (layout.segments.size() >= kMaxSnapshotSegments) {
      return BadDataError("more than " + std::to_string(kMaxSnapshotSegments) +
                          " PT_LOAD segments");
    }
    layout.segments.push_back(seg);
  } else if (p.type == kPtNote) {
    VMEMFS_ASSIGN_OR_RETURN(auto data, SegmentData(file, p, index));
    Status s = ParseNoteSegment(data, h.machine, notes);
    if (!s.ok()) return s.WithContext(PhdrName(index) + " (PT_NOTE at " + Hex(p.offset) + ")");
  }
  return Status();
}

}  // namespace

bool LooksLikeElf(std::span<const std::byte> file) {
  return file.size() >= sizeof(kElfMagic) &&
         std::memcmp(file.data(), kElfMagic, sizeof(kElfMagic)) == 0;
}

Result<SnapshotLayout> ParseElfCore(std::span<const std::byte> file) {
  VMEMFS_ASSIGN_OR_RETURN(ElfHeader h, ReadElfHeader(file));
  VMEMFS_TRY(CheckProgramHeaderTable(h, file.size()));
  SnapshotLayout layout;
  layout.format = h.is64 ? "elf64" : "elf32";
  NoteContents notes;
  // phnum is bounded: the table was checked to fit in the file.
  for (uint64_t i = 0; i < h.phnum; ++i) {
    VMEMFS_TRY(HandleProgramHeader(file, h, i, layout, notes));
  }
  VMEMFS_TRY(NormalizeSegments(layout.segments, file.size()));
  layout.vcpus = PairVcpus(h, notes);
  layout.vmcoreinfo = std::move(notes.vmcoreinfo);
  return layout;
}

}  // namespace vmemfs::drivers
