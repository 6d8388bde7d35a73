#include "fs/kvmem_directory.h"

#include <fmt/format.h>

#include <mutex>

#include "fs/memory_files.h"
#include "vmi/mapped_memory.h"

namespace vmemfs::fs {
namespace {

// Files of at most 1 GiB: whole-file tools map them easily, and the 256 MiB to 4 GiB direct
// map of a test guest is one to four files.
constexpr uint64_t kMaxRunLength = 1ull << 30;
// A real kernel has a few thousand runs (every vmalloc area, each kernel stack, is one); a
// hostile table that maps every other page stops here.
constexpr size_t kMaxRuns = 1 << 16;
// Table entries one listing looks at (as NextMapping).
constexpr uint64_t kListBudget = 1ull << 22;

struct Region {
  uint64_t va;
  uint64_t length;
  std::string name;
};

// "ffff888000000000-ffff888010000000"; a run ending at the top of the address space ends at
// 2^64.
std::string RegionName(uint64_t va, uint64_t length) {
  const uint64_t end = va + length;
  return fmt::format("{:x}-{}", va, end != 0 ? fmt::format("{:x}", end) : "10000000000000000");
}

// The kernel's part of the address space, as offset and length: above user space (all of it
// in the 32-bit modes).
std::pair<uint64_t, uint64_t> KernelPart(vmi::PagingMode mode) {
  const uint64_t size = vmi::AddressSpaceSize(mode);
  const uint64_t user_end = vmi::UserSpaceEnd(mode);
  return user_end < size ? std::pair{user_end, size - user_end} : std::pair{uint64_t{0}, size};
}

class KvmemProvider : public DirectoryProvider {
 public:
  KvmemProvider(vmi::Guest& guest, vmi::AddressSpace space) : guest_(guest), space_(space) {}

  uint64_t generation() override { return guest_.generation(); }

  Result<std::vector<std::string>> Names() override {
    VMEMFS_ASSIGN_OR_RETURN(auto regions, Regions());
    std::vector<std::string> names;
    names.reserve(regions->size());
    for (const Region& r : *regions) names.push_back(r.name);
    return names;
  }

  Result<std::optional<Entry>> Make(std::string_view name) override {
    VMEMFS_ASSIGN_OR_RETURN(auto regions, Regions());
    for (const Region& r : *regions) {
      if (r.name != name) continue;
      const vmi::AddressSpace space = space_;
      return Entry::OfFile(
          MakeVirtualWindowFile(
              guest_, space.mode, [space] { return Result<vmi::AddressSpace>(space); }, r.va,
              r.length),
          r.va ^ (r.length << 1));
    }
    return std::optional<Entry>();
  }

 private:
  using RegionList = std::shared_ptr<const std::vector<Region>>;

  // The runs of this generation, found once.
  Result<RegionList> Regions() {
    const uint64_t generation = guest_.generation();
    std::lock_guard lock(mu_);
    if (regions_ && generation_ == generation) return regions_;
    const auto [offset, length] = KernelPart(space_.mode);
    VMEMFS_ASSIGN_OR_RETURN(vmi::MappedRuns found,
                            vmi::FindMappedRuns(guest_, space_, offset, length,
                                                {kMaxRunLength, kMaxRuns, kListBudget}));
    auto regions = std::make_shared<std::vector<Region>>();
    regions->reserve(found.runs.size());
    for (const vmi::MappedRun& run : found.runs) {
      const uint64_t va = vmi::OffsetToVirtual(space_.mode, run.offset);
      regions->push_back({va, run.length, RegionName(va, run.length)});
    }
    regions_ = std::move(regions);
    generation_ = generation;
    return regions_;
  }

  vmi::Guest& guest_;
  const vmi::AddressSpace space_;
  std::mutex mu_;
  RegionList regions_;  // GUARDED_BY(mu_)
  uint64_t generation_ = 0;
};

}  // namespace

Entry MakeKvmemDirectory(vmi::Guest& guest, std::shared_ptr<const vmi::KernelView> view) {
  return Entry::OfDirectory(nullptr, std::make_unique<KvmemProvider>(guest, *view->space),
                            view->id);
}

}  // namespace vmemfs::fs
