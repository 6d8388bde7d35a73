#include "vmi/linux/linux_process.h"

#include "vmi/linux/maps_text.h"
#include "vmi/linux/process_info.h"
#include "vmi/linux/vma_ranges.h"
#include "vmi/linux/vmas.h"

namespace vmemfs::vmi::linux_os {

LinuxProcess::LinuxProcess(std::shared_ptr<LinuxOs> os, const Task& task)
    : os_(std::move(os)),
      pid_(task.pid),
      tgid_(task.tgid),
      kernel_thread_(task.kernel_thread),
      identity_(LinuxOs::Identity(task)) {}

Result<std::string> LinuxProcess::Comm() {
  auto batch = Batch();
  VMEMFS_ASSIGN_OR_RETURN(Task task, Now());
  return task.name;
}

Result<AddressSpace> LinuxProcess::UserSpace() {
  auto batch = Batch();
  VMEMFS_ASSIGN_OR_RETURN(Task task, Now());
  if (!task.dtb) return NotFoundError("task " + std::to_string(pid_) + " has no address space");
  return AddressSpace{os_->memory().kernel().mode, *task.dtb};
}

Result<std::string> LinuxProcess::Cmdline() {
  auto batch = Batch();
  VMEMFS_ASSIGN_OR_RETURN(Task task, Now());
  if (!task.mm) return std::string();
  return ReadCmdline(os_->memory(), *os_->task_layout(), task);
}

Result<std::string> LinuxProcess::Environ() {
  auto batch = Batch();
  VMEMFS_ASSIGN_OR_RETURN(Task task, Now());
  if (!task.mm) return std::string();
  return ReadEnviron(os_->memory(), *os_->task_layout(), task);
}

Result<std::string> LinuxProcess::StatusText() {
  auto batch = Batch();
  VMEMFS_ASSIGN_OR_RETURN(Task task, Now());
  return linux_os::StatusText(task);
}

Result<std::string> LinuxProcess::ExePath() {
  auto batch = Batch();
  VMEMFS_ASSIGN_OR_RETURN(Task task, Now());
  VMEMFS_ASSIGN_OR_RETURN(MmInfo mm, ReadMmInfo(os_->memory(), *os_->task_layout(), task));
  if (!mm.exe_file) return NotFoundError("task " + std::to_string(pid_) + " has no executable");
  if (!os_->path_layout()) return UnsupportedError("no path layout");
  return FilePath(os_->memory(), *os_->path_layout(), mm.exe_file);
}

Result<std::vector<MemoryArea>> LinuxProcess::MemoryAreas() {
  auto batch = Batch();
  VMEMFS_ASSIGN_OR_RETURN(Task task, Now());
  if (task.mm && !os_->vma_layout() && os_->vma_ranges()) {
    VMEMFS_ASSIGN_OR_RETURN(auto ranges,
                            ListVmaRanges(os_->memory(), *os_->vma_ranges(), task.mm));
    std::vector<MemoryArea> areas;
    areas.reserve(ranges.size());
    for (const VmaRange& r : ranges) areas.push_back({r.start, r.end, "", ""});
    return areas;
  }
  if (!task.mm || !os_->vma_layout()) return std::vector<MemoryArea>();
  VMEMFS_ASSIGN_OR_RETURN(auto vmas, ListVmas(os_->memory(), *os_->vma_layout(), task.mm));
  std::vector<MemoryArea> areas;
  areas.reserve(vmas.size());
  for (const Vma& v : vmas) areas.push_back({v.start, v.end, "", v.path});
  return areas;
}

Result<std::string> LinuxProcess::MapsText() {
  auto batch = Batch();
  VMEMFS_ASSIGN_OR_RETURN(Task task, Now());
  if (task.mm && !os_->vma_layout() && os_->task_layout()->partial) {
    // An empty maps would claim the process maps nothing.
    return UnsupportedError("VMA flags and files are not known for this kernel");
  }
  if (!task.mm || !os_->vma_layout()) return std::string();
  VMEMFS_ASSIGN_OR_RETURN(auto vmas, ListVmas(os_->memory(), *os_->vma_layout(), task.mm));
  VMEMFS_ASSIGN_OR_RETURN(MmInfo mm, ReadMmInfo(os_->memory(), *os_->task_layout(), task));
  return linux_os::MapsText(vmas, mm, os_->memory().pointer_size());
}

}  // namespace vmemfs::vmi::linux_os
