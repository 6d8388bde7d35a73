// Walking the kernel's circular doubly linked lists (struct list_head) in hostile memory.
//
// Every step checks next->prev == node, so a corrupt or concurrently changed link stops the
// walk; Brent's algorithm catches cycles that avoid the head anyway (a live guest can change
// memory between two reads), and a count cap bounds the rest.
#ifndef VMEMFS_VMI_LINUX_LIST_WALK_H_
#define VMEMFS_VMI_LINUX_LIST_WALK_H_

#include <cstddef>
#include <cstdint>
#include <functional>

#include "base/status.h"
#include "vmi/linux/kernel_memory.h"

namespace vmemfs::vmi::linux_os {

// How a list walk ended.
struct WalkEnd {
  Status status;        // OK: back at the head
  bool capped = false;  // stopped by the count cap
  uint64_t at = 0;      // not OK: the node where it stopped (whose link or visit failed)
};

// Calls visit(node) for each list_head of the circular list whose head is at `head` (the head
// itself excluded), at most `max` times. visit returns a non-OK Status to stop the walk (that
// status is returned). list_head layout: next at +0, prev at +pointer size (8, or 4 on i386).
WalkEnd WalkList(KernelMemory& mem, uint64_t head, size_t max,
                 const std::function<Status(uint64_t node)>& visit);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_LIST_WALK_H_
