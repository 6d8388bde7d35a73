#include "fs/vm.h"

#include "drivers/registry.h"

namespace vmemfs::fs {

Result<std::unique_ptr<Vm>> OpenVm(std::string name, std::string spec, bool writable,
                                   std::shared_ptr<const vmi::OsFinders> os_finders) {
  auto vm = std::make_unique<Vm>();
  vm->name = std::move(name);
  vm->spec = std::move(spec);
  VMEMFS_ASSIGN_OR_RETURN(auto driver, drivers::OpenSource(vm->spec, {.writable = writable}));
  vmi::GuestOptions options;
  options.os_finders = std::move(os_finders);
  auto guest = vmi::Guest::Open(std::move(driver), std::move(options));
  if (!guest) return guest.error().WithContext(vm->spec);
  vm->guest = std::move(*guest);
  return vm;
}

}  // namespace vmemfs::fs
