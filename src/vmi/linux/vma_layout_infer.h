// The vm_area_struct, file, dentry, inode, super_block and mount offsets /proc/<pid>/maps
// needs, inferred from a 32-bit kernel's own VMAs when it has no BTF (after the task list:
// task_layout_infer.h gives each sampled process's mm, its VMAs by range and start_stack,
// start_brk and brk).
//
// Each offset is the first that has a property the kernel guarantees, checked on every VMA
// (and file, dentry, ...) of up to 8 processes:
//  * vm_flags: VM_MAYREAD in every VMA, VM_GROWSDOWN exactly in the VMA holding start_stack.
//  * vm_file: NULL in the stack and heap VMAs, set in at least one VMA of each process, and
//    pointing at files whose f_path.dentry->d_inode is their f_inode (which fixes f_path,
//    f_inode and d_inode together). vm_pgoff is the word before it and vm_private_data the
//    word after (their order in 6.1); vm_pgoff is checked: an anonymous VMA's is its start
//    page for most of them.
//  * dentry: d_name.name points at exactly d_name.len printable bytes; d_parent chains end
//    in a dentry that is its own parent, named "/"; d_hash.pprev is the word before d_parent.
//  * mount: vfsmount.mnt_root is that root dentry; the root mount's mnt_parent is the mount
//    itself and its mnt_mountpoint its root (only a root mount can be checked on a guest
//    whose files are all on one file system).
//  * inode: i_mapping points into the inode itself (&i_data); i_sb is the word before it;
//    i_ino the first non-zero non-pointer after it. super_block.s_dev: the first non-zero
//    non-pointer.
//  * vm_ops: a pointer whose vm_operations_struct.name is the kernel's special_mapping_name
//    (kallsyms) in some file-less VMA, vm_private_data's first word naming it "[...]".
//  * mm_struct.exe_file: the file of each process's first file-backed VMA.
#ifndef VMEMFS_VMI_LINUX_VMA_LAYOUT_INFER_H_
#define VMEMFS_VMI_LINUX_VMA_LAYOUT_INFER_H_

#include <cstdint>
#include <vector>

#include "base/fact.h"
#include "base/status.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/vma_layout.h"
#include "vmi/linux/vma_ranges.h"

namespace vmemfs::vmi::linux_os {

struct VmaSample {
  uint64_t mm = 0;
  uint64_t start_stack = 0, start_brk = 0, brk = 0;
  std::vector<VmaRange> vmas;
};

struct VmaInferInput {
  uint64_t page_offset = 0;
  uint64_t special_mapping_name = 0;  // the function's address; 0: no [vdso]-style names
  VmaRangeLayout ranges;
  std::vector<VmaSample> samples;  // user processes
};

struct InferredVmas {
  VmaLayout layout;        // index kMapleTree, the 32-bit maple geometry
  uint64_t mm_exe_file = 0;
  std::vector<Fact> how;
};

// kNotFound naming the first member no offset fits.
Result<InferredVmas> InferVmaLayout32(KernelMemory& mem, const VmaInferInput& in);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_VMA_LAYOUT_INFER_H_
