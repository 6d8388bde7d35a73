// Decoding of the per-vCPU register notes in an x86 ELF core. Both functions take the note's
// descriptor bytes (untrusted) and return only the registers the note really holds.
#ifndef VMEMFS_DRIVERS_ELF_CPU_NOTES_H_
#define VMEMFS_DRIVERS_ELF_CPU_NOTES_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/status.h"
#include "drivers/registers.h"

namespace vmemfs::drivers {

inline constexpr uint16_t kElfMachineI386 = 3;
inline constexpr uint16_t kElfMachineX86_64 = 62;

// A "CORE" NT_PRSTATUS note: Linux's struct elf_prstatus for `machine` (EM_X86_64: pr_reg is a
// user_regs_struct of 27 u64 at offset 112; EM_386: 17 u32 at offset 72). Yields general
// registers, rip, rflags, segment selectors and, for x86_64, fs_base/gs_base.
// Errors: kBadData if the descriptor is too short; kUnsupported for another machine.
Result<RegisterSet> ParsePrstatus(std::span<const std::byte> desc, uint16_t machine);

// A "QEMU" note of type 0: QEMU's QEMUCPUState (target/i386/arch_dump.c), version 1. Yields
// general registers, rip, rflags, selectors, fs/gs bases, GDTR, IDTR, CR0/2/3/4 and, when the
// state's size says it is there, kernel_gs_base. Errors: kBadData (short, bad version).
Result<RegisterSet> ParseQemuCpuState(std::span<const std::byte> desc);

// Copies into `dst` every register `src` has and `dst` lacks.
void MergeMissingRegisters(RegisterSet& dst, const RegisterSet& src);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_ELF_CPU_NOTES_H_
