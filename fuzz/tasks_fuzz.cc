// Fuzzes the task walk (ListTasks, ReadTask) over hostile kernel memory.
//
// Input: [head offset:2][image...]. The image is kernel memory (fuzz_kernel.h); init_task is
// at the head offset within it and task_structs follow a fixed, compact TaskLayout. Checks
// that nothing crashes or hangs, that the caps hold, and that strings stay within their sizes.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz_kernel.h"
#include "vmi/linux/tasks.h"

namespace vmemfs::vmi::linux_os {
namespace {

using fuzz::FuzzKernel;
using fuzz::Require;

TaskLayout Layout() {
  TaskLayout l;
  l.task_size = 0x100;
  l.tasks = 0x10;
  l.pid = {0x20, 4};
  l.tgid = {0x24, 4};
  l.comm = 0x30;
  l.comm_size = 16;
  l.mm = 0x40;
  l.active_mm = 0x48;
  l.real_parent = 0x50;
  l.group_leader = 0x58;
  l.signal = 0x60;
  l.real_cred = 0x68;
  l.state = {0x70, 4};
  l.exit_state = {0x74, 4};
  l.flags = {0x78, 4};
  l.has_thread_node = true;
  l.thread_node = 0x80;
  l.signal_thread_head = 0x10;
  l.signal_nr_threads = {0x8, 4};
  l.worker_private = 0x90;
  l.kthread_full_name = 0x8;
  for (int i = 0; i < 8; ++i) l.cred_ids[i] = 4 + 4 * i;
  l.mm_pgd = 0x8;
  ComputeTaskWindow(l);
  return l;
}

void CheckTask(const Task& t, const TaskLimits& limits) {
  Require(t.comm.size() < 16);
  Require(t.name.size() <= 63 || t.name == t.comm);
  Require(t.threads.size() <= limits.max_threads_per_process + 1);
}

void Run(const uint8_t* data, size_t size) {
  if (size < 2) return;
  uint16_t head;
  std::memcpy(&head, data, 2);
  FuzzKernel k(std::span(data + 2, size - 2));
  static const TaskLayout layout = Layout();
  TaskLimits limits{.max_tasks = 32, .max_threads_per_process = 16};
  WalkReport report;
  auto tasks = ListTasks(k.mem(), layout, FuzzKernel::Va(head), limits, &report);
  if (tasks) {
    Require(tasks->size() <= limits.max_tasks);
    for (const Task& t : *tasks) CheckTask(t, limits);
    if (report.truncated) Require(!report.stopped.ok());
  }
  if (auto task = ReadTask(k.mem(), layout, FuzzKernel::Va(head))) CheckTask(*task, limits);
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vmemfs::vmi::linux_os::Run(data, size);
  return 0;
}
