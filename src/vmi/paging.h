// x86 address translation for all four paging modes, with large pages.
//
// One walker driven by a per-mode table (levels, entry size, index bits, which levels may map
// large pages), no per-mode copies. Everything it reads comes from guest memory and may be
// garbage: entries pointing outside RAM are faults for that address, never crashes, and every
// walk is bounded by the fixed number of levels.
#ifndef VMEMFS_VMI_PAGING_H_
#define VMEMFS_VMI_PAGING_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "base/status.h"
#include "vmi/physical_memory.h"

namespace vmemfs::vmi {

enum class PagingMode : uint8_t {
  kLegacy32,  // 2 levels, 4-byte entries, 4 KiB and 4 MiB pages (PSE)
  kPae,       // 3 levels, 8-byte entries, 4 KiB and 2 MiB pages
  kIa32e4,    // 4 levels, 48-bit VAs, 4 KiB, 2 MiB and 1 GiB pages
  kIa32e5,    // 5 levels (LA57), 57-bit VAs
};

std::string_view PagingModeName(
    PagingMode mode);  // "legacy32", "pae", "ia32e-4level", "ia32e-5level"

// From CR0.PG, CR4.PAE, CR4.LA57 and EFER.LMA; nullopt when paging is off.
std::optional<PagingMode> PagingModeFromRegisters(uint64_t cr0, uint64_t cr4, uint64_t efer);

// Size of the virtual address space as a file: 2^32, 2^32, 2^48, 2^57.
uint64_t AddressSpaceSize(PagingMode mode);
// The end of the lower canonical half (2^47, 2^56): user space, for the OSes that run on
// x86-64; the kernel half above it is kmem's. 32-bit modes have no such split in hardware
// (the OS chooses it: 3 GiB for Linux by default), so there it is the whole space, 2^32.
uint64_t UserSpaceEnd(PagingMode mode);
// File offset <-> canonical virtual address: offset = VA mod AddressSpaceSize; the canonical
// address sign-extends the top bit of the offset (IA-32e only).
uint64_t OffsetToVirtual(PagingMode mode, uint64_t offset);
uint64_t VirtualToOffset(PagingMode mode, uint64_t va);

// The physical base of the page table root from CR3 (masks PCID/flag bits per mode).
uint64_t DtbFromCr3(PagingMode mode, uint64_t cr3);

// One virtual address space: the page tables at physical `root`, walked in `mode`.
struct AddressSpace {
  PagingMode mode;
  uint64_t root;
  bool operator==(const AddressSpace&) const = default;
};

// A mapped page: [va, va + size) -> [pa, pa + size). va and pa are aligned to size.
struct Mapping {
  uint64_t va;
  uint64_t pa;
  uint64_t size;  // 4 KiB, 2 MiB, 4 MiB or 1 GiB
  bool writable;
  bool user;
  bool executable;
};

// Translates `va` through the tables rooted at `dtb`. Errors: kFault with address() = va when
// the address is not mapped (non-present entry, non-canonical) or a table lies outside RAM;
// the driver's own error when a read fails for another reason.
Result<Mapping> Translate(PhysicalMemory& mem, PagingMode mode, uint64_t dtb, uint64_t va);

// The first mapping that covers any address in [va, limit) in address order (by file offset,
// so for IA-32e the lower half comes before the upper half), or nullopt if none. Skips absent
// subtrees whole, so scanning the whole space costs one read per present table entry at most.
// `va` and `limit` are file offsets (see VirtualToOffset); limit <= AddressSpaceSize(mode).
// Returned Mapping.va is a canonical virtual address. Tables outside RAM count as absent.
// Errors: kBadData "page-table scan limit exceeded" when one call would visit more than 2^22
// entries (only hostile tables do; a real kernel's whole upper half needs a small fraction);
// the driver's own error when a read fails for a reason other than kFault.
Result<std::optional<Mapping>> NextMapping(PhysicalMemory& mem, PagingMode mode, uint64_t dtb,
                                           uint64_t offset, uint64_t limit);

}  // namespace vmemfs::vmi

#endif  // VMEMFS_VMI_PAGING_H_
