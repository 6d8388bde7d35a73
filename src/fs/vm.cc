#include "fs/vm.h"

#include <cstdio>

#include "drivers/registry.h"

namespace vmemfs::fs {

Result<std::unique_ptr<Vm>> OpenVm(std::string name, std::string spec, bool writable,
                                   const vmi::DetectOptions& os_options) {
  auto vm = std::make_unique<Vm>();
  vm->name = std::move(name);
  vm->spec = std::move(spec);
  VMEMFS_ASSIGN_OR_RETURN(auto driver, drivers::OpenSource(vm->spec, {.writable = writable}));
  auto guest = vmi::Guest::Create(std::move(driver));
  if (!guest) return guest.error().WithContext(vm->spec);
  vm->guest = std::move(*guest);
  auto os = vmi::DetectOs(*vm->guest, os_options);
  if (os) {
    vm->os = std::move(*os);
  } else if (os.error().code() != ErrorCode::kNotFound) {
    fprintf(stderr, "vmemfs: %s: %s\n", vm->spec.c_str(), os.error().ToString().c_str());
  }
  return vm;
}

}  // namespace vmemfs::fs
