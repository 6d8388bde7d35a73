// Where the fields the task walkers need live in this kernel's task_struct, cred, mm_struct and
// signal_struct: resolved once from BTF into plain numbers, so the walkers never look names up
// and tests can hand them a synthetic layout.
#ifndef VMEMFS_VMI_LINUX_TASK_LAYOUT_H_
#define VMEMFS_VMI_LINUX_TASK_LAYOUT_H_

#include <cstdint>

#include "base/status.h"
#include "vmi/linux/kernel_types.h"
#include "vmi/linux/layout_resolver.h"

namespace vmemfs::vmi::linux_os {

// An integer member: byte offset and width (1, 2, 4 or 8).

struct TaskLayout {
  // Width of every pointer member below (task_struct.mm, signal, ..., mm_struct.pgd): 8, or 4
  // on a 32-bit kernel.
  uint64_t pointer_size = 8;
  // An inferred layout (task_layout_infer.h) knows only tasks, pid, tgid, comm, mm, mm_pgd,
  // real_parent and, when found, flags, state, the mm_struct argument fields (mm_args),
  // credentials (creds) and threads (threads): kernel thread names are left out.
  bool partial = false;
  bool mm_args = true;  // mm_arg_start .. mm_env_end, start_brk, brk, start_stack are known
  bool creds = true;    // real_cred and cred_ids are known
  bool threads = true;  // signal, signal_nr_threads and the thread list's offsets are known
  // task_struct
  uint64_t task_size = 0;
  uint64_t tasks = 0;  // list_head: the process list (group leaders), head init_task.tasks
  Field pid, tgid;
  uint64_t comm = 0;  // char[comm_size]
  uint64_t comm_size = 0;
  uint64_t mm = 0, active_mm = 0, real_parent = 0, group_leader = 0, signal = 0;
  uint64_t real_cred = 0;  // the objective credentials /proc shows (cred as fallback)
  Field state;             // __state (5.14+) or state
  Field exit_state;
  Field flags;  // PF_KTHREAD lives here
  // Threads: signal->thread_head + task.thread_node (3.14+) when both exist, else the
  // headless ring task.thread_group.
  bool has_thread_node = false;
  uint64_t thread_node = 0;
  uint64_t signal_thread_head = 0;
  uint64_t thread_group = 0;  // valid when !has_thread_node
  Field signal_nr_threads;
  // Kernel threads' full names (/proc shows them, task->comm cuts them at 15 bytes):
  // task_struct.worker_private -> struct kthread, kthread.full_name. 0: the kernel has none.
  uint64_t worker_private = 0;
  uint64_t kthread_full_name = 0;
  // task_struct.start_time (monotonic ns at fork): with the address, tells a task from a later
  // one that reuses its task_struct. size 0: the kernel has none (the address alone is used).
  Field start_time;

  // cred: uid, gid, suid, sgid, euid, egid, fsuid, fsgid (kuid_t/kgid_t, 4 bytes each)
  uint64_t cred_ids[8] = {};

  // mm_struct
  uint64_t mm_pgd = 0, mm_arg_start = 0, mm_arg_end = 0, mm_env_start = 0, mm_env_end = 0;
  uint64_t mm_exe_file = 0, mm_start_brk = 0, mm_brk = 0, mm_start_stack = 0, mm_mt = 0;
  uint64_t mm_size = 0;

  // The smallest byte window [window_start, window_start + window_size) of task_struct that
  // holds every field above, so a task is fetched with one read.
  uint64_t window_start = 0;
  uint64_t window_size = 0;
};

// Index of the ids in TaskLayout::cred_ids and Task::ids.
enum CredId { kUid, kGid, kSuid, kSgid, kEuid, kEgid, kFsuid, kFsgid };

// Resolves every offset from BTF. kNotFound naming the first missing member ("task_struct.tasks");
// kBadData if a member has an impossible size (an integer wider than 8 bytes, comm not 1..64).
Result<TaskLayout> ResolveTaskLayout(const KernelTypes& types);

// Fills window_start/window_size from the other task_struct fields (for synthetic layouts too).
void ComputeTaskWindow(TaskLayout& layout);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_TASK_LAYOUT_H_
