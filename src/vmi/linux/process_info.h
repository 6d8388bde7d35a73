// Per-process files in the manner of /proc/<pid>: cmdline, environ and the status lines
// vmemfs knows, from a Task found by ListTasks.
#ifndef VMEMFS_VMI_LINUX_PROCESS_INFO_H_
#define VMEMFS_VMI_LINUX_PROCESS_INFO_H_

#include <cstdint>
#include <string>

#include "base/status.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/task_layout.h"
#include "vmi/linux/tasks.h"

namespace vmemfs::vmi::linux_os {

inline constexpr size_t kMaxArgBytes = 128 * 1024;

// The user address ranges an mm_struct records.
struct MmInfo {
  uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  uint64_t start_brk = 0, brk = 0, start_stack = 0, exe_file = 0;
};

// Reads task.mm's ranges. kNotFound for a task without mm (kernel thread).
Result<MmInfo> ReadMmInfo(KernelMemory& mem, const TaskLayout& layout, const Task& task);

// /proc/<pid>/cmdline: the bytes [arg_start, arg_end) read through the process's own page
// tables, at most max_bytes. As in 6.1's get_mm_cmdline, if the last byte is not NUL (the
// process rewrote its arguments, setproctitle style) only the first string of the first page
// is returned. Reading stops at the first unreadable page (/proc returns what it read).
// Simplification: the 6.1 rule that continues into the environment is not followed.
// Empty for kernel threads.
Result<std::string> ReadCmdline(KernelMemory& mem, const TaskLayout& layout, const Task& task,
                                size_t max_bytes = kMaxArgBytes);

// /proc/<pid>/environ: the bytes [env_start, env_end), at most max_bytes, read as cmdline is.
Result<std::string> ReadEnviron(KernelMemory& mem, const TaskLayout& layout, const Task& task,
                                size_t max_bytes = kMaxArgBytes);

// The lines of /proc/<pid>/status vmemfs can produce, in /proc's order and format:
// Name, State, Tgid, Pid, PPid, Uid (real effective saved fs), Gid (same), Threads.
std::string StatusText(const Task& task);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_PROCESS_INFO_H_
