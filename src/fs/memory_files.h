// pmem and kmem: guest memory as sparse files.
//
// pmem: file offset = guest-physical address; size = highest RAM address + 1; gaps between
// RAM ranges are holes (zeros, SEEK_HOLE). kmem (and later per-process memory): file offset =
// virtual address modulo the address-space size (vmi::VirtualToOffset); unmapped pages and
// pages mapped to non-RAM are holes. Bytes come from the driver's file (spliced) where it has
// one, so streaming a large snapshot does not grow the daemon.
#ifndef VMEMFS_FS_MEMORY_FILES_H_
#define VMEMFS_FS_MEMORY_FILES_H_

#include <cstdint>
#include <memory>

#include "fs/file.h"
#include "vmi/guest.h"

namespace vmemfs::fs {

// `guest` must outlive the file. Writable only if `writable` and the driver is.
std::unique_ptr<File> MakePhysicalMemoryFile(vmi::Guest& guest, bool writable);
// The address space whose page-table root is `dtb`. REQUIRES: guest.paging_mode().
std::unique_ptr<File> MakeVirtualMemoryFile(vmi::Guest& guest, uint64_t dtb, bool writable);
// A window of that address space: file offset 0 is virtual address `va`, the size `length`
// (one VMA, one symbol). Holes and errors as in the whole space.
std::unique_ptr<File> MakeVirtualWindowFile(vmi::Guest& guest, uint64_t dtb, uint64_t va,
                                            uint64_t length, bool writable);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_MEMORY_FILES_H_
