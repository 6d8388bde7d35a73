// Guest RAM of a live QEMU process, given its pid and where it holds each RAM range (HVAs).
//
// Two ways in, chosen per range at open:
//  * shared file: when QEMU maps the range from a file MAP_SHARED (memory-backend-file or
//    memory-backend-memfd with share=on, found in /proc/PID/maps and checked by device and
//    inode), we map the same file: reads are memcpy, Mapped() and FileBacked() are zero copy,
//    and guest writes are visible at once (same page cache pages).
//  * process memory: process_vm_readv/process_vm_writev on QEMU's address space, or pread/
//    pwrite of /proc/PID/mem when those are refused (EPERM, ENOSYS). Needs ptrace rights.
//
// Once the VM is gone (MarkGone, or ESRCH from the kernel) every access fails with
// kUnavailable without touching the process. Thread safety: all methods, any thread.
#ifndef VMEMFS_DRIVERS_QEMU_MEMORY_H_
#define VMEMFS_DRIVERS_QEMU_MEMORY_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "drivers/driver.h"
#include "drivers/mapped_file.h"
#include "drivers/phys_map.h"
#include "drivers/qemu_layout.h"

namespace vmemfs::drivers {

enum class RamAccess {
  kAuto,       // shared file where possible, else process_vm_*, else /proc/PID/mem
  kProcessVm,  // process_vm_readv/writev only (tests, and QEMUs whose files we cannot open)
  kProcMem,    // /proc/PID/mem only
};

class QemuMemory {
 public:
  // Errors: kUnavailable (no such process), kOs (no access to its memory), naming the pid;
  // kBadData if `ranges` are not sorted and disjoint (ReadHostRanges' contract).
  static Result<std::unique_ptr<QemuMemory>> Open(pid_t pid, std::vector<HostRange> ranges,
                                                  bool writable, RamAccess access);
  ~QemuMemory();
  QemuMemory(const QemuMemory&) = delete;
  QemuMemory& operator=(const QemuMemory&) = delete;

  // Driver::ReadPhys / WritePhys semantics; writes to ROM ranges fail with kFault.
  Status Read(uint64_t pa, std::span<std::byte> out);
  Status Write(uint64_t pa, std::span<const std::byte> in);
  std::span<const std::byte> Mapped(uint64_t pa) const;
  std::optional<FileExtent> FileBacked(uint64_t pa) const;

  // "shared file /tmp/vm/ram", "process_vm_readv (pid 123)", "/proc/123/mem", or a mix.
  std::string method() const;
  // True if every range is read through a shared file mapping.
  bool all_mapped() const;

  void MarkGone() { gone_.store(true, std::memory_order_relaxed); }
  bool gone() const { return gone_.load(std::memory_order_relaxed); }

 private:
  // Where QEMU holds a run of guest RAM.
  struct Backing {
    uint64_t hva;
    bool readonly;
    int file = -1;  // index into files_, or -1: process memory
    uint64_t file_offset = 0;
  };
  using Run = PhysRun<Backing>;
  struct File {
    std::string path;
    MappedFile map;
  };

  QemuMemory(pid_t pid, bool writable) : pid_(pid), writable_(writable) {}
  Status MapSharedFiles(std::vector<Run>& runs);
  Status OpenProcessAccess(RamAccess access);
  std::byte* FileMemory(const Run& run, uint64_t pa) const;
  Status Transfer(uint64_t pa, std::byte* buf, size_t len, bool write);
  Status TransferProcess(uint64_t hva, std::byte* buf, size_t len, bool write, uint64_t pa);
  Status Gone() const;

  const pid_t pid_;
  const bool writable_;
  PhysMap<Backing> runs_;
  std::vector<File> files_;
  int mem_fd_ = -1;  // /proc/PID/mem when process_vm_* is not used
  std::atomic<bool> gone_{false};
};

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_QEMU_MEMORY_H_
