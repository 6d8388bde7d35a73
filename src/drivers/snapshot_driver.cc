#include "drivers/snapshot_driver.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <utility>
#include <vector>

#include "drivers/elf_core.h"
#include "drivers/lime.h"
#include "drivers/mapped_file.h"
#include "drivers/snapshot_layout.h"

namespace vmemfs::drivers {
namespace {

// Guest RAM that is contiguous both in guest-physical space and in the file: the unit of
// lookup, so a read crossing two adjacent PT_LOADs written back to back is one memcpy.
struct Run {
  uint64_t start;
  uint64_t end;
  uint64_t file_offset;
};

// REQUIRES: `segments` satisfies the SnapshotLayout contract (sorted, disjoint, non-empty).
std::vector<Run> MergeSegments(const std::vector<SnapshotSegment>& segments) {
  std::vector<Run> runs;
  for (const SnapshotSegment& s : segments) {
    if (!runs.empty() && runs.back().end == s.phys_start &&
        runs.back().file_offset + (runs.back().end - runs.back().start) == s.file_offset) {
      runs.back().end += s.size;
      continue;
    }
    runs.push_back({s.phys_start, s.phys_start + s.size, s.file_offset});
  }
  return runs;
}

class SnapshotDriver final : public Driver {
 public:
  SnapshotDriver(std::string path, MappedFile file, SnapshotLayout layout, bool writable)
      : path_(std::move(path)),
        file_(std::move(file)),
        layout_(std::move(layout)),
        writable_(writable),
        runs_(MergeSegments(layout_.segments)) {
    ranges_.reserve(runs_.size());
    for (const Run& r : runs_) ranges_.push_back({r.start, r.end});
  }

  std::string_view kind() const override { return "snapshot"; }
  std::span<const PhysRange> ranges() const override { return ranges_; }
  bool writable() const override { return writable_; }
  unsigned vcpu_count() const override { return static_cast<unsigned>(layout_.vcpus.size()); }
  std::optional<std::string> VmcoreInfo() const override { return layout_.vmcoreinfo; }

  Status ReadPhys(uint64_t pa, std::span<std::byte> out) override {
    return Transfer(pa, out.size(), [&](std::byte* mem, size_t done, size_t n) {
      std::memcpy(out.data() + done, mem, n);
    });
  }

  Status WritePhys(uint64_t pa, std::span<const std::byte> in) override {
    if (!writable_) return UnsupportedError(path_ + ": snapshot opened read-only");
    return Transfer(pa, in.size(), [&](std::byte* mem, size_t done, size_t n) {
      std::memcpy(mem, in.data() + done, n);
    });
  }

  std::span<const std::byte> Mapped(uint64_t pa) const override {
    const Run* run = Find(pa);
    if (run == nullptr) return {};
    return {Memory(*run, pa), static_cast<size_t>(run->end - pa)};
  }

  std::optional<FileExtent> FileBacked(uint64_t pa) const override {
    const Run* run = Find(pa);
    if (run == nullptr) return std::nullopt;
    return FileExtent{file_.fd(), run->file_offset + (pa - run->start), run->end - pa};
  }

  Result<RegisterSet> Registers(unsigned vcpu) override {
    if (vcpu >= layout_.vcpus.size()) {
      return NotFoundError(path_ + ": no registers for vCPU " + std::to_string(vcpu));
    }
    return layout_.vcpus[vcpu];
  }

  std::vector<InfoLine> Describe() const override {
    return {
        {"format", layout_.format},
        {"file-size", std::to_string(file_.bytes().size())},
        {"segments", std::to_string(layout_.segments.size())},
    };
  }

 private:
  std::byte* Memory(const Run& run, uint64_t pa) const {
    return file_.bytes().data() + run.file_offset + (pa - run.start);
  }

  // The run holding `pa`, or nullptr. The hint makes repeated reads near one place (a page
  // walk, a sequential read) skip the binary search; a stale hint is only a missed shortcut.
  const Run* Find(uint64_t pa) const {
    const size_t hint = hint_.load(std::memory_order_relaxed);
    if (hint < runs_.size() && pa - runs_[hint].start < runs_[hint].end - runs_[hint].start) {
      return &runs_[hint];
    }
    auto it = std::upper_bound(runs_.begin(), runs_.end(), pa,
                               [](uint64_t a, const Run& r) { return a < r.start; });
    if (it == runs_.begin() || pa >= std::prev(it)->end) return nullptr;
    --it;
    hint_.store(static_cast<size_t>(it - runs_.begin()), std::memory_order_relaxed);
    return &*it;
  }

  // Calls copy(mapped bytes, bytes done so far, n) for each run that [pa, pa + len) touches.
  // Run ends never exceed 2^64 - 1 (layout contract), so pa cannot wrap.
  template <typename Copy>
  Status Transfer(uint64_t pa, size_t len, Copy copy) const {
    size_t done = 0;
    while (done < len) {
      const Run* run = Find(pa);
      if (run == nullptr) return FaultError(pa);
      const size_t n = static_cast<size_t>(std::min<uint64_t>(len - done, run->end - pa));
      copy(Memory(*run, pa), done, n);
      done += n;
      pa += n;
    }
    return Status();
  }

  const std::string path_;
  const MappedFile file_;
  const SnapshotLayout layout_;
  const bool writable_;
  const std::vector<Run> runs_;
  std::vector<PhysRange> ranges_;
  mutable std::atomic<size_t> hint_{0};
};

Result<SnapshotLayout> ParseSnapshot(std::span<const std::byte> bytes) {
  if (LooksLikeElf(bytes)) return ParseElfCore(bytes);
  if (LooksLikeLime(bytes)) return ParseLime(bytes);
  return RawLayout(bytes.size());
}

}  // namespace

Result<std::unique_ptr<Driver>> OpenSnapshot(const std::string& path, const OpenOptions& options) {
  VMEMFS_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path, options.writable));
  Result<SnapshotLayout> layout = ParseSnapshot(file.bytes());
  if (!layout) return layout.error().WithContext(path);
  if (layout->segments.empty()) return BadDataError(path + ": no guest RAM in the file");
  return std::unique_ptr<Driver>(
      new SnapshotDriver(path, std::move(file), *std::move(layout), options.writable));
}

}  // namespace vmemfs::drivers
