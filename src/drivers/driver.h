// The one seam between vmemfs and a memory source (a snapshot file, a hypervisor).
//
// A driver knows guest-physical memory and vCPUs, nothing about operating systems or
// virtual addresses. Every driver is one .h/.cc pair in this folder and is registered in
// registry.cc; nothing above this folder sees a backend's own types.
#ifndef VMEMFS_DRIVERS_DRIVER_H_
#define VMEMFS_DRIVERS_DRIVER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/fact.h"
#include "base/status.h"
#include "drivers/registers.h"

namespace vmemfs::drivers {

// A run of guest-physical addresses holding RAM: [start, end).
struct PhysRange {
  uint64_t start;
  uint64_t end;
  uint64_t size() const { return end - start; }
  bool operator==(const PhysRange&) const = default;
};

// Bytes of guest memory that sit in a file the kernel can splice from: `length` bytes at
// `offset` of `fd`. The fd belongs to the driver and lives as long as it.
struct FileExtent {
  int fd;
  uint64_t offset;
  uint64_t length;
};

// Read-only memory of the guest (firmware, option ROMs, RAM its chipset maps read-only), as
// the source knows it. See rom.h for which of it a driver serves.
struct RomRange {
  uint64_t start;
  uint64_t end;     // exclusive
  std::string how;  // how the source knows it is ROM
  bool in_ranges;   // readable through ranges(); false: above the highest RAM, left out
  bool operator==(const RomRange&) const = default;
};

// Whether a live VM runs. Snapshots have no run state.
enum class RunState { kRunning, kPaused, kGone };
std::string_view RunStateName(RunState state);  // "running", "paused", "gone"

// Thread safety: every method may be called from many threads at once.
// Lifetime: spans and extents a driver returns stay valid until it is destroyed.
class Driver {
 public:
  Driver() = default;
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;
  virtual ~Driver() = default;

  // Short name of the backend: "snapshot", "qemu", ...
  virtual std::string_view kind() const = 0;

  // Guest RAM: sorted by start, non-overlapping, non-empty, never changes after open. ROM
  // below the highest RAM is included (rom.h), ROM above it is not.
  virtual std::span<const PhysRange> ranges() const = 0;
  // The ROM the source knows of, sorted. Default: none known.
  virtual std::span<const RomRange> rom() const { return {}; }

  // Reads exactly out.size() bytes at guest-physical `pa`.
  // Errors: kFault (address() = first byte outside RAM), kOs/kUnavailable when the backend
  // fails. Nothing is guaranteed about `out` after an error.
  virtual Status ReadPhys(uint64_t pa, std::span<std::byte> out) = 0;

  // Writes in.size() bytes at `pa`. Default: kUnsupported. Drivers opened read-only refuse.
  virtual Status WritePhys(uint64_t pa, std::span<const std::byte> in);

  // Zero copy: the bytes from `pa` to the end of the contiguous mapping that holds it, or an
  // empty span when the driver does not hold `pa` mapped. Live drivers' bytes may change. A
  // mapped file that another program shrinks shows zeros for the lost bytes: a caller that
  // copies from the span checks MappingsUntouched() (file_watch.h) afterwards, and asks
  // ReadPhys when it is false.
  virtual std::span<const std::byte> Mapped(uint64_t pa) const;

  // Zero copy through splice: the file extent from `pa` to the end of its contiguous run,
  // or nullopt. Ask for it inside a batch (BeginBatch) that lasts until the splice is done: a
  // driver whose file another program may change gives extents only while it is sure the
  // file cannot shrink before that batch ends.
  virtual std::optional<FileExtent> FileBacked(uint64_t pa) const;

  // True if guest memory can change while we look at it (a running VM).
  virtual bool live() const { return false; }
  // True if the source's bytes may change under us although it is no running VM: a snapshot
  // file that another program may change (no lease, or its lease was broken). Default: live().
  virtual bool may_change() const { return live(); }
  // True if WritePhys can succeed.
  virtual bool writable() const { return false; }

  virtual Status Pause();   // default: kUnsupported
  virtual Status Resume();  // default: kUnsupported

  // Reads that belong together (a kernel search, a task walk) come between BeginBatch and
  // EndBatch. A driver whose every read stops the VM (the GDB stub) keeps it stopped for the
  // whole batch instead of stopping it for each read; the others need not care. Batches nest
  // and may come from several threads; a Pause or Resume meanwhile has the last word.
  // BeginBatch returns true when the VM cannot run until the matching EndBatch (what a walk
  // reads then may be cached for that long). A snapshot driver looks at its file here, and
  // a change its lease announces waits until the batch ends (FileBacked). Default: nothing,
  // false.
  virtual bool BeginBatch() { return false; }
  virtual void EndBatch() {}
  // A live VM's state; nullopt for sources that do not run (snapshots). A VM that went away
  // (destroyed, connection lost) is kGone, and from then on reads fail with kUnavailable.
  virtual std::optional<RunState> State() { return std::nullopt; }

  // Number of vCPUs whose registers the source knows (0: none).
  virtual unsigned vcpu_count() const { return 0; }
  // REQUIRES: vcpu < vcpu_count(). Live drivers read the registers now.
  virtual Result<RegisterSet> Registers(unsigned vcpu);
  // Sets one register (with OpenOptions::writable only). Default: kUnsupported.
  virtual Status SetRegister(unsigned vcpu, Register reg, uint64_t value);

  // What the driver knows about its source and how it found out: format, pid, access path, ...
  // (not the RAM ranges, vCPUs, run state: those have methods of their own).
  virtual std::vector<Fact> Describe() const = 0;

  // The text of a VMCOREINFO note the source carries (an ELF core's PT_NOTE), if any.
  virtual std::optional<std::string> VmcoreInfo() const { return std::nullopt; }

  // Highest RAM address + 1, 0 if there is no RAM.
  uint64_t end_address() const;
};

struct OpenOptions {
  bool writable = false;  // Default: read-only; writes only when asked for (--write-memory).
};

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_DRIVER_H_
