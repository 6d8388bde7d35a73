// libFuzzer target: ParseLime on arbitrary bytes returns an error or a layout that keeps its
// contract; it never crashes, reads out of bounds or allocates without bound.
#include <cstddef>
#include <cstdint>
#include <span>

#include "drivers/lime.h"
#include "layout_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  vmemfs::fuzz::CheckLayout(vmemfs::drivers::ParseLime(file), file);
  return 0;
}
