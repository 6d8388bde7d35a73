// Struct offsets of a 32-bit kernel's task list, inferred from the running kernel's own data,
// for kernels that carry no BTF and whose kallsyms has no init_task (Debian's i386 kernels:
// CONFIG_DEBUG_INFO_BTF and CONFIG_KALLSYMS_ALL off).
//
// What the kernel itself guarantees and the inference relies on, each checked, never assumed:
//  * init_task lies in the kernel image's data after _etext and its comm is "swapper/0",
//    NUL-padded to 16 bytes (init_idle -> __set_task_comm pads with strscpy_pad).
//  * task_struct.tasks is a list_head ring through every process, from init_task, each link
//    consistent (next->prev == node) and every member's comm printable. The longest ring
//    found at a fixed distance from comm is the process list (children/sibling rings hold a
//    handful of tasks).
//  * pid and tgid are adjacent ints: 0 in init_task, equal (group leaders) and distinct in
//    every process.
//  * real_parent points at a task_struct in the ring (init_task for pid 1): the distance from
//    it to its ring node is the true tasks offset, so every offset becomes absolute.
//  * mm is NULL in init_task and kernel threads; for a user process mm->pgd is a direct-map
//    pointer to page tables that map _stext as the kernel's do (verified by translation).
//  * flags has PF_KTHREAD exactly where mm is NULL; __state is 0 in init_task (it runs) and 1
//    (TASK_INTERRUPTIBLE) for the sleeping majority, 0x402 (TASK_IDLE) in idle kernel threads;
//    mm_struct's arg_start < arg_end == env_start < env_end are user addresses following
//    start_stack. These three are optional: when no offset fits, the fact is left out and
//    said so.
//  * mm_struct.mm_mt lies before pgd; its ma_root leads to VMAs that match the tree and point
//    back at their mm (vma_ranges.h). Optional too.
//
// Everything read is bounded: the search region, the candidates, the distances tried and the
// tasks sampled.
#ifndef VMEMFS_VMI_LINUX_TASK_LAYOUT_INFER_H_
#define VMEMFS_VMI_LINUX_TASK_LAYOUT_INFER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/fact.h"
#include "base/status.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/task_layout.h"
#include "vmi/linux/vma_ranges.h"

namespace vmemfs::vmi::linux_os {

struct InferInput {
  uint64_t search_start;  // kernel VA where init_task may start (_etext)
  uint64_t search_bytes;  // how far to look (the image's data and bss)
  uint64_t page_offset;   // direct map base (KernelLayout::page_offset)
  uint64_t stext;         // SYMBOL(_stext) and where the kernel's tables put it: the check for
  uint64_t stext_pa;      // a user mm's pgd
};

struct InferredTasks {
  TaskLayout layout;        // partial (TaskLayout::partial), pointer_size 4
  uint64_t init_task = 0;   // VA of init_task
  // mm_struct.mm_mt.ma_root, when a pointer before pgd leads to a maple tree of VMAs that
  // match their ranges and point back at their mm (vma_ranges.h) in the sampled processes.
  std::optional<VmaRangeLayout> vma_ranges;
  std::vector<Fact> how;    // one fact per inferred offset, for `info`
};

// Errors: kNotFound when no init_task, ring or offset fits (naming which); the memory's error
// when a read fails for a reason other than a fault.
Result<InferredTasks> InferTaskLayout32(KernelMemory& mem, const InferInput& in);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_TASK_LAYOUT_INFER_H_
