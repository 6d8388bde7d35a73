// Shared by the snapshot parser fuzz targets: aborts (so libFuzzer reports a crash) when a
// parser returns a layout that breaks the SnapshotLayout contract, and touches the first and
// last byte of every segment so AddressSanitizer catches a segment outside the input.
#ifndef VMEMFS_FUZZ_LAYOUT_CHECK_H_
#define VMEMFS_FUZZ_LAYOUT_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "drivers/snapshot_layout.h"

namespace vmemfs::fuzz {

inline void Require(bool ok) {
  if (!ok) std::abort();
}

inline void CheckLayout(const Result<drivers::SnapshotLayout>& layout,
                        std::span<const std::byte> file) {
  if (!layout) {
    Require(!layout.error().message().empty());
    return;
  }
  const auto& segs = layout->segments;
  Require(segs.size() <= drivers::kMaxSnapshotSegments);
  Require(layout->vcpus.size() <= drivers::kMaxSnapshotVcpus);
  volatile std::byte sink{};
  for (size_t i = 0; i < segs.size(); ++i) {
    const drivers::SnapshotSegment& s = segs[i];
    Require(s.size > 0 && s.file_offset <= file.size() && s.size <= file.size() - s.file_offset);
    Require(s.phys_start <= UINT64_MAX - s.size);
    if (i > 0) Require(segs[i - 1].phys_start + segs[i - 1].size <= s.phys_start);
    sink = file.data()[s.file_offset];
    sink = file.data()[s.file_offset + s.size - 1];
  }
  (void)sink;
}

}  // namespace vmemfs::fuzz

#endif  // VMEMFS_FUZZ_LAYOUT_CHECK_H_
