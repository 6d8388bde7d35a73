#include "vmi/linux/linux_finder.h"

#include "vmi/linux/kernel_finder.h"
#include "vmi/linux/kernel_layout.h"
#include "vmi/linux/linux_os.h"
#include "vmi/linux/overrides.h"
#include "vmi/linux/vmcoreinfo.h"
#include "vmi/linux/vmcoreinfo_scan.h"

namespace vmemfs::vmi::linux_os {
namespace {

struct Located {
  VmcoreInfo info;
  VmcoreInfoOrigin origin;
};

class LinuxFinder : public OsFinder {
 public:
  explicit LinuxFinder(std::shared_ptr<const LoadedOverrides> overrides)
      : overrides_(std::move(overrides)) {}

  std::string_view name() const override { return "linux"; }

  Result<FoundOs> Find(const OsSearch& search) const override {
    VMEMFS_ASSIGN_OR_RETURN(Located found, Locate(search));
    auto layout = FindKernelLayout(search.guest, found.info, search.register_roots);
    if (!layout) {
      // A kernel still booting has its note before its page tables: not found yet.
      return NotFoundError("VMCOREINFO (" + found.origin.how +
                           ") but no page tables that verify: " + layout.error().message());
    }
    AddressSpace kernel{layout->mode, layout->page_table_root};
    std::string how = layout->root_source;
    std::shared_ptr<LinuxOs> os = LinuxOs::Create(search.guest, std::move(found.info),
                                                  std::move(found.origin), *std::move(layout),
                                                  overrides_);
    return FoundOs{std::move(os), kernel, std::move(how)};
  }

 private:
  Result<Located> Locate(const OsSearch& search) const {
    if (auto carried = search.guest.CarriedVmcoreInfo()) {
      if (auto info = VmcoreInfo::Parse(*carried)) {
        return Located{*std::move(info), {std::nullopt, "note in the source file"}};
      }
    }
    Result<Located> through = ThroughPageTables(search);
    if (through || through.error().code() != ErrorCode::kNotFound) return through;
    if (!search.may_scan_all_ram()) {
      return NotFoundError("no VMCOREINFO note through the page tables (" +
                           through.error().message() + "); the next scan of all RAM is not due yet");
    }
    VMEMFS_ASSIGN_OR_RETURN(VmcoreInfoLocation where, LocateVmcoreInfo(search.guest));
    VMEMFS_ASSIGN_OR_RETURN(VmcoreInfo info, VmcoreInfo::Parse(where.text));
    return Located{std::move(info), {where.note_pa, where.source}};
  }

  // The note through the registers' roots or the real-mode trampoline's tables: what the
  // kernel costs, not what the RAM costs (kernel_finder.h).
  static Result<Located> ThroughPageTables(const OsSearch& search) {
    std::vector<RegisterRoot> registers;
    for (const RootCandidate& r : search.register_roots) {
      registers.push_back({r.space.mode, r.space.root, r.source});
    }
    Guest& guest = search.guest;
    KernelFinderInput input{guest.physical(), guest.ranges(), registers,
                            [&](const VmcoreInfo& info) {
                              return FindKernelLayout(guest, info, search.register_roots)
                                  .has_value();
                            },
                            {}};
    VMEMFS_ASSIGN_OR_RETURN(KernelFinding found, FindKernelVmcoreInfo(input));
    VMEMFS_ASSIGN_OR_RETURN(VmcoreInfo info, VmcoreInfo::Parse(found.text));
    return Located{std::move(info), {found.note_pa, found.how}};
  }

  const std::shared_ptr<const LoadedOverrides> overrides_;  // null: none given
};

}  // namespace

Result<std::unique_ptr<OsFinder>> MakeLinuxFinder(const OsOverrides& overrides) {
  std::shared_ptr<const LoadedOverrides> loaded;
  if (!overrides.empty()) {
    LinuxOverrides files{overrides.system_map, overrides.isf, overrides.offsets, nullptr};
    VMEMFS_TRY(files.Load());
    loaded = files.loaded;
  }
  return std::unique_ptr<OsFinder>(std::make_unique<LinuxFinder>(std::move(loaded)));
}

}  // namespace vmemfs::vmi::linux_os
