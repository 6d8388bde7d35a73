// The root of a fleet mount (several `--libvirt`): one directory per host, MOUNT/<host>/, whose
// entries are that connection's domains (vm_set_provider.h).
//
// A host is listed from its first connection on. Once listed it stays while its connection is
// retried: its domains then say `state: gone` (reads fail with EIO), which tells "this host is
// down" apart from "this host has no domains". A host that never connected is not listed (its
// first connection is retried in the background); a lookup of it fails with ENOENT.
//
// Listing the root asks no host anything, so a dead or slow host cannot block it; each host
// directory talks only to its own connection.
#ifndef VMEMFS_FS_HOST_SET_PROVIDER_H_
#define VMEMFS_FS_HOST_SET_PROVIDER_H_

#include <memory>
#include <string>
#include <vector>

#include "fs/tree.h"
#include "vmi/os_registry.h"
#include "vmi/sources.h"

namespace vmemfs::fs {

struct HostSet {
  std::string name;                    // the directory (fleet_hosts.h)
  std::shared_ptr<vmi::GuestSet> set;  // its domains
};

std::unique_ptr<DirectoryProvider> MakeHostSetProvider(
    std::vector<HostSet> hosts, bool writable, std::shared_ptr<const vmi::OsFinders> os_finders);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_HOST_SET_PROVIDER_H_
