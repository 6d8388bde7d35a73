#include "drivers/snapshot_layout.h"

#include <algorithm>

#include "base/checked.h"
#include "base/hex.h"

namespace vmemfs::drivers {

Result<SnapshotLayout> RawLayout(uint64_t file_size) {
  if (file_size == 0) return BadDataError("empty file");
  SnapshotLayout layout;
  layout.format = "raw";
  layout.segments.push_back({.phys_start = 0, .file_offset = 0, .size = file_size});
  return layout;
}

Status NormalizeSegments(std::vector<SnapshotSegment>& segments, uint64_t file_size) {
  std::erase_if(segments, [](const SnapshotSegment& s) { return s.size == 0; });
  if (segments.size() > kMaxSnapshotSegments) {
    return BadDataError(std::to_string(segments.size()) + " RAM segments (limit " +
                        std::to_string(kMaxSnapshotSegments) + ")");
  }
  for (const SnapshotSegment& s : segments) {
    // Parsers check these with better messages; this is the last line of defence.
    if (!RangeWithin(s.file_offset, s.size, file_size) || !CheckedAdd(s.phys_start, s.size)) {
      return BadDataError("RAM segment at " + Hex(s.phys_start) + " (size " + Hex(s.size) +
                          ", file offset " + Hex(s.file_offset) + ") is out of bounds");
    }
    if (s.phys_start + s.size > kMaxPhysicalAddress) {
      return BadDataError("RAM segment at " + Hex(s.phys_start) + " (size " + Hex(s.size) +
                          ") ends beyond 2^52, the largest physical address x86 has");
    }
  }
  std::sort(segments.begin(), segments.end(),
            [](const SnapshotSegment& a, const SnapshotSegment& b) {
              return a.phys_start < b.phys_start;
            });
  for (size_t i = 1; i < segments.size(); ++i) {
    const SnapshotSegment& prev = segments[i - 1];
    const SnapshotSegment& cur = segments[i];
    if (prev.phys_start + prev.size > cur.phys_start) {
      return BadDataError("RAM segments overlap: [" + Hex(prev.phys_start) + ", " +
                          Hex(prev.phys_start + prev.size) + ") and [" + Hex(cur.phys_start) +
                          ", " + Hex(cur.phys_start + cur.size) + ")");
    }
  }
  return Status();
}

}  // namespace vmemfs::drivers
