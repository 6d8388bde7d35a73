// init_task found without symbol names: the task list's head is the boot CPU's idle task, a
// static task_struct in the kernel image's writable data whose comm is "swapper/0" ("swapper"
// before SMP bring-up renames it). Candidates are found by that name at the comm offset BTF
// gives, and one is accepted only if it is what init_task must be: pid 0, and its tasks list
// links back (tasks.next->prev == &tasks).
#ifndef VMEMFS_VMI_LINUX_INIT_TASK_SCAN_H_
#define VMEMFS_VMI_LINUX_INIT_TASK_SCAN_H_

#include <cstdint>
#include <span>

#include "base/status.h"
#include "vmi/linux/kernel_image.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/task_layout.h"

namespace vmemfs::vmi::linux_os {

// init_task's address. At most 64 MiB of writable data are read and 64 candidates checked.
// Errors: kNotFound saying what was looked at.
Result<uint64_t> FindInitTaskInImage(KernelMemory& memory, std::span<const ImageRun> image,
                                     const TaskLayout& layout);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_INIT_TASK_SCAN_H_
