#include "vmi/linux/tasks.h"

#include <algorithm>
#include <cstring>
#include <span>

#include "base/checked.h"
#include "base/hex.h"
#include "vmi/linux/list_walk.h"

namespace vmemfs::vmi::linux_os {
namespace {

// A layout from BTF keeps these far smaller (task_struct is ~10 KiB); the caps only stop a
// synthetic or corrupt layout from making us allocate without bound.
constexpr uint64_t kMaxWindow = 64 * 1024;
constexpr uint64_t kMaxCredWindow = 4096;

// include/linux/sched.h (6.1) task state bits used by __task_state_index.
constexpr uint32_t kTaskReport = 0x7f;  // R..P bits reported as-is
constexpr uint32_t kTaskUninterruptible = 0x2;
constexpr uint32_t kTaskNoload = 0x400;
constexpr uint32_t kTaskIdle = kTaskUninterruptible | kTaskNoload;
constexpr uint32_t kTaskRtlockWait = 0x1000;
constexpr uint32_t kTaskReportIdle = kTaskReport + 1;

uint64_t LoadLe(std::span<const std::byte> buf, uint64_t offset, uint64_t size) {
  uint64_t v = 0;  // the caller checked offset + size <= buf.size() via the layout window
  std::memcpy(&v, buf.data() + offset, size);
  return v;
}

void Note(Task& task, Status s, std::string_view what) {
  if (task.error.ok() && !s.ok()) task.error = s.WithContext(what);
}

void ReadCred(KernelMemory& mem, const TaskLayout& l, uint64_t cred, Task& task) {
  uint64_t lo = *std::min_element(std::begin(l.cred_ids), std::end(l.cred_ids));
  uint64_t hi = *std::max_element(std::begin(l.cred_ids), std::end(l.cred_ids)) + 4;
  if (hi - lo > kMaxCredWindow) return Note(task, InvalidArgumentError("cred layout"), "cred");
  auto start = CheckedAdd(cred, lo);
  if (!start) return Note(task, FaultError(cred), "cred");
  std::vector<std::byte> buf(hi - lo);
  if (Status s = mem.Read(*start, buf); !s.ok()) return Note(task, s, "cred");
  for (int i = 0; i < 8; ++i)
    task.ids[i] = static_cast<uint32_t>(LoadLe(buf, l.cred_ids[i] - lo, 4));
}

void ReadMm(KernelMemory& mem, const TaskLayout& l, Task& task) {
  if (task.mm == 0) return;
  auto pgd = mem.Pointer(task.mm + l.mm_pgd);
  if (!pgd) return Note(task, pgd.error(), "mm->pgd");
  auto dtb = mem.Translate(*pgd);
  if (!dtb) return Note(task, dtb.error(), "mm->pgd translation");
  task.dtb = *dtb;
}

void ReadLinked(KernelMemory& mem, const TaskLayout& l, uint64_t parent, Task& task) {
  if (parent != 0) {
    auto ppid = mem.Unsigned(parent + l.tgid.offset, l.tgid.size);
    if (ppid) task.ppid = static_cast<int32_t>(*ppid);
    Note(task, ppid.status(), "real_parent");
  }
  if (task.signal != 0) {
    auto n = mem.Unsigned(task.signal + l.signal_nr_threads.offset, l.signal_nr_threads.size);
    if (n) task.nr_threads = static_cast<int32_t>(*n);
    Note(task, n.status(), "signal");
  }
}

// Appends the group's threads (leader first) to task.threads.
// At most `max_threads` threads.
void ListThreads(KernelMemory& mem, const TaskLayout& l, size_t max_threads, Task& task) {
  task.threads.push_back({task.address, task.pid});
  uint64_t head, node_offset;
  if (l.has_thread_node) {
    if (task.signal == 0) return;
    head = task.signal + l.signal_thread_head;
    node_offset = l.thread_node;
  } else {
    head = task.address + l.thread_group;  // a ring through the threads, no separate head
    node_offset = l.thread_group;
  }
  WalkEnd end = WalkList(mem, head, max_threads, [&](uint64_t node) {
    uint64_t thread = node - node_offset;
    if (thread == task.address) return Status();
    VMEMFS_ASSIGN_OR_RETURN(uint64_t tid, mem.Unsigned(thread + l.pid.offset, l.pid.size));
    task.threads.push_back({thread, static_cast<int32_t>(tid)});
    return Status();
  });
  Note(task, end.status, "thread list");
}

}  // namespace

char TaskStateLetter(uint32_t state, uint32_t exit_state) {
  static constexpr char kLetters[] = "RSDTtXZPI";  // task_state_array, by fls() of the state
  uint32_t report = (state | exit_state) & kTaskReport;
  if ((state & kTaskIdle) == kTaskIdle) report = kTaskReportIdle;
  if (state == kTaskRtlockWait) report = kTaskUninterruptible;  // shown as an rt_mutex wait
  int index = report == 0 ? 0 : 32 - __builtin_clz(report);
  return kLetters[index];
}

std::string_view TaskStateName(char letter) {
  switch (letter) {
    case 'R':
      return "R (running)";
    case 'S':
      return "S (sleeping)";
    case 'D':
      return "D (disk sleep)";
    case 'T':
      return "T (stopped)";
    case 't':
      return "t (tracing stop)";
    case 'X':
      return "X (dead)";
    case 'Z':
      return "Z (zombie)";
    case 'P':
      return "P (parked)";
    case 'I':
      return "I (idle)";
    default:
      return "? (unknown)";
  }
}

namespace {

// A kernel thread's full name (kthread->full_name, as /proc's proc_task_name shows it); a
// failure keeps the comm name.
void ReadKthreadName(KernelMemory& mem, const TaskLayout& l, uint64_t address, Task& task) {
  if (l.worker_private == 0) return;
  // As /proc: names of up to 63 bytes (its buffer is 64).
  constexpr size_t kMaxName = 63;
  auto kthread = mem.Pointer(address + l.worker_private);
  if (!kthread || *kthread == 0) return;
  auto name_ptr = mem.Pointer(*kthread + l.kthread_full_name);
  if (!name_ptr || *name_ptr == 0) return;
  if (auto name = mem.String(*name_ptr, kMaxName); name && !name->empty()) task.name = *name;
}

}  // namespace

Result<Task> ReadTask(KernelMemory& mem, const TaskLayout& l, uint64_t address) {
  if (l.window_size == 0 || l.window_size > kMaxWindow) {
    return InvalidArgumentError("task layout window of " + std::to_string(l.window_size));
  }
  auto start = CheckedAdd(address, l.window_start);
  if (!start) return FaultError(address, "task_struct");
  std::vector<std::byte> buf(l.window_size);
  VMEMFS_TRY(mem.Read(*start, buf));
  auto get = [&](uint64_t offset, uint64_t size) {
    return LoadLe(buf, offset - l.window_start, size);
  };
  Task task;
  task.address = address;
  task.has_ids = l.creds;
  task.has_threads = l.threads;
  task.pid = static_cast<int32_t>(get(l.pid.offset, l.pid.size));
  task.tgid = static_cast<int32_t>(get(l.tgid.offset, l.tgid.size));
  task.raw_state = static_cast<uint32_t>(get(l.state.offset, l.state.size));
  task.exit_state = static_cast<uint32_t>(get(l.exit_state.offset, l.exit_state.size));
  task.state = l.state.size ? TaskStateLetter(task.raw_state, task.exit_state) : '?';
  task.flags = static_cast<uint32_t>(get(l.flags.offset, l.flags.size));
  if (l.start_time.size != 0) task.start_time = get(l.start_time.offset, 8);
  task.kernel_thread = (task.flags & kPfKthread) != 0;
  const char* comm = reinterpret_cast<const char*>(buf.data() + (l.comm - l.window_start));
  task.comm.assign(comm, strnlen(comm, l.comm_size > 0 ? l.comm_size - 1 : 0));
  task.name = task.comm;
  // Workqueue threads are named by comm (plus a worker description /proc adds, not read here).
  if (task.kernel_thread && !(task.flags & kPfWqWorker)) {
    ReadKthreadName(mem, l, address, task);
  }
  const uint64_t p = l.pointer_size;
  task.mm = get(l.mm, p);
  if (l.threads) task.signal = get(l.signal, p);
  ReadLinked(mem, l, get(l.real_parent, p), task);
  if (l.creds) {
    if (uint64_t cred = get(l.real_cred, p); cred != 0) ReadCred(mem, l, cred, task);
  }
  ReadMm(mem, l, task);
  return task;
}

Result<std::vector<Task>> ListTasks(KernelMemory& mem, const TaskLayout& layout,
                                    uint64_t init_task_va, const TaskLimits& limits,
                                    WalkReport* report) {
  uint64_t head = init_task_va + layout.tasks;
  VMEMFS_TRY(mem.Pointer(head).status().WithContext("init_task.tasks"));
  std::vector<Task> tasks;
  size_t threads_left = limits.max_threads;
  WalkEnd end = WalkList(mem, head, limits.max_tasks, [&](uint64_t node) -> Status {
    uint64_t address = node - layout.tasks;
    auto task = ReadTask(mem, layout, address);
    if (!task) return task.error().WithContext("unreadable task_struct");
    if (!layout.threads) {
      task->threads.push_back({task->address, task->pid});  // no thread list known
    } else {
      ListThreads(mem, layout, std::min(limits.max_threads_per_process, threads_left), *task);
    }
    threads_left -= std::min(threads_left, task->threads.size());
    if (report != nullptr && !task->error.ok()) {
      report->errors.push_back(task->error.WithContext("pid " + std::to_string(task->pid)));
    }
    tasks.push_back(std::move(*task));
    return Status();
  });
  if (report != nullptr && !end.status.ok()) {
    report->stopped = end.status.WithContext(
        end.at == head ? "at init_task" : "at task " + Hex(end.at - layout.tasks));
    report->truncated = report->truncated || end.capped;
  }
  return tasks;
}

}  // namespace vmemfs::vmi::linux_os
