// Where a 32-bit kernel without BTF keeps a process's threads: task_struct.signal, the
// signal_struct's thread_head ring through every thread's task_struct.thread_node (3.14+), and
// signal_struct.nr_threads (the "Threads:" line), inferred from the sampled tasks.
//
// What the kernel guarantees and the inference checks on every sampled task:
//  * signal points at the thread group's own signal_struct: init_task's is init_signals in the
//    image's data, every other one a direct-map pointer, no two processes share one (each
//    fork without CLONE_THREAD allocates one, kernel threads included).
//  * signal->thread_head is a list_head ring (each link consistent) whose nodes are the
//    thread_node of task_structs with the group's tgid, the task itself among them; in
//    init_signals it holds init_task alone (the other CPUs' idle tasks are forked without
//    CLONE_THREAD), which gives thread_node's offset.
//  * nr_threads is signal_struct's third int (sigcnt, live, nr_threads since 2.6.35) and
//    equals the ring's length.
// Threads are found by the same walker as with BTF (tasks.h ListThreads).
#ifndef VMEMFS_VMI_LINUX_THREAD_LAYOUT_INFER_H_
#define VMEMFS_VMI_LINUX_THREAD_LAYOUT_INFER_H_

#include <cstdint>
#include <set>

#include "base/fact.h"
#include "base/status.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/task_layout.h"
#include "vmi/linux/task_sample.h"

namespace vmemfs::vmi::linux_os {

struct InferredThreads {
  uint64_t signal = 0;              // task_struct.signal
  uint64_t thread_node = 0;         // task_struct.thread_node
  uint64_t signal_thread_head = 0;  // signal_struct.thread_head
  Field signal_nr_threads;
  Fact how;  // "thread-offsets"
};

struct StaticRange {  // where init_task's static objects lie (the image's data)
  uint64_t start, end;
};

// `layout` must know tasks, pid, tgid (an inferred one); `taken` holds task_struct offsets
// already given to other members. kNotFound when no offset fits (an unreadable object counts
// as not fitting). Reads are bounded: 512 bytes of signal_struct, 4096 threads per group,
// 4 Mi ring nodes in all.
Result<InferredThreads> InferThreadLayout32(KernelMemory& mem, const TaskSample& sample,
                                            const TaskLayout& layout,
                                            const std::set<int64_t>& taken, StaticRange image,
                                            uint64_t page_offset);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_THREAD_LAYOUT_INFER_H_
