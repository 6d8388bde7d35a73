// One Linux task as a vmi::Process: a handle that names the task (pid + identity) and reads
// its answers from the current task list and from guest memory at each call.
#ifndef VMEMFS_VMI_LINUX_LINUX_PROCESS_H_
#define VMEMFS_VMI_LINUX_LINUX_PROCESS_H_

#include <memory>

#include "vmi/linux/linux_os.h"
#include "vmi/linux/tasks.h"
#include "vmi/os.h"

namespace vmemfs::vmi::linux_os {

class LinuxProcess : public vmi::Process {
 public:
  // `task`: as the walk that found it read it.
  LinuxProcess(std::shared_ptr<LinuxOs> os, const Task& task);

  int32_t pid() const override { return pid_; }
  int32_t tgid() const override { return tgid_; }
  bool kernel_thread() const override { return kernel_thread_; }
  uint64_t identity() const override { return identity_; }

  Result<std::string> Comm() override;
  Result<AddressSpace> UserSpace() override;
  Result<std::string> Cmdline() override;
  Result<std::string> Environ() override;
  Result<std::string> StatusText() override;
  Result<std::string> ExePath() override;
  Result<std::vector<MemoryArea>> MemoryAreas() override;
  Result<std::string> MapsText() override;

 private:
  // The task as the current task list has it; kNotFound once it has exited.
  Result<Task> Now() { return os_->CurrentTask(pid_, identity_); }
  // What each answer reads belongs together (Guest::Batch).
  Guest::Batch Batch() { return Guest::Batch(os_->memory().guest()); }

  const std::shared_ptr<LinuxOs> os_;
  const int32_t pid_;
  const int32_t tgid_;
  const bool kernel_thread_;
  const uint64_t identity_;
};

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_LINUX_PROCESS_H_
