#include "fs/vm_set_provider.h"

#include <mutex>
#include <vector>

#include "fs/vm.h"
#include "fs/vm_directory.h"
#include "fs/vm_name.h"

namespace vmemfs::fs {
namespace {

class VmSetProvider : public DirectoryProvider {
 public:
  VmSetProvider(std::shared_ptr<vmi::GuestSet> set, bool writable,
                std::shared_ptr<const vmi::OsFinders> os_finders)
      : set_(std::move(set)), writable_(writable), os_finders_(std::move(os_finders)) {}

  // The running VMs now. A VM that stopped drops out of the listing (the tree cuts its
  // directory), so if it starts again its next lookup opens it afresh.
  Result<std::vector<std::string>> Names() override {
    VMEMFS_ASSIGN_OR_RETURN(auto current, set_->Current());
    std::vector<std::string> names;
    for (const auto& e : current) {
      if (CheckVmName(e.name).ok()) names.push_back(e.name);  // others cannot be directories
    }
    return names;
  }

  uint64_t generation() override { return set_->generation(); }

  Result<std::optional<Entry>> Make(std::string_view name) override {
    // Read before the listing: a reconnection in between makes this entry stale at once
    // (opened again on its next lookup) rather than a dead one kept as new.
    const uint64_t generation = set_->generation();
    VMEMFS_ASSIGN_OR_RETURN(auto current, set_->Current());
    for (const auto& e : current) {
      if (e.name != name || !CheckVmName(e.name).ok()) continue;
      VMEMFS_ASSIGN_OR_RETURN(auto vm, OpenVm(e.name, e.spec, writable_, os_finders_));
      Vm* v = vm.get();
      {
        std::lock_guard lock(mu_);
        // Kept for the life of the mount: files of a stopped VM may still be open.
        vms_.push_back(std::move(vm));
      }
      // One identity per connection: after a reconnection the same name is another object.
      return Entry::OfDirectory(nullptr, MakeVmDirectory(*v->guest, {v->name, v->spec}),
                                generation);
    }
    return std::optional<Entry>();
  }

 private:
  const std::shared_ptr<vmi::GuestSet> set_;
  const bool writable_;
  const std::shared_ptr<const vmi::OsFinders> os_finders_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Vm>> vms_;  // GUARDED_BY(mu_)
};

}  // namespace

std::unique_ptr<DirectoryProvider> MakeVmSetProvider(
    std::shared_ptr<vmi::GuestSet> set, bool writable,
    std::shared_ptr<const vmi::OsFinders> os_finders) {
  return std::make_unique<VmSetProvider>(std::move(set), writable, std::move(os_finders));
}

}  // namespace vmemfs::fs
