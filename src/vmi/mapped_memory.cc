#include "vmi/mapped_memory.h"

#include <algorithm>
#include <array>
#include <optional>

namespace vmemfs::vmi {
namespace {

// The part of leaf `m` inside the file offsets [lo, hi), and the physical address it starts at.
struct Piece {
  uint64_t offset;
  uint64_t end;
  uint64_t pa;
};

std::optional<Piece> Clip(PagingMode mode, const Mapping& m, uint64_t lo, uint64_t hi) {
  const uint64_t at = VirtualToOffset(mode, m.va);
  const uint64_t from = std::max(at, lo);
  const uint64_t to = std::min(at + m.size, hi);
  if (from >= to) return std::nullopt;
  return Piece{from, to, m.pa + (from - at)};
}

// Calls f(offset, end) for each part of `piece` that maps RAM, in order. Leaf addresses have
// at most 52 bits, so piece.pa + length does not wrap.
template <typename F>
void ForEachRamPart(std::span<const drivers::PhysRange> ranges, const Piece& piece, F f) {
  const uint64_t length = piece.end - piece.offset;
  auto it = std::upper_bound(ranges.begin(), ranges.end(), piece.pa,
                             [](uint64_t pa, const drivers::PhysRange& r) { return pa < r.end; });
  for (; it != ranges.end() && it->start < piece.pa + length; ++it) {
    const uint64_t from = std::max(it->start, piece.pa);
    const uint64_t to = std::min(it->end, piece.pa + length);
    f(piece.offset + (from - piece.pa), piece.offset + (to - piece.pa));
  }
}

// Sums the RAM bytes of the leaves. When the budget runs out, a table left unread counts as
// the mean of the tables of its level that were counted whole, or, if none was, of those
// counted partly and estimated themselves (scaled to the part of it inside the range).
class RamCounter : public MappingVisitor {
 public:
  RamCounter(Guest& guest, PagingMode mode, uint64_t lo, uint64_t hi)
      : ranges_(guest.ranges()), mode_(mode), lo_(lo), hi_(hi) {}

  bool Leaf(const Mapping& m) override {
    if (auto piece = Clip(mode_, m, lo_, hi_)) {
      ForEachRamPart(ranges_, *piece, [this](uint64_t from, uint64_t to) { total_ += to - from; });
    }
    return true;
  }
  bool OnBudgetSpent() override {
    exact_ = false;
    return true;
  }
  void Unvisited(int level, uint64_t offset, uint64_t span) override {
    if (level >= kLevels) return;
    const Sample& s = whole_[level].tables > 0 ? whole_[level] : partial_[level];
    if (s.tables == 0) return;
    const uint64_t inside = std::min(hi_, offset + span) - std::max(lo_, offset);
    const auto mean = static_cast<unsigned __int128>(s.bytes) / s.tables;
    total_ += static_cast<uint64_t>(std::min<unsigned __int128>(mean * inside / span, inside));
  }
  void EnterTable(int) override { starts_.push_back(total_); }
  void LeaveTable(int level, bool complete) override {
    const uint64_t below = total_ - starts_.back();
    starts_.pop_back();
    if (level >= kLevels) return;
    Sample& s = complete ? whole_[level] : partial_[level];
    s.bytes += below;
    ++s.tables;
  }

  MappedBytes result() const { return {std::min(total_, hi_ - lo_), exact_}; }

 private:
  static constexpr int kLevels = 5;
  struct Sample {
    unsigned __int128 bytes = 0;
    uint64_t tables = 0;
  };
  std::span<const drivers::PhysRange> ranges_;
  PagingMode mode_;
  uint64_t lo_, hi_;
  uint64_t total_ = 0;  // never more than the range: leaves and unread tables do not overlap
  bool exact_ = true;
  std::vector<uint64_t> starts_;  // total_ when each open table was entered
  std::array<Sample, kLevels> whole_{};
  std::array<Sample, kLevels> partial_{};
};

// Collects runs of virtually contiguous mapped RAM, cut at max_length.
class RunCollector : public MappingVisitor {
 public:
  RunCollector(Guest& guest, PagingMode mode, uint64_t lo, uint64_t hi, const RunLimits& limits)
      : ranges_(guest.ranges()), mode_(mode), lo_(lo), hi_(hi), limits_(limits) {}

  bool Leaf(const Mapping& m) override {
    if (auto piece = Clip(mode_, m, lo_, hi_)) {
      ForEachRamPart(ranges_, *piece, [this](uint64_t from, uint64_t to) { Add(from, to); });
    }
    return result_.complete;
  }
  bool OnBudgetSpent() override {
    result_.complete = false;
    return true;  // keep the leaves of the tables already read
  }

  MappedRuns Take() { return std::move(result_); }

 private:
  void Add(uint64_t from, uint64_t to) {
    std::vector<MappedRun>& runs = result_.runs;
    while (from < to) {
      if (!runs.empty() && runs.back().offset + runs.back().length == from &&
          runs.back().length < limits_.max_length) {
        const uint64_t n = std::min(to - from, limits_.max_length - runs.back().length);
        runs.back().length += n;
        from += n;
        continue;
      }
      if (runs.size() >= limits_.max_runs) {
        result_.complete = false;
        return;
      }
      const uint64_t n = std::min(to - from, limits_.max_length);
      runs.push_back({from, n});
      from += n;
    }
  }

  std::span<const drivers::PhysRange> ranges_;
  PagingMode mode_;
  uint64_t lo_, hi_;
  RunLimits limits_;
  MappedRuns result_;
};

// The file-offset range [offset, offset + length) clipped to the address space.
std::pair<uint64_t, uint64_t> Bounds(const AddressSpace& space, uint64_t offset, uint64_t length) {
  const uint64_t size = AddressSpaceSize(space.mode);
  const uint64_t lo = std::min(offset, size);
  return {lo, lo + std::min(length, size - lo)};
}

}  // namespace

uint64_t BytesInRanges(std::span<const drivers::PhysRange> ranges, uint64_t pa, uint64_t length) {
  uint64_t total = 0;
  length = std::min(length, UINT64_MAX - pa);
  ForEachRamPart(ranges, Piece{0, length, pa},
                 [&total](uint64_t from, uint64_t to) { total += to - from; });
  return total;
}

Result<MappedBytes> CountMappedRam(Guest& guest, const AddressSpace& space, uint64_t offset,
                                   uint64_t length, uint64_t budget) {
  const auto [lo, hi] = Bounds(space, offset, length);
  RamCounter counter(guest, space.mode, lo, hi);
  Guest::Batch batch(guest);
  VMEMFS_TRY(WalkMappings(guest.physical(), space.mode, space.root, lo, hi, budget, counter));
  return counter.result();
}

Result<MappedRuns> FindMappedRuns(Guest& guest, const AddressSpace& space, uint64_t offset,
                                  uint64_t length, const RunLimits& limits) {
  const auto [lo, hi] = Bounds(space, offset, length);
  RunCollector collector(guest, space.mode, lo, hi, limits);
  Guest::Batch batch(guest);
  VMEMFS_TRY(
      WalkMappings(guest.physical(), space.mode, space.root, lo, hi, limits.budget, collector));
  return collector.Take();
}

}  // namespace vmemfs::vmi
