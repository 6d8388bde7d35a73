// What the filesystem may ask of a guest operating system, whatever it is. The filesystem sees
// only this interface; each OS (Linux first) implements it under src/vmi/<os>/ and is found by
// DetectOs().
#ifndef VMEMFS_VMI_OS_H_
#define VMEMFS_VMI_OS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "drivers/driver.h"
#include "vmi/guest.h"
#include "vmi/linux/overrides.h"
#include "vmi/symbol_table.h"

namespace vmemfs::vmi {

// One task (a thread; a process is its thread-group leader).
struct TaskSummary {
  int32_t pid;   // thread id
  int32_t tgid;  // process id
  std::string comm;
  bool kernel_thread = false;
};

// A virtual memory area of a process.
struct MemoryArea {
  uint64_t start;
  uint64_t end;       // exclusive
  std::string perms;  // "r-xp"
  std::string name;   // path, [heap], [stack], ... or empty
};

// Thread safety: every method may be called concurrently. For snapshots results never change;
// for a live guest the task list is re-read when older than a second (or after Flush), and
// per-task answers are read from memory at each call.
class OperatingSystem {
 public:
  virtual ~OperatingSystem() = default;

  virtual std::string_view name() const = 0;  // "linux"
  // Lines for the VM's `info` file: OS, release, how each fact was found.
  virtual std::vector<std::pair<std::string, std::string>> Describe() const = 0;

  // Drops cached facts that can change (the task list).
  virtual void Flush() = 0;

  // Every task, threads included, in pid order. A corrupt task list yields the tasks found
  // before the damage; the error is reported by Describe() (not fatal).
  virtual Result<std::vector<TaskSummary>> Tasks() = 0;

  // Per task (pid = thread id). kNotFound if there is no such task.
  virtual Result<uint64_t> PageTableRoot(int32_t pid) = 0;  // user address space (dtb)
  virtual Result<std::string> Cmdline(int32_t pid) = 0;     // /proc/<pid>/cmdline bytes
  virtual Result<std::string> Environ(int32_t pid) = 0;     // /proc/<pid>/environ bytes
  virtual Result<std::string> StatusText(int32_t pid) = 0;  // /proc/<pid>/status subset
  virtual Result<std::string> ExePath(int32_t pid) = 0;
  virtual Result<std::vector<MemoryArea>> MemoryAreas(int32_t pid) = 0;
  virtual Result<std::string> MapsText(int32_t pid) = 0;  // /proc/<pid>/maps

  // The loaded kernel modules as the guest's /proc/modules shows them (read at each call).
  virtual Result<std::string> ModulesText() = 0;

  // The kernel's and modules' symbols (empty when none were found).
  virtual const SymbolTable& Symbols() const = 0;
};

// Recognises the guest's OS from memory alone and completes the guest's kernel facts (paging
// mode and page-table root when the source had no registers). kNotFound when no supported OS is
// recognised (the VM still gets pmem and, with registers, kmem).
// REQUIRES: no concurrent use of `guest` yet.
Result<std::unique_ptr<OperatingSystem>> DetectOs(Guest& guest);

// Files that replace what would be found in memory, per OS (--symbols, --isf, --offsets).
struct DetectOptions {
  linux_os::LinuxOverrides linux_overrides;
};
// As above, with overrides. A given file that cannot be loaded is an error naming it (call
// options.linux_overrides.Load() first to check the files once before opening any guest).
Result<std::unique_ptr<OperatingSystem>> DetectOs(Guest& guest, const DetectOptions& options);

}  // namespace vmemfs::vmi

#endif  // VMEMFS_VMI_OS_H_
