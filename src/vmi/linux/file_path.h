// The path of an open file as the kernel's d_path() prints it (fs/d_path.c): the dentry names
// of file->f_path up to the root of its mount, then across mount points (struct mount's
// mnt_mountpoint / mnt_parent) up to the mount that is its own parent, the namespace root.
// An unlinked file (unhashed dentry that is not a root) gets the " (deleted)" suffix.
//
// Contract: every pointer and length comes from the guest. At most kMaxPathComponents steps
// (names plus mount crossings) and kPathMax bytes; a dentry that repeats its way up is caught
// by the step bound. Dentries with d_op->d_dname (pipes, sockets, anon inodes) are not
// special-cased: their synthesized names are not in memory.
#ifndef VMEMFS_VMI_LINUX_FILE_PATH_H_
#define VMEMFS_VMI_LINUX_FILE_PATH_H_

#include <cstdint>
#include <string>

#include "base/status.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/kernel_types.h"

namespace vmemfs::vmi::linux_os {

inline constexpr int kMaxPathComponents = 4096;
inline constexpr size_t kPathMax = 4096;  // PATH_MAX, including the terminating NUL

// Byte offsets of the members d_path needs.
struct PathLayout {
  uint64_t file_path_mnt = 0;      // file.f_path.mnt
  uint64_t file_path_dentry = 0;   // file.f_path.dentry
  uint64_t dentry_parent = 0;      // dentry.d_parent
  uint64_t dentry_name_len = 0;    // dentry.d_name.len (u32)
  uint64_t dentry_name_ptr = 0;    // dentry.d_name.name
  uint64_t dentry_hash_pprev = 0;  // dentry.d_hash.pprev: NULL when unhashed
  uint64_t mount_mnt = 0;          // offsetof(struct mount, mnt): vfsmount -> mount
  uint64_t mount_parent = 0;       // mount.mnt_parent
  uint64_t mount_mountpoint = 0;   // mount.mnt_mountpoint
  uint64_t vfsmount_root = 0;      // vfsmount.mnt_root
};

// From BTF: struct file, path, dentry, qstr, hlist_bl_node, mount, vfsmount.
Result<PathLayout> ResolvePathLayout(const KernelTypes& types);

// d_path(&file->f_path). Errors: kBadData for a loop, an overlong path or a corrupt name;
// kFault for unreadable memory.
Result<std::string> FilePath(KernelMemory& mem, const PathLayout& layout, uint64_t file_va);
// The same from a (vfsmount, dentry) pair.
Result<std::string> DentryPath(KernelMemory& mem, const PathLayout& layout, uint64_t vfsmount,
                               uint64_t dentry);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_FILE_PATH_H_
