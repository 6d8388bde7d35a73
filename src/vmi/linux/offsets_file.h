// A LibVMI-style offsets file (libvmi.conf): one or more guest blocks,
//   NAME {
//       ostype = "Linux";
//       sysmap = "/boot/System.map-6.1.0";
//       linux_tasks = 0x4c8;   linux_mm = 0x518;   linux_pid = 0x5c8;
//       linux_name = 0x7a0;    linux_pgd = 0x50;
//   }
// with '#' comments. Numbers are hex (0x) or decimal.
//
// It names only five offsets, so OffsetsKernelTypes answers only these members and kNotFound
// (naming what LibVMI offsets cannot give) for everything else:
//   linux_tasks -> task_struct.tasks (16 bytes)   linux_mm  -> task_struct.mm (8)
//   linux_pid   -> task_struct.pid (4)            linux_name -> task_struct.comm (16)
//   linux_pgd   -> mm_struct.pgd (8)
// (sizes are the x86-64 ones; the file has none). vmemfs's task walker needs far more (struct
// sizes, tgid, real_parent, cred, signal, ...), so with --offsets alone there is no process
// list: symbols, kmem and pmem work, and `info` says which member was missing.
//
// The file is untrusted input: bounded size, strict syntax, errors name the file and line.
#ifndef VMEMFS_VMI_LINUX_OFFSETS_FILE_H_
#define VMEMFS_VMI_LINUX_OFFSETS_FILE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "vmi/linux/kernel_types.h"

namespace vmemfs::vmi::linux_os {

inline constexpr uint64_t kMaxOffsetsFileBytes = 1 << 20;

struct OffsetsFile {
  std::string block;                                     // the guest block's name
  std::optional<std::string> sysmap;                     // its System.map path, if given
  std::map<std::string, uint64_t, std::less<>> offsets;  // linux_* keys found
  std::unique_ptr<KernelTypes> types;                    // never null
};

// Parses the text; `name` (the file's path) prefixes every error: "NAME:LINE: why".
// The file must hold exactly one guest block (a libvmi.conf for many guests: keep the one for
// this kernel), with ostype Linux if ostype is given, and at least one linux_* offset.
// Errors: kBadData.
Result<OffsetsFile> ParseOffsetsFile(std::string_view text, std::string_view name);

// Reads and parses the file at `path`.
Result<OffsetsFile> ReadOffsetsFile(const std::string& path);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_OFFSETS_FILE_H_
