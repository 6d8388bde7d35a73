#include "vmi/linux/task_layout.h"

#include <algorithm>
#include <string>

namespace vmemfs::vmi::linux_os {
namespace {

void ResolveTask(LayoutResolver& r, const KernelTypes& types, TaskLayout& l) {
  l.task_size = r.Size("task_struct");
  l.tasks = r.Offset("task_struct", "tasks");
  l.pid = r.Integer("task_struct", "pid");
  l.tgid = r.Integer("task_struct", "tgid");
  l.comm = r.Offset("task_struct", "comm");
  if (auto comm = types.Member("task_struct", "comm")) l.comm_size = comm->size;
  if (r.status().ok() && (l.comm_size == 0 || l.comm_size > 64)) {
    r.Fail(BadDataError("task_struct.comm has " + std::to_string(l.comm_size) + " bytes"));
  }
  l.mm = r.Offset("task_struct", "mm");
  l.active_mm = r.Offset("task_struct", "active_mm");
  l.real_parent = r.Offset("task_struct", "real_parent");
  l.group_leader = r.Offset("task_struct", "group_leader");
  l.signal = r.Offset("task_struct", "signal");
  l.real_cred =
      r.Offset("task_struct", types.Has("task_struct", "real_cred") ? "real_cred" : "cred");
  l.state = r.Integer("task_struct", types.Has("task_struct", "__state") ? "__state" : "state");
  l.exit_state = r.Integer("task_struct", "exit_state");
  l.flags = r.Integer("task_struct", "flags");
  l.has_thread_node =
      types.Has("task_struct", "thread_node") && types.Has("signal_struct", "thread_head");
  if (l.has_thread_node) {
    l.thread_node = r.Offset("task_struct", "thread_node");
    l.signal_thread_head = r.Offset("signal_struct", "thread_head");
  } else {
    l.thread_group = r.Offset("task_struct", "thread_group");
  }
  l.signal_nr_threads = r.Integer("signal_struct", "nr_threads");
  // Optional (6.0+): without them kernel threads are named by their 15-byte comm.
  auto worker = types.Member("task_struct", "worker_private");
  auto full_name = types.Member("kthread", "full_name");
  if (worker && full_name) {
    l.worker_private = worker->offset;
    l.kthread_full_name = full_name->offset;
  }
  if (auto start = types.Member("task_struct", "start_time");
      start && start->bit_size == 0 && start->size == 8) {
    l.start_time = {start->offset, 8};
  }
}

void ResolveCred(LayoutResolver& r, TaskLayout& l) {
  static constexpr const char* kNames[8] = {"uid",  "gid",  "suid",  "sgid",
                                            "euid", "egid", "fsuid", "fsgid"};
  for (int i = 0; i < 8; ++i) l.cred_ids[i] = r.Offset("cred", kNames[i]);
}

void ResolveMm(LayoutResolver& r, TaskLayout& l) {
  l.mm_size = r.Size("mm_struct");
  l.mm_pgd = r.Offset("mm_struct", "pgd");
  l.mm_arg_start = r.Offset("mm_struct", "arg_start");
  l.mm_arg_end = r.Offset("mm_struct", "arg_end");
  l.mm_env_start = r.Offset("mm_struct", "env_start");
  l.mm_env_end = r.Offset("mm_struct", "env_end");
  l.mm_exe_file = r.Offset("mm_struct", "exe_file");
  l.mm_start_brk = r.Offset("mm_struct", "start_brk");
  l.mm_brk = r.Offset("mm_struct", "brk");
  l.mm_start_stack = r.Offset("mm_struct", "start_stack");
  l.mm_mt = r.Offset("mm_struct", "mm_mt");
}

}  // namespace

void ComputeTaskWindow(TaskLayout& l) {
  const uint64_t p = l.pointer_size;
  const std::pair<uint64_t, uint64_t> fields[] = {
      {l.tasks, 2 * p},
      {l.pid.offset, l.pid.size},
      {l.tgid.offset, l.tgid.size},
      {l.comm, l.comm_size},
      {l.mm, p},
      {l.active_mm, p},
      {l.real_parent, p},
      {l.group_leader, p},
      {l.signal, p},
      {l.real_cred, p},
      {l.state.offset, l.state.size},
      {l.exit_state.offset, l.exit_state.size},
      {l.flags.offset, l.flags.size},
      {l.has_thread_node ? l.thread_node : l.thread_group, 2 * p},
      {l.start_time.size ? l.start_time.offset : l.tasks, l.start_time.size ? 8 : 2 * p}};
  uint64_t lo = UINT64_MAX, hi = 0;
  for (auto [offset, size] : fields) {
    if (size == 0) continue;  // unknown in an inferred layout
    lo = std::min(lo, offset);
    hi = std::max(hi, offset + size);
  }
  l.window_start = lo;
  l.window_size = hi - lo;
}

Result<TaskLayout> ResolveTaskLayout(const KernelTypes& types) {
  TaskLayout layout;
  LayoutResolver r(types);
  ResolveTask(r, types, layout);
  ResolveCred(r, layout);
  ResolveMm(r, layout);
  if (!r.status().ok()) return r.status();
  ComputeTaskWindow(layout);
  if (layout.window_start + layout.window_size > layout.task_size) {
    return BadDataError("BTF: task_struct members lie outside its size");
  }
  return layout;
}

}  // namespace vmemfs::vmi::linux_os
