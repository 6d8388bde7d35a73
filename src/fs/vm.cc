#include "fs/vm.h"

#include "vmi/sources.h"

namespace vmemfs::fs {

Result<std::unique_ptr<Vm>> OpenVm(std::string name, std::string spec, bool writable,
                                   std::shared_ptr<const vmi::OsFinders> os_finders) {
  auto vm = std::make_unique<Vm>();
  vm->name = std::move(name);
  vm->spec = std::move(spec);
  VMEMFS_ASSIGN_OR_RETURN(vm->guest,
                          vmi::OpenGuest(vm->spec, writable, {.os_finders = std::move(os_finders)}));
  return vm;
}

}  // namespace vmemfs::fs
