// pmem, kmem, proc/<pid>/mem and windows of them: guest memory as sparse files.
//
// pmem: file offset = guest-physical address; size = highest RAM address + 1; gaps between RAM
// ranges are holes (zeros, SEEK_HOLE). Virtual files: file offset = virtual address modulo the
// address-space size (vmi::VirtualToOffset); unmapped pages and pages mapped to non-RAM are
// holes. How each byte is served is the Guest's read plan: spliced from the source's file,
// sent from its mapping, or copied. Snapshot files may be cached by the kernel; a live
// guest's are read through at every read() (direct I/O; private mmap still works, as yara
// needs).
#ifndef VMEMFS_FS_MEMORY_FILES_H_
#define VMEMFS_FS_MEMORY_FILES_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "fs/file.h"
#include "vmi/guest.h"

namespace vmemfs::fs {

// The page tables a virtual file reads through, found again at each read: a process that
// execs gets new ones, and so does a new kernel.
using SpaceSource = std::function<Result<vmi::AddressSpace>()>;

// Adds a guest read plan's runs to a reply: spliced, viewed or copied as the guest planned them,
// holes as zeros. A copy that fails part-way adds the bytes before the failure and returns it.
Status AddMemoryRuns(vmi::Guest& guest, const std::vector<vmi::MemoryRun>& runs, ReadPlan& plan);

// `guest` must outlive the file. Writable when the guest is (--write-memory).
std::unique_ptr<File> MakePhysicalMemoryFile(vmi::Guest& guest);
// A whole address space of paging mode `mode`.
std::unique_ptr<File> MakeVirtualMemoryFile(vmi::Guest& guest, vmi::PagingMode mode,
                                            SpaceSource space);
// A window of it: file offset 0 is virtual address `va`, the size `length` (one VMA, one
// symbol). Holes and errors as in the whole space.
std::unique_ptr<File> MakeVirtualWindowFile(vmi::Guest& guest, vmi::PagingMode mode,
                                            SpaceSource space, uint64_t va, uint64_t length);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_MEMORY_FILES_H_
