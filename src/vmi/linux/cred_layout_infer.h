// Where a 32-bit kernel without BTF keeps a task's credentials: task_struct.real_cred (and cred
// after it) and struct cred's uid, gid, suid, sgid, euid, egid, fsuid, fsgid, inferred from the
// sampled tasks.
//
// What the kernel guarantees and the inference checks on every sampled task:
//  * real_cred and cred are adjacent pointers (2.6.29+), equal except while a task overrides
//    its credentials for a moment (at least 90% of the sample); init_task's point at
//    init_cred in the image's data, every other task's into the direct map (cred_jar slab).
//  * struct cred starts with its usage count (at least 1, far below any address), the eight
//    ids follow in that order (2.6.29+): at 4, or at 16 after CONFIG_DEBUG_CREDENTIALS'
//    subscribers, put_addr and magic (CRED_MAGIC at 12 in every cred); no id is INVALID_UID
//    (-1), all eight are 0 (root) in init_cred and in kernel threads (they never change
//    credentials).
//  * Exactly one offset fits; several leave the credentials out rather than guess.
#ifndef VMEMFS_VMI_LINUX_CRED_LAYOUT_INFER_H_
#define VMEMFS_VMI_LINUX_CRED_LAYOUT_INFER_H_

#include <cstdint>
#include <set>

#include "base/fact.h"
#include "base/status.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/task_layout.h"
#include "vmi/linux/task_sample.h"
#include "vmi/linux/thread_layout_infer.h"

namespace vmemfs::vmi::linux_os {

struct InferredCreds {
  uint64_t real_cred = 0;  // task_struct.real_cred
  uint64_t ids[8] = {};    // struct cred, indexed by CredId
  Fact how;                // "cred-offsets"
};

// `layout` must know mm (NULL in kernel threads); `taken` holds task_struct offsets already
// given to other members. kNotFound (saying why) when no offset or several fit (an unreadable
// cred counts as not fitting).
Result<InferredCreds> InferCredLayout32(KernelMemory& mem, const TaskSample& sample,
                                        const TaskLayout& layout, const std::set<int64_t>& taken,
                                        StaticRange image, uint64_t page_offset);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_CRED_LAYOUT_INFER_H_
