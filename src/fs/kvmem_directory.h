// kvmem/: the kernel's mapped memory as files a whole-file tool can map (yara, strings), as
// proc/<pid>/vmem/ is for a process. kmem itself is 2^48 or 2^57 bytes, which no process can
// map or read through.
//
// One file per run of virtually contiguous pages of the kernel half that map RAM, cut every
// 1 GiB, named <start>-<end> (hex virtual addresses, end exclusive, as in maps); file offset
// 0 is the start. Mapped non-RAM (MMIO) and unmapped pages end a run, so every file is all
// data. The runs are those of the kernel view the directory was made for, found again at
// each generation of the guest (a running kernel maps and unmaps vmalloc memory).
#ifndef VMEMFS_FS_KVMEM_DIRECTORY_H_
#define VMEMFS_FS_KVMEM_DIRECTORY_H_

#include <memory>

#include "fs/tree.h"
#include "vmi/guest.h"

namespace vmemfs::fs {

// The kvmem/ entry for the kernel `view`; its identity is the view's. REQUIRES: view->space.
Entry MakeKvmemDirectory(vmi::Guest& guest, std::shared_ptr<const vmi::KernelView> view);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_KVMEM_DIRECTORY_H_
