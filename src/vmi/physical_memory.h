// What the page-table walker reads through: guest-physical memory.
#ifndef VMEMFS_VMI_PHYSICAL_MEMORY_H_
#define VMEMFS_VMI_PHYSICAL_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/status.h"

namespace vmemfs::vmi {

class PhysicalMemory {
 public:
  virtual ~PhysicalMemory() = default;
  // Reads exactly out.size() bytes at `pa`; kFault if any byte is not RAM.
  virtual Status Read(uint64_t pa, std::span<std::byte> out) = 0;
};

}  // namespace vmemfs::vmi

#endif  // VMEMFS_VMI_PHYSICAL_MEMORY_H_
