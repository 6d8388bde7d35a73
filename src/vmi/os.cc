#include "vmi/os.h"

#include "vmi/linux/linux_os.h"

namespace vmemfs::vmi {

// The one place that knows every supported OS; each is tried in turn.
Result<std::unique_ptr<OperatingSystem>> DetectOs(Guest& guest) { return DetectOs(guest, {}); }

Result<std::unique_ptr<OperatingSystem>> DetectOs(Guest& guest, const DetectOptions& options) {
  VMEMFS_ASSIGN_OR_RETURN(auto os, linux_os::LinuxOs::Discover(guest, options.linux_overrides));
  return std::unique_ptr<OperatingSystem>(std::move(os));
}

}  // namespace vmemfs::vmi
