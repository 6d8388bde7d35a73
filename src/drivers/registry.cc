#include "drivers/registry.h"

#include <span>

#include "drivers/gdb_driver.h"
#include "drivers/qemu_driver.h"
#include "drivers/snapshot_driver.h"
// Optional backends (CMake VMEMFS_WITH_*): only this file and the table below know of them.
#if VMEMFS_WITH_LIBVIRT
#include "drivers/libvirt_driver.h"
#include "drivers/libvirt_host.h"
#endif
#if VMEMFS_WITH_XEN
#include "drivers/xen_driver.h"
#endif

namespace vmemfs::drivers {
namespace {

// A live backend reached through "SCHEME:REST"; `open` gets REST.
struct Backend {
  std::string_view scheme;
  std::string_view usage;  // for --help, e.g. "qemu:SOCKET"
  std::string_view description;
  Result<std::unique_ptr<Driver>> (*open)(std::string_view rest, const OpenOptions& options);
};

// Live drivers add one line each here.
const std::vector<Backend>& Backends() {
  static const std::vector<Backend> kBackends = {
      {"qemu", "qemu:SOCKET", "running QEMU (KVM or TCG) through its QMP unix socket", &OpenQemu},
      {"gdb", "gdb:HOST:PORT|gdb:unix:/path[?ram=SIZE]",
       "QEMU gdbstub (-gdb); reads stop the VM briefly", &OpenGdb},
#if VMEMFS_WITH_LIBVIRT
      {"libvirt", "libvirt:DOMAIN[?uri=URI][&access=peek]",
       "libvirt QEMU/KVM domain by name or UUID (default uri qemu:///system)", &OpenLibvirt},
#endif
#if VMEMFS_WITH_XEN
      {"xen", "xen:DOMID|NAME", "Xen domain, from dom0 (libxenctrl + foreign memory)", &OpenXen},
#endif
  };
  return kBackends;
}

// The backend whose scheme is spec's prefix before the first ':', if any. A path such as
// "dumps/vm:1.elf" has no registered scheme before its ':' and stays a path.
const Backend* FindBackend(std::string_view spec) {
  const size_t colon = spec.find(':');
  if (colon == std::string_view::npos) return nullptr;
  const std::string_view scheme = spec.substr(0, colon);
  for (const Backend& b : Backends()) {
    if (b.scheme == scheme) return &b;
  }
  return nullptr;
}

}  // namespace

Result<std::unique_ptr<Driver>> OpenSource(std::string_view spec, const OpenOptions& options) {
  if (spec.empty()) return InvalidArgumentError("empty source");
  if (const Backend* b = FindBackend(spec)) {
    Result<std::unique_ptr<Driver>> driver = b->open(spec.substr(b->scheme.size() + 1), options);
    if (!driver) return driver.error().WithContext(spec);
    return driver;
  }
  return OpenSnapshot(std::string(spec), options);
}

std::vector<std::string> DescribeBackends() {
  std::vector<std::string> lines;
  for (const Backend& b : Backends()) {
    lines.push_back(std::string(b.usage) + "  " + std::string(b.description));
  }
  lines.push_back("PATH  snapshot file: raw, ELF core (QEMU dump-guest-memory) or LiME");
  return lines;
}

Result<std::unique_ptr<SourceSet>> OpenSourceSet(std::string_view spec, bool must_connect) {
#if VMEMFS_WITH_LIBVIRT
  if (spec.substr(0, 8) == "libvirt:") {
    return OpenLibvirtHost(std::string(spec.substr(8)), must_connect);
  }
#endif
  return UnsupportedError(std::string(spec) + ": no such set of VMs in this build");
}

}  // namespace vmemfs::drivers
