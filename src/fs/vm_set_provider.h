// The root directory's entries for a changing set of VMs (`--libvirt URI`): one directory per
// running domain, opened when first visited, gone from listings when the domain stops, and made
// anew if it starts again.
#ifndef VMEMFS_FS_VM_SET_PROVIDER_H_
#define VMEMFS_FS_VM_SET_PROVIDER_H_

#include <memory>

#include "drivers/registry.h"
#include "fs/tree.h"
#include "vmi/os.h"

namespace vmemfs::fs {

// `tree` must outlive the provider (the provider is owned by the tree's root).
std::unique_ptr<DirectoryProvider> MakeVmSetProvider(Tree& tree,
                                                     std::unique_ptr<drivers::SourceSet> set,
                                                     bool writable, vmi::DetectOptions os_options);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_VM_SET_PROVIDER_H_
