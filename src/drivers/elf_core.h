// ELF core files as written by QEMU's dump-guest-memory (and kdump-style vmcores): 32- or
// 64-bit, little-endian, ET_CORE, EM_X86_64 or EM_386.
//
// Guest RAM is the PT_LOAD segments, placed by p_paddr (QEMU writes p_vaddr 0). Only the
// p_filesz bytes in the file are RAM: when p_memsz is larger the rest is reported as absent
// rather than invented as zeros. vCPU i gets the i-th "CORE" NT_PRSTATUS note merged with the
// i-th "QEMU" note (QEMUCPUState, which adds control registers, descriptor tables and segment
// bases). A "VMCOREINFO" note's text is returned as is, without trailing NULs.
#ifndef VMEMFS_DRIVERS_ELF_CORE_H_
#define VMEMFS_DRIVERS_ELF_CORE_H_

#include <cstddef>
#include <span>

#include "base/status.h"
#include "drivers/snapshot_layout.h"

namespace vmemfs::drivers {

// True if `file` starts with "\x7f" "ELF".
bool LooksLikeElf(std::span<const std::byte> file);

// Parses a whole ELF core. Errors: kBadData naming the header, program header or note at
// fault and the offsets involved; kUnsupported for a valid ELF that is not a little-endian
// x86 core.
Result<SnapshotLayout> ParseElfCore(std::span<const std::byte> file);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_ELF_CORE_H_
