// What a snapshot parser (ELF core, LiME, raw) learns from a file, independent of how the file
// is read: where guest RAM sits in the file, the vCPU registers and the VMCOREINFO text.
//
// Contract of every parser that returns a SnapshotLayout: segments are non-empty, sorted by
// phys_start, do not overlap in guest-physical space, lie entirely inside the parsed file, and
// phys_start + size is at most kMaxPhysicalAddress. There are at most kMaxSnapshotSegments segments and
// kMaxSnapshotVcpus vCPUs.
#ifndef VMEMFS_DRIVERS_SNAPSHOT_LAYOUT_H_
#define VMEMFS_DRIVERS_SNAPSHOT_LAYOUT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "drivers/registers.h"

namespace vmemfs::drivers {

// Real dumps have a handful to a few hundred RAM blocks; more is a corrupt or hostile file.
inline constexpr size_t kMaxSnapshotSegments = 65536;
// KVM's limit is 4096 vCPUs; anything beyond is garbage.
inline constexpr size_t kMaxSnapshotVcpus = 4096;
// x86 physical addresses have at most 52 bits (MAXPHYADDR): RAM above 4 PiB cannot exist.
inline constexpr uint64_t kMaxPhysicalAddress = 1ull << 52;

// `size` bytes of guest RAM at guest-physical `phys_start`, stored at `file_offset`.
struct SnapshotSegment {
  uint64_t phys_start;
  uint64_t file_offset;
  uint64_t size;
  bool operator==(const SnapshotSegment&) const = default;
};

struct SnapshotLayout {
  std::string format;  // "raw", "elf64", "elf32", "lime"
  std::vector<SnapshotSegment> segments;
  std::vector<RegisterSet> vcpus;  // index = vCPU number
  std::optional<std::string> vmcoreinfo;
};

// The whole file as RAM at guest-physical 0. Errors: kBadData for an empty file.
Result<SnapshotLayout> RawLayout(uint64_t file_size);

// Sorts `segments` by phys_start and enforces the contract above against `file_size` (empty
// segments are dropped). Errors: kBadData naming the two overlapping segments or the count.
Status NormalizeSegments(std::vector<SnapshotSegment>& segments, uint64_t file_size);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_SNAPSHOT_LAYOUT_H_
