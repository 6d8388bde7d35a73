#include "vmi/core_dump.h"

#include <elf.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "vmi/guest.h"

namespace vmemfs::vmi {
namespace {

using drivers::Register;

// struct elf_prstatus of an x86_64 Linux core, which crash, drgn and gdb read: written by
// offset, not with the host's <sys/procfs.h>, so the file does not depend on where vmemfs runs.
constexpr size_t kPrstatusSize = 336;
constexpr size_t kPrPidOffset = 32;  // after pr_info (12), pr_cursig (2 + 2), sigpend, sighold
constexpr size_t kPrRegOffset = 112;  // after pids (16) and four struct timevals (64)
// user_regs_struct, the order of pr_reg; nullopt: orig_rax, which no register holds.
constexpr std::optional<Register> kPrRegs[] = {
    Register::kR15, Register::kR14, Register::kR13, Register::kR12, Register::kRbp,
    Register::kRbx, Register::kR11, Register::kR10, Register::kR9,  Register::kR8,
    Register::kRax, Register::kRcx, Register::kRdx, Register::kRsi, Register::kRdi,
    std::nullopt,   Register::kRip, Register::kCs,  Register::kRflags, Register::kRsp,
    Register::kSs,  Register::kFsBase, Register::kGsBase, Register::kDs, Register::kEs,
    Register::kFs,  Register::kGs,
};
static_assert(kPrRegOffset + sizeof(kPrRegs) / sizeof(kPrRegs[0]) * 8 + 8 == kPrstatusSize);
constexpr std::string_view kCoreNoteName = "CORE";

uint64_t Align4(uint64_t n) { return (n + 3) & ~uint64_t{3}; }
uint64_t PageUp(uint64_t n) { return (n + CoreDump::kPageSize - 1) & ~(CoreDump::kPageSize - 1); }

uint64_t NoteSize(std::string_view name, uint64_t desc_size) {
  return sizeof(Elf64_Nhdr) + Align4(name.size() + 1) + Align4(desc_size);
}

// Appends one note: header, NUL-terminated name and desc, each padded to 4 bytes.
void PutNote(std::vector<std::byte>& out, size_t& at, std::string_view name, uint32_t type,
             std::span<const std::byte> desc) {
  Elf64_Nhdr nhdr{static_cast<Elf64_Word>(name.size() + 1), static_cast<Elf64_Word>(desc.size()),
                  type};
  std::memcpy(out.data() + at, &nhdr, sizeof(nhdr));
  at += sizeof(nhdr);
  std::memcpy(out.data() + at, name.data(), name.size());  // the NUL and padding are zeros
  at += Align4(name.size() + 1);
  if (!desc.empty()) std::memcpy(out.data() + at, desc.data(), desc.size());
  at += Align4(desc.size());
}

std::array<std::byte, kPrstatusSize> Prstatus(const std::optional<drivers::RegisterSet>& regs) {
  std::array<std::byte, kPrstatusSize> desc{};
  // pr_pid stays 0: which task a vCPU runs is not known here (an idle vCPU runs pid 0).
  static_assert(kPrPidOffset + 4 <= kPrRegOffset);
  if (!regs) return desc;
  for (size_t i = 0; i < std::size(kPrRegs); ++i) {
    // orig_rax -1: not in a system call, as the kernel marks registers saved for a crash.
    uint64_t v = kPrRegs[i] ? regs->Get(*kPrRegs[i]).value_or(0) : ~uint64_t{0};
    std::memcpy(desc.data() + kPrRegOffset + i * 8, &v, 8);
  }
  return desc;
}

Elf64_Ehdr ElfHeader(size_t phnum) {
  Elf64_Ehdr e{};
  std::memcpy(e.e_ident, ELFMAG, SELFMAG);
  e.e_ident[EI_CLASS] = ELFCLASS64;
  e.e_ident[EI_DATA] = ELFDATA2LSB;
  e.e_ident[EI_VERSION] = EV_CURRENT;
  e.e_ident[EI_OSABI] = ELFOSABI_NONE;
  e.e_type = ET_CORE;
  e.e_machine = EM_X86_64;
  e.e_version = EV_CURRENT;
  e.e_phoff = sizeof(Elf64_Ehdr);
  e.e_ehsize = sizeof(Elf64_Ehdr);
  e.e_phentsize = sizeof(Elf64_Phdr);
  e.e_phnum = static_cast<Elf64_Half>(phnum);
  return e;
}

// Whether [a, a + a_length) and [b, b + b_length) share an address (REQUIRES neither wraps).
bool Overlap(uint64_t a, uint64_t a_length, uint64_t b, uint64_t b_length) {
  return a < b + b_length && b < a + a_length;
}

}  // namespace

Result<CoreDump> CoreDump::Layout(std::span<const drivers::PhysRange> ram, size_t cpu_notes,
                                  const CoreDumpHints& hints) {
  if (ram.size() + 2 > kMaxLoads) return InvalidArgumentError("too many RAM ranges for a core");
  if (cpu_notes > kMaxCpuNotes) return InvalidArgumentError("too many vCPUs for a core");
  if (hints.note_text.size() > (1u << 20)) return InvalidArgumentError("OS note too large");
  CoreDump core;
  core.hints_ = hints;
  core.cpu_notes_ = cpu_notes;
  core.how_ = hints.how;
  const uint64_t direct = hints.direct_map_base.value_or(0);
  auto ram_va = [&](const drivers::PhysRange& r) {
    return hints.direct_map_base ? direct + r.start : 0;
  };
  const auto& image = hints.kernel_image;
  // The image must not wrap; a hint that makes it wrap is dropped whole, not half-served.
  const bool image_ok = image && image->length > 0 && image->va + image->length > image->va;
  if (image && !image_ok) core.how_ += "; kernel image left out (it wraps the address space)";

  // The image again at its link-time address, for gdb, which reads the kernel's symbols where
  // vmlinux puts them. It shares the image's bytes and p_paddr, so readers of physical
  // addresses (crash, drgn) see the same memory twice and nothing new. Only where no other
  // PT_LOAD is: two loads at one virtual address would make a tool's reads ambiguous.
  bool alias = false;
  if (image_ok && image->link_va && *image->link_va != image->va) {
    const uint64_t at = *image->link_va;
    std::string clash;
    if (at + image->length <= at) {
      clash = "it wraps the address space";
    } else if (Overlap(at, image->length, image->va, image->length)) {
      clash = "it overlaps the image itself (a slide smaller than the image)";
    } else {
      for (const drivers::PhysRange& r : ram) {
        uint64_t va = ram_va(r);
        // A load that wraps (a hostile direct map) is taken to cover everything.
        if (r.size() > 0 && (va + r.size() <= va || Overlap(at, image->length, va, r.size()))) {
          clash = fmt::format("it overlaps RAM's PT_LOAD at {:#x}", va);
          break;
        }
      }
    }
    alias = clash.empty();
    core.how_ += alias ? fmt::format("; the image again at its link-time address {:#x} for gdb",
                                     at)
                       : fmt::format("; no copy of the image at its link-time address {:#x} "
                                     "for gdb: {}",
                                     at, clash);
  }

  const size_t phnum = 1 + (image_ok ? 1 : 0) + (alias ? 1 : 0) + ram.size();
  core.notes_offset_ = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr);
  core.notes_size_ = cpu_notes * NoteSize(kCoreNoteName, kPrstatusSize) +
                     NoteSize(hints.note_name, hints.note_text.size());
  // Data start at a page, as in the kernel's /proc/vmcore, so a reader may mmap it.
  core.header_size_ = PageUp(core.notes_offset_ + core.notes_size_);
  core.extents_.push_back({0, {CorePiece::Kind::kHeader, core.header_size_, 0}});

  uint64_t offset = core.header_size_;
  std::vector<CoreLoad> ram_loads;
  for (const drivers::PhysRange& r : ram) {
    ram_loads.push_back({offset, ram_va(r), r.start, r.size()});
    core.extents_.push_back({offset, {CorePiece::Kind::kPhysical, r.size(), r.start}});
    offset += r.size();
    if (uint64_t padded = PageUp(offset); padded != offset) {
      core.extents_.push_back({offset, {CorePiece::Kind::kZeros, padded - offset, 0}});
      offset = padded;
    }
  }
  if (image_ok) {
    // Into the data of the RAM range that holds the whole image; else its own copy at the end.
    std::optional<uint64_t> at;
    for (const CoreLoad& l : ram_loads) {
      uint64_t into = image->pa - l.pa;  // wraps below l.pa: then never < l.length
      if (into < l.length && image->length <= l.length - into) {
        at = l.offset + (image->pa - l.pa);
      }
    }
    if (!at) {
      at = offset;
      core.extents_.push_back({offset, {CorePiece::Kind::kPhysical, image->length, image->pa}});
      offset = PageUp(offset + image->length);
    }
    // Before the RAM ranges, as kdump orders them: the first PT_LOAD is the kernel text.
    core.loads_.push_back({*at, image->va, image->pa, image->length});
  }
  core.loads_.insert(core.loads_.end(), ram_loads.begin(), ram_loads.end());
  if (alias) {
    // Last, after the real image: this one's p_vaddr - p_paddr is off by the slide, and a crash
    // that derives phys_base from a kernel-text load (VMCOREINFO without NUMBER(phys_base))
    // must meet the real one first. crash 8.0.2 with the note's phys_base was right either way.
    CoreLoad copy = core.loads_.front();
    copy.va = *image->link_va;
    core.loads_.push_back(copy);
  }
  core.size_ = std::max(offset, core.extents_.back().offset + core.extents_.back().piece.length);
  return core;
}

std::vector<std::byte> CoreDump::Header(
    std::span<const std::optional<drivers::RegisterSet>> registers) const {
  std::vector<std::byte> out(header_size_);
  Elf64_Ehdr ehdr = ElfHeader(1 + loads_.size());
  std::memcpy(out.data(), &ehdr, sizeof(ehdr));
  size_t at = sizeof(ehdr);
  auto put_phdr = [&out, &at](const Elf64_Phdr& p) {
    std::memcpy(out.data() + at, &p, sizeof(p));
    at += sizeof(p);
  };
  Elf64_Phdr note{};
  note.p_type = PT_NOTE;
  note.p_offset = notes_offset_;
  note.p_filesz = note.p_memsz = notes_size_;
  put_phdr(note);
  for (const CoreLoad& l : loads_) {
    Elf64_Phdr p{};
    p.p_type = PT_LOAD;
    p.p_flags = PF_R | PF_W | PF_X;
    p.p_offset = l.offset;
    p.p_vaddr = l.va;
    p.p_paddr = l.pa;
    p.p_filesz = p.p_memsz = l.length;
    put_phdr(p);
  }
  at = notes_offset_;
  for (size_t cpu = 0; cpu < cpu_notes_; ++cpu) {
    auto desc = Prstatus(cpu < registers.size() ? registers[cpu] : std::nullopt);
    PutNote(out, at, kCoreNoteName, NT_PRSTATUS, desc);
  }
  PutNote(out, at, hints_.note_name, hints_.note_type, std::as_bytes(std::span(hints_.note_text)));
  return out;
}

size_t CoreDump::ExtentAt(uint64_t offset) const {
  auto it = std::upper_bound(extents_.begin(), extents_.end(), offset,
                             [](uint64_t o, const Extent& e) { return o < e.offset; });
  return static_cast<size_t>(it - extents_.begin()) - 1;
}

std::vector<CorePiece> CoreDump::Plan(uint64_t offset, uint64_t length) const {
  std::vector<CorePiece> pieces;
  if (offset >= size_) return pieces;
  const uint64_t end = offset + std::min(length, size_ - offset);
  for (size_t i = ExtentAt(offset); i < extents_.size() && offset < end; ++i) {
    const Extent& e = extents_[i];
    uint64_t skip = offset - e.offset;
    uint64_t n = std::min(e.piece.length - skip, end - offset);
    CorePiece piece = e.piece;
    piece.length = n;
    if (piece.kind != CorePiece::Kind::kZeros) piece.at += skip;
    pieces.push_back(piece);
    offset += n;
  }
  return pieces;
}

std::optional<uint64_t> CoreDump::NextData(uint64_t offset) const {
  if (offset >= size_) return std::nullopt;
  for (size_t i = ExtentAt(offset); i < extents_.size(); ++i) {
    if (extents_[i].piece.kind != CorePiece::Kind::kZeros) {
      return std::max(offset, extents_[i].offset);
    }
  }
  return std::nullopt;
}

uint64_t CoreDump::NextHole(uint64_t offset) const {
  if (offset >= size_) return size_;
  for (size_t i = ExtentAt(offset); i < extents_.size(); ++i) {
    if (extents_[i].piece.kind == CorePiece::Kind::kZeros) {
      return std::max(offset, extents_[i].offset);
    }
  }
  return size_;
}

Result<CoreDump> PlanCoreDump(Guest& guest, const KernelView& view) {
  if (!view.os) return UnavailableError("no operating system found (yet)");
  VMEMFS_ASSIGN_OR_RETURN(CoreDumpHints hints, view.os->CoreDump());
  // Notes for every vCPU when the source has registers at all (a raw snapshot has none).
  size_t cpus = guest.vcpu_count() > 0 && guest.Registers(0).has_value() ? guest.vcpu_count() : 0;
  return CoreDump::Layout(guest.ranges(), cpus, hints);
}

std::vector<std::optional<drivers::RegisterSet>> CoreRegisters(Guest& guest,
                                                               const CoreDump& core) {
  std::vector<std::optional<drivers::RegisterSet>> regs;
  for (unsigned cpu = 0; cpu < core.cpu_notes(); ++cpu) {
    auto r = guest.Registers(cpu);
    regs.push_back(r ? std::optional(std::move(*r)) : std::nullopt);
  }
  return regs;
}

}  // namespace vmemfs::vmi
