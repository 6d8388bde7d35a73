// MOUNT/<vm>/vmcore: the guest as an ELF core in the layout of Linux's kdump vmcore
// (vmi/core_dump.h), for crash, drgn and gdb.
//
// Served by translation, never copied: the header (ELF header, program headers, notes) is made
// when the file is opened, with the vCPUs' registers of that moment; every other byte is
// guest-physical memory served from the guest's read plans exactly as pmem serves it (spliced
// or mapped where pmem is). Like pmem, a snapshot's file may be cached by the kernel and a live
// guest's is read through at every read() (direct I/O).
#ifndef VMEMFS_FS_CORE_DUMP_FILE_H_
#define VMEMFS_FS_CORE_DUMP_FILE_H_

#include <memory>

#include "fs/file.h"
#include "vmi/core_dump.h"
#include "vmi/guest.h"

namespace vmemfs::fs {

// `guest` must outlive the file. Read-only, whatever the mount.
std::unique_ptr<File> MakeCoreDumpFile(vmi::Guest& guest, vmi::CoreDump core);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_CORE_DUMP_FILE_H_
