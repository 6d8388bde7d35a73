// A Xen domain as a driver: "xen:DOMID" or "xen:NAME" (run in dom0, as root).
//
// libxenctrl pauses/unpauses the domain, reports its state (xc_domain_getinfo) and vCPU
// registers (HVM: the CPU record of xc_domain_hvm_getcontext_partial; PV: xc_vcpu_getcontext,
// see xen_registers.h); libxenforeignmemory maps guest frames 4 KiB at a time through a small
// cache of mappings (xen_page_cache.h). NAME is resolved through xenstore
// (/local/domain/<id>/name); without xenstored only a numeric DOMID works.
//
// RAM ranges come from the domain's maximum memory (max_memkb), assuming the x86 HVM layout of
// libxl: RAM from 0 up to the MMIO hole at 0xf0000000, the rest from 4 GiB. Frames the guest
// does not populate (the VGA hole, ballooned-out pages) fail with kFault when read.
//
// Without a hypervisor (no /dev/xen/privcmd: not a Xen dom0) opening fails with kUnavailable
// saying so. Thread safety: as Driver.
#ifndef VMEMFS_DRIVERS_XEN_DRIVER_H_
#define VMEMFS_DRIVERS_XEN_DRIVER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "drivers/driver.h"

namespace vmemfs::drivers {

struct XenSpec {
  std::optional<uint32_t> domid;  // set for "xen:DOMID"
  std::string name;               // set for "xen:NAME"
  bool operator==(const XenSpec&) const = default;
};

// "DOMID" (decimal, 1..32751: dom0 itself and Xen's reserved ids are refused) or "NAME"
// (1..64 printable bytes, no '/'). Errors: kInvalidArgument.
Result<XenSpec> ParseXenSpec(std::string_view rest);

// Guest RAM of an x86 HVM domain with `max_memkb` KiB under libxl's default layout.
std::vector<PhysRange> XenRamRanges(uint64_t max_memkb);

// Errors: kUnavailable (no Xen, domain not running), kNotFound (no such name), kOs.
Result<std::unique_ptr<Driver>> OpenXen(std::string_view rest, const OpenOptions& options);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_XEN_DRIVER_H_
