#include "vmi/linux/file_path.h"

#include <algorithm>
#include <vector>

namespace vmemfs::vmi::linux_os {
namespace {

Result<uint64_t> OffsetOf(const KernelTypes& types, std::string_view type, std::string_view path) {
  VMEMFS_ASSIGN_OR_RETURN(MemberInfo m, types.Member(type, path));
  return m.offset;
}

// Walks up from (mount, dentry), collecting names leaf first.
class PathWalker {
 public:
  PathWalker(KernelMemory& mem, const PathLayout& l) : mem_(mem), l_(l) {}

  Result<std::string> Walk(uint64_t vfsmount, uint64_t dentry);

 private:
  Status Step();
  Status PrependName(uint64_t dentry);

  KernelMemory& mem_;
  const PathLayout& l_;
  std::vector<std::string> names_;  // leaf first
  size_t length_ = 0;               // bytes of "/name" pieces so far
};

Status PathWalker::PrependName(uint64_t dentry) {
  VMEMFS_ASSIGN_OR_RETURN(uint32_t len, mem_.U32(dentry + l_.dentry_name_len));
  VMEMFS_ASSIGN_OR_RETURN(uint64_t name_ptr, mem_.Pointer(dentry + l_.dentry_name_ptr));
  // Checked before reading: the guest's length never sizes an allocation beyond PATH_MAX.
  if (uint64_t{len} + 1 + length_ >= kPathMax) return BadDataError("d_path: path too long");
  std::string name(len, '\0');
  VMEMFS_TRY(mem_.Read(name_ptr, std::as_writable_bytes(std::span(name.data(), name.size()))));
  length_ += len + 1;
  names_.push_back(std::move(name));
  return Status();
}

Result<std::string> PathWalker::Walk(uint64_t vfsmount, uint64_t dentry) {
  uint64_t mnt = vfsmount - l_.mount_mnt;  // real_mount()
  for (int steps = 0;; ++steps) {
    if (steps >= kMaxPathComponents) return BadDataError("d_path: too many components");
    VMEMFS_ASSIGN_OR_RETURN(uint64_t mnt_root, mem_.Pointer(mnt + l_.mount_mnt + l_.vfsmount_root));
    if (dentry == mnt_root) {
      VMEMFS_ASSIGN_OR_RETURN(uint64_t parent_mnt, mem_.Pointer(mnt + l_.mount_parent));
      if (parent_mnt == mnt) break;  // the namespace root (or a detached tree's top)
      VMEMFS_ASSIGN_OR_RETURN(dentry, mem_.Pointer(mnt + l_.mount_mountpoint));
      mnt = parent_mnt;
      continue;
    }
    VMEMFS_ASSIGN_OR_RETURN(uint64_t parent, mem_.Pointer(dentry + l_.dentry_parent));
    if (parent == dentry) break;  // escaped its mount: d_path prints what it has
    VMEMFS_TRY(PrependName(dentry));
    dentry = parent;
  }
  if (names_.empty()) return std::string(1, '/');
  std::string path;
  path.reserve(length_);
  for (auto it = names_.rbegin(); it != names_.rend(); ++it) {
    path += '/';
    path += *it;
  }
  return path;
}

// d_unlinked(): unhashed and not a root (a root dentry is its own parent).
Result<bool> Unlinked(KernelMemory& mem, const PathLayout& l, uint64_t dentry) {
  VMEMFS_ASSIGN_OR_RETURN(uint64_t pprev, mem.Pointer(dentry + l.dentry_hash_pprev));
  if (pprev != 0) return false;
  VMEMFS_ASSIGN_OR_RETURN(uint64_t parent, mem.Pointer(dentry + l.dentry_parent));
  return parent != dentry;
}

}  // namespace

Result<PathLayout> ResolvePathLayout(const KernelTypes& t) {
  PathLayout l;
  VMEMFS_ASSIGN_OR_RETURN(uint64_t f_path, OffsetOf(t, "file", "f_path"));
  VMEMFS_ASSIGN_OR_RETURN(uint64_t path_mnt, OffsetOf(t, "path", "mnt"));
  VMEMFS_ASSIGN_OR_RETURN(uint64_t path_dentry, OffsetOf(t, "path", "dentry"));
  l.file_path_mnt = f_path + path_mnt;
  l.file_path_dentry = f_path + path_dentry;
  VMEMFS_ASSIGN_OR_RETURN(l.dentry_parent, OffsetOf(t, "dentry", "d_parent"));
  VMEMFS_ASSIGN_OR_RETURN(l.dentry_name_len, OffsetOf(t, "dentry", "d_name.len"));
  VMEMFS_ASSIGN_OR_RETURN(l.dentry_name_ptr, OffsetOf(t, "dentry", "d_name.name"));
  VMEMFS_ASSIGN_OR_RETURN(l.dentry_hash_pprev, OffsetOf(t, "dentry", "d_hash.pprev"));
  VMEMFS_ASSIGN_OR_RETURN(l.mount_mnt, OffsetOf(t, "mount", "mnt"));
  VMEMFS_ASSIGN_OR_RETURN(l.mount_parent, OffsetOf(t, "mount", "mnt_parent"));
  VMEMFS_ASSIGN_OR_RETURN(l.mount_mountpoint, OffsetOf(t, "mount", "mnt_mountpoint"));
  VMEMFS_ASSIGN_OR_RETURN(l.vfsmount_root, OffsetOf(t, "vfsmount", "mnt_root"));
  return l;
}

Result<std::string> DentryPath(KernelMemory& mem, const PathLayout& layout, uint64_t vfsmount,
                               uint64_t dentry) {
  if (vfsmount == 0 || dentry == 0) return BadDataError("d_path: NULL path");
  PathWalker walker(mem, layout);
  VMEMFS_ASSIGN_OR_RETURN(std::string path, walker.Walk(vfsmount, dentry));
  VMEMFS_ASSIGN_OR_RETURN(bool unlinked, Unlinked(mem, layout, dentry));
  if (unlinked) path += " (deleted)";
  if (path.size() >= kPathMax) return BadDataError("d_path: path too long");
  return path;
}

Result<std::string> FilePath(KernelMemory& mem, const PathLayout& layout, uint64_t file_va) {
  VMEMFS_ASSIGN_OR_RETURN(uint64_t vfsmount, mem.Pointer(file_va + layout.file_path_mnt));
  VMEMFS_ASSIGN_OR_RETURN(uint64_t dentry, mem.Pointer(file_va + layout.file_path_dentry));
  return DentryPath(mem, layout, vfsmount, dentry);
}

}  // namespace vmemfs::vmi::linux_os
