#include "vmi/linux/vma_layout.h"

#include <string>

namespace vmemfs::vmi::linux_os {
namespace {

// Offset of a member, with context naming it when missing.
Result<uint64_t> Off(const KernelTypes& t, std::string_view type, std::string_view path) {
  auto m = t.Member(type, path);
  if (!m) return m.error().WithContext(std::string(type) + "." + std::string(path));
  return m->offset;
}

Status ResolveIndex(const KernelTypes& t, VmaLayout& l) {
  if (t.Has("mm_struct", "mm_mt")) {
    l.index = VmaIndex::kMapleTree;
    VMEMFS_ASSIGN_OR_RETURN(l.mm_mt_root, Off(t, "mm_struct", "mm_mt.ma_root"));
    VMEMFS_ASSIGN_OR_RETURN(l.maple, ResolveMapleLayout(t));
    return Status();
  }
  l.index = VmaIndex::kLinkedList;
  VMEMFS_ASSIGN_OR_RETURN(l.mm_mmap, Off(t, "mm_struct", "mmap"));
  VMEMFS_ASSIGN_OR_RETURN(l.vm_next, Off(t, "vm_area_struct", "vm_next"));
  return Status();
}

Status ResolveVma(const KernelTypes& t, VmaLayout& l) {
  VMEMFS_ASSIGN_OR_RETURN(l.vma_size, t.Size("vm_area_struct"));
  VMEMFS_ASSIGN_OR_RETURN(l.vm_start, Off(t, "vm_area_struct", "vm_start"));
  VMEMFS_ASSIGN_OR_RETURN(l.vm_end, Off(t, "vm_area_struct", "vm_end"));
  VMEMFS_ASSIGN_OR_RETURN(l.vm_flags, Off(t, "vm_area_struct", "vm_flags"));
  VMEMFS_ASSIGN_OR_RETURN(l.vm_pgoff, Off(t, "vm_area_struct", "vm_pgoff"));
  VMEMFS_ASSIGN_OR_RETURN(l.vm_file, Off(t, "vm_area_struct", "vm_file"));
  VMEMFS_ASSIGN_OR_RETURN(l.vm_ops, Off(t, "vm_area_struct", "vm_ops"));
  VMEMFS_ASSIGN_OR_RETURN(l.vm_private_data, Off(t, "vm_area_struct", "vm_private_data"));
  if (auto anon = t.Member("vm_area_struct", "anon_name")) {
    l.vm_anon_name = anon->offset;
    VMEMFS_ASSIGN_OR_RETURN(l.anon_vma_name_name, Off(t, "anon_vma_name", "name"));
  }
  VMEMFS_ASSIGN_OR_RETURN(l.vm_ops_name, Off(t, "vm_operations_struct", "name"));
  VMEMFS_ASSIGN_OR_RETURN(l.special_mapping_name, Off(t, "vm_special_mapping", "name"));
  return Status();
}

Status ResolveFile(const KernelTypes& t, VmaLayout& l) {
  VMEMFS_ASSIGN_OR_RETURN(l.file_inode, Off(t, "file", "f_inode"));
  VMEMFS_ASSIGN_OR_RETURN(l.inode_sb, Off(t, "inode", "i_sb"));
  VMEMFS_ASSIGN_OR_RETURN(MemberInfo ino, t.Member("inode", "i_ino"));
  l.inode_ino = ino.offset;
  l.inode_ino_size = ino.size;
  VMEMFS_ASSIGN_OR_RETURN(l.sb_dev, Off(t, "super_block", "s_dev"));
  VMEMFS_ASSIGN_OR_RETURN(l.path, ResolvePathLayout(t));
  return Status();
}

}  // namespace

Result<VmaLayout> ResolveVmaLayout(const KernelTypes& t) {
  VmaLayout l;
  VMEMFS_TRY(ResolveIndex(t, l));
  VMEMFS_TRY(ResolveVma(t, l));
  VMEMFS_TRY(ResolveFile(t, l));
  return l;
}

}  // namespace vmemfs::vmi::linux_os
