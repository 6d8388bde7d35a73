// The one answer to "which run of guest-physical memory holds address pa": a sorted, disjoint,
// immutable map of runs [start, end), each with a payload (a snapshot's file offset, where QEMU
// holds the run, or nothing for plain RAM ranges).
//
// Lookups binary-search and remember the last run found in a relaxed atomic hint, so repeated
// nearby lookups (a page walk, a sequential read) cost one compare; a stale hint is only a missed
// shortcut. Runs end at 2^64 - 1 at most (`end` is exclusive), so walking from a run's start to
// its end never wraps.
//
// Thread safety: every const method, from any thread; runs never change after Create.
#ifndef VMEMFS_DRIVERS_PHYS_MAP_H_
#define VMEMFS_DRIVERS_PHYS_MAP_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/hex.h"
#include "base/status.h"
#include "drivers/driver.h"

namespace vmemfs::drivers {

// The payload of a map whose runs carry nothing.
struct NoPayload {
  bool operator==(const NoPayload&) const = default;
};

template <typename T = NoPayload>
struct PhysRun {
  uint64_t start;
  uint64_t end;  // exclusive
  [[no_unique_address]] T value{};

  uint64_t size() const { return end - start; }
  bool contains(uint64_t pa) const { return pa - start < end - start; }
  bool operator==(const PhysRun&) const = default;
};

template <typename T = NoPayload>
class PhysMap {
 public:
  using Run = PhysRun<T>;

  PhysMap() = default;  // no runs
  PhysMap(PhysMap&& other) noexcept { *this = std::move(other); }
  PhysMap& operator=(PhysMap&& other) noexcept {
    runs_ = std::move(other.runs_);
    ranges_ = std::move(other.ranges_);
    hint_.store(0, std::memory_order_relaxed);
    return *this;
  }

  // Errors: kBadData naming the first run that is empty or does not start at or after the end
  // of the one before (unsorted or overlapping).
  static Result<PhysMap> Create(std::vector<Run> runs) {
    for (size_t i = 0; i < runs.size(); ++i) {
      const Run& r = runs[i];
      if (r.end <= r.start) return BadDataError("empty RAM run at " + Hex(r.start));
      if (i > 0 && r.start < runs[i - 1].end) {
        return BadDataError("RAM runs out of order or overlapping: [" + Hex(runs[i - 1].start) +
                            ", " + Hex(runs[i - 1].end) + ") and [" + Hex(r.start) + ", " +
                            Hex(r.end) + ")");
      }
    }
    PhysMap map;
    map.ranges_.reserve(runs.size());
    for (const Run& r : runs) map.ranges_.push_back({r.start, r.end});
    map.runs_ = std::move(runs);
    return map;
  }

  // Runs with default payloads over `ranges`; errors as Create.
  static Result<PhysMap> FromRanges(std::span<const PhysRange> ranges) {
    std::vector<Run> runs;
    runs.reserve(ranges.size());
    for (const PhysRange& r : ranges) runs.push_back(Run{r.start, r.end});
    return Create(std::move(runs));
  }

  // The run holding `pa`, or nullptr.
  const Run* Find(uint64_t pa) const {
    const size_t hint = hint_.load(std::memory_order_relaxed);
    if (hint < runs_.size() && runs_[hint].contains(pa)) return &runs_[hint];
    const size_t i = FirstStartingAfter(pa);
    if (i == 0 || !runs_[i - 1].contains(pa)) return nullptr;
    hint_.store(i - 1, std::memory_order_relaxed);
    return &runs_[i - 1];
  }

  // The run holding `pa`, else the first run after it (the end of the hole at `pa`), else
  // nullptr.
  const Run* FindAtOrAfter(uint64_t pa) const {
    if (const Run* run = Find(pa)) return run;
    const size_t i = FirstStartingAfter(pa);
    return i < runs_.size() ? &runs_[i] : nullptr;
  }

  // Calls visit(run, at, done, n) for the pieces of [pa, pa + len) in address order: `n` bytes
  // at `at` inside `run`, `done` bytes of the whole before them. Returns the first error visit
  // returns, or kFault (address: the first byte in no run) at a hole, after visiting the pieces
  // before it. `visit` returns a Status.
  template <typename Visit>
  Status ForEachPiece(uint64_t pa, uint64_t len, Visit visit) const {
    uint64_t done = 0;
    while (done < len) {
      const uint64_t at = pa + done;  // a run's end after the first piece: never wraps
      const Run* run = Find(at);
      if (run == nullptr) return FaultError(at, "not RAM");
      const uint64_t n = std::min(len - done, run->end - at);
      VMEMFS_TRY(visit(*run, at, done, n));
      done += n;
    }
    return Status();
  }

  // OK if every byte of [pa, pa + len) lies in a run, else kFault at the first that does not.
  Status CheckCovered(uint64_t pa, uint64_t len) const {
    return ForEachPiece(pa, len, [](const Run&, uint64_t, uint64_t, uint64_t) { return Status(); });
  }

  // The runs as plain ranges: what Driver::ranges() returns.
  std::span<const PhysRange> ranges() const { return ranges_; }
  std::span<const Run> runs() const { return runs_; }
  const Run* begin() const { return runs_.data(); }
  const Run* end() const { return runs_.data() + runs_.size(); }
  size_t size() const { return runs_.size(); }
  bool empty() const { return runs_.empty(); }

 private:
  // Index of the first run whose start is above `pa` (runs_.size() if none).
  size_t FirstStartingAfter(uint64_t pa) const {
    auto it = std::upper_bound(ranges_.begin(), ranges_.end(), pa,
                               [](uint64_t a, const PhysRange& r) { return a < r.start; });
    return static_cast<size_t>(it - ranges_.begin());
  }

  std::vector<Run> runs_;
  std::vector<PhysRange> ranges_;  // runs_' bounds alone: compact for the binary search
  mutable std::atomic<size_t> hint_{0};
};

// The [start, end) of each of `parts` (sorted by start, disjoint; anything with start and end
// members), adjacent ones merged: the RAM ranges a driver shows for pieces that differ in where
// they are held, not in being RAM.
template <typename Parts>
std::vector<PhysRange> MergedRanges(const Parts& parts) {
  std::vector<PhysRange> ranges;
  for (const auto& p : parts) {
    if (!ranges.empty() && ranges.back().end == p.start) {
      ranges.back().end = p.end;
    } else {
      ranges.push_back({p.start, p.end});
    }
  }
  return ranges;
}

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_PHYS_MAP_H_
