// The QEMU monitor of a libvirt domain (virDomainQemuMonitorCommand from libvirt-qemu): lets the
// libvirt driver reuse everything built on QemuMonitor (qemu_layout's RAM layout and register
// parsing) without a QMP socket of its own, which libvirt does not give out.
//
// libvirt marks a domain "tainted" (custom-monitor) the first time this is used; harmless.
// Timeouts: libvirt serialises monitor jobs per domain and gives up waiting for the job after
// 30 s; a local connection's death fails the call at once, a remote one's after the keepalive
// (~15 s). libvirt offers no per-call timeout.
//
// Thread safety: any thread; libvirt serialises the commands of one domain.
#ifndef VMEMFS_DRIVERS_LIBVIRT_MONITOR_H_
#define VMEMFS_DRIVERS_LIBVIRT_MONITOR_H_

#include <string>
#include <string_view>

#include "base/status.h"
#include "drivers/libvirt_connection.h"
#include "drivers/qemu_monitor.h"

namespace vmemfs::drivers {

// The "return" member of a QMP reply, as JSON text. A QMP "error" becomes kInvalidArgument
// (kUnsupported for class CommandNotFound) with its desc; anything else is kBadData.
// `source` names the domain in error messages. Replies above 64 MiB are refused (kBadData).
Result<std::string> QmpReturnMember(std::string_view reply, std::string_view source);

// The QMP command object {"execute": command, "arguments": arguments} as text.
// Errors: kInvalidArgument if arguments_json is neither empty nor a JSON object.
Result<std::string> QmpCommandText(std::string_view command, std::string_view arguments_json);

class LibvirtMonitor final : public QemuMonitor {
 public:
  // `domain` is borrowed and must outlive the monitor; `name` appears in error messages.
  LibvirtMonitor(virDomainPtr domain, std::string name) : domain_(domain), name_(std::move(name)) {}

  Result<std::string> Qmp(std::string_view command, std::string_view arguments_json) override;
  Result<std::string> Hmp(std::string_view command_line) override;

 private:
  Result<std::string> Run(const std::string& text, unsigned int flags, std::string_view what);

  virDomainPtr const domain_;
  const std::string name_;
};

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_LIBVIRT_MONITOR_H_
