#include "drivers/lime.h"

#include <cstring>
#include <string>
#include <vector>

#include "base/byte_reader.h"
#include "base/checked.h"
#include "base/hex.h"

namespace vmemfs::drivers {
namespace {

constexpr uint32_t kLimeVersion = 1;
constexpr size_t kLimeHeaderSize = 32;

// Reads the header of range `index` at the reader's position and returns its segment.
Result<SnapshotSegment> ReadRange(ByteReader& in, size_t index) {
  const std::string where = "LiME range " + std::to_string(index) + " at offset " + Hex(in.pos());
  if (in.remaining() < kLimeHeaderSize) {
    return BadDataError(where + ": truncated header (" + std::to_string(in.remaining()) +
                        " bytes left, need 32)");
  }
  VMEMFS_ASSIGN_OR_RETURN(uint32_t magic, in.Read<uint32_t>());
  VMEMFS_ASSIGN_OR_RETURN(uint32_t version, in.Read<uint32_t>());
  VMEMFS_ASSIGN_OR_RETURN(uint64_t start, in.Read<uint64_t>());
  VMEMFS_ASSIGN_OR_RETURN(uint64_t last, in.Read<uint64_t>());
  VMEMFS_TRY(in.Skip(8));  // reserved
  if (magic != kLimeMagic) return BadDataError(where + ": bad magic " + Hex(magic));
  if (version != kLimeVersion) {
    return BadDataError(where + ": unsupported version " + std::to_string(version));
  }
  if (last < start) {
    return BadDataError(where + ": end " + Hex(last) + " is below start " + Hex(start));
  }
  auto size = CheckedAdd(last - start, 1);
  if (!size) return BadDataError(where + ": range covers the whole 64-bit address space");
  if (*size > in.remaining()) {
    return BadDataError(where + ": data extends past end of file (size " + Hex(*size) + ", " +
                        Hex(in.remaining()) + " bytes left)");
  }
  SnapshotSegment seg{.phys_start = start, .file_offset = in.pos(), .size = *size};
  VMEMFS_TRY(in.Skip(*size));
  return seg;
}

}  // namespace

bool LooksLikeLime(std::span<const std::byte> file) {
  uint32_t magic;
  if (file.size() < sizeof(magic)) return false;
  std::memcpy(&magic, file.data(), sizeof(magic));
  return magic == kLimeMagic;
}

Result<SnapshotLayout> ParseLime(std::span<const std::byte> file) {
  if (file.empty()) return BadDataError("empty file");
  SnapshotLayout layout;
  layout.format = "lime";
  ByteReader in(file, "LiME file");
  while (in.remaining() > 0) {
    // Checked before parsing the next range so a hostile file cannot grow the vector further.
    if (layout.segments.size() >= kMaxSnapshotSegments) {
      return BadDataError("more than " + std::to_string(kMaxSnapshotSegments) + " LiME ranges");
    }
    VMEMFS_ASSIGN_OR_RETURN(SnapshotSegment seg, ReadRange(in, layout.segments.size()));
    layout.segments.push_back(seg);
  }
  VMEMFS_TRY(NormalizeSegments(layout.segments, file.size()));
  return layout;
}

}  // namespace vmemfs::drivers
