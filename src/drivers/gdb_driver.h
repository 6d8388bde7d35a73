// A live VM through a GDB remote stub (QEMU's -gdb): "gdb:HOST:PORT" or "gdb:unix:/path",
// optionally followed by "?ram=SIZE" (e.g. gdb:unix:/run/vm/gdb.sock?ram=256M).
//
// Needs QEMU's gdbstub: guest-physical memory is read in its physical mode
// ("Qqemu.PhyMemMode:1"); opening fails with kUnsupported on a stub without it.
//
// RAM ranges: the stub does not report them. With ?ram=SIZE they follow QEMU's q35 layout
// (SIZE below 2.75 GiB: [0, SIZE); else [0, 2 GiB) + [4 GiB, 4 GiB + SIZE - 2 GiB)). Without it
// they are probed by asking QEMU's monitor through the stub (qRcmd "info mtree -f") and read
// as the qemu driver reads them (qemu_layout.h: the RAM and ROM of the system address space,
// adjacent ranges merged; device memory, MMIO and holes left out), so one VM shows the same
// ranges through either driver. A stub without a monitor needs ?ram=.
//
// Run state: QEMU's stub answers only while the VM is stopped, and QEMU stops the VM when a
// debugger connects. Opening therefore resumes the VM if it was running before (QEMU then sends
// a stop reply on connect), else leaves it paused. A read, a register access or a write while
// the VM runs stops it (interrupt 0x03 + stop reply), does its work and continues it: every
// such call stops the guest for a moment and costs several round trips; reads are done in
// chunks of half the stub's PacketSize (2 KiB for QEMU). Pause/Resume stop and continue
// for good. The run state is what our own commands left it in; a stop reported by the stub
// (someone else stopped the VM) is noticed too, a resume by someone else is not.
// When the stub closes the connection or stops answering (a timeout), State() is kGone and
// every later call fails with kUnavailable at once.
//
// Registers: the stub's target.xml names its architecture, qemu-system-x86_64's or
// qemu-system-i386's (gdb_registers.h); a stub without target.xml is read as x86_64.
//
// Destruction detaches ("D"), which lets the VM run (also after Pause()).
//
// Thread safety: all methods may be called concurrently; calls that talk to the stub are
// serialized by the client's mutex.
#ifndef VMEMFS_DRIVERS_GDB_DRIVER_H_
#define VMEMFS_DRIVERS_GDB_DRIVER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "drivers/driver.h"
#include "drivers/gdb_registers.h"
#include "drivers/gdb_remote.h"

namespace vmemfs::drivers {

// What follows "gdb:" in a source spec.
struct GdbSpec {
  std::string endpoint;              // "HOST:PORT" or "unix:/path"
  std::optional<uint64_t> ram_size;  // from ?ram=SIZE (suffix K, M, G or T: powers of 1024)
};
Result<GdbSpec> ParseGdbSpec(std::string_view rest);

// Opens "gdb:REST" (REST as ParseGdbSpec takes it).
Result<std::unique_ptr<Driver>> OpenGdb(std::string_view rest, const OpenOptions& options);

// Opens a driver on an already connected client (tests: a fake stub on a socketpair).
Result<std::unique_ptr<Driver>> OpenGdbRemote(std::unique_ptr<GdbRemote> remote,
                                              std::optional<uint64_t> ram_size,
                                              const OpenOptions& options);

// The q35 guest-physical layout of SIZE bytes of RAM.
std::vector<PhysRange> Q35RamRanges(uint64_t size);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_GDB_DRIVER_H_
