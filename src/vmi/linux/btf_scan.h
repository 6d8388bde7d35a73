// The kernel's BTF found without symbol names. Normally __start_BTF/__stop_BTF (kallsyms) say
// where it is; when the names are damaged, the .BTF section is found by its header in the
// kernel image's read-only, non-executable mappings (.rodata, where vmlinux.lds puts .BTF):
// struct btf_header {u16 magic 0xeB9F; u8 version 1; u8 flags 0; u32 hdr_len; u32 type_off,
// type_len, str_off, str_len}, 4-byte aligned. A candidate is accepted only if libbpf parses
// it and it describes task_struct.
#ifndef VMEMFS_VMI_LINUX_BTF_SCAN_H_
#define VMEMFS_VMI_LINUX_BTF_SCAN_H_

#include <cstdint>
#include <memory>
#include <span>

#include "base/status.h"
#include "vmi/linux/kernel_image.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/kernel_types.h"

namespace vmemfs::vmi::linux_os {

struct ScannedBtf {
  uint64_t va;     // where the header is
  uint64_t bytes;  // its size
  std::unique_ptr<KernelTypes> types;
};

// At most 64 MiB of read-only data are read and 16 candidates parsed. Errors: kNotFound
// saying what was looked at.
Result<ScannedBtf> FindBtfInImage(KernelMemory& memory, std::span<const ImageRun> image);

}  // namespace vmemfs::vmi::linux_os

#endif  // VMEMFS_VMI_LINUX_BTF_SCAN_H_
