// Where a 32-bit kernel without BTF keeps a kernel thread's full name, which /proc shows and
// task_struct.comm cuts at 15 bytes: task_struct.worker_private -> struct kthread, and
// kthread.full_name (6.0 on), inferred from the sampled tasks.
//
// What the kernel guarantees and the inference checks on every sampled kernel thread (mm
// NULL, init_task aside):
//  * kthread_create() names longer than 15 bytes are kept whole in full_name (kvasprintf);
//    shorter ones leave it NULL (struct kthread is zeroed when allocated).
//  * struct kthread comes from kzalloc (8-byte aligned); task_struct.vfork_done, which points
//    0x24 bytes into it, is not.
//  * So a full_name is a string that begins with the thread's 15-byte comm and goes on; a NULL
//    one goes with any comm; at least one thread with a 15-byte comm must have one, or nothing
//    tells the offsets apart.
// Reads are bounded: 256 kernel threads, 64 bytes of each struct kthread, names of 63 bytes
// (as /proc's buffer), 64 Ki structs and names in all.
#ifndef VMEMFS_VMI_LINUX_KTHREAD_NAME_INFER_H_
#define VMEMFS_VMI_LINUX_KTHREAD_NAME_INFER_H_

#include <cstdint>
#include <set>

#include "base/fact.h"
#include "base/status.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/task_layout.h"
#include "vmi/linux/task_sample.h"

namespace vmemfs::vmi::linux_os {

struct InferredKthreadNames {
  uint64_t worker_private = 0;     // task_struct.worker_private
  uint64_t kthread_full_name = 0;  // kthread.full_name
  Fact how;                        // "kthread-name-offsets"
};

// `layout` must know comm and mm; `taken` holds task_struct offsets already given to other
// members. kNotFound when no offset pair fits.
Result<InferredKthreadNames> InferKthreadNameLayout32(KernelMemory& mem, const TaskSample& sample,
                                                      const TaskLayout& layout,
                                                      const std::set<int64_t>& taken,
                                                      uint64_t page_offset);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_KTHREAD_NAME_INFER_H_
