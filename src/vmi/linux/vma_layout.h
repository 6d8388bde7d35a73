// Where the members the VMA walker needs live (struct mm_struct, vm_area_struct, file, inode,
// super_block, ...), resolved once from the kernel's BTF into plain offsets, so the walker
// itself is fast and testable with synthetic layouts.
//
// The mm_struct fields /proc/<pid>/maps needs for [heap] and [stack] (start_brk, brk,
// start_stack) are not here: they come with MmInfo from the task layout (process_info.h).
#ifndef VMEMFS_VMI_LINUX_VMA_LAYOUT_H_
#define VMEMFS_VMI_LINUX_VMA_LAYOUT_H_

#include <cstdint>
#include <optional>

#include "base/status.h"
#include "vmi/linux/file_path.h"
#include "vmi/linux/kernel_types.h"
#include "vmi/linux/maple_tree.h"

namespace vmemfs::vmi::linux_os {

enum class VmaIndex : uint8_t {
  kMapleTree,   // 6.1+: mm_struct.mm_mt
  kLinkedList,  // before 6.1: mm_struct.mmap, vm_area_struct.vm_next
};

struct VmaLayout {
  VmaIndex index = VmaIndex::kMapleTree;
  uint64_t mm_mt_root = 0;  // mm_struct.mm_mt.ma_root (kMapleTree)
  uint64_t mm_mmap = 0;     // mm_struct.mmap (kLinkedList)
  uint64_t vm_next = 0;     // vm_area_struct.vm_next (kLinkedList)
  MapleLayout maple;

  uint64_t vma_size = 0;  // sizeof(struct vm_area_struct): one read per VMA
  uint64_t vm_start = 0;
  uint64_t vm_end = 0;
  uint64_t vm_flags = 0;
  uint64_t vm_pgoff = 0;
  uint64_t vm_file = 0;
  uint64_t vm_ops = 0;
  uint64_t vm_private_data = 0;
  std::optional<uint64_t> vm_anon_name;  // CONFIG_ANON_VMA_NAME
  uint64_t anon_vma_name_name = 0;       // anon_vma_name.name (a char array)

  uint64_t vm_ops_name = 0;           // vm_operations_struct.name (a function pointer)
  uint64_t special_mapping_name = 0;  // vm_special_mapping.name (const char *)
  // Address of the kernel's special_mapping_name(); 0 = unknown, then any vm_ops with a
  // .name is taken to be a special mapping (in 6.1 x86_64 the only such vm_ops that user
  // processes have).
  uint64_t special_mapping_name_fn = 0;

  uint64_t file_inode = 0;  // file.f_inode
  uint64_t inode_sb = 0;    // inode.i_sb
  uint64_t inode_ino = 0;   // inode.i_ino
  uint64_t inode_ino_size = 8;
  uint64_t sb_dev = 0;  // super_block.s_dev (dev_t, u32)
  PathLayout path;
};

// Everything from BTF; special_mapping_name_fn stays 0 for the caller to fill from kallsyms.
// kNotFound when a required member is missing.
Result<VmaLayout> ResolveVmaLayout(const KernelTypes& types);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_VMA_LAYOUT_H_
