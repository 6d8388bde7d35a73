// The register block of QEMU's x86 gdbstub ('g' reply, 'P' numbers) in its two shapes:
// qemu-system-x86_64 (i386-64bit.xml: 16 GPRs and rip of 8 bytes, control registers of 8) and
// qemu-system-i386 (i386-32bit.xml: 8 GPRs, eip and every control register of 4 bytes). Both
// continue the core registers with fs_base, gs_base, k_gs_base, cr0, cr2, cr3, cr4, cr8, efer
// (QEMU's target/i386/gdbstub.c). Which one a stub speaks is named by its target.xml
// (<architecture>i386:x86-64</architecture> or <architecture>i386</architecture>).
#ifndef VMEMFS_DRIVERS_GDB_REGISTERS_H_
#define VMEMFS_DRIVERS_GDB_REGISTERS_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/status.h"
#include "drivers/registers.h"

namespace vmemfs::drivers {

enum class GdbArch { kX86_64, kI386 };

std::string_view GdbArchName(GdbArch arch);  // as target.xml spells it

// The architecture a target.xml names. A document without <architecture> is taken for x86_64
// (what QEMU's x86_64 stub has always been read as); kUnsupported for any other architecture,
// kBadData for an unterminated element.
Result<GdbArch> GdbArchFromTargetXml(std::string_view xml);

// Where `reg` sits in the 'g' block of `arch` and its number for 'P'; nullopt for a register
// the stub does not carry (r8-r15 and k_gs_base on i386, GDTR/IDTR on both).
struct GdbRegisterSlot {
  Register reg;
  uint16_t offset;
  uint8_t size;
  uint8_t number;
};
std::optional<GdbRegisterSlot> FindGdbRegister(GdbArch arch, Register reg);

// The registers of a 'g' reply's bytes. Errors: kBadData if shorter than the core registers.
Result<RegisterSet> DecodeQemuX86Registers(std::string_view bytes, GdbArch arch = GdbArch::kX86_64);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_GDB_REGISTERS_H_
