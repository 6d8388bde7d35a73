// What a QEMU monitor says about a VM, parsed: guest RAM ranges and where QEMU holds them
// (`info mtree -f` + `gpa2hva`), vCPU registers (`info registers -a`), and the small QMP
// answers the live drivers need (query-status, query-cpus-fast, query-kvm).
//
// Every parser takes untrusted text (a QEMU could be anything at the end of a socket): counts
// and lengths are bounded, numbers checked for overflow, and nothing throws or crashes.
// The Read* functions talk to a QemuMonitor and are as thread-safe as it is.
#ifndef VMEMFS_DRIVERS_QEMU_LAYOUT_H_
#define VMEMFS_DRIVERS_QEMU_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "drivers/driver.h"
#include "drivers/qemu_monitor.h"
#include "drivers/registers.h"
#include "drivers/rom.h"

namespace vmemfs::drivers {

// One range of the flattened system address space ("memory") backed by a RAM region.
struct MtreeRange {
  uint64_t start;      // guest-physical
  uint64_t end;        // exclusive
  std::string region;  // memory region name ("ram", "pc.ram", "pc.bios")
  uint64_t offset;     // offset of `start` inside the region
  bool readonly;       // "rom": the guest cannot write it (BIOS, PAM-shadowed RAM)
  bool operator==(const MtreeRange&) const = default;
};

// Guest RAM with its host virtual address in the QEMU process.
struct HostRange {
  uint64_t start;  // guest-physical
  uint64_t end;    // exclusive
  std::string region;
  uint64_t hva;  // QEMU's address of `start`; [hva, hva + size) holds the range contiguously
  bool readonly;
};

// The ram and rom ranges of the FlatView that renders AS "memory", in address order.
// Device memory ("ramd", "romd") and I/O are left out: reading them can have side effects.
// Errors: kBadData (no such FlatView, malformed or overlapping lines, > 4096 ranges).
Result<std::vector<MtreeRange>> ParseMtreeMemory(std::string_view text);

// The ranges QEMU calls "rom" (its BIOS, a PAM window's read-only view of RAM), with those
// above the highest RAM taken out of `ranges` (rom.h). Range: MtreeRange or HostRange.
template <typename Range>
std::vector<RomRange> TakeRom(std::vector<Range>& ranges) {
  std::vector<MemoryPart> parts;
  for (const Range& r : ranges) {
    parts.push_back({r.start, r.end,
                     r.readonly
                         ? std::optional<std::string>("info mtree -f: rom, region " + r.region)
                         : std::nullopt});
  }
  size_t kept = 0;
  std::vector<RomRange> rom = SplitRom(parts, kept);
  ranges.erase(ranges.begin() + static_cast<std::ptrdiff_t>(kept), ranges.end());
  return rom;
}

// The host address in `gpa2hva` output ("Host virtual address for 0x1000 (ram) is 0x7f..").
// Errors: kFault when QEMU says the address is not RAM, kBadData for anything else.
Result<uint64_t> ParseGpa2Hva(std::string_view text, uint64_t gpa);

// Ranges of RAM with HVAs: mtree + gpa2hva of each range's first and last byte (QEMU maps a
// RAM block contiguously; the last byte proves it for this range). Adjacent ranges of one
// region that are contiguous in both spaces are merged. Errors name the monitor's answer.
Result<std::vector<HostRange>> ReadHostRanges(QemuMonitor& monitor);

// `info registers -a`: one RegisterSet per "CPU#N" section, indexed by N (a missing N is an
// empty set). Registers absent from the output (kernel_gs_base: QEMU does not print it) stay
// absent. Errors: kBadData (no CPU section, bad numbers, > 4096 CPUs).
Result<std::vector<RegisterSet>> ParseInfoRegistersAll(std::string_view text);
// One CPU's section (the text after "CPU#N").
Result<RegisterSet> ParseInfoRegisters(std::string_view text);
// Registers of vCPU `vcpu` now. Errors: kNotFound for an unknown vCPU, the monitor's errors.
Result<RegisterSet> ReadRegisters(QemuMonitor& monitor, unsigned vcpu);

// query-status's return: running, or paused (any other status: QEMU does not run the guest).
Result<RunState> ParseQueryStatus(std::string_view json_text);
// query-cpus-fast's return: the host thread id of each vCPU, by cpu-index.
Result<std::vector<int64_t>> ParseCpuThreads(std::string_view json_text);
// query-kvm's return: "kvm" when enabled, else "tcg" (or another accelerator).
Result<std::string> ParseAccel(std::string_view json_text);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_QEMU_LAYOUT_H_
