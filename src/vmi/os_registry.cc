#include "vmi/os_registry.h"

#include "vmi/linux/linux_finder.h"

namespace vmemfs::vmi {

Result<std::shared_ptr<const OsFinders>> OsFinders::Create(const OsOverrides& overrides) {
  auto finders = std::make_shared<OsFinders>();
  // Every supported OS adds one line here.
  VMEMFS_ASSIGN_OR_RETURN(auto linux_finder, linux_os::MakeLinuxFinder(overrides));
  finders->finders_.push_back(std::move(linux_finder));
  return std::shared_ptr<const OsFinders>(std::move(finders));
}

Result<FoundOs> OsFinders::Find(const OsSearch& search) const {
  std::string why;
  for (const auto& finder : finders_) {
    Result<FoundOs> found = finder->Find(search);
    if (found || found.error().code() != ErrorCode::kNotFound) return found;
    why += (why.empty() ? "" : "; ") + std::string(finder->name()) + ": " +
           found.error().message();
  }
  return NotFoundError(why.empty() ? "no operating system is supported" : why);
}

}  // namespace vmemfs::vmi
