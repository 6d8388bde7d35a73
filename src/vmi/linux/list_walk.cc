#include "vmi/linux/list_walk.h"

#include <string>

namespace vmemfs::vmi::linux_os {

WalkEnd WalkList(KernelMemory& mem, uint64_t head, size_t max,
                 const std::function<Status(uint64_t node)>& visit) {
  uint64_t pos = head;
  uint64_t saved = head;  // Brent: the node compared against, moved at powers of two
  size_t power = 1, steps = 0;
  for (size_t count = 0;; ++count) {
    auto next = mem.Pointer(pos);
    if (!next) return {next.error().WithContext("unreadable next link"), false, pos};
    auto back = mem.Pointer(*next + mem.pointer_size());
    if (!back) return {back.error().WithContext("next points to unreadable memory"), false, pos};
    if (*back != pos) return {BadDataError("next->prev mismatch"), false, pos};
    if (*next == head) return {};
    if (count >= max) {
      return {BadDataError("list longer than " + std::to_string(max) + " entries"), true, pos};
    }
    if (*next == saved) return {BadDataError("cycle that avoids the list head"), false, pos};
    if (++steps == power) {
      saved = *next;
      power *= 2;
      steps = 0;
    }
    if (Status s = visit(*next); !s.ok()) return {std::move(s), false, *next};
    pos = *next;
  }
}

}  // namespace vmemfs::vmi::linux_os
