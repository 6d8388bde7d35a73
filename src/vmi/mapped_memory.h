// What a virtual address space holds, in one walk of its page tables: how many of its bytes
// are mapped RAM (what `du` and `ls -s` show for kmem, mem and vmem files, and what tar -S and
// cp --sparse copy), and its runs of mapped RAM (kvmem/).
//
// A byte counts when its page is present and maps RAM, exactly what reads as data and
// SEEK_DATA finds; aliases (the kernel image and the direct map) count in each place. Both
// walks are bounded: a hostile table can map the whole kernel half, a real kernel needs a
// small fraction of the budget.
#ifndef VMEMFS_VMI_MAPPED_MEMORY_H_
#define VMEMFS_VMI_MAPPED_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"
#include "drivers/driver.h"
#include "vmi/guest.h"

namespace vmemfs::vmi {

struct MappedBytes {
  uint64_t bytes = 0;
  // False when the walk's budget ran out: tables left unread are estimated as the mean of
  // those of the same level that were counted.
  bool exact = true;
};

// Table entries one count looks at: 2^20, 2048 full tables (8 MiB of tables read). The test
// guests' whole kernel half needs about a tenth of it.
inline constexpr uint64_t kCountBudget = 1ull << 20;

// Mapped RAM bytes of the file-offset range [offset, offset + length) of `space`.
Result<MappedBytes> CountMappedRam(Guest& guest, const AddressSpace& space, uint64_t offset,
                                   uint64_t length, uint64_t budget = kCountBudget);

// A run of mapped RAM: [offset, offset + length) in file offsets of the space.
struct MappedRun {
  uint64_t offset;
  uint64_t length;
  bool operator==(const MappedRun&) const = default;
};

struct RunLimits {
  uint64_t max_length;  // longer runs are cut into pieces of this length
  size_t max_runs;      // the walk stops when it has this many
  uint64_t budget;      // table entries looked at
};

// The runs of virtually contiguous mapped RAM in [offset, offset + length), in address order,
// cut at max_length. `complete` is false when a limit ended the walk early.
struct MappedRuns {
  std::vector<MappedRun> runs;
  bool complete = true;
};
Result<MappedRuns> FindMappedRuns(Guest& guest, const AddressSpace& space, uint64_t offset,
                                  uint64_t length, const RunLimits& limits);

// Bytes of [pa, pa + length) inside `ranges` (sorted, disjoint).
uint64_t BytesInRanges(std::span<const drivers::PhysRange> ranges, uint64_t pa, uint64_t length);

}  // namespace vmemfs::vmi

#endif  // VMEMFS_VMI_MAPPED_MEMORY_H_
