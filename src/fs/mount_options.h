// `-o` items that name a vmemfs option, so that mount(8), fstab and mount.fuse3 (which pass
// everything as `vmemfs SOURCE MOUNTPOINT -o a,b=c`) reach every setting.
//
// There is no second table: an item `key` or `key=value` whose key is the long name of one of
// the command line's options (`--key`) becomes that option; every other item stays a FUSE mount
// option (allow_other, rw, nosuid, noatime, ...). So mount(8)'s `rw` is the kernel's read-write
// mount flag, never `--write-memory`.
#ifndef VMEMFS_FS_MOUNT_OPTIONS_H_
#define VMEMFS_FS_MOUNT_OPTIONS_H_

#include <functional>
#include <string>
#include <vector>

namespace vmemfs::fs {

// The SOURCE that stands for "no source" where one is required (fstab's first field, mount(8)):
// a fleet mount of `--libvirt` connections only. A file called "none" is ./none.
inline constexpr const char* kNoSource = "none";

// Rewrites `-o LIST` and `-oLIST` (args without argv[0]): items for which is_option(key) holds
// become `--key` (and `value`), the rest are kept, in order, as `-o item`.
std::vector<std::string> ExpandMountOptions(const std::vector<std::string>& args,
                                            const std::function<bool(const std::string&)>& is_option);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_MOUNT_OPTIONS_H_
