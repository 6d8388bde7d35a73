// A domain of a libvirt QEMU/KVM connection as a driver: "libvirt:DOMAIN[?uri=URI][&access=A]".
//
// DOMAIN is a name or a UUID; URI defaults to qemu:///system. Everything QEMU-specific is
// shared with the QMP driver through QemuMonitor (here: libvirt_monitor.h): the RAM layout
// (info mtree -f + gpa2hva) and the registers (info registers -a) come from qemu_layout.
//
// Memory, in order of preference (access=auto):
//  1. the domain's QEMU process (qemu_memory.h: shared RAM file mmap, else process_vm_readv),
//     when the URI is local and the process is found: the pid of a vCPU thread's thread group
//     (query-cpus-fast), else /run/libvirt/qemu/DOMAIN.pid, accepted only if its command line
//     carries `-name guest=DOMAIN`. Speed: as the qemu driver (memcpy, or ~1-2 GB/s).
//  2. virDomainMemoryPeek(VIR_MEMORY_PHYSICAL) (access=peek forces it): works remotely and
//     without ptrace rights, but each call makes QEMU `pmemsave` at most 64 KiB into a file
//     that libvirtd reads back: a few ms per 64 KiB, ~10-30 MB/s. Read-only.
//
// Run state: virDomainGetState; virDomainSuspend/Resume for Pause/Resume. Paused, suspended and
// crashed domains are kPaused: their QEMU still holds the guest (a crashed one's memory is there
// to read with on_crash=preserve). A reset or reboot (virsh reset, the guest rebooting, libvirt
// rebooting a crashed guest in place) changes nothing: the same QEMU runs on.
// The domain is gone (State kGone, every access kUnavailable at once) from the moment libvirt
// reports it stopped (a lifecycle event, usually within milliseconds) or shut off, the domain no
// longer exists, the connection closes, or the QEMU process we read exits. A failing call alone
// never makes it gone: libvirt is asked first.
//
// Thread safety: as Driver.
#ifndef VMEMFS_DRIVERS_LIBVIRT_DRIVER_H_
#define VMEMFS_DRIVERS_LIBVIRT_DRIVER_H_

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "drivers/driver.h"

namespace vmemfs::drivers {

enum class LibvirtAccess { kAuto, kPeek };

struct LibvirtSpec {
  std::string domain;
  std::string uri = "qemu:///system";
  LibvirtAccess access = LibvirtAccess::kAuto;
  bool operator==(const LibvirtSpec&) const = default;
};

// Parses "DOMAIN[?uri=URI][&access=auto|peek]" (the part after "libvirt:"). URI is taken
// verbatim up to the next '&'. Errors: kInvalidArgument (empty or over-long domain, control
// characters, unknown parameter).
Result<LibvirtSpec> ParseLibvirtSpec(std::string_view rest);

// True if `uri` reaches a libvirtd on this machine ("qemu:///system", "qemu+unix:///session"),
// false when it names a host ("qemu+ssh://h/system"): only then can we open QEMU's memory.
bool IsLocalLibvirtUri(std::string_view uri);

// Errors: kUnavailable (libvirtd unreachable, domain not running), kNotFound (no such domain),
// kBadData (implausible layout), all naming the domain and URI.
Result<std::unique_ptr<Driver>> OpenLibvirt(const LibvirtSpec& spec, const OpenOptions& options);
// The registry's entry point.
Result<std::unique_ptr<Driver>> OpenLibvirt(std::string_view rest, const OpenOptions& options);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_LIBVIRT_DRIVER_H_
