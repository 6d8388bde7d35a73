// The root directory's entries for a changing set of VMs (`--libvirt URI`): one directory per
// running domain, opened when first visited, gone from listings when the domain stops, and made
// anew if it starts again. When the set reconnects (a new generation), every domain directory is
// opened anew on its next lookup: the old ones hold a dead connection.
#ifndef VMEMFS_FS_VM_SET_PROVIDER_H_
#define VMEMFS_FS_VM_SET_PROVIDER_H_

#include <memory>

#include "vmi/sources.h"
#include "fs/tree.h"
#include "vmi/os_registry.h"

namespace vmemfs::fs {

std::unique_ptr<DirectoryProvider> MakeVmSetProvider(
    std::shared_ptr<vmi::GuestSet> set, bool writable,
    std::shared_ptr<const vmi::OsFinders> os_finders);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_VM_SET_PROVIDER_H_
