// Linux as a vmi::OperatingSystem: one running kernel, found from the guest's memory alone
// (linux_finder.h finds it; this object is what it found).
//
// Created from a verified kernel layout (VMCOREINFO + page tables), it reads: the kallsyms
// tables (only names that check out are kept), the BTF type information (by its symbols, or
// by its header in the kernel image when the names are damaged) → struct layouts → init_task
// (likewise) → the modules' symbols. Each step that fails leaves the others usable (a kernel
// without BTF still has symbols, one with damaged names still has processes), and Describe
// says how each was found and what failed. The task list is read again whenever
// the guest's freshness generation moves (a snapshot's once).
#ifndef VMEMFS_VMI_LINUX_LINUX_OS_H_
#define VMEMFS_VMI_LINUX_LINUX_OS_H_

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vmi/linux/file_path.h"
#include "vmi/linux/kernel_image.h"
#include "vmi/linux/kernel_layout.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/kernel_types.h"
#include "vmi/linux/modules.h"
#include "vmi/linux/overrides.h"
#include "vmi/linux/task_layout.h"
#include "vmi/linux/tasks.h"
#include "vmi/linux/vma_ranges.h"
#include "vmi/linux/vma_layout.h"
#include "vmi/linux/vmcoreinfo.h"
#include "vmi/os.h"
#include "vmi/symbol_table.h"

namespace vmemfs::vmi::linux_os {

// Where the kernel's VMCOREINFO came from.
struct VmcoreInfoOrigin {
  std::optional<uint64_t> note_pa;  // the note's physical address, when read from RAM
  std::string how;                  // for `info`
};

class LinuxOs : public OperatingSystem, public std::enable_shared_from_this<LinuxOs> {
 public:
  // `layout` is verified (FindKernelLayout); `overrides` may be null. Never fails: what cannot
  // be found is reported by Describe.
  static std::shared_ptr<LinuxOs> Create(Guest& guest, VmcoreInfo info, VmcoreInfoOrigin origin,
                                         KernelLayout layout,
                                         std::shared_ptr<const LoadedOverrides> overrides);

  std::string_view name() const override { return "linux"; }
  std::vector<Fact> Describe() override;
  Result<std::vector<int32_t>> ProcessIds() override;
  Result<std::vector<int32_t>> ThreadIds(int32_t tgid) override;
  Result<std::shared_ptr<vmi::Process>> Process(int32_t pid) override;
  Result<std::string> ModulesText() override;
  const SymbolTable& Symbols() const override { return symbols_; }
  // isf/<release>.json (kernel_isf.h) when the kernel has BTF.
  std::vector<SymbolFile> SymbolFiles() override;
  Result<bool> StillRunning() override;
  int MissingParts() const override;
  // core_dump_hints.h; found at the first call and kept (they do not change while it runs).
  Result<CoreDumpHints> CoreDump() override;

  // --- For LinuxProcess ---
  // The task `pid` of the current task list if it is the task `identity` names; kNotFound
  // once it has exited or its pid names another task.
  Result<Task> CurrentTask(int32_t pid, uint64_t identity);
  KernelMemory& memory() { return memory_; }
  const std::optional<TaskLayout>& task_layout() const { return task_layout_; }
  const std::optional<VmaLayout>& vma_layout() const { return vma_layout_; }
  const std::optional<PathLayout>& path_layout() const { return path_layout_; }
  // VMA ranges only (vma_ranges.h), when vma_layout() is absent: inferred 32-bit kernels.
  const std::optional<VmaRangeLayout>& vma_ranges() const { return vma_ranges_; }

  // What tells a task from a later one with the same pid (or task_struct).
  static uint64_t Identity(const Task& task);

 private:
  LinuxOs(Guest& guest, VmcoreInfo info, VmcoreInfoOrigin origin, KernelLayout layout,
          std::shared_ptr<const LoadedOverrides> overrides);
  void Discover();
  Status FindSymbols();
  Status FindTypes();
  Status BtfBySymbols(std::string* how);
  Status FindInitTask();
  // The kernel image's mappings (kernel_image.h), walked once; empty if they cannot be.
  const std::vector<ImageRun>& Image();
  Status UseOverrideSymbols();  // overrides.h: --symbols / --isf
  Status UseOverrideTypes();    // overrides.h: --isf / --offsets
  // 32-bit kernels without BTF: the task list's offsets from memory (task_layout_infer.h).
  struct ImageWindow {
    uint64_t start;  // kernel VA
    uint64_t bytes;
  };
  Result<ImageWindow> ImageData(uint64_t max_bytes, const char* end_symbol, std::string_view what);
  Status InferTypes();
  Status InferVmas();  // after InferTypes found the VMA tree
  // The module layout from BTF and the head from the `modules` symbol, then AddModuleSymbols.
  Status FindModuleSymbols();
  // 32-bit kernels without BTF: both inferred from memory (module_layout_infer.h), likewise.
  Status InferModules();
  // Appends the loaded modules' symbols to symbols_ (after the kernel's: /proc/kallsyms order).
  Status AddModuleSymbols();
  // The loaded modules now.
  Result<std::vector<Module>> ReadModules(ModuleWalkReport* report);

  // One reading of the task list; shared so readers keep theirs while a newer one is made.
  struct TaskSnapshot {
    std::vector<Task> tasks;  // every thread with a plausible pid, by pid
    std::map<int32_t, size_t> by_pid;
    Status status;               // why the list could not be read at all, if so
    WalkReport report;           // how the walk ended
    size_t implausible = 0;      // tasks dropped for impossible ids
    std::string implausible_example;
    uint64_t generation = 0;     // Guest::generation() when read
  };
  // The task list of the guest's current generation.
  Result<std::shared_ptr<const TaskSnapshot>> AllTasks();
  std::shared_ptr<const TaskSnapshot> WalkTasks(uint64_t generation);
  static std::string ProcessesFact(const TaskSnapshot& snap);

  Guest& guest_;
  KernelMemory memory_;
  const VmcoreInfo vmcoreinfo_;
  const VmcoreInfoOrigin origin_;
  const KernelLayout layout_;
  const std::shared_ptr<const LoadedOverrides> overrides_;  // null: none given
  SymbolTable symbols_;
  std::shared_ptr<const KernelTypes> types_;  // shared: override types serve every VM
  std::optional<TaskLayout> task_layout_;
  std::optional<VmaLayout> vma_layout_;
  std::optional<PathLayout> path_layout_;
  std::optional<ModuleLayout> module_layout_;
  std::optional<uint64_t> modules_head_;  // the `modules` symbol's, or inferred (32-bit)
  std::optional<VmaRangeLayout> vma_ranges_;
  // The symbol's, or the idle task found in the image (BTF kernels) or inferred (32-bit).
  std::optional<uint64_t> init_task_;
  std::optional<std::vector<ImageRun>> image_;
  std::vector<Fact> facts_;  // found at creation, including what failed

  std::mutex isf_mu_;
  std::optional<Fact> isf_fact_;  // GUARDED_BY(isf_mu_): how the ISF was made, once it was
  std::once_flag core_dump_once_;
  std::optional<Result<CoreDumpHints>> core_dump_;  // set once, under core_dump_once_

  std::mutex tasks_mu_;
  std::shared_ptr<const TaskSnapshot> tasks_;  // GUARDED_BY(tasks_mu_)
};

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_LINUX_OS_H_
