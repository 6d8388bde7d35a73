// The bytes of a few hundred task_structs of a 32-bit kernel, read once by the task-list
// inference (task_layout_infer.h) and handed to the inferences that build on it (credentials,
// threads), so no task is read twice.
#ifndef VMEMFS_VMI_LINUX_TASK_SAMPLE_H_
#define VMEMFS_VMI_LINUX_TASK_SAMPLE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

namespace vmemfs::vmi::linux_os {

struct TaskSample {
  std::vector<uint64_t> task;                 // task_struct VAs; task[0] is init_task
  std::vector<std::vector<std::byte>> bytes;  // bytes[i]: task[i] + base .. + bytes[i].size()
  int64_t base = 0;                           // task-relative offset of bytes[i][0]

  // The 4-byte word at task_struct offset `offset` of task i; nullopt outside what was read.
  std::optional<uint32_t> U32(size_t i, int64_t offset) const {
    int64_t at = offset - base;
    if (at < 0 || static_cast<uint64_t>(at) + 4 > bytes[i].size()) return std::nullopt;
    uint32_t v;
    std::memcpy(&v, bytes[i].data() + at, 4);
    return v;
  }
  // The task-relative offsets every sample covers: [first(), end()).
  int64_t first() const { return base < 0 ? 0 : base; }
  int64_t end() const { return base + static_cast<int64_t>(bytes.empty() ? 0 : bytes[0].size()); }
};

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_TASK_SAMPLE_H_
