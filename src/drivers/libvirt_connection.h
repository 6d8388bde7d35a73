// What every libvirt-based piece shares: owning handles for connections and domains, libvirt's
// last error as a Status, and the process-wide event loop that delivers domain events and
// keepalives.
//
// libvirt reports errors per thread (virGetLastError); LibvirtError must be called on the thread
// that made the failing call, right after it. libvirt's default handler prints every error on
// stderr; the first OpenLibvirtConnection silences it (errors are returned as Status instead).
//
// Thread safety: virConnectPtr and virDomainPtr may be used from many threads at once (libvirt
// locks internally); the event loop is started and stopped under a mutex.
#ifndef VMEMFS_DRIVERS_LIBVIRT_CONNECTION_H_
#define VMEMFS_DRIVERS_LIBVIRT_CONNECTION_H_

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace vmemfs::drivers {

struct LibvirtConnectionCloser {
  void operator()(virConnectPtr conn) const { virConnectClose(conn); }
};
struct LibvirtDomainFreer {
  void operator()(virDomainPtr dom) const { virDomainFree(dom); }
};
using LibvirtConnection = std::unique_ptr<virConnect, LibvirtConnectionCloser>;
using LibvirtDomain = std::unique_ptr<virDomain, LibvirtDomainFreer>;

// The calling thread's last libvirt error as a Status whose message starts with `context`:
// kUnavailable when the domain or the connection is gone (VIR_ERR_NO_DOMAIN,
// VIR_ERR_OPERATION_INVALID on an inactive domain, VIR_ERR_SYSTEM_ERROR/RPC/INTERNAL after the
// connection died), kNotFound for no such domain at lookup, kUnsupported for
// VIR_ERR_NO_SUPPORT, kInvalidArgument otherwise.
Status LibvirtError(std::string_view context);
// True if the thread's last error says the domain no longer exists or is not running.
bool LibvirtErrorMeansGone();

// Opens `uri` read-write (the monitor, suspend and resume need it), with keepalives.
// REQUIRES: the caller holds a LibvirtEventLoop::Ref that outlives the connection (keepalives
// and events are delivered by the loop thread).
// Errors: kUnavailable naming the URI (libvirtd not running, permission denied).
Result<LibvirtConnection> OpenLibvirtConnection(const std::string& uri);

// The libvirt default event loop, run by one background thread while anyone holds a
// reference. libvirt's event implementation cannot be unregistered, so the registration is
// once per process; the thread is what comes and goes.
class LibvirtEventLoop {
 public:
  // A reference that keeps the loop thread running; dropping the last one stops and joins it
  // (wakes it with a zero timeout, so shutdown never waits for an event).
  class Ref {
   public:
    Ref();
    ~Ref();
    Ref(const Ref&) = delete;
    Ref& operator=(const Ref&) = delete;
  };
};

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_LIBVIRT_CONNECTION_H_
