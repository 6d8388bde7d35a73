#include "fs/host_set_provider.h"

#include <utility>

#include "fs/vm_set_provider.h"

namespace vmemfs::fs {
namespace {

class HostSetProvider : public DirectoryProvider {
 public:
  HostSetProvider(std::vector<HostSet> hosts, bool writable,
                  std::shared_ptr<const vmi::OsFinders> os_finders)
      : hosts_(std::move(hosts)), writable_(writable), os_finders_(std::move(os_finders)) {}

  // ever_connected() is an atomic read: no host is asked anything here.
  Result<std::vector<std::string>> Names() override {
    std::vector<std::string> names;
    for (const HostSet& h : hosts_) {
      if (h.set->ever_connected()) names.push_back(h.name);
    }
    return names;
  }

  // A host directory is the same object for the life of the mount (identity 0, generation 0):
  // reconnections are handled one level down, per domain.
  Result<std::optional<Entry>> Make(std::string_view name) override {
    for (const HostSet& h : hosts_) {
      if (h.name != name || !h.set->ever_connected()) continue;
      return Entry::OfDirectory(nullptr, MakeVmSetProvider(h.set, writable_, os_finders_));
    }
    return std::optional<Entry>();
  }

 private:
  const std::vector<HostSet> hosts_;
  const bool writable_;
  const std::shared_ptr<const vmi::OsFinders> os_finders_;
};

}  // namespace

std::unique_ptr<DirectoryProvider> MakeHostSetProvider(
    std::vector<HostSet> hosts, bool writable, std::shared_ptr<const vmi::OsFinders> os_finders) {
  return std::make_unique<HostSetProvider>(std::move(hosts), writable, std::move(os_finders));
}

}  // namespace vmemfs::fs
