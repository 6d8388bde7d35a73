// Fuzzes the maple tree walker with hostile nodes.
//
// Input: [root:8][image...]. The image is kernel memory at kBase; reads outside it fault.
// Checks that nothing crashes or hangs, that the walk reads at most max_nodes nodes, and that
// the entries it returns are in strictly increasing, non-overlapping index order.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "base/checked.h"
#include "vmi/linux/maple_tree.h"

namespace vmemfs::vmi::linux_os {
namespace {

constexpr uint64_t kBase = 0xffff888000000000ull;

void Require(bool ok) {
  if (!ok) std::abort();
}

void Run(const uint8_t* data, size_t size) {
  if (size < 8) return;
  uint64_t root;
  std::memcpy(&root, data, 8);
  // Keep most roots pointing into the image so the walk gets past the first read.
  if (root & 1) root = kBase + (root >> 1) % 4096;
  std::span<const uint8_t> image(data + 8, size - 8);
  size_t reads = 0;
  MemoryReader read = [&](uint64_t va, std::span<std::byte> out) -> Status {
    ++reads;
    if (va < kBase || !RangeWithin(va - kBase, out.size(), image.size())) return FaultError(va);
    std::memcpy(out.data(), image.data() + (va - kBase), out.size());
    return Status();
  };
  MapleWalkLimits limits{.max_nodes = 64, .max_entries = 4096};
  auto entries = MapleTreeEntries(MapleLayout{}, read, root, limits);
  Require(reads <= limits.max_nodes);
  if (!entries) return;
  Require(entries->size() <= limits.max_entries);
  for (size_t i = 0; i < entries->size(); ++i) {
    Require((*entries)[i].min <= (*entries)[i].max && (*entries)[i].value != 0);
    if (i > 0) Require((*entries)[i].min > (*entries)[i - 1].max);
  }
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vmemfs::vmi::linux_os::Run(data, size);
  return 0;
}
