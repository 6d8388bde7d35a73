// The one place that knows every backend: turns a SOURCE argument into a driver.
#ifndef VMEMFS_DRIVERS_REGISTRY_H_
#define VMEMFS_DRIVERS_REGISTRY_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "drivers/driver.h"

namespace vmemfs::drivers {

// Opens `spec`: "SCHEME:REST" for a registered live backend, otherwise a snapshot file path.
// Errors name the source and the problem in one line.
Result<std::unique_ptr<Driver>> OpenSource(std::string_view spec, const OpenOptions& options);

// One line per known backend for --help, e.g. "PATH  snapshot file: raw, ELF core or LiME".
std::vector<std::string> DescribeBackends();

// A set of VMs that changes while mounted: every running domain of a hypervisor connection.
struct SourceEntry {
  std::string name;  // directory name (the domain's name)
  std::string spec;  // what OpenSource opens
  bool operator==(const SourceEntry&) const = default;
};
class SourceSet {
 public:
  virtual ~SourceSet() = default;
  // The VMs running now, sorted by name. Thread-safe. kUnavailable once the connection is lost.
  virtual Result<std::vector<SourceEntry>> Current() = 0;
};
// Opens "libvirt:URI" (every running domain of that libvirt connection). kUnsupported if this
// build has no such backend.
Result<std::unique_ptr<SourceSet>> OpenSourceSet(std::string_view spec);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_REGISTRY_H_
