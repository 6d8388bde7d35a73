#include "drivers/rom.h"

namespace vmemfs::drivers {
namespace {

constexpr uint64_t k4GiB = 1ull << 32;
// The firmware flash window of PC chipsets: the 16 MiB below 4 GiB.
constexpr uint64_t kFirmwareWindow = 16ull << 20;

}  // namespace

std::vector<RomRange> SplitRom(std::span<const MemoryPart> parts, size_t& kept) {
  kept = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!parts[i].rom_how) kept = i + 1;
  }
  std::vector<RomRange> rom;
  for (size_t i = 0; i < parts.size(); ++i) {
    const MemoryPart& p = parts[i];
    if (!p.rom_how) continue;
    const bool in_ranges = i < kept;
    if (!rom.empty() && rom.back().end == p.start && rom.back().how == *p.rom_how &&
        rom.back().in_ranges == in_ranges) {
      rom.back().end = p.end;
    } else {
      rom.push_back({p.start, p.end, *p.rom_how, in_ranges});
    }
  }
  return rom;
}

std::optional<std::string> ResetVectorFirmware(uint64_t start, uint64_t end, uint64_t prev_end) {
  if (end != k4GiB || start < k4GiB - kFirmwareWindow || start >= end || prev_end >= start) {
    return std::nullopt;
  }
  return "ELF segment ending at 4 GiB, below the x86 reset vector: the firmware (QEMU dumps "
         "its ROM as RAM)";
}

}  // namespace vmemfs::drivers
