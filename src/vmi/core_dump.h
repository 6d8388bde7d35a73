// A guest as an ELF64 core file in the layout of Linux's own kdump /proc/vmcore (and of
// /proc/kcore), the one format crash, drgn and gdb all open:
//
//   ELF header | program headers | one PT_NOTE's notes | padding to a page |
//   RAM range 0 | RAM range 1 | ...
//
// * PT_NOTE: one NT_PRSTATUS ("CORE") per vCPU when the source has registers, then the OS's
//   note (VMCOREINFO for Linux), as kdump merges them into one PT_NOTE.
// * One PT_LOAD per RAM range: p_paddr = its physical address, p_vaddr = where the kernel's
//   direct map shows it, file data one range after the other (MMIO gaps are not in the file,
//   as in a kdump).
// * One PT_LOAD for the kernel image at its own virtual address: tools that know only virtual
//   addresses (gdb) read the image through it, and crash derives phys_base from it. Its bytes
//   are those of the RAM range that holds them: its p_offset points into that range's data
//   (two program headers may share file bytes), so the file is no larger than RAM.
// * When the OS's symbols are linked elsewhere (KASLR), one more PT_LOAD, last: the same bytes
//   and p_paddr at the link-time address, so `gdb vmlinux vmcore` (which does not relocate by
//   VMCOREINFO) reads the dump; left out where it would overlap another PT_LOAD (how() says).
//
// The layout is fixed by the RAM ranges, the vCPU count and the OS's hints (os.h), which do not
// change while one kernel runs; only the registers in the notes do, so a reader builds the
// header when it opens the file. The data are never copied into the file: Plan says which
// stretches are header bytes and which are guest-physical memory, to be served by the guest's
// read plans (spliced or mapped where pmem is).
//
// The architecture is x86_64 (e_machine EM_X86_64, NT_PRSTATUS as struct elf_prstatus of an
// x86_64 Linux core): the only one vmemfs reads registers of in long mode. The OS part is only
// in the hints, so another OS with its own note and direct map would get the same file.
#ifndef VMEMFS_VMI_CORE_DUMP_H_
#define VMEMFS_VMI_CORE_DUMP_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "drivers/driver.h"
#include "drivers/registers.h"
#include "vmi/os.h"

namespace vmemfs::vmi {

class Guest;
struct KernelView;

// One stretch of the core file.
struct CorePiece {
  enum class Kind {
    kHeader,    // bytes of the header, from header offset `at`
    kPhysical,  // guest-physical memory from address `at`
    kZeros,     // padding
  };
  Kind kind;
  uint64_t length;
  uint64_t at = 0;
  bool operator==(const CorePiece&) const = default;
};

// A PT_LOAD as written.
struct CoreLoad {
  uint64_t offset;  // p_offset
  uint64_t va;      // p_vaddr
  uint64_t pa;      // p_paddr
  uint64_t length;  // p_filesz = p_memsz
  bool operator==(const CoreLoad&) const = default;
};

// Thread safety: immutable after Layout; const methods may be called concurrently.
class CoreDump {
 public:
  static constexpr uint64_t kPageSize = 4096;
  // Program headers are counted in 16 bits (PN_XNUM aside); more vCPUs than any VM has.
  static constexpr size_t kMaxLoads = 60000;
  static constexpr size_t kMaxCpuNotes = 8192;

  // Lays out the core of a guest with the RAM `ram` (sorted, disjoint), `cpu_notes` NT_PRSTATUS
  // notes and the OS's hints. kInvalidArgument for more ranges or notes than the bounds above.
  static Result<CoreDump> Layout(std::span<const drivers::PhysRange> ram, size_t cpu_notes,
                                 const CoreDumpHints& hints);

  uint64_t size() const { return size_; }
  // The header's length in the file: ELF header, program headers and notes, page-rounded.
  uint64_t header_size() const { return header_size_; }
  size_t cpu_notes() const { return cpu_notes_; }
  const std::vector<CoreLoad>& loads() const { return loads_; }
  // The hints' `how` and what the layout made of them (the image's link-time copy or why not).
  const std::string& how() const { return how_; }

  // The header_size() bytes of the header. registers[i] fills the i-th NT_PRSTATUS; a vCPU
  // whose registers are missing (or not given) gets zeros, so the size never changes.
  std::vector<std::byte> Header(std::span<const std::optional<drivers::RegisterSet>> registers)
      const;
  // How to serve [offset, offset + length), clipped to size(): pieces in order, covering it.
  std::vector<CorePiece> Plan(uint64_t offset, uint64_t length) const;
  // SEEK_DATA (nullopt: no data at or after offset) and SEEK_HOLE (size() at the latest).
  // Data are the header and RAM; only padding between ranges is a hole.
  std::optional<uint64_t> NextData(uint64_t offset) const;
  uint64_t NextHole(uint64_t offset) const;

 private:
  struct Extent {
    uint64_t offset;
    CorePiece piece;  // what [offset, offset + piece.length) holds
  };
  CoreDump() = default;
  // The index of the extent holding `offset` (REQUIRES offset < size_).
  size_t ExtentAt(uint64_t offset) const;

  std::vector<Extent> extents_;  // in file order, covering [0, size_)
  std::vector<CoreLoad> loads_;  // program header order after the PT_NOTE
  CoreDumpHints hints_;
  std::string how_;
  size_t cpu_notes_ = 0;
  uint64_t notes_offset_ = 0;
  uint64_t notes_size_ = 0;
  uint64_t header_size_ = 0;
  uint64_t size_ = 0;
};

// The core of `guest` while it runs the kernel of `view`: that OS's hints, the guest's RAM and,
// when the source has registers, one note per vCPU. Errors: the OS has no hints (why), no OS.
Result<CoreDump> PlanCoreDump(Guest& guest, const KernelView& view);
// The registers for the core's notes, read now (a live guest's change).
std::vector<std::optional<drivers::RegisterSet>> CoreRegisters(Guest& guest,
                                                               const CoreDump& core);

}  // namespace vmemfs::vmi

#endif  // VMEMFS_VMI_CORE_DUMP_H_
