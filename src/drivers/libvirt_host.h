// One libvirt connection of a fleet as a SourceSet that outlives its connections: every running
// domain of URI, and when the connection is lost (libvirtd restarted, the host down, the
// network cut) a new one is tried after 1 s, then after twice as long each time it fails, at
// most kMaxBackoff apart, until one is made.
//
// While down, Current() answers the domains of the last listing: they stay visible and say
// `state: gone` (their drivers hold the dead connection), which is what a user looking at a
// fleet needs to see, rather than domains vanishing with their host. Each new connection is a
// new generation(): the filesystem opens those domains afresh instead of reusing dead ones.
//
// Nothing here blocks a caller on another host, nor on a connection being made: connecting
// happens on this host's own thread; Current() makes one libvirt round trip on the live
// connection (bounded by libvirt's keepalive: a dead peer is noticed within ~15 s).
//
// Thread safety: every method from any thread.
#ifndef VMEMFS_DRIVERS_LIBVIRT_HOST_H_
#define VMEMFS_DRIVERS_LIBVIRT_HOST_H_

#include <chrono>
#include <memory>
#include <string>

#include "base/status.h"
#include "drivers/registry.h"

namespace vmemfs::drivers {

inline constexpr std::chrono::seconds kMaxBackoff{16};

// If `must_connect`, the first connection is made before returning and its failure is the
// error (kUnavailable naming the URI); otherwise it is the first attempt of the thread.
Result<std::unique_ptr<SourceSet>> OpenLibvirtHost(const std::string& uri, bool must_connect);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_LIBVIRT_HOST_H_
