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
  // The VMs running now, sorted by name. Thread-safe. While the connection is down: the VMs
  // of its last answer (opening them fails, the ones open say they are gone).
  virtual Result<std::vector<SourceEntry>> Current() = 0;
  // Changes when the entries of Current() stop being the objects they were (a reconnection:
  // the same names are new domains behind a new connection).
  virtual uint64_t generation() const { return 0; }
  // False while the connection is down. Never blocks.
  virtual bool connected() const { return true; }
  // True once the set has had a connection (a host to show), never false again.
  virtual bool ever_connected() const { return true; }
};
// Opens "libvirt:URI" (every running domain of that libvirt connection), reconnecting with a
// backoff when the connection is lost. If `must_connect`, the first connection is made now and
// its failure is the error; otherwise it is made in the background, failures retried.
// kUnsupported if this build has no such backend.
Result<std::unique_ptr<SourceSet>> OpenSourceSet(std::string_view spec, bool must_connect = true);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_REGISTRY_H_
