// The guest's processes, from the kernel's task list alone: init_task.tasks (group leaders)
// and each leader's threads, as /proc would list them.
//
// Everything read is untrusted: every list walk is capped, checks next->prev == node and runs
// Brent's cycle detection, and a bad object is reported without ending the rest of the walk.
#ifndef VMEMFS_VMI_LINUX_TASKS_H_
#define VMEMFS_VMI_LINUX_TASKS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/task_layout.h"

namespace vmemfs::vmi::linux_os {

inline constexpr uint32_t kPfKthread = 0x00200000;  // include/linux/sched.h PF_KTHREAD
inline constexpr uint32_t kPfWqWorker = 0x00000020;  // PF_WQ_WORKER

struct TaskLimits {
  size_t max_tasks = 1'000'000;  // processes on init_task.tasks
  size_t max_threads_per_process = 100'000;
  size_t max_threads = 1'000'000;  // over all processes: thread lists may be shared by garbage
};

struct ThreadRef {
  uint64_t address;  // task_struct
  int32_t tid;
};

struct Task {
  uint64_t address = 0;  // task_struct VA
  uint64_t start_time = 0;  // task_struct.start_time, 0 when the kernel has none
  int32_t pid = 0;
  int32_t tgid = 0;
  int32_t ppid = 0;        // real_parent->tgid, as /proc shows it (0 for children of pid 0)
  char state = '?';        // the /proc/<pid>/stat letter: R S D T t X Z P I
  uint32_t raw_state = 0;  // __state
  uint32_t exit_state = 0;
  uint32_t flags = 0;
  bool kernel_thread = false;  // PF_KTHREAD
  uint32_t ids[8] = {};        // indexed by CredId: uid gid suid sgid euid egid fsuid fsgid
  std::string comm;            // at most comm_size - 1 bytes
  std::string name;            // what /proc shows: a kernel thread's full name, else comm
  uint64_t mm = 0;             // 0 for kernel threads
  uint64_t signal = 0;
  std::optional<uint64_t> dtb;     // physical address of mm->pgd
  int32_t nr_threads = 0;          // signal->nr_threads (the "Threads:" line)
  // Read with an inferred layout that lacks them (TaskLayout::creds, threads): the ids, or
  // nr_threads and the thread list beyond the leader, are unknown, not zero.
  bool has_ids = true;
  bool has_threads = true;
  std::vector<ThreadRef> threads;  // every thread of the group, the leader first
  // OK, or why part of this task could not be read (the fields concerned are left zero).
  Status error;
};

// Problems met by a walk that still returned tasks.
struct WalkReport {
  std::vector<Status> errors;  // per task (secondary objects that could not be read)
  // OK, or why the process list walk stopped before coming back to its head (it names the
  // task whose link was bad).
  Status stopped;
  bool truncated = false;  // a cap stopped the process list
};

// The /proc state letter for __state and exit_state (fs/proc/array.c task_state_array,
// include/linux/sched.h __task_state_index of 6.1).
char TaskStateLetter(uint32_t state, uint32_t exit_state);
// "S (sleeping)" etc. as the State: line of /proc/<pid>/status shows it.
std::string_view TaskStateName(char letter);

// Reads one task_struct (any thread). Errors only when the task_struct itself is unreadable;
// secondary objects (parent, cred, mm, signal) that fail are recorded in Task::error. Threads
// are not listed here.
Result<Task> ReadTask(KernelMemory& mem, const TaskLayout& layout, uint64_t address);

// Every process (thread-group leader) on init_task.tasks, in list order, with its threads,
// without the idle task (pid 0, init_task itself), as /proc lists them. Fails only when the list
// head cannot be read. A broken link, a cycle or a cap ends the walk: the tasks found so far
// are returned, with the reason in `report` (when given). A task whose own struct cannot be
// read ends the walk too (its links are in it); one whose thread list is broken keeps the
// threads found and gets Task::error.
Result<std::vector<Task>> ListTasks(KernelMemory& mem, const TaskLayout& layout,
                                    uint64_t init_task_va, const TaskLimits& limits = {},
                                    WalkReport* report = nullptr);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_TASKS_H_
