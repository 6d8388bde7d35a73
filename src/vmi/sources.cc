#include "vmi/sources.h"

namespace vmemfs::vmi {

Result<std::unique_ptr<Guest>> OpenGuest(std::string_view spec, bool writable,
                                         GuestOptions options) {
  VMEMFS_ASSIGN_OR_RETURN(auto driver, drivers::OpenSource(spec, {.writable = writable}));
  auto guest = Guest::Open(std::move(driver), std::move(options));
  if (!guest) return guest.error().WithContext(spec);
  return guest;
}

Result<std::unique_ptr<GuestSet>> OpenGuestSet(std::string_view spec, bool must_connect) {
  return drivers::OpenSourceSet(spec, must_connect);
}

std::vector<std::string> DescribeSources() { return drivers::DescribeBackends(); }

}  // namespace vmemfs::vmi
