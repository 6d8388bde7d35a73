// Fuzzes d_path (FilePath, DentryPath) over hostile kernel memory: dentry chains that loop,
// mounts that are each other's parents, names with absurd lengths or unreadable pointers.
//
// Input: [file offset:2][image...]. The image is kernel memory (fuzz_kernel.h); a struct file is
// at the file offset, and dentries and mounts use a compact, fixed PathLayout. Checks that nothing
// crashes or hangs and that a path that comes back keeps d_path's shape and PATH_MAX.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_kernel.h"
#include "invariant.h"
#include "vmi/linux/file_path.h"

namespace vmemfs::vmi::linux_os {
namespace {

using fuzz::FuzzKernel;

PathLayout Layout() {
  PathLayout l;
  l.file_path_mnt = 0x10;
  l.file_path_dentry = 0x18;
  l.dentry_parent = 0x08;
  l.dentry_name_len = 0x10;
  l.dentry_name_ptr = 0x18;
  l.dentry_hash_pprev = 0x20;
  l.mount_mnt = 0x20;  // vfsmount inside struct mount, as real_mount() undoes
  l.mount_parent = 0x08;
  l.mount_mountpoint = 0x10;
  l.vfsmount_root = 0x00;
  return l;
}

void CheckPath(const Result<std::string>& path) {
  if (!path) return;
  CHECK_INVARIANT(!path->empty() && (*path)[0] == '/');
  CHECK_INVARIANT(path->size() < kPathMax);
}

void Run(const uint8_t* data, size_t size) {
  if (size < 2) return;
  uint16_t file;
  std::memcpy(&file, data, 2);
  FuzzKernel k(std::span(data + 2, size - 2));
  static const PathLayout layout = Layout();
  CheckPath(FilePath(k.mem(), layout, FuzzKernel::Va(file)));
  // The same walk entered by pointers taken from the image itself (the dentry of a VMA's file).
  if (size >= 2 + 16) {
    uint64_t mnt, dentry;
    std::memcpy(&mnt, data + 2, 8);
    std::memcpy(&dentry, data + 10, 8);
    CheckPath(DentryPath(k.mem(), layout, mnt, dentry));
  }
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vmemfs::vmi::linux_os::Run(data, size);
  return 0;
}
