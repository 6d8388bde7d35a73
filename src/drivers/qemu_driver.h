// A running QEMU (any version with QMP, KVM or TCG, unpatched) as a driver: "qemu:SOCKET".
//
// Open: connect to the QMP socket, take QEMU's pid from the socket's peer credentials (checked
// against the vCPU threads QMP reports), read the RAM layout (info mtree -f, gpa2hva) and open
// the guest RAM (qemu_memory.h). Registers are read live through HMP `info registers -a`.
// A watcher thread notices QEMU's exit (pidfd) or the socket's hang-up at once and turns the
// driver gone: State() kGone, reads kUnavailable, no waits. Thread safety: as Driver.
#ifndef VMEMFS_DRIVERS_QEMU_DRIVER_H_
#define VMEMFS_DRIVERS_QEMU_DRIVER_H_

#include <chrono>
#include <memory>
#include <string_view>

#include "base/status.h"
#include "drivers/driver.h"
#include "drivers/qemu_memory.h"

namespace vmemfs::drivers {

struct QemuOptions {
  RamAccess access = RamAccess::kAuto;
  std::chrono::milliseconds timeout{5000};  // per QMP command
};

// Errors: those of QmpClient::Connect, kUnsupported when the pid cannot be learned, kBadData
// for an implausible layout, kOs without access to QEMU's memory; all naming the socket.
Result<std::unique_ptr<Driver>> OpenQemu(std::string_view socket_path, const OpenOptions& options,
                                         const QemuOptions& qemu_options);
// The registry's entry point (default QemuOptions).
Result<std::unique_ptr<Driver>> OpenQemu(std::string_view socket_path, const OpenOptions& options);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_QEMU_DRIVER_H_
