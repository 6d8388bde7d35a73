#include "fs/vm_set_provider.h"

#include <map>
#include <mutex>
#include <vector>

#include "fs/vm.h"
#include "fs/vm_directory.h"

namespace vmemfs::fs {
namespace {

class VmSetProvider : public DirectoryProvider {
 public:
  VmSetProvider(Tree& tree, std::unique_ptr<drivers::SourceSet> set, bool writable,
                vmi::DetectOptions os_options)
      : tree_(tree),
        set_(std::move(set)),
        writable_(writable),
        os_options_(std::move(os_options)) {}

  // The running VMs now. A VM that stopped since the last listing is forgotten by the tree, so
  // if it starts again its next lookup opens it afresh.
  Result<std::vector<std::string>> Names() override {
    VMEMFS_ASSIGN_OR_RETURN(auto current, set_->Current());
    std::vector<std::string> names;
    std::lock_guard lock(mu_);
    for (const auto& e : current) names.push_back(e.name);
    for (const auto& [name, spec] : listed_) {
      bool still = false;
      for (const auto& e : current) still = still || (e.name == name && e.spec == spec);
      if (!still) tree_.Forget(kRootIno, name);
    }
    listed_.clear();
    for (const auto& e : current) listed_[e.name] = e.spec;
    return names;
  }

  Result<std::optional<Entry>> Make(std::string_view name) override {
    VMEMFS_ASSIGN_OR_RETURN(auto current, set_->Current());
    for (const auto& e : current) {
      if (e.name != name) continue;
      VMEMFS_ASSIGN_OR_RETURN(auto vm, OpenVm(e.name, e.spec, writable_, os_options_));
      Vm* v = vm.get();
      {
        std::lock_guard lock(mu_);
        listed_[e.name] = e.spec;
        // Kept for the life of the mount: nodes of a stopped VM may still be in use.
        vms_.push_back(std::move(vm));
      }
      VmDirectoryOptions options{v->name, v->spec, writable_};
      return std::optional<Entry>(Entry::OfDirectory([v, options](Tree& tree, Ino dir) {
        return PopulateVmDirectory(tree, dir, *v->guest, v->os.get(), options);
      }));
    }
    return std::optional<Entry>();
  }

 private:
  Tree& tree_;
  std::unique_ptr<drivers::SourceSet> set_;
  const bool writable_;
  const vmi::DetectOptions os_options_;
  std::mutex mu_;
  std::map<std::string, std::string> listed_;  // GUARDED_BY(mu_): name -> spec last seen
  std::vector<std::unique_ptr<Vm>> vms_;       // GUARDED_BY(mu_)
};

}  // namespace

std::unique_ptr<DirectoryProvider> MakeVmSetProvider(Tree& tree,
                                                     std::unique_ptr<drivers::SourceSet> set,
                                                     bool writable, vmi::DetectOptions os_options) {
  return std::make_unique<VmSetProvider>(tree, std::move(set), writable, std::move(os_options));
}

}  // namespace vmemfs::fs
