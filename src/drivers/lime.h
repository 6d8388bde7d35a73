// LiME (Linux Memory Extractor) "lime" format: a sequence of ranges, each a 32-byte header
//   u32 magic 0x4C694D45 ("EMiL" on disk), u32 version (1), u64 start, u64 end (inclusive),
//   u8 reserved[8]
// followed by end - start + 1 bytes of physical memory. Little-endian.
#ifndef VMEMFS_DRIVERS_LIME_H_
#define VMEMFS_DRIVERS_LIME_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/status.h"
#include "drivers/snapshot_layout.h"

namespace vmemfs::drivers {

inline constexpr uint32_t kLimeMagic = 0x4C694D45;

// True if `file` starts with the LiME magic.
bool LooksLikeLime(std::span<const std::byte> file);

// Parses a whole LiME file. The layout has no vCPUs and no VMCOREINFO (LiME carries neither).
// Errors: kBadData naming the range and offset (bad magic or version, end < start, data past
// end of file, overlapping ranges, too many ranges, empty file).
Result<SnapshotLayout> ParseLime(std::span<const std::byte> file);

}  // namespace vmemfs::drivers

#endif  // VMEMFS_DRIVERS_LIME_H_
