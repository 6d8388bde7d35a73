// Linux as a vmi::OperatingSystem: everything found from the guest's memory alone.
//
// Discovery, in order, each step from the one before: the VMCOREINFO note (carried by the
// source or found in RAM) → the kernel's paging mode and page-table root, verified → the
// kallsyms tables → the BTF type information → struct layouts → the task list.
// Each step that fails leaves the steps before it usable (a kernel without BTF still has
// symbols), and `info` says what failed.
#ifndef VMEMFS_VMI_LINUX_LINUX_OS_H_
#define VMEMFS_VMI_LINUX_LINUX_OS_H_

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "vmi/linux/file_path.h"
#include "vmi/linux/kernel_layout.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/kernel_types.h"
#include "vmi/linux/modules.h"
#include "vmi/linux/overrides.h"
#include "vmi/symbol_table.h"
#include "vmi/linux/task_layout.h"
#include "vmi/linux/tasks.h"
#include "vmi/linux/vma_layout.h"
#include "vmi/linux/vmcoreinfo.h"
#include "vmi/os.h"

namespace vmemfs::vmi::linux_os {

class LinuxOs : public OperatingSystem {
 public:
  // kNotFound if the guest shows no sign of Linux (no VMCOREINFO note). `overrides` (see
  // overrides.h) replace the kallsyms symbols and/or the BTF types; a file that cannot be
  // loaded is an error (kOs/kBadData naming it).
  // REQUIRES: no concurrent use of `guest` yet (it may set the kernel page tables).
  static Result<std::unique_ptr<LinuxOs>> Discover(Guest& guest,
                                                   const LinuxOverrides& overrides = {});

  std::string_view name() const override { return "linux"; }
  std::vector<std::pair<std::string, std::string>> Describe() const override;
  Result<std::vector<TaskSummary>> Tasks() override;
  Result<uint64_t> PageTableRoot(int32_t pid) override;
  Result<std::string> Cmdline(int32_t pid) override;
  Result<std::string> Environ(int32_t pid) override;
  Result<std::string> StatusText(int32_t pid) override;
  Result<std::string> ExePath(int32_t pid) override;
  Result<std::vector<MemoryArea>> MemoryAreas(int32_t pid) override;
  Result<std::string> MapsText(int32_t pid) override;
  Result<std::string> ModulesText() override;
  // Kernel and module symbols; the modules' are those loaded at discovery.
  const SymbolTable& Symbols() const override { return symbols_; }
  void Flush() override;

 private:
  explicit LinuxOs(Guest& guest) : guest_(guest), memory_(guest) {}
  Status FindSymbols();
  Status FindTypes();
  Status UseOverrideSymbols();  // overrides.h: --symbols / --isf
  Status UseOverrideTypes();    // overrides.h: --isf / --offsets
  // Appends the loaded modules' symbols to symbols_ (after the kernel's: /proc/kallsyms order).
  Status FindModuleSymbols();
  // One reading of the task list; shared so readers keep theirs while a newer one is made.
  struct TaskSnapshot {
    std::vector<Task> tasks;  // every thread, by pid
    std::map<int32_t, size_t> by_pid;
    Status status;  // why the walk stopped early, if it did
    std::chrono::steady_clock::time_point taken;
  };
  // The current snapshot: read once for snapshots; for live guests again when older than
  // kLiveTaskListAge or flushed.
  Result<std::shared_ptr<const TaskSnapshot>> AllTasks();
  std::shared_ptr<const TaskSnapshot> WalkTasks();
  Result<Task> FindTask(int32_t pid);

  Guest& guest_;
  KernelMemory memory_;
  std::optional<VmcoreInfo> vmcoreinfo_;
  std::string vmcoreinfo_source_;
  KernelLayout layout_{};
  SymbolTable symbols_;
  std::shared_ptr<const KernelTypes> types_;  // shared: override types serve every VM
  std::shared_ptr<const LoadedOverrides> overrides_;  // null: none given
  std::optional<TaskLayout> task_layout_;
  std::optional<VmaLayout> vma_layout_;
  std::optional<PathLayout> path_layout_;
  std::optional<ModuleLayout> module_layout_;
  std::vector<std::pair<std::string, std::string>> facts_;  // for Describe, including what failed

  mutable std::mutex tasks_mu_;
  std::shared_ptr<const TaskSnapshot> tasks_;  // GUARDED_BY(tasks_mu_)
};

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_LINUX_OS_H_
