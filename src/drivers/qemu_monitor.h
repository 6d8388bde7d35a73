// A QEMU monitor, however it is reached: QMP on a unix socket (qemu_driver), or the monitor of a
// libvirt domain (libvirt_driver). The live QEMU drivers share everything built on it: the
// guest-physical layout, register parsing, process-memory access.
#ifndef VMEMFS_DRIVERS_QEMU_MONITOR_H_
#define VMEMFS_DRIVERS_QEMU_MONITOR_H_

#include <string>
#include <string_view>

#include "base/status.h"

namespace vmemfs::drivers {

// Thread safety: implementations serialise commands; callers may call from any thread.
class QemuMonitor {
 public:
  virtual ~QemuMonitor() = default;
  // Runs a QMP command; `arguments_json` is a JSON object text or empty. Returns the JSON text
  // of the "return" member. kUnavailable once the connection is gone; the QMP error's text as
  // kInvalidArgument/kUnsupported otherwise.
  virtual Result<std::string> Qmp(std::string_view command, std::string_view arguments_json) = 0;
  // Runs a human monitor command (through QMP's human-monitor-command) and returns its output.
  virtual Result<std::string> Hmp(std::string_view command_line) = 0;
};

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_QEMU_MONITOR_H_
