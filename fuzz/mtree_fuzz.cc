// Fuzzes the parsers of QEMU's human monitor text that decide where guest RAM is: `info mtree -f`
// (which ranges are RAM or ROM) and `gpa2hva` (where QEMU holds them). A QEMU at the end of a
// socket could be anything, and these answers size every later read.
//
// Input: [selector:1][text...]. Checks that the ranges that come back keep ParseMtreeMemory's
// contract: in address order, disjoint, non-empty, at most 4096.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "drivers/qemu_layout.h"
#include "invariant.h"

namespace vmemfs::drivers {
namespace {

void CheckRanges(const std::vector<MtreeRange>& ranges) {
  CHECK_INVARIANT(ranges.size() <= 4096);
  for (size_t i = 0; i < ranges.size(); ++i) {
    CHECK_INVARIANT(ranges[i].start < ranges[i].end);
    if (i > 0) CHECK_INVARIANT(ranges[i - 1].end <= ranges[i].start);
  }
}

void Run(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    uint64_t gpa = 0;
    std::memcpy(&gpa, data, std::min<size_t>(size, 8));
    (void)ParseGpa2Hva(text, gpa);
    return;
  }
  if (auto ranges = ParseMtreeMemory(text); ranges.has_value()) CheckRanges(*ranges);
}

}  // namespace
}  // namespace vmemfs::drivers

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vmemfs::drivers::Run(data, size);
  return 0;
}
