// Where guests come from, as the filesystem sees it: a SOURCE argument opened as a Guest, and
// sets of VMs that change while mounted (every domain of a libvirt connection). The driver
// registry stays behind this: the filesystem never sees a driver.
#ifndef VMEMFS_VMI_SOURCES_H_
#define VMEMFS_VMI_SOURCES_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "drivers/registry.h"
#include "vmi/guest.h"

namespace vmemfs::vmi {

// Opens `spec` ("SCHEME:REST" or a snapshot path; drivers/registry.h) as a Guest. Writes reach
// the source only if `writable` (--write-memory). Errors name the source in one line.
Result<std::unique_ptr<Guest>> OpenGuest(std::string_view spec, bool writable,
                                         GuestOptions options);

// A set of VMs: Current() lists their names and the specs OpenGuest opens.
using GuestSet = drivers::SourceSet;
// must_connect: as drivers::OpenSourceSet.
Result<std::unique_ptr<GuestSet>> OpenGuestSet(std::string_view spec, bool must_connect = true);

// One line per kind of source, for --help.
std::vector<std::string> DescribeSources();

}  // namespace vmemfs::vmi

#endif  // VMEMFS_VMI_SOURCES_H_
