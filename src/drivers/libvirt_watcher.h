// The running domains of one libvirt connection, and news of domains starting and stopping:
// what `vmemfs --libvirt URI` needs to show one directory per running domain.
//
// Two ways to use it, both safe together: Running() returns the current set (a poll; costs
// one libvirt round trip), and the callback given to Open hears lifecycle events (started,
// stopped) and the loss of the connection as they happen. Events come from libvirt's event
// loop thread (LibvirtEventLoop), which runs while any watcher or libvirt driver exists.
//
// A domain counts as running from VIR_DOMAIN_EVENT_STARTED to VIR_DOMAIN_EVENT_STOPPED;
// paused domains are still running (their memory is there). Events may race with Running():
// a caller that wants an exact set applies events after taking Running()'s answer and treats
// them as idempotent (a start of a known domain, a stop of an unknown one, are no-ops).
//
// Thread safety: Running() and connected() from any thread. The callback runs on the event
// loop thread, one call at a time; it must not block for long and must not destroy the
// watcher. After the destructor returns the callback is never called again.
#ifndef VMEMFS_DRIVERS_LIBVIRT_WATCHER_H_
#define VMEMFS_DRIVERS_LIBVIRT_WATCHER_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace vmemfs::drivers {

struct LibvirtDomainId {
  std::string name;
  std::string uuid;  // canonical text form, e.g. "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"
  bool operator==(const LibvirtDomainId&) const = default;
};

enum class LibvirtEvent {
  kStarted,       // the domain began to run (boot, restore, migration in)
  kStopped,       // it stopped running (destroy, shutdown, crash, migration out)
  kDisconnected,  // the connection to libvirtd is lost; `domain` is empty. No event follows.
};
std::string_view LibvirtEventName(LibvirtEvent event);  // "started", "stopped", "disconnected"

using LibvirtEventCallback = std::function<void(LibvirtEvent event, const LibvirtDomainId& domain)>;

class LibvirtWatcher {
 public:
  // Connects to `uri` (e.g. "qemu:///system") and subscribes to lifecycle events.
  // Errors: kUnavailable naming the URI.
  static Result<std::unique_ptr<LibvirtWatcher>> Open(const std::string& uri,
                                                      LibvirtEventCallback callback);
  virtual ~LibvirtWatcher() = default;

  // Domains running now, sorted by name. Errors: kUnavailable once the connection is lost.
  virtual Result<std::vector<LibvirtDomainId>> Running() = 0;
  // False once the connection is lost; never true again.
  virtual bool connected() const = 0;
  virtual const std::string& uri() const = 0;
};

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_LIBVIRT_WATCHER_H_
