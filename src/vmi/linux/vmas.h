// A process's memory areas (struct vm_area_struct) from its mm_struct: the 6.1+ maple tree
// mm->mm_mt, or the older mm->mmap / vm_next list, with everything /proc/<pid>/maps prints.
//
// Contract: guest memory is untrusted. VMAs must be non-empty, in strictly increasing address
// order and (for the maple tree) cover exactly the range the tree files them under; anything
// else is kBadData for the whole mm (the list form has no other cycle check, and strict order
// rules cycles out). The number of VMAs is bounded by kMaxVmas. A file whose details cannot be
// read does not fail the mm: that Vma carries file_status instead.
#ifndef VMEMFS_VMI_LINUX_VMAS_H_
#define VMEMFS_VMI_LINUX_VMAS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/vma_layout.h"

namespace vmemfs::vmi::linux_os {

// include/linux/mm.h
inline constexpr uint64_t kVmRead = 0x1;
inline constexpr uint64_t kVmWrite = 0x2;
inline constexpr uint64_t kVmExec = 0x4;
inline constexpr uint64_t kVmShared = 0x8;
inline constexpr uint64_t kVmMayShare = 0x80;

// Far above vm.max_map_count's default (65530); a bound, not a policy.
inline constexpr size_t kMaxVmas = size_t{1} << 20;

struct Vma {
  uint64_t start = 0;
  uint64_t end = 0;  // exclusive
  uint64_t flags = 0;
  uint64_t pgoff = 0;  // in pages
  uint64_t file = 0;   // struct file *, 0 for anonymous memory
  // For file mappings: file->f_inode->i_sb->s_dev split as MAJOR()/MINOR(), i_ino, d_path.
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  std::string path;
  Status file_status;  // why dev/inode/path are missing, when they are
  // vm_ops->name() of a special mapping ("[vdso]", "[vvar]"), for anonymous VMAs.
  std::optional<std::string> special_name;
  // prctl(PR_SET_VMA_ANON_NAME) name, without the "[anon:...]" decoration.
  std::optional<std::string> anon_name;
};

// All VMAs of the mm_struct at mm_va, in address order.
Result<std::vector<Vma>> ListVmas(KernelMemory& mem, const VmaLayout& layout, uint64_t mm_va);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_VMAS_H_
