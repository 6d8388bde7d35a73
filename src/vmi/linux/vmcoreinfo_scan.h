// Finds the running kernel's VMCOREINFO in guest RAM, with no registers and no symbols.
//
// The kernel keeps its VMCOREINFO as an ELF note in memory it allocated at boot
// (kernel/crash_core.c: vmcoreinfo_note): a 12-byte header {n_namesz = 11, n_descsz, n_type = 0},
// the name "VMCOREINFO\0" padded to 12 bytes, then n_descsz bytes of text. The scan looks for
// the name, checks the header around it and parses the text strictly, so the printf formats
// in the kernel image ("OSRELEASE=%s" ...) and other look-alikes never qualify.
#ifndef VMEMFS_VMI_LINUX_VMCOREINFO_SCAN_H_
#define VMEMFS_VMI_LINUX_VMCOREINFO_SCAN_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "base/status.h"
#include "vmi/guest.h"
#include "vmi/linux/vmcoreinfo.h"

namespace vmemfs::vmi::linux_os {

struct VmcoreInfoLocation {
  std::string text;
  std::optional<uint64_t> note_pa;  // physical address of the note header (scan only)
  std::string source;               // how it was found: "scan of all RAM, note at 0x..."
  size_t candidates = 0;            // valid distinct notes seen (more than 1: a stale copy)
};

// The best note in RAM, found by scanning all of it (the last resort: it costs in proportion to
// the RAM size): first at page starts only (the kernel allocates the note with alloc_pages_exact, so this
// finds the live one quickly), then, if no valid note starts a page, at every 4-byte
// alignment.
// Among several distinct valid notes, the first (lowest address) is taken among those that
// score best: its page-table root translates its _stext as expected (see kernel_layout.h),
// then SYMBOL(_stext) - KERNELOFFSET equals x86_64's default link address 0xffffffff81000000.
// At most 64 header candidates are examined. Errors: kNotFound when there is no valid note;
// the driver's error if RAM cannot be read for a reason other than a hole.
Result<VmcoreInfoLocation> LocateVmcoreInfo(Guest& guest);

// The note whose header is at physical `note_pa`, if its header and text are valid.
std::optional<VmcoreInfo> ReadVmcoreInfoNote(Guest& guest, uint64_t note_pa);


}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_VMCOREINFO_SCAN_H_
