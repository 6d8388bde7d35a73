// ROM is not RAM: the one rule every driver applies to the read-only memory its source knows
// of, and how a source that does not mark its ROM shows its firmware anyway.
//
// The rule: pmem ends with the highest RAM. ROM above it (QEMU's BIOS at 0xfffc0000 under a
// guest with less than ~3 GiB of RAM) is left out of the ranges a driver serves; counted in,
// it made pmem 4 GiB for 256 MiB of RAM and every whole-file tool read 3.75 GiB of zeros. ROM
// below the highest RAM stays readable: it lies inside pmem anyway, and firmware is evidence.
// Either way Guest::Describe lists it (`rom-range`).
#ifndef VMEMFS_DRIVERS_ROM_H_
#define VMEMFS_DRIVERS_ROM_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "drivers/driver.h"

namespace vmemfs::drivers {

// A piece of a source's memory map: RAM, or ROM with how the source knows it is ROM.
struct MemoryPart {
  uint64_t start;
  uint64_t end;  // exclusive
  std::optional<std::string> rom_how;
};

// `parts` sorted and disjoint. Returns every ROM part (adjacent ones of the same kind merged)
// and sets `kept` to the number of leading parts a driver serves: all up to the last RAM part.
std::vector<RomRange> SplitRom(std::span<const MemoryPart> parts, size_t& kept);

// The PT_LOADs of a QEMU ELF core (dump-guest-memory) carry no mark for ROM (p_flags 0, no
// note), so its firmware is known by where it sits: an x86 CPU starts at the reset vector
// 0xfffffff0, so every PC maps its firmware ending at 4 GiB, within the 16 MiB below it that
// chipsets decode to the firmware flash; guest RAM below 4 GiB ends far lower (the MMIO hole,
// IOAPIC at 0xfec00000). A segment is that firmware when it ends at 4 GiB, starts in that
// window, and does not continue the segment below it (`prev_end`: the end of the one below, 0
// if none). nullopt: not firmware; else how it was recognised.
std::optional<std::string> ResetVectorFirmware(uint64_t start, uint64_t end, uint64_t prev_end);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_ROM_H_
