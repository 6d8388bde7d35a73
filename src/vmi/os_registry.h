// The one place that knows every supported operating system: each registers an OsFinder that
// recognises it in a guest's memory and returns it as an OperatingSystem.
#ifndef VMEMFS_VMI_OS_REGISTRY_H_
#define VMEMFS_VMI_OS_REGISTRY_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "vmi/guest.h"
#include "vmi/os.h"

namespace vmemfs::vmi {

// An operating system found in a guest.
struct FoundOs {
  std::shared_ptr<OperatingSystem> os;  // never null
  AddressSpace kernel;                  // the kernel's page tables, verified
  std::string kernel_how;               // how they were found and verified, for `info`
};

// What the Guest hands a search.
struct OsSearch {
  Guest& guest;
  // Page-table roots from the vCPUs' registers, read for this search (empty without
  // registers, or while no vCPU has paging on).
  std::vector<RootCandidate> register_roots;
  // Asked only when nothing cheaper found the OS: whether the freshness rule allows the last
  // resort, a scan of all RAM, now (a yes is recorded as a scan).
  std::function<bool()> may_scan_all_ram;
};

// Recognises one OS. Thread safety: Find may be called concurrently.
class OsFinder {
 public:
  virtual ~OsFinder() = default;
  virtual std::string_view name() const = 0;
  // kNotFound (saying why) when the guest shows no usable sign of this OS now; other errors
  // when reading the guest failed.
  virtual Result<FoundOs> Find(const OsSearch& search) const = 0;
};

class OsFinders {
 public:
  // Every registered OS, with the override files loaded and checked once (errors name the
  // file). Shared by every guest of a mount.
  static Result<std::shared_ptr<const OsFinders>> Create(const OsOverrides& overrides = {});
  // Exactly these finders, tried in order (tests).
  explicit OsFinders(std::vector<std::unique_ptr<OsFinder>> finders)
      : finders_(std::move(finders)) {}
  OsFinders() = default;
  // The first OS that is found; kNotFound with each finder's reason otherwise.
  Result<FoundOs> Find(const OsSearch& search) const;

 private:
  std::vector<std::unique_ptr<OsFinder>> finders_;
};

}  // namespace vmemfs::vmi

#endif  // VMEMFS_VMI_OS_REGISTRY_H_
